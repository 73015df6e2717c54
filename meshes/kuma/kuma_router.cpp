#include "meshes/kuma/kuma_router.hpp"

#include "crds/api/json_access.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "platform/core/json.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

namespace {

std::string canary_id(const RouteContext& context) {
    return context.ns() + "/" + context.canary.metadata.name;
}

std::string where(const RouteContext& context) {
    return "TrafficRoute " + context.apex + " (cluster-scoped)";
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
    return fail(ErrorKind::kInvalid,
                field + ": not supported by provider kuma (a TrafficRoute splits by weight only; "
                        "use a weighted canary)");
}

std::string service_prefix(const std::string& kuma_service) {
    return kuma_service.substr(0, kuma_service.find('_'));
}

std::string claim_of(const Json& live) {
    return api::string_at(live, {"metadata", "annotations", std::string(kKumaCanaryKey)});
}

const OwnedKeys& owned_keys() {
    static const OwnedKeys keys{"sources", "destinations", "conf"};
    return keys;
}

}  // namespace

std::string kuma_service(const RouteContext& context, std::string_view name) {
    return std::string(name) + "_" + context.ns() + "_svc_" +
           std::to_string(context.canary.spec.service.port);
}

Result<Json> build_traffic_route(const RouteContext& context, const analysis::Routes& routes) {
    const Json& match = context.canary.spec.analysis ? context.canary.spec.analysis->match : Json();
    if (!match.is_null() && !(match.is_array() && match.empty())) {
        return match_refused(match);
    }
    Json metadata = route_metadata(context, context.apex, context.canary.spec.service.apex);
    metadata.erase("namespace");
    metadata.erase("ownerReferences");
    metadata["annotations"][std::string(kKumaCanaryKey)] = canary_id(context);
    auto split = [&](const std::string& name, int weight) {
        return Json{{"weight", weight}, {"destination", {{"kuma.io/service", kuma_service(context, name)}}}};
    };
    Json spec{{"sources", Json::array({{{"match", {{"kuma.io/service", "*"}}}}})},
              {"destinations",
               Json::array({{{"match", {{"kuma.io/service", kuma_service(context, context.apex)}}}}})},
              {"conf",
               {{"split", Json::array({split(context.primary, routes.primary),
                                       split(context.canary_service, routes.canary)})}}}};
    Json object = route_object(route_types::kuma_traffic_routes(), std::move(metadata), std::move(spec));
    const auto mesh = context.canary.metadata.annotations.find(std::string(kKumaMeshAnnotation));
    object["mesh"] = mesh != context.canary.metadata.annotations.end() && !mesh->second.empty()
                         ? mesh->second
                         : std::string("default");
    return Result<Json>(boost::system::in_place_value, std::move(object));
}

Result<analysis::Routes> traffic_route_routes(const RouteContext& context, const Json& route) {
    const Json* split = api::find_path(route, {"spec", "conf", "split"});
    std::optional<int> primary;
    std::optional<int> canary;
    if (split != nullptr && split->is_array()) {
        for (const Json& s : *split) {
            const std::string name = service_prefix(api::string_at(s, {"destination", "kuma.io/service"}));
            const Json* weight = api::member(s, "weight");
            const std::optional<int> value = weight != nullptr ? read_weight(*weight) : std::optional<int>(0);
            if (name == context.primary) {
                primary = value;
            } else if (name == context.canary_service) {
                canary = value;
            }
        }
    }
    if (!primary || !canary) {
        return fail(ErrorKind::kInvalid, where(context) + " does not contain a readable split for " +
                                             (!primary ? context.primary : context.canary_service));
    }
    if (*primary == 0 && *canary == 0) {
        return fail(ErrorKind::kInvalid, where(context) + ": both split weights are 0");
    }
    return analysis::Routes{*primary, *canary, false};
}

std::optional<std::string> traffic_route_conflict(
    const RouteContext& context, const Json& live,
    const std::function<bool(const std::string& ns, const std::string& name)>& canary_exists) {
    const std::string claim = claim_of(live);
    if (claim == canary_id(context)) {
        return std::nullopt;
    }
    if (!claim.empty()) {
        const auto slash = claim.find('/');
        const std::string other_ns = claim.substr(0, slash);
        const std::string other_name = slash == std::string::npos ? std::string() : claim.substr(slash + 1);
        if (canary_exists(other_ns, other_name)) {
            return where(context) + " belongs to canary " + other_name + "." + other_ns +
                   " (annotation " + std::string(kKumaCanaryKey) +
                   "): a TrafficRoute is named after spec.service.name alone, so give this canary "
                   "another spec.service.name";
        }
        return std::nullopt;  // its canary is gone: left behind, taken over
    }
    // Not Serin's: a user's (or Flagger's) TrafficRoute; take it over only if it routes here.
    const Json* destinations = api::find_path(live, {"spec", "destinations"});
    if (destinations != nullptr && destinations->is_array()) {
        const std::string mine = kuma_service(context, context.apex);
        for (const Json& d : *destinations) {
            const std::string service = api::string_at(d, {"match", "kuma.io/service"});
            const std::string suffix = "_" + context.ns() + "_svc_";
            if (!service.empty() && service != "*" && service != mine &&
                service.find(suffix) == std::string::npos) {
                return where(context) + " routes " + service +
                       ", a service of another namespace: a TrafficRoute is named after "
                       "spec.service.name alone, so give this canary another spec.service.name";
            }
        }
    }
    return std::nullopt;
}

