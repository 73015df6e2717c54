#include "meshes/gloo/gloo_router.hpp"

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

/// `{name, value[, regex: true]}` entries for the string matches of `matches` (headers or
/// queryParams of one analysis match entry).
Result<Json> value_matchers(const Json& matches, const std::string& path) {
    if (!matches.is_object() || matches.empty()) {
        return invalid(path, "expected a map of names to matches, got " + show_json(matches));
    }
    Json out = Json::array();
    for (auto it = matches.begin(); it != matches.end(); ++it) {
        const std::string field = path + "." + it.key();
        if (!it->is_object() || it->size() != 1 || !it->begin()->is_string()) {
            return invalid(field, "expected exactly one of exact or regex with a string, got " +
                                      show_json(*it));
        }
        const std::string kind = it->begin().key();
        if (kind != "exact" && kind != "regex") {
            return invalid(field + "." + kind,
                           "not supported by provider gloo (it matches by exact value or regex)");
        }
        Json entry{{"name", it.key()}, {"value", *it->begin()}};
        if (kind == "regex") {
            entry["regex"] = true;
        }
        out.push_back(std::move(entry));
    }
    return Result<Json>(boost::system::in_place_value, std::move(out));
}

/// The Gloo matcher of one analysis match entry: its headers, queryParams and method.
Result<Json> entry_matcher(const Json& entry, const std::string& path) {
    if (!entry.is_object()) {
        return invalid(path, "expected an object, got " + show_json(entry));
    }
    Json matcher = Json::object();
    for (auto it = entry.begin(); it != entry.end(); ++it) {
        const std::string& key = it.key();
        if (it->is_null() || key == "name" || (key == "ignoreUriCase" && *it == false)) {
            continue;
        }
        if (key == "headers" || key == "queryParams") {
            auto values = value_matchers(*it, path + "." + key);
            if (!values) {
                return values.error();
            }
            matcher[key == "headers" ? "headers" : "queryParameters"] = std::move(*values);
        } else if (key == "method") {
            const Json* exact = api::member(*it, "exact");
            if (!it->is_object() || it->size() != 1 || exact == nullptr || !exact->is_string()) {
                return invalid(path + ".method",
                               "not supported by provider gloo (it matches a method exactly), got " +
                                   show_json(*it));
            }
            matcher["methods"] = Json::array({*exact});
        } else {
            return invalid(path + "." + key,
                           "not supported by provider gloo (it matches headers, queryParams and "
                           "method; the path is the delegating VirtualService's)");
        }
    }
    if (matcher.empty()) {
        return invalid(path, "Gloo needs a header, query parameter or method to match");
    }
    return Result<Json>(boost::system::in_place_value, std::move(matcher));
}

Json destination(const RouteContext& context, bool canary, int weight) {
    return Json{{"destination",
                 {{"upstream", {{"name", gloo_upstream_name(context, canary)}, {"namespace", context.ns()}}}}},
                {"weight", weight}};
}

Json table_route(const RouteContext& context, const analysis::Routes& routes) {
    return Json{{"inheritablePathMatchers", true},
                {"routeAction",
                 {{"multi",
                   {{"destinations", Json::array({destination(context, false, routes.primary),
                                                  destination(context, true, routes.canary)})}}}}}};
}

}  // namespace

std::string gloo_upstream_name(const RouteContext& context, bool canary) {
    return context.ns() + "-" + context.apex + (canary ? "-canaryupstream-" : "-primaryupstream-") +
           std::to_string(context.canary.spec.service.port);
}

const std::vector<std::string>& gloo_upstream_owned_keys() {
    static const std::vector<std::string> keys{
        "kube",     "sslConfig",         "circuitBreakers",         "connectionConfig",
        "loadBalancerConfig", "useHttp2", "initialStreamWindowSize", "initialConnectionWindowSize",
        "httpProxyHostname"};
    return keys;
}

