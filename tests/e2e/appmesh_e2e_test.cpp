// Releases through the appmesh router on the devcluster: the real serin binary writes the App Mesh
// VirtualNodes, VirtualRouters and VirtualServices (the real App Mesh CRDs); meshsim sends
// traffic by the VirtualRouter's weighted targets and exports the Envoy sidecars' families per
// pod, which Prometheus scrapes and serin's builtin metrics judge.
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

Json appmesh_canary(Scenario& s, Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 20},
                           {"maxWeight", 40},  {"metrics", metrics}};
    Json spec = {{"provider", "appmesh:v1beta2"}, {"metricsServer", s.cluster().prometheus_url()}};
    spec.update(spec_extra);
    return s.canary(analysis, spec);
}

/// The canary's weighted target in the VirtualRouter's first route (-1: none).
int router_weight(const Json& router) {
    for (const Json& target : at(router, "/spec/routes/0/httpRoute/action/weightedTargets")) {
        if (at(target, "/virtualNodeRef/name") == "podinfo-canary") {
            return target.value("weight", 0);
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

TEST_CASE("appmesh: a release steps the VirtualRouter weights, passes the Envoy sidecars' builtin metrics and is promoted") {
    Scenario s;
    initialize(s, appmesh_canary(s));
    const auto type = route_types::appmesh_virtual_routers();
    CHECK(router_weight(s.get(type, "podinfo")) == 0);
    CHECK(at(s.get(route_types::appmesh_virtual_nodes(), "podinfo-primary"), "/spec/podSelector/matchLabels/app") ==
          "podinfo-primary");
    CHECK(at(s.get(route_types::appmesh_virtual_services(), "podinfo"),
             "/spec/provider/virtualRouter/virtualRouterRef/name") == "podinfo");
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
        const Json router = s.get(type, "podinfo");
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;
        }
        CHECK(router_weight(router) == weight_of(before));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(router_weight(s.get(type, "podinfo")) == 0);
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(envoy_cluster_upstream_rq{kubernetes_namespace=\"" + s.ns() +
            "\",kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
}

TEST_CASE("appmesh: a user's VirtualRouter is taken over, its 20%-error release rolled back, and its spec given back with revertOnDeletion") {
    Scenario s;
    const auto type = route_types::appmesh_virtual_routers();
    const Json user = s.create(type, Json::parse(R"({
        "apiVersion": "appmesh.k8s.aws/v1beta2", "kind": "VirtualRouter", "metadata": {"name": "podinfo"},
        "spec": {"awsName": "podinfo_team",
                 "listeners": [{"portMapping": {"port": 80, "protocol": "http"}}],
                 "routes": [{"name": "all", "httpRoute": {"match": {"prefix": "/"},
                             "action": {"weightedTargets": [{"virtualNodeRef": {"name": "podinfo-v1"}, "weight": 1}]}}}]}})"));
    initialize(s, appmesh_canary(s, {{"revertOnDeletion", true}}));
    const Json taken = s.get(type, "podinfo");
    CHECK(at(taken, "/spec/awsName") == "podinfo_team");
    CHECK(at(taken, "/spec/routes/0/name") == "podinfo");
    CHECK(at(taken, "/metadata/ownerReferences").is_null());
    release(s, "20", "20");  // 20% errors: rolled back on the success rate
    s.wait_event("advancement success rate");
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    s.wait_object(type, "podinfo", [](const Json& r) { return router_weight(r) == 0; }, "the canary weight back at 0");
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    const Json given_back = s.wait_object(
        type, "podinfo", [&](const Json& r) { return at(r, "/spec") == at(user, "/spec"); }, "the user's spec back");
    CHECK(at(given_back, "/metadata/ownerReferences").is_null());
}
