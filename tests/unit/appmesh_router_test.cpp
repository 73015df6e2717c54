// The App Mesh router's pure parts: the six objects of each strategy (golden files), reading the
// weights back, and what App Mesh cannot express, refused naming the field.
#include <catch2/catch.hpp>

#include "meshes/appmesh/appmesh_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::AppMeshObjects;
using serin::meshes::build_appmesh_objects;
using serin::meshes::virtual_router_routes;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

serin::meshes::RouteContext context_of(const char* file) {
    return route_context(load_document(std::string("tests/data/routes/appmesh/") + file), "appmesh:v1beta2");
}

Json all_of(const AppMeshObjects& o) {
    return Json::array({o.primary_node, o.canary_node, o.apex_router, o.canary_router, o.apex_service,
                        o.canary_service});
}

}  // namespace

TEST_CASE("appmesh writes two VirtualNodes, two VirtualRouters and two VirtualServices") {
    const auto context = context_of("canary.yaml");
    const AppMeshObjects o = build_appmesh_objects(context, Routes{70, 30, false}).value();
    CHECK(golden("appmesh/canary-70-30.json", all_of(o)) == "");
    CHECK(o.primary_node["metadata"]["name"] == "podinfo-primary");
    CHECK(o.primary_node["metadata"]["labels"]["team"] == "web");
    CHECK(o.primary_node["spec"]["podSelector"] == Json{{"matchLabels", {{"app", "podinfo-primary"}}}});
    CHECK(o.canary_node["spec"]["podSelector"] == Json{{"matchLabels", {{"app", "podinfo"}}}});
    CHECK(o.canary_node["spec"]["serviceDiscovery"]["dns"]["hostname"] == "podinfo-canary.test.svc.cluster.local.");
    CHECK(o.primary_node["spec"]["listeners"][0]["portMapping"] == Json{{"port", 9898}, {"protocol", "http"}});
    CHECK(o.primary_node["spec"]["backends"] ==
          Json::parse(R"([{"virtualService": {"virtualServiceRef": {"name": "backend1"}}},
                          {"virtualService": {"virtualServiceARN": "arn:aws:appmesh:eu-west-1:111111111111:mesh/global/virtualService/backend2"}}])"));
    CHECK(o.primary_node["spec"]["logging"]["accessLog"]["file"]["path"] == "/dev/stdout");
    const Json& route = o.apex_router["spec"]["routes"][0];
    CHECK(route["name"] == "podinfo");
    CHECK(route["httpRoute"]["match"] == Json{{"prefix", "/"}});
    CHECK(route["httpRoute"]["action"]["weightedTargets"] ==
          Json::parse(R"([{"virtualNodeRef": {"name": "podinfo-canary"}, "weight": 30},
                          {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 70}])"));
    CHECK(o.canary_router["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"] ==
          Json::parse(R"([{"virtualNodeRef": {"name": "podinfo-canary"}, "weight": 100}])"));
    CHECK(o.apex_service["spec"] ==
          Json::parse(R"({"provider": {"virtualRouter": {"virtualRouterRef": {"name": "podinfo"}}}})"));
    CHECK_FALSE(o.apex_service["metadata"]["annotations"].contains("gateway.appmesh.k8s.aws/expose"));
    CHECK(o.canary_service["spec"]["provider"]["virtualRouter"]["virtualRouterRef"]["name"] == "podinfo-canary");
    for (const Json& object : all_of(o)) {
        CHECK(object["apiVersion"] == "appmesh.k8s.aws/v1beta2");
        CHECK(object["metadata"]["ownerReferences"][0]["name"] == "podinfo");
        CHECK_FALSE(object["spec"].contains("meshRef"));  // the App Mesh controller's
        CHECK_FALSE(object["spec"].contains("awsName"));
    }
}

TEST_CASE("appmesh copies the port, protocol, prefix, timeout, retries and gateway hosts") {
    auto context = context_of("service-fields.yaml");
    const AppMeshObjects o = build_appmesh_objects(context, Routes{90, 10, false}).value();
    CHECK(golden("appmesh/service-fields-90-10.json", all_of(o)) == "");
    CHECK(o.primary_node["spec"]["listeners"][0] ==
          Json::parse(R"({"portMapping": {"port": 9898, "protocol": "grpc"},
                          "timeout": {"http": {"perRequest": {"unit": "ms", "value": 15000}}}})"));
    const Json& http = o.apex_router["spec"]["routes"][0]["httpRoute"];
    CHECK(http["match"] == Json{{"prefix", "/api"}});
    CHECK(http["timeout"] == Json::parse(R"({"perRequest": {"unit": "ms", "value": 15000}})"));
    CHECK(http["retryPolicy"] == Json::parse(R"({"perRetryTimeout": {"unit": "ms", "value": 5000},
                                                 "maxRetries": 3,
                                                 "httpRetryEvents": ["gateway-error", "client-error"]})"));
    const Json& annotations = o.apex_service["metadata"]["annotations"];
    CHECK(annotations["gateway.appmesh.k8s.aws/expose"] == "true");
    CHECK(annotations["gateway.appmesh.k8s.aws/domain"] == "app.example.com,www.example.com,");
    CHECK(annotations["gateway.appmesh.k8s.aws/timeout"] == "15s");
    CHECK(annotations["gateway.appmesh.k8s.aws/retries"] == "3");
    CHECK_FALSE(o.canary_service["metadata"]["annotations"].contains("gateway.appmesh.k8s.aws/expose"));
    // Defaults: one retry after 250 ms on gateway errors.
    context.canary.spec.service.retries = Json{{"retryOn", ""}};
    CHECK(build_appmesh_objects(context, Routes{90, 10, false}).value().apex_router["spec"]["routes"][0]
              ["httpRoute"]["retryPolicy"] ==
          Json::parse(R"({"perRetryTimeout": {"unit": "ms", "value": 250}, "maxRetries": 1,
                          "httpRetryEvents": ["gateway-error"]})"));
}