namespace {

class KumaRouter final : public MeshRouter {
public:
    explicit KumaRouter(RouterDeps deps) : deps_(deps) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = claimed(context);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& route) { return traffic_route_routes(context, route); });
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = claimed(context);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr) {
            co_return fail(ErrorKind::kNotFound, where(context) + " not found");
        }
        co_return traffic_route_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        routes.mirrored = false;
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        co_return co_await give_back(context);
    }

    bool needs_finalizer() const override { return true; }

    asio::awaitable<Result<void>> release(RouteContext context) override {
        co_return co_await give_back(context);
    }

private:
    /// The live TrafficRoute S (nullptr when absent), unless it is another canary's.
    Result<kube::ObjectPtr> claimed(const RouteContext& context) {
        const kube::ResourceType& type = route_types::kuma_traffic_routes();
        if (!deps_.kube.serves(type)) {
            return fail(ErrorKind::kInvalid,
                        "spec.provider: \"" + context.provider + "\" writes TrafficRoute (" +
                            type.api_version() + "), which the API server does not serve: install " +
                            "its CustomResourceDefinition and restart Serin");
        }
        kube::ObjectPtr live = deps_.kube.get(type, "", context.apex);
        if (live != nullptr) {
            auto exists = [this](const std::string& ns, const std::string& name) {
                return deps_.kube.get(kube::types::canaries(), ns, name) != nullptr;
            };
            if (auto conflict = traffic_route_conflict(context, *live, exists)) {
                return fail(ErrorKind::kInvalid, *conflict);
            }
        }
        return live;
    }

    asio::awaitable<Result<void>> write(RouteContext context, analysis::Routes routes) {
        auto live = claimed(context);
        if (!live) {
            co_return live.error();
        }
        auto desired = build_traffic_route(context, routes);
        if (!desired) {
            co_return desired.error();
        }
        const std::string mine = canary_id(context);
        auto update_for = [&](const Json& found) -> std::optional<Json> {
            std::optional<Json> update = route_update(found, *desired, owned_keys());
            if (!update) {
                return update;
            }
            if (claim_of(found) != mine) {
                // Taken over (a user's, Flagger's, or one whose canary is gone): its spec is kept
                // for finalize, unless an earlier take-over recorded it already.
                Json& annotations = (*update)["metadata"]["annotations"];
                if (!annotations.contains(std::string(kOriginalConfigKey))) {
                    const Json* spec = api::member(found, "spec");
                    annotations[std::string(kOriginalConfigKey)] =
                        dump_json(spec != nullptr ? *spec : Json::object());
                }
            }
            return update;
        };
        auto ensured = co_await deps_.kube.ensure(route_types::kuma_traffic_routes(), "",
                                                  *desired, update_for);
        if (!ensured) {
            co_return ensured.error();
        }
        if (*ensured == nullptr) {
            co_return fail(ErrorKind::kAlreadyExists, where(context) + " already exists");
        }
        co_return Result<void>{};
    }

    /// Deletes the TrafficRoute Serin created for this canary, or gives a taken-over one its
    /// spec back (without Serin's annotations); another canary's is left alone.
    asio::awaitable<Result<void>> give_back(RouteContext context) {
        const kube::ResourceType& type = route_types::kuma_traffic_routes();
        if (!deps_.kube.serves(type)) {
            co_return Result<void>{};
        }
        kube::ObjectPtr live = deps_.kube.get(type, "", context.apex);
        if (live == nullptr || claim_of(*live) != canary_id(context)) {
            co_return Result<void>{};
        }
        const Json* annotations = api::find_path(*live, {"metadata", "annotations"});
        const std::string original_key(kOriginalConfigKey);
        if (annotations == nullptr || !annotations->contains(original_key)) {
            kube::DeleteOptions options;
            options.precondition_resource_version = api::string_at(*live, {"metadata", "resourceVersion"});
            co_return co_await deps_.kube.remove(type, "", context.apex, options);
        }
        Json restored = *live;
        // Only Serin's own record: a TrafficRoute it created carries none and is deleted above.
        auto original = parse_json(api::string_at(*live, {"metadata", "annotations", original_key}),
                                   kMaxRemoteJsonDepth, kOriginalConfigKey);
        if (original && original->is_object()) {
            restored["spec"] = std::move(*original);
        }
        Json& kept = restored["metadata"]["annotations"];
        kept.erase(original_key);
        kept.erase(std::string(kKumaCanaryKey));
        auto written = co_await deps_.kube.update(type, "", restored);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_kuma_router(RouterDeps deps) {
    return std::make_unique<KumaRouter>(deps);
}

}  // namespace serin::meshes
