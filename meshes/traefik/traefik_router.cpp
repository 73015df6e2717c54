#include "meshes/traefik/traefik_router.hpp"

#include "crds/api/json_access.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "platform/core/json.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

/// "spec.analysis.match[0].<first key>[.<its first key>]": the field an A/B refusal names.
std::string first_match_field(const Json& match) {
    std::string path = "spec.analysis.match";
    if (!match.is_array() || match.empty()) {
        return path;
    }
    path += "[0]";
    const Json& entry = match[0];
    if (!entry.is_object() || entry.empty()) {
        return path;
    }
    path += "." + entry.begin().key();
    const Json& inner = *entry.begin();
    if (inner.is_object() && !inner.empty()) {
        path += "." + inner.begin().key();
    }
    return path;
}

Json weighted_service(const RouteContext& context, const std::string& name, int weight) {
    return Json{{"name", name},
                {"namespace", context.ns()},
                {"port", context.canary.spec.service.port},
                {"weight", weight}};
}

}  // namespace

Result<Json> build_traefik_service(const RouteContext& context, const analysis::Routes& routes) {
    const Json& match = context.canary.spec.analysis ? context.canary.spec.analysis->match : Json();
    if (!match.is_null() && !(match.is_array() && match.empty())) {
        return fail(ErrorKind::kInvalid,
                    first_match_field(match) +
                        ": not supported by provider traefik (a TraefikService splits by weight "
                        "only: A/B testing is not possible; use a canary or blue/green analysis)");
    }
    Json services = Json::array();
    if (routes.primary > 0) {
        services.push_back(weighted_service(context, context.primary, routes.primary));
    }
    if (routes.canary > 0) {
        services.push_back(weighted_service(context, context.canary_service, routes.canary));
    }
    return Result<Json>(boost::system::in_place_value,
                        route_object(route_types::traefik_services(),
                                     route_metadata(context, context.apex, context.canary.spec.service.apex),
                                     Json{{"weighted", {{"services", std::move(services)}}}}));
}

Result<analysis::Routes> traefik_service_routes(const RouteContext& context, const Json& service) {
    const std::string where = "TraefikService " + context.apex + "." + context.ns();
    const Json* services = api::find_path(service, {"spec", "weighted", "services"});
    long primary = 0;
    long canary = 0;
    if (services != nullptr && services->is_array()) {
        for (const Json& s : *services) {
            const std::string name = api::string_at(s, {"name"});
            const Json* weight = api::member(s, "weight");
            const std::optional<int> value =
                weight == nullptr || weight->is_null() ? std::optional<int>(1) : read_weight(*weight);
            if (name == context.primary) {
                primary += value.value_or(0);
            } else if (name == context.canary_service) {
                canary += value.value_or(0);
            }
        }
    }
    if (primary + canary <= 0) {
        return fail(ErrorKind::kInvalid, where + ": spec.weighted.services gives neither " +
                                             context.primary + " nor " + context.canary_service +
                                             " a weight");
    }
    const long total = primary + canary;
    const int p = static_cast<int>((primary * 100 + total / 2) / total);
    return analysis::Routes{p, 100 - p, false};
}

namespace {

/// What Serin owns of a TraefikService's spec: weighted (a TraefikService is weighted or
/// mirroring, so a user's mirroring is replaced and kept for finalize).
const OwnedKeys& owned_keys() {
    static const OwnedKeys keys{"weighted", "mirroring"};
    return keys;
}

class TraefikRouter final : public MeshRouter {
public:
    explicit TraefikRouter(RouterDeps deps) : deps_(deps) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = live_route(deps_, context, route_types::traefik_services(), context.apex);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& service) { return traefik_service_routes(context, service); });
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, route_types::traefik_services(), context.apex);
        if (!live) {
            co_return live.error();
        }
        co_return traefik_service_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        if (routes.primary == 0 && routes.canary == 0) {
            co_return fail(ErrorKind::kInvalid, "TraefikService " + context.apex + "." +
                                                    context.ns() + " update failed: no valid weights");
        }
        routes.mirrored = false;
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        std::string name = context.apex;
        co_return co_await restore_original_spec(deps_, std::move(context), route_types::traefik_services(),
                                                 std::move(name));
    }

private:
    asio::awaitable<Result<void>> write(RouteContext context, analysis::Routes routes) {
        auto desired = build_traefik_service(context, routes);
        if (!desired) {
            co_return desired.error();
        }
        // The user's sticky sessions of the weighted services stay theirs.
        kube::ObjectPtr live = deps_.kube.get(route_types::traefik_services(), context.ns(), context.apex);
        if (live != nullptr) {
            if (const Json* sticky = api::find_path(*live, {"spec", "weighted", "sticky"})) {
                (*desired)["spec"]["weighted"]["sticky"] = *sticky;
            }
        }
        const ApplyOptions options{.remember_original = true};
        auto applied = co_await apply_route(deps_, context, route_types::traefik_services(),
                                            *desired, owned_keys(), options);
        if (!applied) {
            co_return applied.error();
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_traefik_router(RouterDeps deps) {
    return std::make_unique<TraefikRouter>(deps);
}

}  // namespace serin::meshes
