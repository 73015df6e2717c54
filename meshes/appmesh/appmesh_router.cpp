#include "meshes/appmesh/appmesh_router.hpp"

#include <algorithm>
#include <array>

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

/// The annotation prefix of the App Mesh gateway's VirtualService annotations.
constexpr std::string_view kGatewayPrefix = "gateway.appmesh.k8s.aws/";

/// P: service.match[0].uri.prefix, else "/".
std::string route_prefix(const api::CanaryService& service) {
    if (service.match.is_array() && !service.match.empty()) {
        std::string prefix = api::string_at(service.match[0], {"uri", "prefix"});
        if (!prefix.empty()) {
            return prefix;
        }
    }
    return "/";
}

/// C: targetPort when a number > 0, else port.
std::int64_t container_port(const api::CanaryService& service) {
    if (const auto* number = std::get_if<std::int32_t>(&service.target_port); number != nullptr && *number > 0) {
        return *number;
    }
    return service.port;
}

std::string protocol(const api::CanaryService& service) {
    return service.port_name.find("grpc") != std::string::npos ? "grpc" : "http";
}

/// service.timeout in ms; nullopt when unset. Errors: kInvalid when it is not a duration.
Result<std::optional<std::int64_t>> timeout_ms(const api::CanaryService& service) {
    if (service.timeout.empty()) {
        return std::optional<std::int64_t>();
    }
    auto parsed = api::parse_duration(service.timeout);
    if (!parsed) {
        return invalid("spec.service.timeout", "\"" + service.timeout + "\" is not a duration");
    }
    return std::optional<std::int64_t>(parsed->count());
}

Json millis(std::int64_t value) { return Json{{"unit", "ms"}, {"value", value}}; }

/// The retry policy of service.retries; null when unset.
Result<Json> retry_policy(const api::CanaryService& service) {
    if (!service.retries.is_object()) {
        return Result<Json>(boost::system::in_place_value, Json());
    }
    std::int64_t per_try = 250;
    const std::string per_try_text = api::string_at(service.retries, {"perTryTimeout"});
    if (!per_try_text.empty()) {
        auto parsed = api::parse_duration(per_try_text);
        if (!parsed) {
            return invalid("spec.service.retries.perTryTimeout", "\"" + per_try_text + "\" is not a duration");
        }
        per_try = parsed->count();
    }
    std::int64_t attempts = 1;
    if (const Json* value = api::member(service.retries, "attempts");
        value != nullptr && value->is_number_integer() && value->get<std::int64_t>() > 0) {
        attempts = value->get<std::int64_t>();
    }
    Json http_events = Json::array();
    Json tcp_events = Json::array();
    const std::string on = api::string_at(service.retries, {"retryOn"});
    std::size_t start = 0;
    while (start <= on.size()) {
        const std::size_t end = std::min(on.find(',', start), on.size());
        std::string event = on.substr(start, end - start);
        while (!event.empty() && event.front() == ' ') {
            event.erase(0, 1);
        }
        while (!event.empty() && event.back() == ' ') {
            event.pop_back();
        }
        start = end + 1;
        if (event.empty()) {
            continue;
        }
        static constexpr std::array<std::string_view, 4> kHttpEvents{"server-error", "gateway-error",
                                                                     "client-error", "stream-error"};
        if (std::find(kHttpEvents.begin(), kHttpEvents.end(), event) != kHttpEvents.end()) {
            http_events.push_back(event);
        } else if (event == "connection-error") {
            tcp_events.push_back(event);
        } else {
            return invalid("spec.service.retries.retryOn",
                           "App Mesh does not retry on \"" + event +
                               "\" (it knows server-error, gateway-error, client-error, "
                               "stream-error and connection-error)");
        }
    }
    if (http_events.empty()) {
        http_events.push_back("gateway-error");
    }
    Json policy{{"perRetryTimeout", millis(per_try)}, {"maxRetries", attempts},
                {"httpRetryEvents", std::move(http_events)}};
    if (!tcp_events.empty()) {
        policy["tcpRetryEvents"] = std::move(tcp_events);
    }
    return Result<Json>(boost::system::in_place_value, std::move(policy));
}