Json build_gloo_upstream(const RouteContext& context, bool canary, const Json& reference,
                         const Json& selector) {
    Json spec = Json::object();
    if (reference.is_object()) {
        for (const std::string& key : gloo_upstream_owned_keys()) {
            if (const Json* value = api::member(reference, key); value != nullptr && !value->is_null() && key != "kube") {
                spec[key] = *value;
            }
        }
    }
    spec["kube"] = Json{{"serviceName", canary ? context.canary_service : context.primary},
                        {"serviceNamespace", context.ns()},
                        {"servicePort", context.canary.spec.service.port},
                        {"selector", selector.is_object() ? selector : Json::object()}};
    return route_object(route_types::gloo_upstreams(),
                        route_metadata(context, gloo_upstream_name(context, canary), std::nullopt),
                        std::move(spec));
}

Result<Json> build_route_table(const RouteContext& context, const analysis::Routes& routes) {
    const Json& match = context.canary.spec.analysis ? context.canary.spec.analysis->match : Json();
    Json table_routes = Json::array();
    if (match.is_array() && !match.empty()) {
        Json matchers = Json::array();
        for (std::size_t i = 0; i < match.size(); ++i) {
            auto matcher = entry_matcher(match[i], "spec.analysis.match[" + std::to_string(i) + "]");
            if (!matcher) {
                return matcher.error();
            }
            matchers.push_back(std::move(*matcher));
        }
        Json matched = table_route(context, routes);
        matched["matchers"] = std::move(matchers);
        table_routes.push_back(std::move(matched));
        table_routes.push_back(table_route(context, analysis::Routes{100, 0, false}));
    } else if (!match.is_null() && !match.is_array()) {
        return invalid("spec.analysis.match", "expected a list, got " + show_json(match));
    } else {
        table_routes.push_back(table_route(context, routes));
    }
    return Result<Json>(boost::system::in_place_value,
                        route_object(route_types::gloo_route_tables(),
                                     route_metadata(context, context.apex, context.canary.spec.service.apex),
                                     Json{{"routes", std::move(table_routes)}}));
}

Result<analysis::Routes> route_table_routes(const RouteContext& context, const Json& table) {
    const std::string where = "RouteTable " + context.apex + "." + context.ns();
    const Json* table_routes = api::find_path(table, {"spec", "routes"});
    if (table_routes == nullptr || !table_routes->is_array() || table_routes->empty()) {
        return fail(ErrorKind::kInvalid, where + " has no spec.routes");
    }
    const Json* destinations =
        api::find_path((*table_routes)[0], {"routeAction", "multi", "destinations"});
    const std::string primary_name = gloo_upstream_name(context, false);
    const std::string canary_name = gloo_upstream_name(context, true);
    std::optional<int> primary;
    std::optional<int> canary;
    if (destinations != nullptr && destinations->is_array()) {
        for (const Json& d : *destinations) {
            const std::string name = api::string_at(d, {"destination", "upstream", "name"});
            const Json* weight = api::member(d, "weight");
            const std::optional<int> value =
                weight != nullptr && !weight->is_null() ? read_weight(*weight) : std::optional<int>(0);
            if (name == primary_name) {
                primary = value;
            } else if (name == canary_name) {
                canary = value;
            }
        }
    }
    if (!primary || !canary) {
        return fail(ErrorKind::kInvalid,
                    where + ": spec.routes[0].routeAction.multi lacks a readable weight for upstream " +
                        (!primary ? primary_name : canary_name));
    }
    if (*primary == 0 && *canary == 0) {
        return fail(ErrorKind::kInvalid, where + ": both destination weights are 0");
    }
    return analysis::Routes{*primary, *canary, false};
}

namespace {

/// What Serin owns of a RouteTable's spec; its `weight` (order among tables) is the user's.
const OwnedKeys& table_owned_keys() {
    static const OwnedKeys keys{"routes"};
    return keys;
}

class GlooRouter final : public MeshRouter {
public:
    explicit GlooRouter(RouterDeps deps) : deps_(deps) {}

