#include "meshes/istio/istio_router.hpp"

#include "platform/core/json.hpp"
#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <string>

#include "crds/api/json_access.hpp"
#include "meshes/common/match.hpp"
#include "meshes/common/route_object.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/common/session_affinity.hpp"

namespace serin::meshes {

namespace asio = boost::asio;
using Json = nlohmann::json;

bool istio_tcp(const api::CanaryService& service) {
    const std::string& protocol = service.app_protocol;
    return protocol.size() == 3 &&
           std::equal(protocol.begin(), protocol.end(), "tcp", [](char have, char want) {
               return std::tolower(static_cast<unsigned char>(have)) == want;
           });
}

namespace {

constexpr const char* kCookieHeader = "Cookie";
constexpr const char* kSetCookieHeader = "Set-Cookie";

bool has_items(const Json& value) { return value.is_array() && !value.empty(); }
bool has_members(const Json& value) { return value.is_object() && !value.empty(); }

/// Istio needs the port on the destinations when S is served by an ingress gateway (or is a
/// delegate of one) and portDiscovery asks Serin to name it.
bool names_port(const api::CanaryService& service) {
    const bool gateway = !service.gateways.empty() && service.gateways.front() != "mesh";
    return service.port_discovery && (gateway || service.delegation);
}

Json destination(const RouteContext& context, const std::string& host, int weight) {
    const api::CanaryService& service = context.canary.spec.service;
    Json target{{"host", host}};
    if (names_port(service)) {
        target["port"] = Json{{"number", service.port}};
    }
    return Json{{"destination", std::move(target)}, {"weight", weight}};
}

/// `headers` of a destination or route that adds a Set-Cookie response header.
Json set_cookie_headers(std::string value) {
    return Json{{"response", Json{{"add", Json{{kSetCookieHeader, std::move(value)}}}}}};
}

/// What every HTTP route of S carries from spec.service besides its match and destinations.
/// Only uri and authority of `rewrite` exist in Istio (its `type` is for Gateway API).
Json http_route_base(const api::CanaryService& service) {
    Json route = Json::object();
    if (service.rewrite.is_object()) {
        Json rewrite = Json::object();
        for (const char* key : {"authority", "uri"}) {
            if (const Json* value = api::member(service.rewrite, key)) {
                rewrite[key] = *value;
            }
        }
        if (!rewrite.empty()) {
            route["rewrite"] = std::move(rewrite);
        }
    }
    if (!service.timeout.empty()) {
        route["timeout"] = service.timeout;
    }
    if (has_members(service.retries)) {
        route["retries"] = service.retries;
    }
    if (has_members(service.cors_policy)) {
        route["corsPolicy"] = service.cors_policy;
    }
    if (has_members(service.headers)) {
        route["headers"] = service.headers;
    }
    return route;
}

/// The matches of a sticky rule: a Cookie header regex for `cookie` added to every service match
/// (so the rule catches only what the weighted route would), or alone when there are none.
Json cookie_matches(const Json& service_match, const std::string& cookie) {
    const Json condition{{"regex", cookie_header_regex(cookie)}};
    if (!has_items(service_match)) {
        return Json::array({Json{{"headers", Json{{kCookieHeader, condition}}}}});
    }
    Json matches = Json::array();
    for (const Json& item : service_match) {
        Json match = item.is_object() ? item : Json::object();
        Json& headers = match["headers"];
        if (!headers.is_object()) {
            headers = Json::object();
        }
        headers[kCookieHeader] = condition;
        matches.push_back(std::move(match));
    }
    return matches;
}

int interval_seconds(const api::CanaryAnalysis& analysis) {
    return static_cast<int>(
        std::chrono::duration_cast<std::chrono::seconds>(analysis.interval_duration).count());
}

Json http_routes(const RouteContext& context, const analysis::Routes& routes) {
    const api::CanaryService& service = context.canary.spec.service;
    const std::optional<api::CanaryAnalysis>& analysis = context.canary.spec.analysis;
    const Json base = http_route_base(service);

    // A/B: the matched requests split p/c, everything else goes to the primary.
    if (analysis && has_items(analysis->match)) {
        Json tested = base;
        tested["match"] =
            merge_matches(analysis->match, service.match, {"headers", "sourceLabels"});
        tested["route"] =
            Json::array({destination(context, context.primary, routes.primary),
                         destination(context, context.canary_service, routes.canary)});
        Json rest = base;
        if (has_items(service.match)) {
            rest["match"] = service.match;
        }
        rest["route"] = Json::array({destination(context, context.primary, 100)});
        return Json::array({std::move(tested), std::move(rest)});
    }

    Json weighted = base;
    if (has_items(service.match)) {
        weighted["match"] = service.match;
    }
    if (routes.mirrored) {
        weighted["mirror"] = Json{{"host", context.canary_service}};
        if (analysis && analysis->mirror_weight > 0) {
            weighted["mirrorPercentage"] = Json{{"value", analysis->mirror_weight}};
        }
    }
    Json primary = destination(context, context.primary, routes.primary);
    Json canary = destination(context, context.canary_service, routes.canary);

    const api::CanaryStatus& status = context.canary.status;
    if (analysis && analysis->session_affinity) {
        const api::SessionAffinity& affinity = *analysis->session_affinity;
        if (routes.canary != 0 && !status.session_affinity_cookie.empty()) {
            Json rules = Json::array();
            Json sticky_canary = base;
            sticky_canary["match"] = cookie_matches(service.match, status.session_affinity_cookie);
            sticky_canary["route"] =
                Json::array({destination(context, context.primary, 0),
                             destination(context, context.canary_service, 100)});
            rules.push_back(std::move(sticky_canary));
            canary["headers"] = set_cookie_headers(
                set_cookie_value(affinity, status.session_affinity_cookie, affinity.max_age));
            if (!status.primary_session_affinity_cookie.empty()) {
                Json sticky_primary = base;
                sticky_primary["match"] =
                    cookie_matches(service.match, status.primary_session_affinity_cookie);
                sticky_primary["route"] =
                    Json::array({destination(context, context.primary, 100),
                                 destination(context, context.canary_service, 0)});
                rules.push_back(std::move(sticky_primary));
                // Short-lived: a user first served by the primary is re-dealt every interval, so
                // the share of users on the canary follows the weight as it grows.
                primary["headers"] = set_cookie_headers(set_cookie_value(
                    affinity, status.primary_session_affinity_cookie, interval_seconds(*analysis)));
            }
            weighted["route"] = Json::array({std::move(primary), std::move(canary)});
            rules.push_back(std::move(weighted));
            return rules;
        }
        if (routes.canary == 0 && !status.previous_session_affinity_cookie.empty()) {
            // The last release's canary is gone: users still holding its cookie are sent to the
            // primary and told to drop the cookie.
            Json expire = base;
            expire["match"] =
                cookie_matches(service.match, status.previous_session_affinity_cookie);
            Json headers = has_members(service.headers) ? service.headers : Json::object();
            Json& response = headers["response"];
            if (!response.is_object()) {
                response = Json::object();
            }
            Json& add = response["add"];
            if (!add.is_object()) {
                add = Json::object();
            }
            add[kSetCookieHeader] =
                set_cookie_value(affinity, status.previous_session_affinity_cookie, -1);
            expire["headers"] = std::move(headers);
            expire["route"] = Json::array({destination(context, context.primary, 100)});
            weighted["route"] = Json::array({std::move(primary), std::move(canary)});
            return Json::array({std::move(expire), std::move(weighted)});
        }
    }
    weighted["route"] = Json::array({std::move(primary), std::move(canary)});
    return Json::array({std::move(weighted)});
}

Json tcp_routes(const RouteContext& context, const analysis::Routes& routes) {
    const api::CanaryService& service = context.canary.spec.service;
    Json route{
        {"route", Json::array({destination(context, context.primary, routes.primary),
                               destination(context, context.canary_service, routes.canary)})}};
    Json matches = Json::array();
    if (service.match.is_array()) {
        for (const Json& item : service.match) {
            if (const Json* port = api::member(item, "port")) {
                matches.push_back(Json{{"port", *port}});
            }
        }
    }
    if (!matches.empty()) {
        route["match"] = std::move(matches);
    }
    return Json::array({std::move(route)});
}

std::string show_list(const std::vector<std::string>& items) { return dump_json(Json(items)); }

}  // namespace

Result<Json> build_virtual_service(const RouteContext& context, const analysis::Routes& routes) {
    const api::CanaryService& service = context.canary.spec.service;
    Json hosts = Json::array();
    Json gateways = Json::array();
    if (service.delegation) {
        if (!service.hosts.empty() || !service.gateways.empty()) {
            return fail(ErrorKind::kInvalid,
                        "spec.service.delegation: true, but spec.service.hosts is " +
                            show_list(service.hosts) + " and spec.service.gateways is " +
                            show_list(service.gateways) +
                            ": a delegate VirtualService has neither hosts nor gateways");
        }
    } else {
        const bool listed = std::any_of(
            service.hosts.begin(), service.hosts.end(),
            [&](const std::string& host) { return host == context.apex || host == "*"; });
        hosts = Json(service.hosts);
        if (!listed) {
            hosts.push_back(context.apex);
        }
        gateways = service.gateways.empty() ? Json::array({"mesh"}) : Json(service.gateways);
    }
    Json spec{{"hosts", std::move(hosts)}, {"gateways", std::move(gateways)}};
    if (istio_tcp(service)) {
        spec["tcp"] = tcp_routes(context, routes);
    } else {
        spec["http"] = http_routes(context, routes);
    }
    Json object =
        route_object(route_types::istio_virtual_services(),
                     route_metadata(context, context.apex, service.apex), std::move(spec));
    return Result<Json>(boost::system::in_place_value, std::move(object));
}

std::vector<Json> build_destination_rules(const RouteContext& context) {
    const api::CanaryService& service = context.canary.spec.service;
    std::vector<Json> rules;
    for (const std::string* name : {&context.canary_service, &context.primary}) {
        Json spec{{"host", *name}};
        if (has_members(service.traffic_policy)) {
            spec["trafficPolicy"] = service.traffic_policy;
        }
        rules.push_back(route_object(route_types::istio_destination_rules(),
                                     route_metadata(context, *name, std::nullopt),
                                     std::move(spec)));
    }
    return rules;
}

namespace {

/// The destination of `route` (an HTTP or TCP route) whose host is `host`, or nullptr.
const Json* find_destination(const Json& route, const std::string& host) {
    const Json* destinations = api::member(route, "route");
    if (destinations == nullptr || !destinations->is_array()) {
        return nullptr;
    }
    for (const Json& item : *destinations) {
        if (api::string_at(item, {"destination", "host"}) == host) {
            return &item;
        }
    }
    return nullptr;
}

bool destinations_carry_headers(const Json& route) {
    const Json* destinations = api::member(route, "route");
    return destinations != nullptr && destinations->is_array() &&
           std::any_of(destinations->begin(), destinations->end(),
                       [](const Json& item) { return api::member(item, "headers") != nullptr; });
}

/// The weight of `item` in `route`; an absent weight is 100 for a lone destination (Istio's
/// reading), else 0.
int weight_of(const Json& route, const Json* item) {
    if (item == nullptr) {
        return 0;
    }
    if (const Json* weight = api::member(*item, "weight");
        weight != nullptr && weight->is_number()) {
        return read_weight(*weight).value_or(0);
    }
    const Json* destinations = api::member(route, "route");
    return destinations != nullptr && destinations->size() == 1 ? 100 : 0;
}

/// The route of `routes` (an array) that supplies the weights, or nullptr.
const Json* weighted_route(const Json* routes, const std::string& canary) {
    if (routes == nullptr || !routes->is_array()) {
        return nullptr;
    }
    const Json* last = nullptr;
    for (const Json& route : *routes) {
        if (find_destination(route, canary) == nullptr) {
            continue;
        }
        if (destinations_carry_headers(route)) {
            return &route;
        }
        last = &route;
    }
    return last;
}

}  // namespace

Result<analysis::Routes> virtual_service_routes(const RouteContext& context,
                                                const Json& virtual_service) {
    const std::string where = "VirtualService " + context.apex + "." + context.ns();
    const Json* spec = api::member(virtual_service, "spec");
    if (spec == nullptr) {
        return fail(ErrorKind::kInvalid, where + " has no spec");
    }
    const bool tcp = istio_tcp(context.canary.spec.service);
    const Json* route =
        weighted_route(api::member(*spec, tcp ? "tcp" : "http"), context.canary_service);
    if (route == nullptr) {
        route = weighted_route(api::member(*spec, tcp ? "http" : "tcp"), context.canary_service);
    }
    if (route == nullptr) {
        return fail(ErrorKind::kInvalid,
                    where + " has no route with the destination " + context.canary_service);
    }
    analysis::Routes routes;
    routes.primary = weight_of(*route, find_destination(*route, context.primary));
    routes.canary = weight_of(*route, find_destination(*route, context.canary_service));
    routes.mirrored = !api::string_at(*route, {"mirror", "host"}).empty();
    if (routes.primary == 0 && routes.canary == 0) {
        return fail(ErrorKind::kInvalid, where + ": both destination weights are 0");
    }
    return routes;
}

namespace {

const OwnedKeys& virtual_service_keys() {
    static const OwnedKeys keys{"hosts", "gateways", "http", "tcp"};
    return keys;
}

const OwnedKeys& destination_rule_keys() {
    static const OwnedKeys keys{"host", "trafficPolicy"};
    return keys;
}

class IstioRouter final : public MeshRouter {
public:
    explicit IstioRouter(RouterDeps deps) : deps_(deps) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        const kube::ResourceType& rule_type = route_types::istio_destination_rules();
        for (const Json& rule : build_destination_rules(context)) {
            auto applied =
                co_await apply_route(deps_, context, rule_type, rule, destination_rule_keys());
            if (!applied) {
                co_return applied.error();
            }
        }
        auto live = live_route(deps_, context, vs_type(), context.apex);
        if (!live) {
            co_return live.error();
        }
        // Built with the weights it holds: only set_routes moves them.
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& vs) { return virtual_service_routes(context, vs); });
        co_return co_await apply_virtual_service(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, vs_type(), context.apex);
        if (!live) {
            co_return live.error();
        }
        co_return virtual_service_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        co_return co_await apply_virtual_service(context, routes);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        auto live = live_route(deps_, context, vs_type(), context.apex);
        if (!live) {
            co_return live.error();
        }
        if (*live == nullptr) {
            co_return Result<void>{};
        }
        // Nothing recorded: Serin created the VirtualService, which goes with the canary.
        std::optional<Json> original = original_spec(**live);
        if (!original) {
            co_return Result<void>{};
        }
        Json restored = **live;
        restored["spec"] = std::move(*original);
        const kube::ResourceType type = vs_type();
        auto written = co_await deps_.kube.update(type, context.ns(), restored);
        if (!written) {
            co_return written.error();
        }
        co_return Result<void>{};
    }

    bool supports_session_affinity() const override { return true; }
    bool can_mirror(bool /*blue_green*/) const override { return true; }

private:
    static kube::ResourceType vs_type() { return route_types::istio_virtual_services(); }

    asio::awaitable<Result<void>> apply_virtual_service(RouteContext context,
                                                        analysis::Routes routes) {
        auto desired = build_virtual_service(context, routes);
        if (!desired) {
            co_return desired.error();
        }
        const kube::ResourceType type = vs_type();
        const ApplyOptions options{.remember_original = true};
        auto applied =
            co_await apply_route(deps_, context, type, *desired, virtual_service_keys(), options);
        if (!applied) {
            co_return applied.error();
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_istio_router(RouterDeps deps) {
    return std::make_unique<IstioRouter>(deps);
}

}  // namespace serin::meshes