/// The header matches of one analysis match entry.
Result<Json> header_matches(const Json& entry, const std::string& path) {
    if (!entry.is_object()) {
        return invalid(path, "expected an object, got " + show_json(entry));
    }
    for (auto it = entry.begin(); it != entry.end(); ++it) {
        if (it.key() != "headers" && !it->is_null() && it.key() != "name" &&
            !(it.key() == "ignoreUriCase" && *it == false)) {
            return invalid(path + "." + it.key(), "not supported by App Mesh (it matches headers)");
        }
    }
    const Json* headers = api::member(entry, "headers");
    if (headers == nullptr || !headers->is_object() || headers->empty()) {
        return invalid(path + ".headers", "App Mesh needs at least one header to match");
    }
    Json out = Json::array();
    for (auto it = headers->begin(); it != headers->end(); ++it) {
        const std::string field = path + ".headers." + it.key();
        if (!it->is_object() || it->size() != 1 || !it->begin()->is_string()) {
            return invalid(field, "expected exactly one of exact, prefix, regex or suffix with a string, got " +
                                      show_json(*it));
        }
        const std::string kind = it->begin().key();
        if (kind != "exact" && kind != "prefix" && kind != "regex" && kind != "suffix") {
            return invalid(field + "." + kind, "App Mesh matches a header by exact, prefix, regex or suffix only");
        }
        out.push_back(Json{{"name", it.key()}, {"match", {{kind, *it->begin()}}}});
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

Json weighted_targets(const RouteContext& context, const analysis::Routes& routes) {
    return Json::array({{{"virtualNodeRef", {{"name", context.canary_service}}}, {"weight", routes.canary}},
                        {{"virtualNodeRef", {{"name", context.primary}}}, {"weight", routes.primary}}});
}

/// One httpRoute named `name` on `match` to `targets`, with the timeout and retries.
Json http_route(const std::string& name, Json match, Json targets,
                const std::optional<std::int64_t>& timeout, const Json& retries,
                std::optional<int> priority) {
    Json http{{"match", std::move(match)}, {"action", {{"weightedTargets", std::move(targets)}}}};
    if (timeout) {
        http["timeout"] = Json{{"perRequest", millis(*timeout)}};
    }
    if (!retries.is_null()) {
        http["retryPolicy"] = retries;
    }
    Json route{{"name", name}, {"httpRoute", std::move(http)}};
    if (priority) {
        route["priority"] = *priority;
    }
    return route;
}

Json listener(const api::CanaryService& service) {
    return Json{{"portMapping", {{"port", container_port(service)}, {"protocol", protocol(service)}}}};
}

Json virtual_node(const RouteContext& context, const std::string& name, const std::string& selected,
                  const std::optional<std::int64_t>& timeout) {
    const api::CanaryService& service = context.canary.spec.service;
    Json node_listener = listener(service);
    if (timeout) {
        node_listener["timeout"] = Json{{"http", {{"perRequest", millis(*timeout)}}}};
    }
    Json spec{{"listeners", Json::array({std::move(node_listener)})},
              {"serviceDiscovery",
               {{"dns", {{"hostname", name + "." + context.ns() + ".svc.cluster.local."}}}}},
              {"podSelector", {{"matchLabels", {{context.label_key, selected}}}}}};
    Json backends = Json::array();
    for (const std::string& backend : service.backends) {
        backends.push_back(backend.starts_with("arn:aws")
                               ? Json{{"virtualService", {{"virtualServiceARN", backend}}}}
                               : Json{{"virtualService", {{"virtualServiceRef", {{"name", backend}}}}}});
    }
    if (!backends.empty()) {
        spec["backends"] = std::move(backends);
    }
    auto log = context.canary.metadata.annotations.find("appmesh.flagger.app/accesslog");
    if (log != context.canary.metadata.annotations.end() && log->second == "enabled") {
        spec["logging"] = Json{{"accessLog", {{"file", {{"path", "/dev/stdout"}}}}}};
    }
    return route_object(route_types::appmesh_virtual_nodes(),
                        route_metadata(context, name, service.apex), std::move(spec));
}

Json virtual_service(const RouteContext& context, const std::string& name, bool apex,
                     const std::optional<std::int64_t>& timeout) {
    const api::CanaryService& service = context.canary.spec.service;
    Json metadata = route_metadata(context, name, std::nullopt);
    if (apex && !service.hosts.empty()) {
        std::string domains;
        for (const std::string& host : service.hosts) {
            domains += host + ",";
        }
        Json& annotations = metadata["annotations"];
        annotations[std::string(kGatewayPrefix) + "expose"] = "true";
        annotations[std::string(kGatewayPrefix) + "domain"] = domains;
        if (timeout) {
            annotations[std::string(kGatewayPrefix) + "timeout"] = service.timeout;
        }
        if (const Json* attempts = api::member(service.retries, "attempts");
            attempts != nullptr && attempts->is_number_integer() && attempts->get<std::int64_t>() > 0) {
            annotations[std::string(kGatewayPrefix) + "retries"] = std::to_string(attempts->get<std::int64_t>());
        }
    }
    return route_object(route_types::appmesh_virtual_services(), std::move(metadata),
                        Json{{"provider", {{"virtualRouter", {{"virtualRouterRef", {{"name", name}}}}}}}});
}

}  // namespace

Result<AppMeshObjects> build_appmesh_objects(const RouteContext& context, const analysis::Routes& routes) {
    const api::CanaryService& service = context.canary.spec.service;
    auto timeout = timeout_ms(service);
    if (!timeout) {
        return timeout.error();
    }
    auto retries = retry_policy(service);
    if (!retries) {
        return retries.error();
    }
    const Json prefix{{"prefix", route_prefix(service)}};
    const std::string& target = context.canary.spec.target_ref.name;

    Json apex_routes = Json::array();
    const Json& match = context.canary.spec.analysis ? context.canary.spec.analysis->match : Json();
    if (match.is_array() && !match.empty()) {
        for (std::size_t i = 0; i < match.size(); ++i) {
            auto headers = header_matches(match[i], "spec.analysis.match[" + std::to_string(i) + "]");
            if (!headers) {
                return headers.error();
            }
            Json route_match = prefix;
            route_match["headers"] = std::move(*headers);
            const std::string name = context.apex + (i == 0 ? "-a" : "-a-" + std::to_string(i + 1));
            apex_routes.push_back(http_route(name, std::move(route_match), weighted_targets(context, routes),
                                             *timeout, *retries, 10 + static_cast<int>(i)));
        }
        apex_routes.push_back(http_route(
            context.apex + "-b", prefix,
            Json::array({{{"virtualNodeRef", {{"name", context.primary}}}, {"weight", 100}}}), *timeout,
            *retries, std::max(20, 10 + static_cast<int>(match.size()))));
    } else if (!match.is_null() && !match.is_array()) {
        return invalid("spec.analysis.match", "expected a list, got " + show_json(match));
    } else {
        apex_routes.push_back(http_route(context.apex, prefix, weighted_targets(context, routes), *timeout,
                                         *retries, std::nullopt));
    }
    const Json listeners = Json::array({listener(service)});
    AppMeshObjects out;
    out.primary_node = virtual_node(context, context.primary, target + "-primary", *timeout);
    out.canary_node = virtual_node(context, context.canary_service, target, *timeout);
    out.apex_router = route_object(route_types::appmesh_virtual_routers(),
                                   route_metadata(context, context.apex, std::nullopt),
                                   Json{{"listeners", listeners}, {"routes", std::move(apex_routes)}});
    out.canary_router = route_object(
        route_types::appmesh_virtual_routers(), route_metadata(context, context.canary_service, std::nullopt),
        Json{{"listeners", listeners},
             {"routes", Json::array({http_route(context.canary_service, prefix,
                                                Json::array({{{"virtualNodeRef", {{"name", context.canary_service}}},
                                                              {"weight", 100}}}),
                                                *timeout, *retries, std::nullopt)})}});
    out.apex_service = virtual_service(context, context.apex, true, *timeout);
    out.canary_service = virtual_service(context, context.canary_service, false, *timeout);
    return out;
}

Result<analysis::Routes> virtual_router_routes(const RouteContext& context, const Json& router) {
    const Error not_found = fail(ErrorKind::kInvalid, "VirtualRouter routes " + context.apex + " not found");
    const Json* routes = api::find_path(router, {"spec", "routes"});
    if (routes == nullptr || !routes->is_array() || routes->empty()) {
        return not_found;
    }
    const Json* targets = api::find_path((*routes)[0], {"httpRoute", "action", "weightedTargets"});
    if (targets == nullptr || !targets->is_array() || targets->size() != 2) {
        return not_found;
    }
    std::optional<int> primary;
    std::optional<int> canary;
    for (const Json& t : *targets) {
        const std::string name = api::string_at(t, {"virtualNodeRef", "name"});
        const Json* weight = api::member(t, "weight");
        const std::optional<int> value = weight != nullptr ? read_weight(*weight) : std::nullopt;
        if (name == context.primary) {
            primary = value;
        } else if (name == context.canary_service) {
            canary = value;
        }
    }
    if (!primary || !canary) {
        return not_found;
    }
    if (*primary == 0 && *canary == 0) {
        return fail(ErrorKind::kInvalid,
                    "VirtualRouter " + context.apex + "." + context.ns() + ": both weighted targets are 0");
    }
    return analysis::Routes{*primary, *canary, false};
}

namespace {

/// What Serin owns of each object's spec; awsName and meshRef are the App Mesh controller's,
/// anything else the user's.
const OwnedKeys& node_keys() {
    static const OwnedKeys keys{"listeners", "serviceDiscovery", "podSelector", "backends", "logging"};
    return keys;
}
const OwnedKeys& router_keys() {
    static const OwnedKeys keys{"listeners", "routes"};
    return keys;
}
const OwnedKeys& service_keys() {
    static const OwnedKeys keys{"provider"};
    return keys;
}

class AppMeshRouter final : public MeshRouter {
public:
    explicit AppMeshRouter(RouterDeps deps) : deps_(deps) {}

    bool routes_before_workload() const override { return true; }

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = live_route(deps_, context, route_types::appmesh_virtual_routers(), context.apex);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& router) { return virtual_router_routes(context, router); });
        co_return co_await write(context, routes, true);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, route_types::appmesh_virtual_routers(), context.apex);
        if (!live) {
            co_return live.error();
        }
        co_return virtual_router_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context, analysis::Routes routes) override {
        routes.mirrored = false;
        co_return co_await write(context, routes, false);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        const std::array<std::pair<kube::ResourceType, std::string>, 6> objects{{
            {route_types::appmesh_virtual_services(), context.apex},
            {route_types::appmesh_virtual_services(), context.canary_service},
            {route_types::appmesh_virtual_routers(), context.apex},
            {route_types::appmesh_virtual_routers(), context.canary_service},
            {route_types::appmesh_virtual_nodes(), context.primary},
            {route_types::appmesh_virtual_nodes(), context.canary_service},
        }};
        for (const auto& [type, name] : objects) {
            auto live = live_route(deps_, context, type, name);
            if (!live) {
                co_return live.error();
            }
            if (*live == nullptr || owned_by_canary(**live, context)) {
                continue;  // absent, or created by Serin: it goes with the canary
            }
            std::optional<Json> original = original_spec(**live);
            if (!original) {
                continue;
            }
            Json restored = **live;
            // The controller's fields stay as they are now.
            for (const char* key : {"awsName", "meshRef"}) {
                if (const Json* value = api::find_path(**live, {"spec", key})) {
                    (*original)[key] = *value;
                }
            }
            restored["spec"] = std::move(*original);
            restored["metadata"]["annotations"].erase(std::string(kOriginalConfigKey));
            auto written = co_await deps_.kube.update(type, context.ns(), restored);
            if (!written) {
                co_return written.error();
            }
        }
        co_return Result<void>{};
    }

