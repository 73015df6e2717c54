// The Istio router's pure parts: the VirtualService and DestinationRules of every shape (golden
// files), reading the weights back from each shape, and the errors.
#include "meshes/istio/istio_router.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/support/catch_result.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::ErrorKind;
using serin::meshes::build_destination_rules;
using serin::meshes::build_virtual_service;
using serin::meshes::RouteContext;
using serin::meshes::virtual_service_routes;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

RouteContext context_of(const std::string& name) {
    return route_context(load_document("tests/data/routes/istio/" + name + ".yaml"), "istio");
}

/// [VirtualService, DestinationRule S-canary, DestinationRule S-primary] for `routes`.
Json objects(const RouteContext& context, const Routes& routes) {
    auto vs = build_virtual_service(context, routes);
    REQUIRE(vs);
    Json out = Json::array({*vs});
    for (Json& rule : build_destination_rules(context)) {
        out.push_back(std::move(rule));
    }
    return out;
}

std::string weights(const Routes& routes) {
    return std::to_string(routes.primary) + "-" + std::to_string(routes.canary);
}

/// The routes `vs` holds; fails the test when it holds none.
Routes read_routes(const RouteContext& context, const Json& vs) {
    auto read = virtual_service_routes(context, vs);
    REQUIRE(read);
    return *read;
}

/// What build_virtual_service wrote, read back.
Routes round_trip(const RouteContext& context, const Routes& routes) {
    auto vs = build_virtual_service(context, routes);
    REQUIRE(vs);
    return read_routes(context, *vs);
}

}  // namespace

TEST_CASE("a canary gets one weighted route between the primary and the canary") {
    const RouteContext context = context_of("canary");
    for (const Routes routes : {Routes{100, 0, false}, Routes{90, 10, false}, Routes{50, 50, false},
                                Routes{0, 100, false}}) {
        INFO(weights(routes));
        CHECK(golden("istio/canary-" + weights(routes) + ".json", objects(context, routes)) == "");
    }
}

TEST_CASE("every spec.service field is copied to the route, ports named behind a gateway") {
    const RouteContext context = context_of("service-fields");
    const Json out = objects(context, Routes{80, 20, false});
    CHECK(golden("istio/service-fields.json", out) == "");
    const Json& route = out[0]["spec"]["http"][0];
    CHECK(route["rewrite"] == Json{{"uri", "/"}, {"authority", "backend.example.com"}});
    CHECK(route["route"][0]["destination"]["port"] == Json{{"number", 9898}});
    CHECK(out[0]["spec"]["hosts"] == Json::array({"app.example.com", "frontend"}));
}

TEST_CASE("port discovery names no port for the mesh gateway, a wildcard host keeps S out") {
    const RouteContext context = context_of("mesh-wildcard");
    const Json out = objects(context, Routes{100, 0, false});
    CHECK(golden("istio/mesh-wildcard.json", out) == "");
    CHECK(out[0]["spec"]["hosts"] == Json::array({"*"}));
    CHECK_FALSE(out[0]["spec"]["http"][0]["route"][0]["destination"].contains("port"));
}

TEST_CASE("a delegate VirtualService has no hosts or gateways and names the port") {
    const RouteContext context = context_of("delegation");
    const Json out = objects(context, Routes{90, 10, false});
    CHECK(golden("istio/delegation.json", out) == "");
    CHECK(out[0]["spec"]["hosts"] == Json::array());
    CHECK(out[0]["spec"]["gateways"] == Json::array());
}

TEST_CASE("delegation with hosts or gateways is refused, naming the fields") {
    const RouteContext context = context_of("delegation-error");
    auto vs = build_virtual_service(context, Routes{100, 0, false});
    REQUIRE_FALSE(vs);
    CHECK(vs.error().kind == ErrorKind::kInvalid);
    CHECK(vs.error().message ==
          "spec.service.delegation: true, but spec.service.hosts is [\"app.example.com\"] and "
          "spec.service.gateways is [\"public-gateway\"]: a delegate VirtualService has neither "
          "hosts nor gateways");
}

TEST_CASE("A/B testing routes the matched requests by weight and the rest to the primary") {
    const RouteContext context = context_of("ab");
    CHECK(golden("istio/ab-100-0.json", objects(context, Routes{100, 0, false})) == "");
    const Json out = objects(context, Routes{0, 100, false});
    CHECK(golden("istio/ab-0-100.json", out) == "");
    const Json& http = out[0]["spec"]["http"];
    REQUIRE(http.size() == 2);
    // Two service matches times two analysis matches.
    CHECK(http[0]["match"].size() == 4);
    CHECK(http[1]["match"] == context.canary.spec.service.match);
    CHECK(http[1]["route"] == Json::parse(R"([{"destination": {"host": "podinfo-primary"},
                                             "weight": 100}])"));
}

