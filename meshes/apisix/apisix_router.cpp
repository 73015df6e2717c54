#include "meshes/apisix/apisix_router.hpp"

#include "crds/api/json_access.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "platform/core/json.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

Error invalid(const std::string& path, const std::string& message) {
    return fail(ErrorKind::kInvalid, path + ": " + message);
}

std::string user_route_name(const RouteContext& context) {
    const auto& ref = context.canary.spec.route_ref;
    return ref ? ref->name : std::string();
}

/// The A/B refusal: the first field of the first match entry.
Error match_refused(const Json& match) {
    std::string field = "spec.analysis.match";
    if (match.is_array() && !match.empty() && match[0].is_object() && !match[0].empty()) {
        const auto first = match[0].begin();
        field += "[0]." + first.key();
        if (first->is_object() && !first->empty()) {
            field += "." + first->begin().key();
        }
    }
    return invalid(field, "not supported by provider apisix (its canary route splits by weight "
                          "only; use a weighted canary)");
}

Json backend(const Json& original, const std::string& name, int weight) {
    Json out{{"serviceName", name}, {"weight", weight}};
    for (const char* key : {"servicePort", "resolveGranularity", "subset"}) {
        if (const Json* value = api::member(original, key)) {
            out[key] = *value;
        }
    }
    return out;
}

}  // namespace

std::string apisix_canary_route_name(const RouteContext& context) {
    return user_route_name(context) + "-" + context.apex + "-canary";
}

Result<Json> build_apisix_canary_route(const RouteContext& context, const Json& user_route,
                                       const analysis::Routes& routes) {
    const auto& ref = context.canary.spec.route_ref;
    if (!ref || ref->name.empty()) {
        return invalid("spec.routeRef", "apisix route selector is empty (provider apisix needs "
                                        "the ApisixRoute to copy)");
    }
    if ((!ref->kind.empty() && ref->kind != "ApisixRoute") ||
        (!ref->api_version.empty() && ref->api_version != "apisix.apache.org/v2")) {
        return invalid("spec.routeRef", "expected apiVersion apisix.apache.org/v2, kind "
                                        "ApisixRoute, got " + ref->api_version + " " + ref->kind);
    }
    const Json& match = context.canary.spec.analysis ? context.canary.spec.analysis->match : Json();
    if (!match.is_null() && !(match.is_array() && match.empty())) {
        return match_refused(match);
    }
    const std::string where = "spec.routeRef: ApisixRoute " + ref->name + "." + context.ns();
    const Json* http = api::find_path(user_route, {"spec", "http"});
    if (http == nullptr || !http->is_array() || http->empty()) {
        return fail(ErrorKind::kInvalid, where + " has no spec.http");
    }
    const Json* entry = nullptr;
    std::size_t index = 0;
    for (std::size_t i = 0; i < http->size() && entry == nullptr; ++i) {
        const Json* backends = api::member((*http)[i], "backends");
        if (backends == nullptr || !backends->is_array()) {
            continue;
        }
        for (const Json& b : *backends) {
            if (api::string_at(b, {"serviceName"}) == context.apex) {
                entry = &(*http)[i];
                index = i;
                break;
            }
        }
    }
    if (entry == nullptr) {
        return fail(ErrorKind::kInvalid, where + ": no spec.http entry has the backend " + context.apex);
    }
    const Json& original_backends = (*entry)["backends"];
    if (original_backends.size() != 1) {
        return fail(ErrorKind::kInvalid, where + ": spec.http[" + std::to_string(index) +
                                             "].backends: only one backend is supported, got " +
                                             std::to_string(original_backends.size()));
    }
    Json canary_entry = *entry;
    canary_entry.erase("upstreams");
    canary_entry["priority"] = 10000;
    canary_entry["backends"] = Json::array({backend(original_backends[0], context.primary, routes.primary),
                                            backend(original_backends[0], context.canary_service, routes.canary)});
    Json spec = api::member(user_route, "spec") != nullptr ? user_route["spec"] : Json::object();
    spec["http"] = Json::array({std::move(canary_entry)});

    Json annotations = Json::object();
    if (const Json* user = api::find_path(user_route, {"metadata", "annotations"});
        user != nullptr && user->is_object()) {
        for (auto it = user->begin(); it != user->end(); ++it) {
            if (it->is_string() && it.key() != kLastAppliedKey && it.key() != kOriginalConfigKey) {
                annotations[it.key()] = *it;
            }
        }
    }
    annotations[std::string(kFluxReconcileKey)] = "disabled";
    annotations[std::string(kHelmDriftKey)] = "disabled";
    Json metadata{{"name", apisix_canary_route_name(context)},
                  {"namespace", context.ns()},
                  {"annotations", std::move(annotations)},
                  {"ownerReferences", Json::array({context.owner_reference})}};
    if (const Json* labels = api::find_path(user_route, {"metadata", "labels"});
        labels != nullptr && labels->is_object() && !labels->empty()) {
        metadata["labels"] = *labels;
    }
    return Result<Json>(boost::system::in_place_value,
                        route_object(route_types::apisix_routes(), std::move(metadata), std::move(spec)));
}

