// The Gateway API router's pure parts: the HTTPRoute of every shape (golden files), the routes
// read back from it (round trips), its errors, and the parent status check.
#include "meshes/gatewayapi/gatewayapi_router.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "meshes/common/route_types.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/object_store.hpp"
#include "tests/support/golden.hpp"
#include "tests/support/unimplemented_kube_client.hpp"

namespace {

namespace asio = boost::asio;
using serin::meshes::build_http_route;
using serin::meshes::http_route_parents_ready;
using serin::meshes::http_route_routes;
using serin::meshes::RouteContext;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

RouteContext context_of(const std::string& name, std::string provider = "gatewayapi:v1") {
    return route_context(load_document("tests/data/routes/gatewayapi/" + name + ".yaml"),
                         std::move(provider));
}

/// The route, which must build.
Json route_of(const RouteContext& context, Routes routes, const std::string& version = "v1") {
    auto route = build_http_route(context, routes, version);
    if (!route) {
        FAIL("build_http_route failed: " << route.error().message);
    }
    return *route;
}

/// The kInvalid message of a build that must fail.
std::string build_error(const RouteContext& context, const std::string& version = "v1") {
    auto route = build_http_route(context, Routes{90, 10, false}, version);
    if (route) {
        return "(built: " + route->dump() + ")";
    }
    CHECK(route.error().kind == serin::ErrorKind::kInvalid);
    return route.error().message;
}

const Json& rules(const Json& route) { return route.at("spec").at("rules"); }

/// The filter types of a rule, in order.
std::vector<std::string> filter_types(const Json& rule) {
    std::vector<std::string> types;
    for (const Json& filter : rule.value("filters", Json::array())) {
        types.push_back(filter.at("type").get<std::string>());
    }
    return types;
}

}  // namespace

TEST_CASE("a progressive canary gets one weighted rule with the default match, v1 and v1beta1") {
    const auto context = context_of("podinfo");
    const Json v1 = route_of(context, Routes{90, 10, false});
    CHECK(golden("gatewayapi/weighted-v1.json", v1) == "");
    CHECK(v1["apiVersion"] == "gateway.networking.k8s.io/v1");
    REQUIRE(rules(v1).size() == 1);
    CHECK(rules(v1)[0]["matches"] ==
          Json::parse(R"([{"path": {"type": "PathPrefix", "value": "/"}}])"));

    const Json v1beta1 = route_of(context, Routes{90, 10, false}, "v1beta1");
    CHECK(golden("gatewayapi/weighted-v1beta1.json", v1beta1) == "");
    CHECK(v1beta1["apiVersion"] == "gateway.networking.k8s.io/v1beta1");
    CHECK(v1beta1["spec"] == v1["spec"]);  // nothing here differs between the flavours
}

TEST_CASE("every service field is mapped, in filter order, v1beta1 drops timeouts and CORS") {
    const auto context = context_of("all-fields");
    const Json v1 = route_of(context, Routes{70, 30, false});
    CHECK(golden("gatewayapi/all-fields-v1.json", v1) == "");
    REQUIRE(rules(v1).size() == 1);
    CHECK(filter_types(rules(v1)[0]) ==
          std::vector<std::string>{"RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite",
                                   "RequestMirror", "CORS"});
    CHECK(rules(v1)[0]["timeouts"] == Json{{"request", "30s"}, {"backendRequest", "10s"}});
    CHECK(rules(v1)[0]["matches"].size() == 3);

    const Json v1beta1 = route_of(context, Routes{70, 30, false}, "v1beta1");
    CHECK(golden("gatewayapi/all-fields-v1beta1.json", v1beta1) == "");
    CHECK_FALSE(rules(v1beta1)[0].contains("timeouts"));
    CHECK(filter_types(rules(v1beta1)[0]) ==
          std::vector<std::string>{"RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite",
                                   "RequestMirror"});
}

TEST_CASE("a rewrite without a type replaces the full path, the authority alone is a hostname") {
    auto context = context_of("rewrite-full-path");
    CHECK(golden("gatewayapi/rewrite-full-path.json", route_of(context, Routes{100, 0, false})) ==
          "");

    context.canary.spec.service.rewrite = Json{{"authority", "backend.internal"}};
    const Json route = route_of(context, Routes{100, 0, false});
    CHECK(
        rules(route)[0]["filters"] ==
        Json::parse(R"([{"type": "URLRewrite", "urlRewrite": {"hostname": "backend.internal"}}])"));

    context.canary.spec.service.rewrite = Json::object();
    CHECK_FALSE(route_of(context, Routes{100, 0, false})["spec"]["rules"][0].contains("filters"));
}

