// The Traefik router's pure parts: the TraefikService each strategy gets (golden files), reading
// the weights back as Traefik would apply them, and A/B testing refused naming the field.
#include <catch2/catch.hpp>

#include "meshes/traefik/traefik_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::build_traefik_service;
using serin::meshes::traefik_service_routes;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

serin::meshes::RouteContext context_of(const char* file) {
    return route_context(load_document(std::string("tests/data/routes/traefik/") + file), "traefik");
}

}  // namespace

TEST_CASE("traefik writes TraefikService S weighting the primary and the canary") {
    const auto context = context_of("canary.yaml");
    const Json service = build_traefik_service(context, Routes{70, 30, false}).value();
    CHECK(golden("traefik/canary-70-30.json", service) == "");
    CHECK(service["metadata"]["labels"]["team"] == "web");
    CHECK(service["spec"]["weighted"]["services"] == Json::parse(R"([
        {"name": "podinfo-primary", "namespace": "test", "port": 9898, "weight": 70},
        {"name": "podinfo-canary", "namespace": "test", "port": 9898, "weight": 30}])"));
}

TEST_CASE("traefik leaves out an entry whose weight is 0, since Traefik weighs an entry without one as 1") {
    const auto context = context_of("canary.yaml");
    const Json idle = build_traefik_service(context, Routes{100, 0, false}).value();
    CHECK(golden("traefik/canary-100-0.json", idle) == "");
    REQUIRE(idle["spec"]["weighted"]["services"].size() == 1);
    CHECK(idle["spec"]["weighted"]["services"][0]["name"] == "podinfo-primary");
    const Json all = build_traefik_service(context_of("blue-green.yaml"), Routes{0, 100, false}).value();
    CHECK(golden("traefik/blue-green-0-100.json", all) == "");
    REQUIRE(all["spec"]["weighted"]["services"].size() == 1);
    CHECK(all["spec"]["weighted"]["services"][0]["name"] == "podinfo-canary");
}

TEST_CASE("traefik reads back the weights it wrote, as shares of what Traefik would send") {
    const auto context = context_of("canary.yaml");
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        CHECK(traefik_service_routes(context, build_traefik_service(context, routes).value()).value() ==
              routes);
    }
    Json service = build_traefik_service(context, Routes{50, 50, false}).value();
    Json& entries = service["spec"]["weighted"]["services"];
    entries[0]["weight"] = 3;
    entries[1]["weight"] = 1;
    CHECK(traefik_service_routes(context, service).value() == Routes{75, 25, false});
    entries[1].erase("weight");  // Traefik's default weight is 1
    CHECK(traefik_service_routes(context, service).value() == Routes{75, 25, false});
    entries = Json::array({{{"name", "someone-else"}, {"port", 80}}});
    CHECK(traefik_service_routes(context, service).error().message ==
          "TraefikService podinfo.test: spec.weighted.services gives neither podinfo-primary nor "
          "podinfo-canary a weight");
}

TEST_CASE("A/B testing is refused on traefik, naming the field") {
    auto context = context_of("canary.yaml");
    context.canary.spec.analysis->match = Json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
    auto built = build_traefik_service(context, Routes{0, 100, false});
    REQUIRE_FALSE(built.has_value());
    CHECK(built.error().kind == serin::ErrorKind::kInvalid);
    CHECK(built.error().message ==
          "spec.analysis.match[0].headers.x-canary: not supported by provider traefik (a "
          "TraefikService splits by weight only: A/B testing is not possible; use a canary or "
          "blue/green analysis)");
    context.canary.spec.analysis->match = Json::array();
    CHECK(build_traefik_service(context, Routes{0, 100, false}).has_value());
}
