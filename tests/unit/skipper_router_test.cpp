// The Skipper router's pure parts: the canary Ingress (golden file), its predicate, reading the
// weights back, and A/B refused naming the field.
#include <catch2/catch.hpp>

#include "meshes/skipper/skipper_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::build_skipper_ingress;
using serin::meshes::skipper_ingress_routes;
using serin::meshes::skipper_predicate;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

serin::meshes::RouteContext context_of(const char* file) {
    return route_context(load_document(std::string("tests/data/routes/skipper/") + file), "skipper");
}

}  // namespace

TEST_CASE("skipper copies the user's Ingress: paths to S go to the primary, a copy to the canary") {
    const auto context = context_of("canary.yaml");
    const Json user = load_document("tests/data/routes/skipper/ingress.yaml");
    const Json ingress = build_skipper_ingress(context, user, Routes{70, 30, false}).value();
    CHECK(golden("skipper/canary-70-30.json", ingress) == "");
    CHECK(ingress["metadata"]["name"] == "podinfo-canary");
    CHECK(ingress["metadata"]["labels"] == user["metadata"]["labels"]);
    CHECK(ingress["metadata"]["ownerReferences"][0]["name"] == "podinfo");
    const Json& annotations = ingress["metadata"]["annotations"];
    CHECK(annotations["zalando.org/backend-weights"] == R"({"podinfo-canary":30,"podinfo-primary":70})");
    CHECK(annotations["zalando.org/skipper-predicate"] ==
          R"(Weight(100) && Method("GET") && Header("X-Team", "web"))");
    CHECK(annotations["example.com/owner"] == "web");
    const Json& paths = ingress["spec"]["rules"][0]["http"]["paths"];
    REQUIRE(paths.size() == 3);
    CHECK(paths[0]["backend"]["service"]["name"] == "podinfo-primary");
    CHECK(paths[1]["backend"]["service"]["name"] == "static");
    CHECK(paths[2]["backend"]["service"]["name"] == "podinfo-canary");
    CHECK(paths[2]["path"] == "/");
    CHECK(ingress["spec"]["rules"][1]["http"]["paths"].size() == 2);
    CHECK(ingress["spec"]["ingressClassName"] == "skipper");
    CHECK(skipper_ingress_routes(context, ingress).value() == Routes{70, 30, false});
}

TEST_CASE("skipper's predicate: Weight(100) before the user's, False() while the canary has no traffic") {
    CHECK(skipper_predicate("", 10) == "Weight(100)");
    CHECK(skipper_predicate(R"(Host(/^a\.org$/) && Method("GET"))", 10) ==
          R"(Weight(100) && Host(/^a\.org$/) && Method("GET"))");
    CHECK(skipper_predicate(R"(Host(/^a\.org$/) && Method("GET"))", 0) ==
          R"(False() && Host(/^a\.org$/) && Method("GET"))");
    CHECK(skipper_predicate(" False()  &&Weight(100)&& Path(\"/x\") ", 5) == R"(Weight(100) && Path("/x"))");
    const auto context = context_of("canary.yaml");
    const Json user = load_document("tests/data/routes/skipper/ingress.yaml");
    CHECK(build_skipper_ingress(context, user, Routes{100, 0, false}).value()["metadata"]["annotations"]
              ["zalando.org/skipper-predicate"] == R"(False() && Method("GET") && Header("X-Team", "web"))");
}

TEST_CASE("skipper reads back the weights it wrote, and refuses what it cannot read") {
    const auto context = context_of("canary.yaml");
    const Json user = load_document("tests/data/routes/skipper/ingress.yaml");
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        CHECK(skipper_ingress_routes(context, build_skipper_ingress(context, user, routes).value()).value() == routes);
    }
    Json ingress = build_skipper_ingress(context, user, Routes{100, 0, false}).value();
    Json& annotations = ingress["metadata"]["annotations"];
    annotations["zalando.org/backend-weights"] = R"({"podinfo-primary": 100})";
    CHECK(skipper_ingress_routes(context, ingress).error().message ==
          "Ingress podinfo-canary.test: zalando.org/backend-weights lacks a weight for podinfo-canary");
    annotations["zalando.org/backend-weights"] = "[[[[[[1]]]]]]";
    CHECK(skipper_ingress_routes(context, ingress).error().message ==
          "Ingress podinfo-canary.test: zalando.org/backend-weights is not a JSON object: \"[[[[[[1]]]]]]\"");
    annotations.erase("zalando.org/backend-weights");
    CHECK(skipper_ingress_routes(context, ingress).error().message ==
          "Ingress podinfo-canary.test: zalando.org/backend-weights not found");
}

TEST_CASE("skipper refuses A/B matches and an Ingress without the canary's backend") {
    auto context = context_of("canary.yaml");
    Json user = load_document("tests/data/routes/skipper/ingress.yaml");
    context.canary.spec.analysis->match = Json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
    CHECK(build_skipper_ingress(context, user, Routes{0, 100, false}).error().message ==
          "spec.analysis.match: A/B testing is not supported by provider skipper (it routes by weight "
          "only); use a canary or blue/green analysis");
    context.canary.spec.analysis->match = Json();
    user["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "other";
    user["spec"]["rules"][1]["http"]["paths"][0]["backend"]["service"]["name"] = "other";
    CHECK(build_skipper_ingress(context, user, Routes{100, 0, false}).error().message ==
          "spec.ingressRef: Ingress podinfo.test: backend podinfo not found in ingress podinfo");
}