TEST_CASE("Linkerd's GAMMA set-up routes with the apex Service as parent (v1beta1)") {
    const auto context = context_of("linkerd-gamma", "gatewayapi:v1beta1");
    const Json route = route_of(context, Routes{80, 20, false}, "v1beta1");
    CHECK(golden("gatewayapi/gamma-v1beta1.json", route) == "");
    CHECK(route["spec"]["parentRefs"] ==
          Json::parse(R"([{"group": "core", "kind": "Service", "name": "podinfo",
                           "namespace": "test", "port": 9898}])"));
    CHECK_FALSE(route["spec"].contains("hostnames"));
}

TEST_CASE("A/B testing: merged matches to both backends, then the service matches to the primary") {
    const auto context = context_of("ab-testing");
    const Json route = route_of(context, Routes{0, 100, false});
    CHECK(golden("gatewayapi/ab-testing.json", route) == "");
    REQUIRE(rules(route).size() == 2);
    // One merged match per analysis match, each keeping the service match's path.
    CHECK(rules(route)[0]["matches"].size() == 2);
    CHECK(rules(route)[0]["matches"][1]["path"]["value"] == "/api");
    CHECK(rules(route)[1]["backendRefs"].size() == 1);
    CHECK(rules(route)[1]["backendRefs"][0]["weight"] == 100);
    CHECK(rules(route)[1]["timeouts"] == rules(route)[0]["timeouts"]);

    const auto plain = context_of("ab-no-service-match");
    const Json ab = route_of(plain, Routes{100, 0, false});
    CHECK(golden("gatewayapi/ab-no-service-match.json", ab) == "");
    CHECK(rules(ab)[1]["matches"] ==
          Json::parse(R"([{"path": {"type": "PathPrefix", "value": "/"}}])"));
}

TEST_CASE("blue/green mirroring adds a mirror to the canary while iterations are set") {
    auto context = context_of("blue-green");
    const Json mirrored = route_of(context, Routes{100, 0, true});
    CHECK(golden("gatewayapi/blue-green-mirrored.json", mirrored) == "");
    CHECK(filter_types(rules(mirrored)[0]) ==
          std::vector<std::string>{"RequestHeaderModifier", "RequestMirror"});

    CHECK(filter_types(rules(route_of(context, Routes{100, 0, false}))[0]) ==
          std::vector<std::string>{"RequestHeaderModifier"});
    context.canary.spec.analysis->iterations = 0;  // canary strategy: no mirroring here
    CHECK(filter_types(rules(route_of(context, Routes{90, 10, true}))[0]) ==
          std::vector<std::string>{"RequestHeaderModifier"});
}

TEST_CASE("session affinity: sticky canary and primary rules before the weighted rule (v1)") {
    const auto context = context_of("session-affinity");
    const Json route = route_of(context, Routes{80, 20, false});
    CHECK(golden("gatewayapi/session-affinity-v1.json", route) == "");
    REQUIRE(rules(route).size() == 3);
    CHECK(rules(route)[0]["backendRefs"][1]["weight"] == 100);
    CHECK(rules(route)[1]["backendRefs"][0]["weight"] == 100);
    const Json& weighted = rules(route)[2];
    CHECK(weighted["backendRefs"][1]["filters"][0]["responseHeaderModifier"]["add"][0]["value"] ==
          "flagger-cookie=AbCdEfGhIj; Max-Age=21600; Domain=example.com; HttpOnly; Path=/; "
          "SameSite=Strict; Secure");
    CHECK(weighted["backendRefs"][0]["filters"][0]["responseHeaderModifier"]["add"][0]["value"] ==
          "flagger-primary-cookie=KlMnOpQrSt; Max-Age=45; Domain=example.com; HttpOnly; Path=/; "
          "SameSite=Strict; Secure");

    SECTION("v1beta1 has no primary cookie") {
        const Json beta = route_of(context, Routes{80, 20, false}, "v1beta1");
        CHECK(golden("gatewayapi/session-affinity-v1beta1.json", beta) == "");
        REQUIRE(rules(beta).size() == 2);
        CHECK_FALSE(rules(beta)[1]["backendRefs"][0].contains("filters"));
    }
    SECTION("at 100/0 without a previous cookie there is only the weighted rule") {
        CHECK(rules(route_of(context, Routes{100, 0, false})).size() == 1);
    }
}

