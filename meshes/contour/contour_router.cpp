#include "meshes/contour/contour_router.hpp"

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

/// The header conditions of one analysis match entry.
Result<Json> header_conditions(const Json& entry, const std::string& path) {
    if (!entry.is_object()) {
        return invalid(path, "expected an object, got " + show_json(entry));
    }
    Json out = Json::array();
    for (auto it = entry.begin(); it != entry.end(); ++it) {
        if (it.key() == "headers") {
            continue;
        }
        if (!it->is_null() && it.key() != "name" && !(it.key() == "ignoreUriCase" && *it == false)) {
            return invalid(path + "." + it.key(), "not supported by Contour (it matches headers)");
        }
    }
    const Json* headers = api::member(entry, "headers");
    if (headers == nullptr || !headers->is_object() || headers->empty()) {
        return invalid(path + ".headers", "Contour needs at least one header to match");
    }
    for (auto it = headers->begin(); it != headers->end(); ++it) {
        const std::string field = path + ".headers." + it.key();
        if (!it->is_object() || it->size() != 1 || !it->begin()->is_string()) {
            return invalid(field, "expected exactly one of exact or regex with a string, got " +
                                      show_json(*it));
        }
        const std::string kind = it->begin().key();
        if (kind != "exact" && kind != "regex") {
            return invalid(field + "." + kind, "Contour matches a header by exact value or regex only");
        }
        out.push_back(Json{{"header", {{"name", it.key()}, {kind, *it->begin()}}}});
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

Json proxy_service(const RouteContext& context, const std::string& name, int weight) {
    const std::int32_t port = context.canary.spec.service.port;
    return Json{{"name", name},
                {"port", port},
                {"weight", weight},
                {"requestHeadersPolicy",
                 {{"set", Json::array({{{"name", "l5d-dst-override"},
                                        {"value", name + "." + context.ns() +
                                                      ".svc.cluster.local:" + std::to_string(port)}}})}}}};
}

/// A route on `conditions` to the primary and the canary with weights `routes`.
Json proxy_route(const RouteContext& context, Json conditions, const analysis::Routes& routes) {
    const api::CanaryService& service = context.canary.spec.service;
    Json route{{"conditions", std::move(conditions)},
               {"services", Json::array({proxy_service(context, context.primary, routes.primary),
                                         proxy_service(context, context.canary_service, routes.canary)})}};
    if (!service.timeout.empty()) {
        route["timeoutPolicy"] = Json{{"response", service.timeout}, {"idle", "5m"}};
    }
    if (service.retries.is_object()) {
        Json retry = Json::object();
        if (const Json* attempts = api::member(service.retries, "attempts"); attempts != nullptr && attempts->is_number_integer()) {
            retry["count"] = *attempts;
        }
        const std::string per_try = api::string_at(service.retries, {"perTryTimeout"});
        if (!per_try.empty()) {
            retry["perTryTimeout"] = per_try;
        }
        // Split on commas; empty parts are left out (Flagger writes [""], which the CRD rejects).
        Json retry_on = Json::array();
        const std::string on = api::string_at(service.retries, {"retryOn"});
        std::size_t start = 0;
        while (start <= on.size()) {
            const std::size_t end = std::min(on.find(',', start), on.size());
            if (end > start) {
                retry_on.push_back(on.substr(start, end - start));
            }
            start = end + 1;
        }
        if (!retry_on.empty()) {
            retry["retryOn"] = std::move(retry_on);
        }
        route["retryPolicy"] = std::move(retry);
    }
    return route;
}

}  // namespace

Result<Json> build_http_proxy(const RouteContext& context, const analysis::Routes& routes,
                              const std::string& ingress_class) {
    const api::CanaryService& service = context.canary.spec.service;
    const Json prefix = Json::array({{{"prefix", route_prefix(service)}}});
    Json spec = Json::object();
    if (!ingress_class.empty()) {
        spec["ingressClassName"] = ingress_class;
    }
    Json proxy_routes = Json::array();
    const Json& match = context.canary.spec.analysis ? context.canary.spec.analysis->match : Json();
    if (match.is_array() && !match.empty()) {
        for (std::size_t i = 0; i < match.size(); ++i) {
            auto headers = header_conditions(match[i], "spec.analysis.match[" + std::to_string(i) + "]");
            if (!headers) {
                return headers.error();
            }
            Json conditions = prefix;
            conditions.insert(conditions.end(), headers->begin(), headers->end());
            proxy_routes.push_back(proxy_route(context, std::move(conditions), routes));
        }
        proxy_routes.push_back(proxy_route(context, prefix, analysis::Routes{100, 0, false}));
    } else if (!match.is_null() && !match.is_array()) {
        return invalid("spec.analysis.match", "expected a list, got " + show_json(match));
    } else {
        proxy_routes.push_back(proxy_route(context, prefix, routes));
    }
    spec["routes"] = std::move(proxy_routes);
    return Result<Json>(boost::system::in_place_value,
                        route_object(route_types::contour_http_proxies(),
                                     route_metadata(context, context.apex, service.apex), std::move(spec)));
}

Result<analysis::Routes> http_proxy_routes(const RouteContext& context, const Json& proxy) {
    const std::string where = "HTTPProxy " + context.apex + "." + context.ns();
    const Json* proxy_routes = api::find_path(proxy, {"spec", "routes"});
    if (proxy_routes == nullptr || !proxy_routes->is_array() || proxy_routes->empty()) {
        return fail(ErrorKind::kInvalid, where + " has no spec.routes");
    }
    const Json* services = api::member((*proxy_routes)[0], "services");
    std::optional<int> primary;
    std::optional<int> canary;
    if (services != nullptr && services->is_array()) {
        for (const Json& s : *services) {
            const std::string name = api::string_at(s, {"name"});
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
        return fail(ErrorKind::kInvalid, where + ": spec.routes[0] lacks a readable weight for service " +
                                             (!primary ? context.primary : context.canary_service));
    }
    if (*primary == 0 && *canary == 0) {
        return fail(ErrorKind::kInvalid, where + ": both service weights are 0");
    }
    return analysis::Routes{*primary, *canary, false};
}

namespace {

/// What Serin owns of an HTTPProxy's spec; virtualhost, includes and tcpproxy are the user's.
const OwnedKeys& owned_keys() {
    static const OwnedKeys keys{"routes", "ingressClassName"};
    return keys;
}

class ContourRouter final : public MeshRouter {
public:
    ContourRouter(RouterDeps deps, std::string ingress_class)
        : deps_(deps), ingress_class_(std::move(ingress_class)) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto live = live_route(deps_, context, route_types::contour_http_proxies(), context.apex);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& proxy) { return http_proxy_routes(context, proxy); });
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, route_types::contour_http_proxies(), context.apex);
        if (!live) {
            co_return live.error();
        }
        co_return http_proxy_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        if (routes.primary == 0 && routes.canary == 0) {
            co_return fail(ErrorKind::kInvalid, "HTTPProxy " + context.apex + "." + context.ns() +
                                                    " update failed: no valid weights");
        }
        routes.mirrored = false;
        co_return co_await write(context, routes);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        std::string name = context.apex;
        co_return co_await restore_original_spec(deps_, std::move(context), route_types::contour_http_proxies(),
                                                 std::move(name));
    }

private:
    asio::awaitable<Result<void>> write(RouteContext context, analysis::Routes routes) {
        auto desired = build_http_proxy(context, routes, ingress_class_);
        if (!desired) {
            co_return desired.error();
        }
        const ApplyOptions options{.remember_original = true};
        auto applied = co_await apply_route(deps_, context, route_types::contour_http_proxies(),
                                            *desired, owned_keys(), options);
        if (!applied) {
            co_return applied.error();
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
    std::string ingress_class_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_contour_router(RouterDeps deps, std::string ingress_class) {
    return std::make_unique<ContourRouter>(deps, std::move(ingress_class));
}

}  // namespace serin::meshes