TEST_CASE("blue/green mirroring copies mirrorWeight percent of the requests to the canary") {
    RouteContext context = context_of("mirror");
    CHECK(golden("istio/mirror.json", objects(context, Routes{100, 0, true})) == "");
    const Json plain = objects(context, Routes{100, 0, false});
    CHECK_FALSE(plain[0]["spec"]["http"][0].contains("mirror"));
    CHECK_FALSE(plain[0]["spec"]["http"][0].contains("mirrorPercentage"));
    context.canary.spec.analysis->mirror_weight = 0;
    const Json all = objects(context, Routes{100, 0, true});
    CHECK(all[0]["spec"]["http"][0]["mirror"] == Json{{"host", "podinfo-canary"}});
    CHECK_FALSE(all[0]["spec"]["http"][0].contains("mirrorPercentage"));
}

TEST_CASE("session affinity keeps the canary's users on it while it has traffic") {
    const RouteContext context = context_of("session-affinity");
    const Json out = objects(context, Routes{90, 10, false});
    CHECK(golden("istio/session-affinity.json", out) == "");
    const Json& http = out[0]["spec"]["http"];
    REQUIRE(http.size() == 2);
    CHECK(http[0]["match"][0]["headers"]["Cookie"] ==
          Json{{"regex", ".*flagger-cookie.*LpsIaLdoNZ.*"}});
    CHECK(http[0]["match"][0]["headers"]["x-tenant"] == Json{{"exact", "acme"}});
    CHECK(http[1]["route"][1]["headers"]["response"]["add"]["Set-Cookie"] ==
          "flagger-cookie=LpsIaLdoNZ; Max-Age=21600");
    CHECK_FALSE(http[1]["route"][0].contains("headers"));
}

TEST_CASE("session affinity with a primary cookie adds a sticky primary rule") {
    const RouteContext context = context_of("session-affinity-primary");
    const Json out = objects(context, Routes{70, 30, false});
    CHECK(golden("istio/session-affinity-primary.json", out) == "");
    const Json& http = out[0]["spec"]["http"];
    REQUIRE(http.size() == 3);
    CHECK(http[1]["match"] ==
          Json::parse(
              R"([{"headers": {"Cookie": {"regex": ".*flagger-primary-cookie.*AsDfGhJkLz.*"}}}])"));
    CHECK(http[2]["route"][0]["headers"]["response"]["add"]["Set-Cookie"] ==
          "flagger-primary-cookie=AsDfGhJkLz; Max-Age=30; Domain=example.com; HttpOnly; Path=/; "
          "SameSite=Strict; Secure");
}

TEST_CASE("session affinity at canary weight 0 expires the last release's cookie") {
    const RouteContext context = context_of("session-affinity-expiry");
    const Json out = objects(context, Routes{100, 0, false});
    CHECK(golden("istio/session-affinity-expiry.json", out) == "");
    const Json& http = out[0]["spec"]["http"];
    REQUIRE(http.size() == 2);
    CHECK(http[0]["headers"]["response"]["add"] ==
          Json{{"Set-Cookie", "flagger-cookie=LpsIaLdoNZ; Max-Age=-1"}, {"x-release", "stable"}});
    CHECK(http[0]["route"] ==
          Json::parse(R"([{"destination": {"host": "podinfo-primary"}, "weight": 100}])"));
}

TEST_CASE("session affinity without a cookie in the status writes the plain weighted route") {
    RouteContext context = context_of("session-affinity");
    context.canary.status.session_affinity_cookie.clear();
    const Json progressing = objects(context, Routes{90, 10, false});
    CHECK(progressing[0]["spec"]["http"].size() == 1);
    CHECK_FALSE(progressing[0]["spec"]["http"][0]["route"][1].contains("headers"));
    // At weight 0 without a previous cookie, too.
    const Json promoted = objects(context, Routes{100, 0, false});
    CHECK(promoted[0]["spec"]["http"].size() == 1);
}

TEST_CASE("TCP routes split by port, without A/B, mirroring or session affinity") {
    const RouteContext context = context_of("tcp");
    const Json out = objects(context, Routes{60, 40, true});
    CHECK(golden("istio/tcp.json", out) == "");
    CHECK_FALSE(out[0]["spec"].contains("http"));
    CHECK(out[0]["spec"]["tcp"] == Json::parse(R"([{
        "match": [{"port": 9898}],
        "route": [{"destination": {"host": "podinfo-primary"}, "weight": 60},
                  {"destination": {"host": "podinfo-canary"}, "weight": 40}]}])"));
    RouteContext no_ports = context;
    no_ports.canary.spec.service.match = nullptr;
    auto vs = build_virtual_service(no_ports, Routes{100, 0, false});
    REQUIRE(vs);
    CHECK_FALSE((*vs)["spec"]["tcp"][0].contains("match"));
}