TEST_CASE("session affinity without a primary cookie name: one sticky rule") {
    const auto context = context_of("session-affinity-canary-cookie");
    const Json route = route_of(context, Routes{90, 10, false});
    CHECK(golden("gatewayapi/session-affinity-canary-cookie-v1.json", route) == "");
    REQUIRE(rules(route).size() == 2);
    CHECK(rules(route)[0]["matches"][0]["headers"] ==
          Json::parse(R"([{"name": "Cookie", "type": "RegularExpression",
                           "value": ".*canary-session.*ZyXwVuTsRq.*"}])"));
    CHECK_FALSE(rules(route)[1]["backendRefs"][0].contains("filters"));
    CHECK(rules(route)[1]["backendRefs"][1]["filters"][0]["responseHeaderModifier"]["add"][0]
                      ["value"] == "canary-session=ZyXwVuTsRq; Max-Age=86400");
}

TEST_CASE("session affinity at weight 0 expires the previous cookie on the primary") {
    const auto context = context_of("session-affinity-expiry");
    const Json route = route_of(context, Routes{100, 0, false});
    CHECK(golden("gatewayapi/session-affinity-expiry-v1.json", route) == "");
    REQUIRE(rules(route).size() == 2);
    const Json& expire = rules(route)[0];
    CHECK(expire["backendRefs"] ==
          Json::parse(R"([{"group": "", "kind": "Service", "name": "podinfo-primary",
                           "port": 9898, "weight": 100}])"));
    // The Set-Cookie joins the service's own response header filter: one filter per type.
    CHECK(filter_types(expire) == std::vector<std::string>{"ResponseHeaderModifier"});
    CHECK(expire["filters"][0]["responseHeaderModifier"]["add"] ==
          Json::parse(R"([{"name": "Set-Cookie",
                           "value": "flagger-cookie=AbCdEfGhIj; Max-Age=-1; Path=/"}])"));
    CHECK(expire["filters"][0]["responseHeaderModifier"]["set"][0]["name"] == "x-version");
    CHECK(golden("gatewayapi/session-affinity-expiry-v1beta1.json",
                 route_of(context, Routes{100, 0, false}, "v1beta1")) == "");
}

TEST_CASE("what Gateway API cannot express is an error naming the field") {
    CHECK(build_error(context_of("no-gateway-refs")) ==
          "spec.service.gatewayRefs: must be set for provider gatewayapi:v1");
    CHECK(build_error(context_of("no-gateway-refs", "gatewayapi:v1beta1"), "v1beta1") ==
          "spec.service.gatewayRefs: must be set for provider gatewayapi:v1beta1");
    CHECK(build_error(context_of("unsupported-match")) ==
          "spec.service.match[0].headers.x-user: prefix matches are not supported by Gateway API");

    auto context = context_of("podinfo");
    auto& service = context.canary.spec.service;
    SECTION("a uri form other than exact, prefix and regex") {
        service.match = Json::parse(R"([{"uri": {"suffix": ".png"}}])");
        CHECK(build_error(context) ==
              "spec.service.match[0].uri: suffix matches are not supported by Gateway API");
    }
    SECTION("a method matched by regex, or not an HTTP method") {
        service.match = Json::parse(R"([{}, {"method": {"regex": "GET|HEAD"}}])");
        CHECK(build_error(context) ==
              "spec.service.match[1].method: regex matches are not supported by Gateway API");
        service.match = Json::parse(R"([{"method": {"exact": "get"}}])");
        CHECK(build_error(context) ==
              "spec.service.match[0].method: \"get\" is not an HTTP method Gateway API matches "
              "(GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH)");
    }
    SECTION("an Istio-only condition") {
        service.match = Json::parse(R"([{"sourceLabels": {"app": "web"}}])");
        CHECK(build_error(context) ==
              "spec.service.match[0].sourceLabels: not supported by Gateway API (it matches uri, "
              "method, headers and queryParams)");
    }
    SECTION("an analysis match") {
        context.canary.spec.analysis->match =
            Json::parse(R"([{"queryParams": {"beta": {"prefix": "y"}}}])");
        CHECK(build_error(context) ==
              "spec.analysis.match[0].queryParams.beta: prefix matches are not supported by "
              "Gateway API");
    }
    SECTION("a mirror of a part of the traffic") {
        service.mirror =
            Json::parse(R"([{"backendRef": {"name": "shadow", "port": 80}, "percent": 10}])");
        CHECK(build_error(context) ==
              "spec.service.mirror[0].percent: not in the Gateway API v1.2.1 standard channel, "
              "which mirrors all requests");
        service.mirror = Json::parse(R"([{"backendRef": {"port": 80}}])");
        CHECK(build_error(context) == "spec.service.mirror[0].backendRef.name: must be set");
    }
    SECTION("a timeout Gateway API does not parse (v1 only)") {
        service.backend_timeout = "1.5s";
        CHECK(build_error(context) ==
              "spec.service.backendTimeout: \"1.5s\" is not a Gateway API duration (whole "
              "numbers of h, m, s or ms, e.g. 30s or 1m30s)");
        CHECK(build_http_route(context, Routes{90, 10, false}, "v1beta1").has_value());
        service.backend_timeout = "1h2m3s4ms";
        CHECK(build_http_route(context, Routes{90, 10, false}, "v1").has_value());
        service.backend_timeout = "1h2m3s4ms5s";
        CHECK_FALSE(build_http_route(context, Routes{90, 10, false}, "v1").has_value());
        service.backend_timeout = "123456s";
        CHECK_FALSE(build_http_route(context, Routes{90, 10, false}, "v1").has_value());
    }
    SECTION("a rewrite type and a CORS maxAge") {
        service.rewrite = Json{{"uri", "/"}, {"type", "RegexRewrite"}};
        CHECK(build_error(context) ==
              "spec.service.rewrite.type: \"RegexRewrite\" is not ReplaceFullPath or "
              "ReplacePrefixMatch");
        service.rewrite = nullptr;
        service.cors_policy = Json{{"maxAge", "a day"}};
        CHECK(build_error(context) ==
              "spec.service.corsPolicy.maxAge: expected a duration such as 24h, got \"a day\"");
        // v1beta1 has no CORS filter, so nothing to complain about.
        CHECK(build_http_route(context, Routes{90, 10, false}, "v1beta1").has_value());
    }
}

