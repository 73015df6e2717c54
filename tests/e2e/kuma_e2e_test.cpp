// Releases through the kuma router on the devcluster: the real serin binary writes the
// cluster-scoped TrafficRoute S (the real Kuma CRD); meshsim sends traffic by its splits and
// exports Envoy's families labelled with Kuma services, which Prometheus scrapes and serin's
// builtin metrics judge. The TrafficRoute goes with its canary (it cannot have an owner
// reference), and a user's is given back.
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

/// S: a TrafficRoute is cluster-scoped, so each test names its apex after its namespace.
std::string apex(Scenario& s) { return s.ns() + "-web"; }

Json kuma_canary(Scenario& s, Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 20},
                           {"maxWeight", 40},  {"metrics", metrics}};
    Json spec = {{"provider", "kuma"},
                 {"metricsServer", s.cluster().prometheus_url()},
                 {"service", {{"name", apex(s)}}}};
    spec.update(spec_extra);
    Json canary = s.canary(analysis, spec);
    canary["metadata"]["annotations"] = {{"kuma.io/mesh", "production"}};
    return canary;
}

/// The canary's split weight in the TrafficRoute (-1 when absent).
int split_weight(Scenario& s, const Json& route) {
    for (const Json& split : at(route, "/spec/conf/split")) {
        if (at(split, "/destination/kuma.io~1service") == apex(s) + "-canary_" + s.ns() + "_svc_80") {
            return split.value("weight", 0);
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

/// Whether the TrafficRoute is gone.
bool gone(Scenario& s, const std::string& name) {
    auto got = serin::testing::run(s.io(), s.client().get(route_types::kuma_traffic_routes(), "", name));
    return !got && got.error().kind == serin::ErrorKind::kNotFound;
}

}  // namespace

TEST_CASE("kuma: a release steps the TrafficRoute splits, passes Envoy's builtin metrics, is promoted, and the route goes with the canary") {
    Scenario s;
    initialize(s, kuma_canary(s));
    const auto type = route_types::kuma_traffic_routes();
    const Json created = s.get(type, apex(s));
    CHECK(at(created, "/mesh") == "production");
    CHECK(at(created, "/metadata/annotations/serin.dev~1canary") == s.ns() + "/podinfo");
    CHECK(split_weight(s, created) == 0);
    CHECK(at(s.get(types::canaries(), "podinfo"), "/metadata/finalizers/0") == "finalizer.flagger.app");
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
        const Json route = s.get(type, apex(s));
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;
        }
        CHECK(split_weight(s, route) == weight_of(before));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(split_weight(s, s.get(type, apex(s))) == 0);
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(envoy_cluster_upstream_rq{service=\"" + apex(s) + "-canary_" + s.ns() + "_svc_80\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
    // No revertOnDeletion: the TrafficRoute Serin created is deleted all the same.
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    s.wait_until([&] { return gone(s, apex(s)); }, "the TrafficRoute deleted");
}

TEST_CASE("kuma: a user's TrafficRoute is taken over, a 600 ms version rolled back on Envoy's p99, and the route given back") {
    Scenario s;
    const auto type = route_types::kuma_traffic_routes();
    const std::string service = apex(s) + "_" + s.ns() + "_svc_80";
    const Json user = s.create(type, Json::parse(R"({
        "apiVersion": "kuma.io/v1alpha1", "kind": "TrafficRoute", "mesh": "default",
        "metadata": {"name": ")" + apex(s) + R"("},
        "spec": {"sources": [{"match": {"kuma.io/service": "*"}}],
                 "destinations": [{"match": {"kuma.io/service": ")" + service + R"("}}],
                 "conf": {"destination": {"kuma.io/service": ")" + service + R"("}}}})"));
    initialize(s, kuma_canary(s, {{"revertOnDeletion", true}}));
    const Json taken = s.get(type, apex(s));
    CHECK(at(taken, "/mesh") == "default");  // the user's mesh is kept
    CHECK(split_weight(s, taken) == 0);
    release(s, "0", "600");
    s.wait_event("advancement request duration");
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    s.wait_object(
        type, apex(s), [&](const Json& r) { return split_weight(s, r) == 0; }, "the canary split back at 0");
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    const Json given_back = s.wait_object(
        type, apex(s), [&](const Json& r) { return at(r, "/spec") == at(user, "/spec"); },
        "the user's spec back");
    CHECK(at(given_back, "/metadata/annotations/serin.dev~1canary").is_null());
    s.remove(type, apex(s));
}
