// The Contour router's pure parts: the HTTPProxy each strategy gets (golden files), reading the
// weights back, and the A/B matches Contour cannot express, refused naming the field.
#include <catch2/catch.hpp>

#include "meshes/contour/contour_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::build_http_proxy;
using serin::meshes::http_proxy_routes;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

serin::meshes::RouteContext context_of(const char* file) {
    return route_context(load_document(std::string("tests/data/routes/contour/") + file), "contour");
}

}  // namespace

TEST_CASE("contour writes HTTPProxy S splitting its route between the primary and the canary") {
    const auto context = context_of("canary.yaml");
    const Json proxy = build_http_proxy(context, Routes{70, 30, false}, "").value();
    CHECK(golden("contour/canary-70-30.json", proxy) == "");
    CHECK(proxy["metadata"]["labels"]["team"] == "web");
    CHECK_FALSE(proxy["spec"].contains("virtualhost"));  // included from the user's root proxy
    CHECK_FALSE(proxy["spec"].contains("ingressClassName"));
    const Json& services = proxy["spec"]["routes"][0]["services"];
    CHECK(services[0]["name"] == "podinfo-primary");
    CHECK(services[0]["weight"] == 70);
    CHECK(services[1]["requestHeadersPolicy"]["set"][0] ==
          Json{{"name", "l5d-dst-override"}, {"value", "podinfo-canary.test.svc.cluster.local:9898"}});
    // The -ingress-class flag.
    CHECK(build_http_proxy(context, Routes{100, 0, false}, "contour-external").value()["spec"]["ingressClassName"] ==
          "contour-external");
}

TEST_CASE("contour copies the prefix, the timeout and the retries, without an empty retryOn") {
    auto context = context_of("service-fields.yaml");
    const Json proxy = build_http_proxy(context, Routes{90, 10, false}, "").value();
    CHECK(golden("contour/service-fields-90-10.json", proxy) == "");
    const Json& route = proxy["spec"]["routes"][0];
    CHECK(route["conditions"] == Json::array({{{"prefix", "/api"}}}));
    CHECK(route["timeoutPolicy"] == Json{{"response", "15s"}, {"idle", "5m"}});
    CHECK(route["retryPolicy"] == Json{{"count", 3}, {"perTryTimeout", "5s"},
                                       {"retryOn", {"gateway-error", "connect-failure"}}});
    context.canary.spec.service.retries = Json{{"attempts", 2}, {"retryOn", ""}};
    CHECK(build_http_proxy(context, Routes{90, 10, false}, "").value()["spec"]["routes"][0]["retryPolicy"] ==
          Json{{"count", 2}});
}

TEST_CASE("contour A/B: one route per match entry, then everyone else to the primary") {
    const auto context = context_of("ab.yaml");
    const Json proxy = build_http_proxy(context, Routes{0, 100, false}, "").value();
    CHECK(golden("contour/ab-0-100.json", proxy) == "");
    const Json& routes = proxy["spec"]["routes"];
    REQUIRE(routes.size() == 3);
    CHECK(routes[0]["conditions"] ==
          Json::parse(R"([{"prefix": "/"}, {"header": {"name": "x-canary", "exact": "insider"}}])"));
    CHECK(routes[1]["conditions"][1]["header"]["regex"] == ".*Firefox.*");
    CHECK(routes[0]["services"][1]["weight"] == 100);
    CHECK(routes[2]["conditions"] == Json::array({{{"prefix", "/"}}}));
    CHECK(routes[2]["services"][0]["weight"] == 100);
    CHECK(routes[2]["services"][1]["weight"] == 0);
    CHECK(http_proxy_routes(context, proxy).value() == Routes{0, 100, false});
}

TEST_CASE("contour reads back the weights it wrote, and refuses what it cannot read") {
    const auto context = context_of("canary.yaml");
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        CHECK(http_proxy_routes(context, build_http_proxy(context, routes, "").value()).value() == routes);
    }
    Json proxy = build_http_proxy(context, Routes{100, 0, false}, "").value();
    proxy["spec"]["routes"][0]["services"][1].erase("weight");  // absent: 0
    CHECK(http_proxy_routes(context, proxy).value() == Routes{100, 0, false});
    proxy["spec"]["routes"][0]["services"][0]["weight"] = 0;
    CHECK(http_proxy_routes(context, proxy).error().message == "HTTPProxy podinfo.test: both service weights are 0");
    proxy["spec"]["routes"][0]["services"].erase(0);
    CHECK(http_proxy_routes(context, proxy).error().message ==
          "HTTPProxy podinfo.test: spec.routes[0] lacks a readable weight for service podinfo-primary");
    proxy["spec"]["routes"] = Json::array();
    CHECK(http_proxy_routes(context, proxy).error().message == "HTTPProxy podinfo.test has no spec.routes");
}

TEST_CASE("what Contour cannot match is refused, naming the field") {
    auto context = context_of("ab.yaml");
    auto refusal = [&](const char* match) {
        context.canary.spec.analysis->match = Json::parse(match);
        auto built = build_http_proxy(context, Routes{0, 100, false}, "");
        return built ? std::string("accepted") : built.error().message;
    };
    CHECK(refusal(R"([{"headers": {"x": {"prefix": "a"}}}])") ==
          "spec.analysis.match[0].headers.x.prefix: Contour matches a header by exact value or regex only");
    CHECK(refusal(R"([{"sourceLabels": {"app": "a"}, "headers": {"x": {"exact": "1"}}}])") ==
          "spec.analysis.match[0].sourceLabels: not supported by Contour (it matches headers)");
    CHECK(refusal(R"([{"uri": {"prefix": "/a"}}])") ==
          "spec.analysis.match[0].uri: not supported by Contour (it matches headers)");
    CHECK(refusal(R"([{"headers": {"x": {"exact": "1"}, "y": {"regex": "2"}}}])") == "accepted");
}