TEST_CASE("CORS without maxAge writes Gateway API's default, allowCredentials only when true") {
    auto context = context_of("podinfo");
    context.canary.spec.service.cors_policy =
        Json{{"allowOrigin", Json::array({"*"})}, {"allowCredentials", false}};
    const Json route = route_of(context, Routes{90, 10, false});
    CHECK(rules(route)[0]["filters"] ==
          Json::parse(R"([{"type": "CORS", "cors": {"allowOrigins": ["*"], "maxAge": 5}}])"));
}

TEST_CASE("the routes read back are the routes written, for every shape and version") {
    const std::vector<std::string> cases{"podinfo",
                                         "all-fields",
                                         "rewrite-full-path",
                                         "linkerd-gamma",
                                         "ab-testing",
                                         "ab-no-service-match",
                                         "blue-green",
                                         "session-affinity",
                                         "session-affinity-canary-cookie",
                                         "session-affinity-expiry"};
    const std::vector<Routes> all{Routes{100, 0, false}, Routes{90, 10, false},
                                  Routes{50, 50, false}, Routes{0, 100, false},
                                  Routes{100, 0, true},  Routes{70, 30, true}};
    for (const std::string& name : cases) {
        const auto context = context_of(name);
        const bool can_mirror = context.canary.spec.analysis->iterations > 0;
        for (const char* version : {"v1", "v1beta1"}) {
            for (const Routes& routes : all) {
                INFO(name << " " << version << " " << routes.primary << "/" << routes.canary
                          << (routes.mirrored ? " mirrored" : ""));
                const Json route = route_of(context, routes, version);
                auto read = http_route_routes(context, route);
                REQUIRE(read.has_value());
                CHECK(*read ==
                      Routes{routes.primary, routes.canary, routes.mirrored && can_mirror});
                // Reconcile rebuilds from what it reads: the same object, so no write.
                CHECK(route_of(context, *read, version) == route);
            }
        }
    }
}

TEST_CASE("a service mirror to the canary is not read as the blue/green mirror") {
    auto context = context_of("blue-green");
    context.canary.spec.service.mirror =
        Json::parse(R"([{"backendRef": {"name": "podinfo-canary", "port": 9898}}])");
    for (const bool mirrored : {false, true}) {
        auto read = http_route_routes(context, route_of(context, Routes{100, 0, mirrored}));
        REQUIRE(read.has_value());
        CHECK(read->mirrored == mirrored);
    }
}

