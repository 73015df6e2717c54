// The Gloo router's pure parts: the Upstreams and the RouteTable each strategy gets (golden
// files), reading the weights back, the provider strings it answers to, and the A/B matches Gloo
// cannot express, refused naming the field.
#include <catch2/catch.hpp>

#include "meshes/gloo/gloo_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::build_gloo_upstream;
using serin::meshes::build_route_table;
using serin::meshes::gloo_upstream_name;
using serin::meshes::route_table_routes;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

serin::meshes::RouteContext context_of(const char* file) {
    return route_context(load_document(std::string("tests/data/routes/gloo/") + file), "gloo");
}

}  // namespace

TEST_CASE("gloo writes an Upstream per Service, named <ns>-<S>-<role>upstream-<port>") {
    const auto context = context_of("canary.yaml");
    CHECK(gloo_upstream_name(context, false) == "test-podinfo-primaryupstream-9898");
    CHECK(gloo_upstream_name(context, true) == "test-podinfo-canaryupstream-9898");
    const Json canary = build_gloo_upstream(context, true, Json(), Json{{"app", "podinfo"}});
    CHECK(golden("gloo/upstream-canary.json", canary) == "");
    CHECK(canary["spec"]["kube"] == Json{{"serviceName", "podinfo-canary"},
                                         {"serviceNamespace", "test"},
                                         {"servicePort", 9898},
                                         {"selector", {{"app", "podinfo"}}}});
    CHECK_FALSE(canary["metadata"].contains("labels"));
    CHECK(canary["metadata"]["ownerReferences"][0]["kind"] == "Canary");
}

TEST_CASE("gloo Upstreams copy the connection settings of spec.upstreamRef's Upstream, not its kube") {
    const auto context = context_of("upstream-ref.yaml");
    const Json reference = Json::parse(R"({
        "kube": {"serviceName": "elsewhere", "serviceNamespace": "other", "servicePort": 1},
        "loadBalancerConfig": {"roundRobin": {}}, "useHttp2": true,
        "connectionConfig": {"maxRequestsPerConnection": 10}, "healthChecks": [{"timeout": "1s"}]})");
    const Json primary = build_gloo_upstream(context, false, reference, Json{{"app", "podinfo-primary"}});
    CHECK(golden("gloo/upstream-primary-ref.json", primary) == "");
    CHECK(primary["spec"]["kube"]["serviceName"] == "podinfo-primary");
    CHECK(primary["spec"]["loadBalancerConfig"] == reference["loadBalancerConfig"]);
    CHECK(primary["spec"]["useHttp2"] == true);
    CHECK(primary["spec"]["connectionConfig"]["maxRequestsPerConnection"] == 10);
    CHECK_FALSE(primary["spec"].contains("healthChecks"));  // not among the fields Flagger copies
}

TEST_CASE("gloo writes RouteTable S splitting its route between the two Upstreams") {
    const auto context = context_of("canary.yaml");
    const Json table = build_route_table(context, Routes{70, 30, false}).value();
    CHECK(golden("gloo/canary-70-30.json", table) == "");
    CHECK(table["metadata"]["labels"]["team"] == "web");
    const Json& route = table["spec"]["routes"][0];
    CHECK(route["inheritablePathMatchers"] == true);
    CHECK_FALSE(route.contains("matchers"));
    CHECK(route["routeAction"]["multi"]["destinations"] == Json::parse(R"([
        {"destination": {"upstream": {"name": "test-podinfo-primaryupstream-9898", "namespace": "test"}}, "weight": 70},
        {"destination": {"upstream": {"name": "test-podinfo-canaryupstream-9898", "namespace": "test"}}, "weight": 30}])"));
}

TEST_CASE("gloo A/B: one matcher per match entry on the weighted route, then everyone else to the primary") {
    const auto context = context_of("ab.yaml");
    const Json table = build_route_table(context, Routes{0, 100, false}).value();
    CHECK(golden("gloo/ab-0-100.json", table) == "");
    const Json& routes = table["spec"]["routes"];
    REQUIRE(routes.size() == 2);
    CHECK(routes[0]["matchers"] == Json::parse(R"([
        {"headers": [{"name": "x-canary", "value": "insider"}]},
        {"headers": [{"name": "user-agent", "value": ".*Firefox.*", "regex": true}]},
        {"methods": ["POST"], "queryParameters": [{"name": "canary", "value": "yes"}]}])"));
    CHECK(routes[0]["routeAction"]["multi"]["destinations"][1]["weight"] == 100);
    CHECK_FALSE(routes[1].contains("matchers"));
    CHECK(routes[1]["routeAction"]["multi"]["destinations"][0]["weight"] == 100);
    CHECK(routes[1]["routeAction"]["multi"]["destinations"][1]["weight"] == 0);
    CHECK(route_table_routes(context, table).value() == Routes{0, 100, false});
}

TEST_CASE("gloo reads back the weights it wrote, and refuses what it cannot read") {
    const auto context = context_of("canary.yaml");
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        CHECK(route_table_routes(context, build_route_table(context, routes).value()).value() == routes);
    }
    Json table = build_route_table(context, Routes{100, 0, false}).value();
    Json& destinations = table["spec"]["routes"][0]["routeAction"]["multi"]["destinations"];
    destinations[1].erase("weight");  // absent: 0
    CHECK(route_table_routes(context, table).value() == Routes{100, 0, false});
    destinations[0]["weight"] = 0;
    CHECK(route_table_routes(context, table).error().message ==
          "RouteTable podinfo.test: both destination weights are 0");
    destinations.erase(0);
    CHECK(route_table_routes(context, table).error().message ==
          "RouteTable podinfo.test: spec.routes[0].routeAction.multi lacks a readable weight for "
          "upstream test-podinfo-primaryupstream-9898");
    table["spec"]["routes"] = Json::array();
    CHECK(route_table_routes(context, table).error().message == "RouteTable podinfo.test has no spec.routes");
}

TEST_CASE("what Gloo cannot match is refused, naming the field") {
    auto context = context_of("ab.yaml");
    auto refusal = [&](const char* match) {
        context.canary.spec.analysis->match = Json::parse(match);
        auto built = build_route_table(context, Routes{0, 100, false});
        return built ? std::string("accepted") : built.error().message;
    };
    CHECK(refusal(R"([{"headers": {"x": {"prefix": "a"}}}])") ==
          "spec.analysis.match[0].headers.x.prefix: not supported by provider gloo (it matches by "
          "exact value or regex)");
    CHECK(refusal(R"([{"headers": {"x": {"exact": "1"}}}, {"uri": {"prefix": "/a"}}])") ==
          "spec.analysis.match[1].uri: not supported by provider gloo (it matches headers, "
          "queryParams and method; the path is the delegating VirtualService's)");
    CHECK(refusal(R"([{"method": {"regex": "P.*"}}])") ==
          "spec.analysis.match[0].method: not supported by provider gloo (it matches a method "
          "exactly), got {\"regex\":\"P.*\"}");
    CHECK(refusal(R"([{"headers": {"x": {"exact": "1"}, "y": {"regex": "2"}}}])") == "accepted");
}
