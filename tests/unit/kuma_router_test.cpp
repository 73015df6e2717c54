// The Kuma router's pure parts: the cluster-scoped TrafficRoute it writes (golden file), reading
// the weights back, A/B refused naming the field, and which live TrafficRoute S it may take.
#include <catch2/catch.hpp>

#include "meshes/kuma/kuma_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::build_traffic_route;
using serin::meshes::traffic_route_conflict;
using serin::meshes::traffic_route_routes;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

serin::meshes::RouteContext context_of(const char* file) {
    return route_context(load_document(std::string("tests/data/routes/kuma/") + file), "kuma");
}

}  // namespace

TEST_CASE("kuma writes the cluster-scoped TrafficRoute S splitting S between primary and canary") {
    const auto context = context_of("canary.yaml");
    const Json route = build_traffic_route(context, Routes{70, 30, false}).value();
    CHECK(golden("kuma/canary-70-30.json", route) == "");
    CHECK(route["mesh"] == "production");  // the canary's kuma.io/mesh annotation
    CHECK_FALSE(route["metadata"].contains("namespace"));
    CHECK_FALSE(route["metadata"].contains("ownerReferences"));  // a cluster-scoped object cannot have one
    CHECK(route["metadata"]["annotations"]["serin.dev/canary"] == "test/podinfo");
    CHECK(route["metadata"]["labels"]["team"] == "web");
    CHECK(route["spec"]["destinations"][0]["match"]["kuma.io/service"] == "podinfo_test_svc_9898");
    CHECK(route["spec"]["conf"]["split"][1] ==
          Json{{"weight", 30}, {"destination", {{"kuma.io/service", "podinfo-canary_test_svc_9898"}}}});
    auto without_mesh = context;
    without_mesh.canary.metadata.annotations.clear();
    CHECK(build_traffic_route(without_mesh, Routes{100, 0, false}).value()["mesh"] == "default");
}

TEST_CASE("kuma reads back the weights it wrote, and refuses what it cannot read") {
    const auto context = context_of("canary.yaml");
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        CHECK(traffic_route_routes(context, build_traffic_route(context, routes).value()).value() == routes);
    }
    Json route = build_traffic_route(context, Routes{100, 0, false}).value();
    route["spec"]["conf"]["split"][0]["weight"] = 0;
    CHECK(traffic_route_routes(context, route).error().message ==
          "TrafficRoute podinfo (cluster-scoped): both split weights are 0");
    route["spec"]["conf"]["split"].erase(0);
    CHECK(traffic_route_routes(context, route).error().message ==
          "TrafficRoute podinfo (cluster-scoped) does not contain a readable split for podinfo-primary");
}

TEST_CASE("kuma refuses A/B matches naming the field") {
    const auto context = context_of("ab.yaml");
    CHECK(build_traffic_route(context, Routes{0, 100, false}).error().message ==
          "spec.analysis.match[0].headers.x-canary: not supported by provider kuma (a TrafficRoute "
          "splits by weight only; use a weighted canary)");
}

TEST_CASE("kuma takes a TrafficRoute S only when no other namespace's canary routes through it") {
    const auto context = context_of("canary.yaml");
    Json live = build_traffic_route(context, Routes{100, 0, false}).value();
    bool other_exists = true;
    auto exists = [&](const std::string& ns, const std::string& name) {
        return other_exists && ns == "shop" && name == "podinfo";
    };
    CHECK_FALSE(traffic_route_conflict(context, live, exists).has_value());  // its own
    live["metadata"]["annotations"]["serin.dev/canary"] = "shop/podinfo";
    CHECK(traffic_route_conflict(context, live, exists).value() ==
          "TrafficRoute podinfo (cluster-scoped) belongs to canary podinfo.shop (annotation "
          "serin.dev/canary): a TrafficRoute is named after spec.service.name alone, so give this "
          "canary another spec.service.name");
    other_exists = false;  // that canary is gone: its TrafficRoute is taken over
    CHECK_FALSE(traffic_route_conflict(context, live, exists).has_value());
    // A user's (or Flagger's) TrafficRoute: taken over when it routes this namespace's service.
    live["metadata"]["annotations"].erase("serin.dev/canary");
    CHECK_FALSE(traffic_route_conflict(context, live, exists).has_value());
    live["spec"]["destinations"][0]["match"]["kuma.io/service"] = "podinfo_shop_svc_9898";
    CHECK(traffic_route_conflict(context, live, exists).value() ==
          "TrafficRoute podinfo (cluster-scoped) routes podinfo_shop_svc_9898, a service of another "
          "namespace: a TrafficRoute is named after spec.service.name alone, so give this canary "
          "another spec.service.name");
}