TEST_CASE("an HTTPRoute without both backends or with both weights at 0 is an error") {
    const auto context = context_of("podinfo");
    Json route = route_of(context, Routes{0, 0, false});
    auto zero = http_route_routes(context, route);
    REQUIRE_FALSE(zero.has_value());
    CHECK(zero.error().kind == serin::ErrorKind::kInvalid);
    CHECK(zero.error().message == "HTTPRoute podinfo.test: both backend weights are 0");

    route["spec"]["rules"][0]["backendRefs"].erase(1);
    auto missing = http_route_routes(context, route);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message ==
          "HTTPRoute podinfo.test has no rule routing to both podinfo-primary and podinfo-canary");

    route["spec"].erase("rules");
    CHECK(http_route_routes(context, route).error().message ==
          "HTTPRoute podinfo.test has no spec.rules");

    // A weight left out is Gateway API's default of 1.
    route = route_of(context, Routes{90, 10, false});
    route["spec"]["rules"][0]["backendRefs"][0].erase("weight");
    CHECK(*http_route_routes(context, route) == Routes{1, 10, false});
}

TEST_CASE("parents must have accepted the route's current generation") {
    const auto context = context_of("all-fields");
    Json route = route_of(context, Routes{90, 10, false});
    route["metadata"]["generation"] = 3;
    CHECK(http_route_parents_ready(route).has_value());  // no status yet

    const auto accepted = [](const char* status, int generation) {
        return Json{
            {"type", "Accepted"},
            {"status", status},
            {"reason", std::string(status) == "True" ? "Accepted" : "NotAllowedByListeners"},
            {"message", std::string(status) == "True" ? "" : "no listener matched"},
            {"observedGeneration", generation}};
    };
    const auto parent = [](const char* name, const char* ns, const char* kind, Json condition) {
        Json ref{{"group", "gateway.networking.k8s.io"}, {"kind", kind}, {"name", name}};
        if (ns != nullptr) {
            ref["namespace"] = ns;
        }
        return Json{{"parentRef", ref},
                    {"controllerName", "example.com/gateway"},
                    {"conditions", Json::array({Json{{"type", "ResolvedRefs"}, {"status", "False"}},
                                                std::move(condition)})}};
    };

    SECTION("accepted at the current generation") {
        route["status"]["parents"] =
            Json::array({parent("public", "gateways", "Gateway", accepted("True", 3)),
                         parent("store", nullptr, "Service", accepted("True", 3))});
        CHECK(http_route_parents_ready(route).has_value());
    }
    SECTION("not accepted") {
        route["status"]["parents"] =
            Json::array({parent("public", "gateways", "Gateway", accepted("False", 3))});
        auto ready = http_route_parents_ready(route);
        REQUIRE_FALSE(ready.has_value());
        CHECK(ready.error().message ==
              "HTTPRoute store.prod parent public is not ready: Accepted is False "
              "(NotAllowedByListeners: no listener matched)");
    }
    SECTION("accepted for an older generation") {
        route["status"]["parents"] =
            Json::array({parent("store", "prod", "Service", accepted("True", 2))});
        auto ready = http_route_parents_ready(route);
        REQUIRE_FALSE(ready.has_value());
        CHECK(ready.error().message ==
              "HTTPRoute store.prod parent store is not ready: it accepted generation 2, the "
              "route is at generation 3");
    }
    SECTION("status of parents the route does not name is not judged") {
        route["status"]["parents"] =
            Json::array({parent("public", "other", "Gateway", accepted("False", 3)),
                         parent("store", nullptr, "Gateway", accepted("False", 3)),
                         parent("private", "gateways", "Gateway", accepted("Unknown", 1))});
        CHECK(http_route_parents_ready(route).has_value());
    }
}

namespace {

/// An API server of one object kind: create and update return the object with a new
/// resourceVersion and generation, and are counted. Nothing else is called by the router.
class FakeServer final : public serin::testing::UnimplementedKubeClient {
public:
    int creates = 0;
    int updates = 0;

    asio::awaitable<serin::Result<Json>> create(serin::kube::ResourceType, std::string, Json object,
                                                serin::kube::WriteOptions) override {
        ++creates;
        return stored(std::move(object));
    }
    asio::awaitable<serin::Result<Json>> update(serin::kube::ResourceType, std::string, Json object,
                                                serin::kube::WriteOptions) override {
        ++updates;
        return stored(std::move(object));
    }

private:
    asio::awaitable<serin::Result<Json>> stored(Json object) {
        ++version_;
        object["metadata"]["resourceVersion"] = std::to_string(version_);
        object["metadata"]["generation"] = version_;
        co_return serin::Result<Json>(boost::system::in_place_value, std::move(object));
    }
    int version_ = 0;
};

/// Runs one router call to completion.
template <class T>
T run(asio::io_context& io, asio::awaitable<T> call) {
    std::optional<T> out;
    asio::co_spawn(io, std::move(call), [&out](std::exception_ptr error, T value) {
        if (error) {
            std::rethrow_exception(error);
        }
        out.emplace(std::move(value));
    });
    io.restart();
    io.run();
    REQUIRE(out.has_value());
    return std::move(*out);
}

}  // namespace

