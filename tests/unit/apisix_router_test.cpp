// The APISIX router's pure parts: the canary route copied from the user's ApisixRoute (golden
// file), reading the weights back, and what it refuses, naming the field.
#include <catch2/catch.hpp>

#include "meshes/apisix/apisix_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::apisix_routes;
using serin::meshes::build_apisix_canary_route;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

serin::meshes::RouteContext context_of(const char* file) {
    return route_context(load_document(std::string("tests/data/routes/apisix/") + file), "apisix");
}

Json user_route() { return load_document("tests/data/routes/apisix/route.yaml"); }

}  // namespace

TEST_CASE("apisix copies the user's entry for S into <route>-<S>-canary with weighted backends") {
    const auto context = context_of("canary.yaml");
    const Json route = build_apisix_canary_route(context, user_route(), Routes{70, 30, false}).value();
    CHECK(golden("apisix/canary-70-30.json", route) == "");
    CHECK(route["metadata"]["name"] == "podinfo-podinfo-canary");
    CHECK(route["metadata"]["labels"]["app"] == "podinfo");
    CHECK(route["metadata"]["annotations"]["team"] == "web");
    CHECK_FALSE(route["metadata"]["annotations"].contains("kubectl.kubernetes.io/last-applied-configuration"));
    CHECK(route["spec"]["ingressClassName"] == "apisix");  // kept, unlike Flagger's reduced type
    const Json& http = route["spec"]["http"];
    REQUIRE(http.size() == 1);  // only the entry for S
    CHECK(http[0]["name"] == "method");
    CHECK(http[0]["priority"] == 10000);
    CHECK(http[0]["plugins"][0]["name"] == "cors");
    CHECK(http[0]["timeout"]["read"] == "15s");
    CHECK(http[0]["backends"] ==
          Json::parse(R"([{"serviceName": "podinfo-primary", "servicePort": 9898, "resolveGranularity": "service", "weight": 70},
                          {"serviceName": "podinfo-canary", "servicePort": 9898, "resolveGranularity": "service", "weight": 30}])"));
}

TEST_CASE("apisix reads back the weights it wrote, and refuses what it cannot read") {
    const auto context = context_of("canary.yaml");
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        CHECK(apisix_routes(context, build_apisix_canary_route(context, user_route(), routes).value()).value() ==
              routes);
    }
    Json route = build_apisix_canary_route(context, user_route(), Routes{100, 0, false}).value();
    route["spec"]["http"][0]["backends"][0]["weight"] = 0;
    CHECK(apisix_routes(context, route).error().message ==
          "ApisixRoute podinfo-podinfo-canary.test: both backend weights are 0");
    route["spec"]["http"][0]["backends"].erase(0);
    CHECK(apisix_routes(context, route).error().message ==
          "ApisixRoute podinfo-podinfo-canary.test lacks a readable weight for backend podinfo-primary");
}

TEST_CASE("apisix refuses what it cannot route, naming the field") {
    auto context = context_of("canary.yaml");
    auto refusal = [&](const Json& route) {
        auto built = build_apisix_canary_route(context, route, Routes{100, 0, false});
        return built ? std::string("accepted") : built.error().message;
    };
    Json route = user_route();
    route["spec"]["http"][1]["backends"].push_back({{"serviceName", "other"}, {"servicePort", 80}});
    CHECK(refusal(route) ==
          "spec.routeRef: ApisixRoute podinfo.test: spec.http[1].backends: only one backend is supported, got 2");
    route["spec"]["http"].erase(1);
    CHECK(refusal(route) == "spec.routeRef: ApisixRoute podinfo.test: no spec.http entry has the backend podinfo");
    route["spec"].erase("http");
    CHECK(refusal(route) == "spec.routeRef: ApisixRoute podinfo.test has no spec.http");
    context.canary.spec.analysis->match = Json::parse(R"([{"headers": {"x-canary": {"exact": "1"}}}])");
    CHECK(refusal(user_route()) ==
          "spec.analysis.match[0].headers.x-canary: not supported by provider apisix (its canary route "
          "splits by weight only; use a weighted canary)");
    context.canary.spec.route_ref.reset();
    CHECK(refusal(user_route()) ==
          "spec.routeRef: apisix route selector is empty (provider apisix needs the ApisixRoute to copy)");
}