private:
    /// Writes every object (all = reconcile) or only the apex router (set_routes).
    asio::awaitable<Result<void>> write(RouteContext context, analysis::Routes routes, bool all) {
        auto objects = build_appmesh_objects(context, routes);
        if (!objects) {
            co_return objects.error();
        }
        const ApplyOptions options{.remember_original = true};
        if (all) {
            // The nodes first: the routers point at them, and pods need them to be injected.
            for (Json* node : {&objects->primary_node, &objects->canary_node}) {
                auto applied = co_await apply_route(deps_, context, route_types::appmesh_virtual_nodes(),
                                                    std::move(*node), node_keys(), options);
                if (!applied) {
                    co_return applied.error();
                }
            }
            auto canary_router = co_await apply_route(deps_, context, route_types::appmesh_virtual_routers(),
                                                      std::move(objects->canary_router), router_keys(), options);
            if (!canary_router) {
                co_return canary_router.error();
            }
        }
        auto apex_router = co_await apply_route(deps_, context, route_types::appmesh_virtual_routers(),
                                                std::move(objects->apex_router), router_keys(), options);
        if (!apex_router) {
            co_return apex_router.error();
        }
        if (all) {
            for (Json* service : {&objects->apex_service, &objects->canary_service}) {
                auto applied = co_await apply_service(context, std::move(*service));
                if (!applied) {
                    co_return applied.error();
                }
            }
        }
        co_return Result<void>{};
    }

    /// A VirtualService kept in shape: apply_route's owned fields, and gateway annotations
    /// Serin no longer wants (service.hosts emptied) removed from one Serin created.
    asio::awaitable<Result<void>> apply_service(RouteContext context, Json desired) {
        const kube::ResourceType& type = route_types::appmesh_virtual_services();
        auto update_for = [&context, &desired](const Json& found) -> std::optional<Json> {
            std::optional<Json> update = route_update(found, desired, service_keys());
            if (!owned_by_canary(found, context)) {
                if (update) {
                    const Json* before = api::find_path(found, {"metadata", "annotations"});
                    if (before == nullptr || !before->is_object() ||
                        (!before->contains(std::string(kOriginalConfigKey)) &&
                         !before->contains(std::string(kLastAppliedKey)))) {
                        const Json* spec = api::member(found, "spec");
                        (*update)["metadata"]["annotations"][std::string(kOriginalConfigKey)] =
                            dump_json(spec != nullptr ? *spec : Json::object());
                    }
                }
                return update;
            }
            Json updated = found;
            if (update) {
                updated = std::move(*update);
            }
            bool pruned = false;
            Json& annotations = updated["metadata"]["annotations"];
            const Json* wanted = api::find_path(desired, {"metadata", "annotations"});
            if (annotations.is_object()) {
                for (auto it = annotations.begin(); it != annotations.end();) {
                    if (it.key().starts_with(kGatewayPrefix) &&
                        (wanted == nullptr || !wanted->contains(it.key()))) {
                        it = annotations.erase(it);
                        pruned = true;
                    } else {
                        ++it;
                    }
                }
            }
            if (!update && !pruned) {
                return std::nullopt;
            }
            return updated;
        };
        auto ensured = co_await deps_.kube.ensure(type, context.ns(), desired, update_for);
        if (!ensured) {
            co_return ensured.error();
        }
        if (*ensured == nullptr) {
            co_return fail(ErrorKind::kAlreadyExists, type.kind + " " +
                                                          api::string_at(desired, {"metadata", "name"}) + "." +
                                                          context.ns() + " already exists");
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_appmesh_router(RouterDeps deps) {
    return std::make_unique<AppMeshRouter>(deps);
}

}  // namespace serin::meshes