TEST_CASE("the router creates the HTTPRoute, moves weights only in set_routes and repairs drift") {
    asio::io_context io;
    serin::ManualClock clock;
    FakeServer server;
    const auto type = serin::meshes::route_types::gateway_http_routes("v1");
    serin::kube::Informer informer(server, clock, type);  // never started: writes are overlaid
    serin::kube::ObjectStore store(clock);
    store.add(informer);
    serin::kube::CachedClient kube(server, store);
    auto router =
        serin::meshes::make_gatewayapi_router(serin::meshes::RouterDeps{kube}, "v1");
    CHECK(router->supports_session_affinity());
    CHECK_FALSE(router->owns_apex_selector());
    const auto context = context_of("podinfo");

    auto absent = run(io, router->get_routes(context));
    REQUIRE_FALSE(absent.has_value());
    CHECK(absent.error().kind == serin::ErrorKind::kNotFound);
    CHECK(absent.error().message == "HTTPRoute podinfo.test not found");

    REQUIRE(run(io, router->reconcile(context)).has_value());
    CHECK(server.creates == 1);
    CHECK(*run(io, router->get_routes(context)) == Routes{100, 0, false});
    REQUIRE(run(io, router->reconcile(context)).has_value());
    CHECK(server.updates == 0);  // nothing changed, nothing written

    REQUIRE(run(io, router->set_routes(context, Routes{80, 20, false})).has_value());
    CHECK(server.updates == 1);
    REQUIRE(run(io, router->reconcile(context)).has_value());
    CHECK(server.updates == 1);  // reconcile keeps the weights set_routes wrote
    CHECK(*run(io, router->get_routes(context)) == Routes{80, 20, false});

    SECTION("drift elsewhere is repaired without resetting the weights") {
        Json drifted = *store.get(type, "test", "podinfo");
        drifted["spec"]["hostnames"] = Json::array({"other.example.com"});
        drifted["metadata"]["annotations"]["note"] = "kept";
        drifted["metadata"]["resourceVersion"] = "100";
        store.wrote(type, drifted);
        REQUIRE(run(io, router->reconcile(context)).has_value());
        CHECK(server.updates == 2);
        const Json repaired = *store.get(type, "test", "podinfo");
        CHECK(repaired["spec"]["hostnames"] == Json::array({"app.example.com"}));
        CHECK(repaired["metadata"]["annotations"]["note"] == "kept");
        CHECK(*run(io, router->get_routes(context)) == Routes{80, 20, false});
    }
    SECTION("get_routes fails while a parent has not accepted the route") {
        Json live = *store.get(type, "test", "podinfo");
        live["status"]["parents"] = Json::parse(R"([{
            "parentRef": {"name": "gateway", "namespace": "istio-ingress"},
            "controllerName": "example.com/gateway",
            "conditions": [{"type": "Accepted", "status": "Unknown", "reason": "Pending",
                            "message": "Waiting for controller", "observedGeneration": 1}]}])");
        live["metadata"]["resourceVersion"] = "100";
        store.wrote(type, live);
        auto routes = run(io, router->get_routes(context));
        REQUIRE_FALSE(routes.has_value());
        CHECK(routes.error().message ==
              "HTTPRoute podinfo.test parent gateway is not ready: Accepted is Unknown (Pending: "
              "Waiting for controller)");
    }
    SECTION("finalize leaves the route to its owner reference") {
        REQUIRE(run(io, router->finalize(context)).has_value());
        CHECK(server.updates == 1);
    }
}