TEST_CASE("appProtocol tcp is recognised in any case") {
    serin::api::CanaryService service;
    for (const char* protocol : {"tcp", "TCP", "Tcp"}) {
        service.app_protocol = protocol;
        CHECK(serin::meshes::istio_tcp(service));
    }
    for (const char* protocol : {"", "http", "tcp2", "grpc"}) {
        service.app_protocol = protocol;
        CHECK_FALSE(serin::meshes::istio_tcp(service));
    }
}

TEST_CASE("the routes read back are the routes written, for every shape") {
    struct Case {
        const char* name;
        std::vector<Routes> routes;
    };
    const std::vector<Case> cases{
        {"canary",
         {Routes{100, 0, false}, Routes{90, 10, false}, Routes{0, 100, false},
          Routes{100, 0, true}}},
        {"service-fields", {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}},
        {"mesh-wildcard", {Routes{100, 0, false}, Routes{50, 50, true}}},
        {"delegation", {Routes{100, 0, false}, Routes{70, 30, false}}},
        {"ab", {Routes{100, 0, false}, Routes{0, 100, false}}},
        {"mirror", {Routes{100, 0, false}, Routes{100, 0, true}, Routes{0, 100, false}}},
        {"session-affinity",
         {Routes{90, 10, false}, Routes{50, 50, false}, Routes{0, 100, false},
          Routes{100, 0, false}}},
        {"session-affinity-primary",
         {Routes{70, 30, false}, Routes{10, 90, false}, Routes{90, 10, true}}},
        {"session-affinity-expiry", {Routes{100, 0, false}}},
        {"tcp", {Routes{100, 0, false}, Routes{60, 40, false}, Routes{0, 100, false}}},
    };
    for (const Case& c : cases) {
        const RouteContext context = context_of(c.name);
        for (const Routes& routes : c.routes) {
            INFO(c.name << " " << weights(routes) << (routes.mirrored ? " mirrored" : ""));
            Routes expected = routes;
            if (serin::meshes::istio_tcp(context.canary.spec.service)) {
                expected.mirrored = false;
            }
            CHECK(round_trip(context, routes) == expected);
        }
    }
}

TEST_CASE("the expiry rule is not read as the weighted route") {
    const RouteContext context = context_of("session-affinity-expiry");
    auto vs = build_virtual_service(context, Routes{100, 0, false});
    REQUIRE(vs);
    // Even when the weighted route is listed first.
    Json& http = (*vs)["spec"]["http"];
    std::swap(http[0], http[1]);
    CHECK(read_routes(context, *vs) == Routes{100, 0, false});
}

TEST_CASE("weights Istio leaves out are read as Istio reads them") {
    const RouteContext context = context_of("canary");
    const Json lone = Json::parse(R"({"spec": {"http": [
        {"route": [{"destination": {"host": "podinfo-canary"}}]}]}})");
    CHECK(read_routes(context, lone) == Routes{0, 100, false});
    const Json zero = Json::parse(R"({"spec": {"http": [
        {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100},
                   {"destination": {"host": "podinfo-canary"}}]}]}})");
    CHECK(read_routes(context, zero) == Routes{100, 0, false});
}

TEST_CASE("a VirtualService without the canary destination or with no weight is refused") {
    const RouteContext context = context_of("canary");
    auto no_canary = virtual_service_routes(context, Json::parse(R"({"spec": {"http": [
        {"route": [{"destination": {"host": "podinfo-primary"}, "weight": 100}]}]}})"));
    REQUIRE_FALSE(no_canary);
    CHECK(no_canary.error().kind == ErrorKind::kInvalid);
    CHECK(no_canary.error().message ==
          "VirtualService podinfo.test has no route with the destination podinfo-canary");

    auto vs = build_virtual_service(context, Routes{0, 0, false});
    REQUIRE(vs);
    auto zero = virtual_service_routes(context, *vs);
    REQUIRE_FALSE(zero);
    CHECK(zero.error().message == "VirtualService podinfo.test: both destination weights are 0");

    auto no_spec = virtual_service_routes(context, Json::object());
    REQUIRE_FALSE(no_spec);
    CHECK(no_spec.error().kind == ErrorKind::kInvalid);
}

TEST_CASE("DestinationRules name their own host and carry the traffic policy when set") {
    const auto plain = build_destination_rules(context_of("canary"));
    REQUIRE(plain.size() == 2);
    CHECK(plain[0]["spec"] == Json{{"host", "podinfo-canary"}});
    CHECK(plain[1]["spec"] == Json{{"host", "podinfo-primary"}});
    CHECK_FALSE(plain[0]["metadata"].contains("labels"));
    const auto tuned = build_destination_rules(context_of("service-fields"));
    CHECK(tuned[1]["spec"]["host"] == "frontend-primary");
    CHECK(tuned[1]["spec"]["trafficPolicy"]["tls"]["mode"] == "ISTIO_MUTUAL");
}
