// Releases through the gloo router on the devcluster: the real serin binary writes the Upstreams
// and the RouteTable S (the real Gloo CRDs); meshsim sends traffic by the table's weights through
// the Upstreams and exports Envoy's families per Gloo cluster (<upstream>_<namespace>), which
// Prometheus scrapes and serin's builtin metrics judge.
#include <catch2/catch.hpp>

#include <set>

#include "meshes/common/route_types.hpp"
#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;
namespace route_types = serin::meshes::route_types;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

void release(Scenario& s, const std::string& error_rate, const std::string& latency_ms) {
    s.patch(types::deployments(), "podinfo",
            {{"spec",
              {{"template",
                {{"metadata",
                  {{"annotations",
                    {{"sim.serin.dev/error-rate", error_rate}, {"sim.serin.dev/latency-ms", latency_ms}}}}},
                 {"spec", {{"containers", {{{"name", "podinfod"}, {"image", kV2}}}}}}}}}}});
}

Json gloo_canary(Scenario& s, Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 20},
                           {"maxWeight", 40},  {"metrics", metrics}};
    Json spec = {{"provider", "gloo"}, {"metricsServer", s.cluster().prometheus_url()}};
    spec.update(spec_extra);
    return s.canary(analysis, spec);
}

/// The weight of the canary Upstream in the RouteTable's first route (absent: 0).
int table_weight(const Json& table, const std::string& ns) {
    for (const Json& d : at(table, "/spec/routes/0/routeAction/multi/destinations")) {
        if (at(d, "/destination/upstream/name") == ns + "-podinfo-canaryupstream-80") {
            return d.value("weight", 0);
        }
    }
    return -1;
}

int weight_of(const Json& canary) {
    const Json w = at(canary, "/status/canaryWeight");
    return w.is_number() ? w.get<int>() : 0;
}

void initialize(Scenario& s, const Json& canary) {
    s.start_serin();
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), canary);
    s.wait_phase("Initialized");
}

}  // namespace

TEST_CASE("gloo: a release steps the RouteTable weights, passes Envoy's builtin metrics and is promoted") {
    Scenario s;
    initialize(s, gloo_canary(s));
    const auto type = route_types::gloo_route_tables();
    CHECK(table_weight(s.get(type, "podinfo"), s.ns()) == 0);
    const Json upstream = s.get(route_types::gloo_upstreams(), s.ns() + "-podinfo-canaryupstream-80");
    CHECK(at(upstream, "/spec/kube/serviceName") == "podinfo-canary");
    CHECK(at(upstream, "/metadata/ownerReferences/0/kind") == "Canary");
    release(s, "0", "20");
    std::set<int> seen;
    for (int step = 20; step <= 40; step += 20) {
        s.wait_canary(
            [&](const Json& c) {
                const std::string p = phase(c);
                return (p == "Progressing" && weight_of(c) >= step) || p == "Promoting" ||
                       p == "Finalising" || p == "Succeeded" || p == "Failed";
            },
            "canary weight " + std::to_string(step));
        const Json before = s.get(types::canaries(), "podinfo");
        const Json table = s.get(type, "podinfo");
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;
        }
        CHECK(table_weight(table, s.ns()) == weight_of(before));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(table_weight(s.get(type, "podinfo"), s.ns()) == 0);
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(envoy_cluster_upstream_rq{envoy_cluster_name=\"" + s.ns() + "-podinfo-canaryupstream-80_" +
            s.ns() + "\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
}

TEST_CASE("gloo: a version answering in 600 ms is rolled back on Envoy's p99") {
    Scenario s;
    initialize(s, gloo_canary(s));
    release(s, "0", "600");
    s.wait_event("advancement request duration");
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    // A rollback is recorded before the traffic moves: wait for the weight.
    s.wait_object(
        route_types::gloo_route_tables(), "podinfo",
        [&](const Json& t) { return table_weight(t, s.ns()) == 0; }, "the canary weight back at 0");
}

TEST_CASE("gloo: a user's RouteTable is taken over and given back with revertOnDeletion") {
    Scenario s;
    const auto type = route_types::gloo_route_tables();
    const Json user = s.create(type, Json::parse(R"({
        "apiVersion": "gateway.solo.io/v1", "kind": "RouteTable", "metadata": {"name": "podinfo"},
        "spec": {"weight": 3,
                 "routes": [{"matchers": [{"prefix": "/"}],
                             "routeAction": {"single": {"kube": {"ref": {"name": "podinfo"}, "port": 80}}}}]}})"));
    initialize(s, gloo_canary(s, {{"revertOnDeletion", true}}));
    const Json taken = s.get(type, "podinfo");
    CHECK(at(taken, "/spec/weight") == 3);
    CHECK(at(taken, "/spec/routes/0/routeAction/multi/destinations/0/destination/upstream/name") ==
          s.ns() + "-podinfo-primaryupstream-80");
    release(s, "20", "20");  // 20% errors: rolled back on the success rate
    s.wait_event("advancement success rate");
    s.wait_phase("Failed");
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    const Json given_back = s.wait_object(
        type, "podinfo", [&](const Json& t) { return at(t, "/spec") == at(user, "/spec"); },
        "the user's spec back");
    CHECK(at(given_back, "/metadata/ownerReferences").is_null());
}