Result<analysis::Routes> apisix_routes(const RouteContext& context, const Json& route) {
    const std::string where = "ApisixRoute " + apisix_canary_route_name(context) + "." + context.ns();
    const Json* http = api::find_path(route, {"spec", "http"});
    std::optional<int> primary;
    std::optional<int> canary;
    if (http != nullptr && http->is_array()) {
        for (const Json& entry : *http) {
            const Json* backends = api::member(entry, "backends");
            if (backends == nullptr || !backends->is_array()) {
                continue;
            }
            std::optional<int> p;
            std::optional<int> c;
            for (const Json& b : *backends) {
                const std::string name = api::string_at(b, {"serviceName"});
                const Json* weight = api::member(b, "weight");
                const std::optional<int> value = weight != nullptr ? read_weight(*weight) : std::optional<int>(0);
                if (name == context.primary) {
                    p = value;
                } else if (name == context.canary_service) {
                    c = value;
                }
            }
            if (p) {
                primary = p;
                canary = c;
                break;
            }
        }
    }
    if (!primary || !canary) {
        return fail(ErrorKind::kInvalid, where + " lacks a readable weight for backend " +
                                             (!primary ? context.primary : context.canary_service));
    }
    if (*primary == 0 && *canary == 0) {
        return fail(ErrorKind::kInvalid, where + ": both backend weights are 0");
    }
    return analysis::Routes{*primary, *canary, false};
}

namespace {

/// The update that makes `live` the desired canary route: its spec replaced whole (a generated
/// object), the desired labels and annotations set; nullopt when nothing differs.
std::optional<Json> canary_route_update(const Json& live, const Json& desired) {
    Json updated = live;
    bool changed = false;
    const Json* want_spec = api::member(desired, "spec");
    if (want_spec != nullptr && (!updated.contains("spec") || updated["spec"] != *want_spec)) {
        updated["spec"] = *want_spec;
        changed = true;
    }
    for (const char* key : {"labels", "annotations"}) {
        const Json* want = api::find_path(desired, {"metadata", key});
        if (want == nullptr || !want->is_object()) {
            continue;
        }
        Json& have = updated["metadata"][key];
        if (!have.is_object()) {
            have = Json::object();
        }
        for (auto it = want->begin(); it != want->end(); ++it) {
            auto found = have.find(it.key());
            if (found == have.end() || *found != *it) {
                have[it.key()] = *it;
                changed = true;
            }
        }
    }
    if (!changed) {
        return std::nullopt;
    }
    return updated;
}

class ApisixRouter final : public MeshRouter {
public:
    explicit ApisixRouter(RouterDeps deps) : deps_(deps) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = live_route(deps_, context, route_types::apisix_routes(),
                               apisix_canary_route_name(context));
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& route) { return apisix_routes(context, route); });
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, route_types::apisix_routes(),
                                   apisix_canary_route_name(context));
        if (!live) {
            co_return live.error();
        }
        co_return apisix_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        if (routes.primary == 0 && routes.canary == 0) {
            co_return fail(ErrorKind::kInvalid, "ApisixRoute " + apisix_canary_route_name(context) +
                                                    "." + context.ns() +
                                                    " update failed: no valid weights");
        }
        routes.mirrored = false;
        co_return co_await write(context, routes);
    }

    /// A canary route Serin created goes with the canary (owner reference); one it took over
    /// gets its spec back.
    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        const kube::ResourceType& type = route_types::apisix_routes();
        auto live = live_route(deps_, context, type, apisix_canary_route_name(context));
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr || owned_by_canary(**live, context)) {
            co_return Result<void>{};
        }
        std::optional<Json> original = original_spec(**live);
        if (!original) {
            co_return Result<void>{};
        }
        Json restored = **live;
        restored["spec"] = std::move(*original);
        restored["metadata"]["annotations"].erase(std::string(kOriginalConfigKey));
        auto written = co_await deps_.kube.update(type, context.ns(), restored);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

private:
    asio::awaitable<Result<void>> write(RouteContext context, analysis::Routes routes) {
        const std::string user = user_route_name(context);
        if (user.empty()) {
            co_return invalid("spec.routeRef", "apisix route selector is empty (provider apisix "
                                               "needs the ApisixRoute to copy)");
        }
        auto user_route = live_route(deps_, context, route_types::apisix_routes(), user);
        if (!user_route) {
            co_return user_route.error();
        }
        if (*user_route == nullptr) {
            co_return fail(ErrorKind::kNotFound, "spec.routeRef: ApisixRoute " + user + "." +
                                                     context.ns() + " not found");
        }
        auto desired = build_apisix_canary_route(context, **user_route, routes);
        if (!desired) {
            co_return desired.error();
        }
        auto update_for = [&](const Json& found) -> std::optional<Json> {
            std::optional<Json> update = canary_route_update(found, *desired);
            if (update && !owned_by_canary(found, context)) {
                // Taken over: its spec kept for finalize, unless recorded already.
                Json& annotations = (*update)["metadata"]["annotations"];
                const Json* before = api::find_path(found, {"metadata", "annotations"});
                if (before == nullptr || !before->is_object() ||
                    !before->contains(std::string(kOriginalConfigKey))) {
                    const Json* spec = api::member(found, "spec");
                    annotations[std::string(kOriginalConfigKey)] =
                        dump_json(spec != nullptr ? *spec : Json::object());
                }
            }
            return update;
        };
        auto ensured = co_await deps_.kube.ensure(route_types::apisix_routes(), context.ns(),
                                                  *desired, update_for);
        if (!ensured) {
            co_return ensured.error();
        }
        if (*ensured == nullptr) {
            co_return fail(ErrorKind::kAlreadyExists, "ApisixRoute " + apisix_canary_route_name(context) +
                                                          "." + context.ns() + " already exists");
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_apisix_router(RouterDeps deps) {
    return std::make_unique<ApisixRouter>(deps);
}

}  // namespace serin::meshes