TEST_CASE("without the HTTPRoute CRD of its version the router fails with a clear error") {
    asio::io_context io;
    serin::ManualClock clock;
    FakeServer server;
    serin::kube::ObjectStore store(clock);
    serin::kube::CachedClient kube(server, store);
    auto router =
        serin::meshes::make_gatewayapi_router(serin::meshes::RouterDeps{kube}, "v1beta1");
    auto done = run(io, router->reconcile(context_of("linkerd-gamma", "gatewayapi:v1beta1")));
    REQUIRE_FALSE(done.has_value());
    CHECK(done.error().kind == serin::ErrorKind::kInvalid);
    CHECK(done.error().message ==
          "spec.provider: \"gatewayapi:v1beta1\" writes HTTPRoute (gateway.networking.k8s.io/"
          "v1beta1), which the API server does not serve: install its CustomResourceDefinition "
          "and restart Serin");
    CHECK(server.creates == 0);
}

// ---- rule ownership (fluxcd/flagger#1857) ---------------------------------------------------

namespace {

Json user_route() { return load_document("tests/data/routes/gatewayapi/user-rules.yaml"); }

/// The backendRef names of each rule, in order.
std::vector<std::vector<std::string>> backend_names(const Json& rule_list) {
    std::vector<std::vector<std::string>> out;
    for (const Json& rule : rule_list) {
        std::vector<std::string>& names = out.emplace_back();
        for (const Json& backend : rule.at("backendRefs")) {
            names.push_back(backend.at("name").get<std::string>());
        }
    }
    return out;
}

using Names = std::vector<std::vector<std::string>>;

}  // namespace

TEST_CASE("Serin's rules are those routing to S, S-primary or S-canary in the canary's namespace") {
    const auto context = context_of("podinfo");
    const auto rule_to = [](Json backend) {
        return Json{{"backendRefs", Json::array({std::move(backend)})}};
    };
    CHECK(serin::meshes::serin_rule(context, rule_to({{"name", "podinfo-canary"}, {"port", 1}})));
    CHECK(serin::meshes::serin_rule(context, rule_to({{"name", "podinfo-primary"}})));
    CHECK(serin::meshes::serin_rule(
        context, rule_to({{"group", ""}, {"kind", "Service"}, {"name", "podinfo"}})));
    CHECK(serin::meshes::serin_rule(context, rule_to({{"name", "podinfo"}, {"namespace", "test"}})));
    CHECK_FALSE(serin::meshes::serin_rule(context, rule_to({{"name", "admin"}})));
    CHECK_FALSE(
        serin::meshes::serin_rule(context, rule_to({{"name", "podinfo"}, {"namespace", "other"}})));
    CHECK_FALSE(serin::meshes::serin_rule(
        context, rule_to({{"group", "example.com"}, {"kind", "Backend"}, {"name", "podinfo"}})));
    CHECK_FALSE(serin::meshes::serin_rule(context, Json{{"matches", Json::array()}}));
}

TEST_CASE("on take-over Serin's rules replace the apex rule in its place, the user's rules stay") {
    const auto context = context_of("podinfo");
    const Json live = user_route();
    Json own = rules(route_of(context, Routes{100, 0, false}));
    const Json merged =
        serin::meshes::merge_route_rules(context, &live["spec"]["rules"], std::move(own));
    CHECK(golden("gatewayapi/take-over-user-rules.json", merged) == "");
    CHECK(backend_names(merged) ==
          Names{{"admin"}, {"podinfo-primary", "podinfo-canary"}, {"docs"}});
    CHECK(merged[0] == live["spec"]["rules"][0]);  // the user's rules byte for byte
    CHECK(merged[2] == live["spec"]["rules"][2]);

    SECTION("several rules of Serin's take the place of its first") {
        const Json sticky =
            rules(route_of(context_of("session-affinity"), Routes{80, 20, false}));
        Json twice = merged;
        twice.push_back(merged[1]);  // a stray copy of Serin's rule at the end goes
        const Json again = serin::meshes::merge_route_rules(context, &twice, sticky);
        CHECK(backend_names(again) == Names{{"admin"},
                                            {"podinfo-primary", "podinfo-canary"},
                                            {"podinfo-primary", "podinfo-canary"},
                                            {"podinfo-primary", "podinfo-canary"},
                                            {"docs"}});
    }
    SECTION("a route without a rule of Serin's gets them after the user's") {
        Json others = live["spec"]["rules"];
        others.erase(1);
        const Json appended = serin::meshes::merge_route_rules(
            context, &others, rules(route_of(context, Routes{90, 10, false})));
        CHECK(backend_names(appended) ==
              Names{{"admin"}, {"docs"}, {"podinfo-primary", "podinfo-canary"}});
    }
    SECTION("no live route: Serin's rules alone") {
        CHECK(serin::meshes::merge_route_rules(context, nullptr, Json::array({1, 2})) ==
              Json::array({1, 2}));
    }
}