TEST_CASE("appmesh A/B: one route per match entry with its headers, then everyone else to the primary") {
    const auto context = context_of("ab.yaml");
    const AppMeshObjects o = build_appmesh_objects(context, Routes{0, 100, false}).value();
    CHECK(golden("appmesh/ab-0-100.json", all_of(o)) == "");
    const Json& routes = o.apex_router["spec"]["routes"];
    REQUIRE(routes.size() == 4);
    CHECK(routes[0]["name"] == "podinfo-a");
    CHECK(routes[0]["priority"] == 10);
    CHECK(routes[0]["httpRoute"]["match"]["headers"] ==
          Json::parse(R"([{"name": "x-canary", "match": {"exact": "insider"}},
                          {"name": "x-region", "match": {"prefix": "eu-"}}])"));
    CHECK(routes[1]["name"] == "podinfo-a-2");
    CHECK(routes[1]["httpRoute"]["match"]["headers"][0]["match"] == Json{{"regex", ".*Firefox.*"}});
    CHECK(routes[2]["httpRoute"]["match"]["headers"][0]["match"] == Json{{"suffix", "-rc"}});
    CHECK(routes[3]["name"] == "podinfo-b");
    CHECK(routes[3]["priority"] == 20);
    CHECK(routes[3]["httpRoute"]["action"]["weightedTargets"] ==
          Json::parse(R"([{"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 100}])"));
    CHECK(virtual_router_routes(context, o.apex_router).value() == Routes{0, 100, false});
}

TEST_CASE("appmesh reads back the weights it wrote, and refuses what it cannot read") {
    const auto context = context_of("canary.yaml");
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        CHECK(virtual_router_routes(context, build_appmesh_objects(context, routes).value().apex_router).value() ==
              routes);
    }
    Json router = build_appmesh_objects(context, Routes{100, 0, false}).value().apex_router;
    Json& targets = router["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"];
    targets[1]["weight"] = 0;
    CHECK(virtual_router_routes(context, router).error().message ==
          "VirtualRouter podinfo.test: both weighted targets are 0");
    targets.erase(0);
    CHECK(virtual_router_routes(context, router).error().message == "VirtualRouter routes podinfo not found");
    router["spec"]["routes"] = Json::array();
    CHECK(virtual_router_routes(context, router).error().message == "VirtualRouter routes podinfo not found");
}

TEST_CASE("what App Mesh cannot match or retry on is refused, naming the field") {
    auto context = context_of("ab.yaml");
    auto refusal = [&](const char* match) {
        context.canary.spec.analysis->match = Json::parse(match);
        auto built = build_appmesh_objects(context, Routes{0, 100, false});
        return built ? std::string("accepted") : built.error().message;
    };
    CHECK(refusal(R"([{"headers": {"x": {"range": "1"}}}])") ==
          "spec.analysis.match[0].headers.x.range: App Mesh matches a header by exact, prefix, regex or suffix only");
    CHECK(refusal(R"([{"sourceLabels": {"app": "a"}, "headers": {"x": {"exact": "1"}}}])") ==
          "spec.analysis.match[0].sourceLabels: not supported by App Mesh (it matches headers)");
    CHECK(refusal(R"([{"uri": {"prefix": "/a"}}])") ==
          "spec.analysis.match[0].uri: not supported by App Mesh (it matches headers)");
    CHECK(refusal(R"([{"headers": {}}])") == "spec.analysis.match[0].headers: App Mesh needs at least one header to match");

    auto fields = context_of("service-fields.yaml");
    fields.canary.spec.service.retries = Json{{"retryOn", "5xx"}};
    CHECK(build_appmesh_objects(fields, Routes{100, 0, false}).error().message ==
          "spec.service.retries.retryOn: App Mesh does not retry on \"5xx\" (it knows server-error, "
          "gateway-error, client-error, stream-error and connection-error)");
}