    asio::awaitable<Result<void>> reconcile(RouteContext context) override {
        auto upstreams = co_await write_upstreams(context);
        if (!upstreams) {
            co_return upstreams.error();
        }
        auto live = live_route(deps_, context, route_types::gloo_route_tables(), context.apex);
        if (!live) {
            co_return live.error();
        }
        const analysis::Routes routes = current_routes_or_default(
            *live, [&](const Json& table) { return route_table_routes(context, table); });
        co_return co_await write_table(context, routes);
    }

    asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) override {
        auto live = existing_route(deps_, context, route_types::gloo_route_tables(), context.apex);
        if (!live) {
            co_return live.error();
        }
        co_return route_table_routes(context, **live);
    }

    asio::awaitable<Result<void>> set_routes(RouteContext context,
                                             analysis::Routes routes) override {
        if (routes.primary == 0 && routes.canary == 0) {
            co_return fail(ErrorKind::kInvalid, "RouteTable " + context.apex + "." + context.ns() +
                                                    " update failed: no valid weights");
        }
        routes.mirrored = false;
        co_return co_await write_table(context, routes);
    }

    asio::awaitable<Result<void>> finalize(RouteContext context) override {
        std::string name = context.apex;
        co_return co_await restore_original_spec(deps_, std::move(context), route_types::gloo_route_tables(),
                                                 std::move(name));
    }

private:
    /// The spec of the Upstream spec.upstreamRef names (null without one).
    Result<Json> reference_spec(const RouteContext& context) const {
        const auto& ref = context.canary.spec.upstream_ref;
        if (!ref) {
            return Result<Json>(boost::system::in_place_value, Json());
        }
        const std::string ns = ref->ns.empty() ? context.ns() : ref->ns;
        kube::ObjectPtr upstream = deps_.kube.get(route_types::gloo_upstreams(), ns, ref->name);
        if (upstream == nullptr) {
            return fail(ErrorKind::kNotFound,
                        "spec.upstreamRef: Upstream " + ref->name + "." + ns + " not found");
        }
        const Json* spec = api::member(*upstream, "spec");
        return Result<Json>(boost::system::in_place_value, spec != nullptr ? *spec : Json::object());
    }

    /// The selector of Service `name` as the cache has it, else the one Serin gives it.
    Json service_selector(const RouteContext& context, const std::string& name, bool canary) const {
        if (kube::ObjectPtr service = deps_.kube.get(kube::types::services(), context.ns(), name)) {
            if (const Json* selector = api::find_path(*service, {"spec", "selector"});
                selector != nullptr && selector->is_object()) {
                return *selector;
            }
        }
        return Json{{context.label_key, canary ? context.label_value : context.label_value + "-primary"}};
    }

    asio::awaitable<Result<void>> write_upstreams(RouteContext context) {
        if (!deps_.kube.serves(route_types::gloo_upstreams())) {
            co_return live_route(deps_, context, route_types::gloo_upstreams(), "").error();
        }
        auto reference = reference_spec(context);
        if (!reference) {
            co_return reference.error();
        }
        for (const bool canary : {false, true}) {
            const std::string service = canary ? context.canary_service : context.primary;
            Json desired = build_gloo_upstream(context, canary, *reference,
                                               service_selector(context, service, canary));
            OwnedKeys owned = gloo_upstream_owned_keys();
            auto applied = co_await apply_route(deps_, context, route_types::gloo_upstreams(),
                                                std::move(desired), std::move(owned));
            if (!applied) {
                co_return applied.error();
            }
        }
        co_return Result<void>{};
    }

    asio::awaitable<Result<void>> write_table(RouteContext context, analysis::Routes routes) {
        auto desired = build_route_table(context, routes);
        if (!desired) {
            co_return desired.error();
        }
        const ApplyOptions options{.remember_original = true};
        auto applied = co_await apply_route(deps_, context, route_types::gloo_route_tables(),
                                            *desired, table_owned_keys(), options);
        if (!applied) {
            co_return applied.error();
        }
        co_return Result<void>{};
    }

    RouterDeps deps_;
};

}  // namespace

std::unique_ptr<MeshRouter> make_gloo_router(RouterDeps deps) {
    return std::make_unique<GlooRouter>(deps);
}

}  // namespace serin::meshes