TEST_CASE("finalize's rules: the replaced originals back in Serin's place, later user rules kept") {
    const auto context = context_of("podinfo");
    const Json original = user_route()["spec"];
    Json live = serin::meshes::merge_route_rules(context, &original["rules"],
                                                 rules(route_of(context, Routes{60, 40, false})));
    live.push_back(Json::parse(R"({"backendRefs": [{"name": "status", "port": 80}]})"));
    const Json restored =
        serin::meshes::restored_route_rules(context, &live, &original["rules"]);
    CHECK(backend_names(restored) == Names{{"admin"}, {"podinfo"}, {"docs"}, {"status"}});
    CHECK(restored[1] == original["rules"][1]);
    // An original without a rule of Serin's: Serin's rules just go.
    const Json none = Json::array({original["rules"][0]});
    CHECK(backend_names(serin::meshes::restored_route_rules(context, &live, &none)) ==
          Names{{"admin"}, {"docs"}, {"status"}});
}

TEST_CASE("the router keeps a user's HTTPRoute rules through a release and gives them back") {
    asio::io_context io;
    serin::ManualClock clock;
    FakeServer server;
    const auto type = serin::meshes::route_types::gateway_http_routes("v1");
    serin::kube::Informer informer(server, clock, type);
    serin::kube::ObjectStore store(clock);
    store.add(informer);
    serin::kube::CachedClient kube(server, store);
    auto router = serin::meshes::make_gatewayapi_router(serin::meshes::RouterDeps{kube}, "v1");
    const auto context = context_of("podinfo");
    const Json user = user_route();
    store.wrote(type, user);

    REQUIRE(run(io, router->reconcile(context)).has_value());
    CHECK(server.creates == 0);
    CHECK(server.updates == 1);
    Json live = *store.get(type, "test", "podinfo");
    CHECK(backend_names(live["spec"]["rules"]) ==
          Names{{"admin"}, {"podinfo-primary", "podinfo-canary"}, {"docs"}});
    CHECK(live["spec"]["hostnames"] == Json::array({"app.example.com"}));
    CHECK(live["metadata"]["annotations"]["team"] == "web");
    CHECK(Json::parse(live["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
                          .get<std::string>()) == user["spec"]);

    REQUIRE(run(io, router->set_routes(context, Routes{70, 30, false})).has_value());
    live = *store.get(type, "test", "podinfo");
    CHECK(live["spec"]["rules"][0] == user["spec"]["rules"][0]);
    CHECK(live["spec"]["rules"][2] == user["spec"]["rules"][2]);
    CHECK(*run(io, router->get_routes(context)) == Routes{70, 30, false});

    // The user adds a rule and drifts Serin's match: the rule stays, the match is repaired and
    // the weights are kept.
    live["spec"]["rules"].push_back(
        Json::parse(R"({"matches": [{"path": {"type": "Exact", "value": "/status"}}],
                        "backendRefs": [{"group": "", "kind": "Service", "name": "status",
                                         "port": 80, "weight": 1}]})"));
    live["spec"]["rules"][1]["matches"][0]["path"]["value"] = "/drifted";
    live["metadata"]["resourceVersion"] = "100";
    store.wrote(type, live);
    REQUIRE(run(io, router->reconcile(context)).has_value());
    live = *store.get(type, "test", "podinfo");
    CHECK(backend_names(live["spec"]["rules"]) ==
          Names{{"admin"}, {"podinfo-primary", "podinfo-canary"}, {"docs"}, {"status"}});
    CHECK(live["spec"]["rules"][1]["matches"][0]["path"]["value"] == "/");
    CHECK(*run(io, router->get_routes(context)) == Routes{70, 30, false});
    const int writes = server.updates;
    REQUIRE(run(io, router->reconcile(context)).has_value());
    CHECK(server.updates == writes);  // settled: nothing to write

    REQUIRE(run(io, router->finalize(context)).has_value());
    live = *store.get(type, "test", "podinfo");
    CHECK(backend_names(live["spec"]["rules"]) ==
          Names{{"admin"}, {"podinfo"}, {"docs"}, {"status"}});
    CHECK(live["spec"]["hostnames"] == user["spec"]["hostnames"]);
    CHECK(live["spec"]["parentRefs"] == user["spec"]["parentRefs"]);
    CHECK_FALSE(live["metadata"]["annotations"].contains(
        "flagger.kubernetes.io/original-configuration"));
    CHECK(live["metadata"]["annotations"]["team"] == "web");
}
