// Releases of a Knative Service on the devcluster: the real serin binary (with nothing but the
// permissions of crds/base/rbac.yaml) moves the Service's annotation flagger.app/primary-revision
// and spec.traffic (the real Knative Serving CRDs); knativesim (in meshsim) makes the Revisions
// and applies the traffic in status.traffic, and meshsim routes requests by it through Envoy
// clusters <ns>/<revision>, which Prometheus scrapes and serin's builtin metrics judge.
#include <catch2/catch.hpp>
#include <set>

#include "meshes/common/route_types.hpp"
#include "meshes/knative/knative_router.hpp"
#include "tests/e2e/e2e.hpp"
#include "tests/support/golden.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;
namespace route_types = serin::meshes::route_types;
using Routes = serin::analysis::Routes;

Json knative_service() {
    Json service = serin::testing::load_document("examples/knative/service.yaml");
    service["metadata"].erase("namespace");
    service["spec"]["template"]["metadata"]["annotations"] = {{"sim.serin.dev/latency-ms", "20"}};
    return service;
}

Json knative_canary(Scenario& s, Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"},
                           {"threshold", 2},
                           {"stepWeight", 20},
                           {"maxWeight", 40},
                           {"metrics", metrics}};
    Json spec = {
        {"provider", "knative"},
        {"targetRef",
         {{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Service"}, {"name", "podinfo"}}},
        {"metricsServer", s.cluster().prometheus_url()}};
    spec.update(spec_extra);
    return s.canary(analysis, spec);
}

/// A new template (a new Revision) with the error rate and latency meshsim gives it.
void release(Scenario& s, const std::string& error_rate, const std::string& latency_ms) {
    s.patch(
        route_types::knative_services(), "podinfo",
        {{"spec",
          {{"template",
            {{"metadata",
              {{"annotations",
                {{"sim.serin.dev/error-rate", error_rate},
                 {"sim.serin.dev/latency-ms", latency_ms}}}}},
             {"spec",
              {{"containers",
                {{{"name", "podinfo"}, {"image", "ghcr.io/stefanprodan/podinfo:6.7.2"}}}}}}}}}}});
}

std::string primary_revision(const Json& ksvc) {
    return serin::meshes::knative_primary_revision(ksvc);
}

/// The percent of status.traffic on `revision` (all its entries), as Knative applied it.
int applied_percent(const Json& ksvc, const std::string& revision) {
    int sum = 0;
    for (const Json& entry : at(ksvc, "/status/traffic")) {
        if (entry.value("revisionName", "") == revision) {
            sum += entry.value("percent", 0);
        }
    }
    return sum;
}

int weight_of(const Json& canary) {
    const Json w = at(canary, "/status/canaryWeight");
    return w.is_number() ? w.get<int>() : 0;
}

void initialize(Scenario& s, const Json& canary) {
    s.create(route_types::knative_services(), knative_service());
    s.create(types::canaries(), canary);
    s.wait_phase("Initialized");
    const Json ksvc = s.wait_object(
        route_types::knative_services(), "podinfo",
        [](const Json& k) { return applied_percent(k, "podinfo-00001") == 100; },
        "all traffic on podinfo-00001");
    CHECK(primary_revision(ksvc) == "podinfo-00001");
    CHECK(at(ksvc, "/spec/traffic") ==
          serin::meshes::knative_traffic("podinfo-00001", Routes{100, 0, false}));
}

}  // namespace

TEST_CASE(
    "knative: a healthy new revision steps through spec.traffic, passes Envoy's builtin metrics "
    "and is promoted") {
    Scenario s;
    s.start_serin(least_privilege_kubeconfig(s, "serin"));
    initialize(s, knative_canary(s));
    const auto type = route_types::knative_services();
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
        const Json ksvc = s.get(type, "podinfo");
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;
        }
        CHECK(at(ksvc, "/spec/traffic") ==
              serin::meshes::knative_traffic(
                  "podinfo-00001", Routes{100 - weight_of(before), weight_of(before), false}));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    // The annotation moved to the new revision, which Knative now gives all the traffic.
    const Json promoted = s.wait_object(
        type, "podinfo", [](const Json& k) { return applied_percent(k, "podinfo-00002") == 100; },
        "all traffic on podinfo-00002");
    CHECK(primary_revision(promoted) == "podinfo-00002");
    CHECK(at(promoted, "/spec/traffic") ==
          serin::meshes::knative_traffic("podinfo-00002", Routes{100, 0, false}));
    // The metrics were judged on Envoy's data about the new revision.
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(envoy_cluster_upstream_rq{envoy_cluster_name=\"" + s.ns() + "/podinfo-00002\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
}

TEST_CASE("knative: a revision answering 20% errors is rolled back to the primary revision") {
    Scenario s;
    s.start_serin();
    initialize(s, knative_canary(s));
    release(s, "20", "20");
    s.wait_event("advancement success rate");
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    // A rollback is recorded before the traffic moves: wait for Knative to apply it.
    const Json back = s.wait_object(
        route_types::knative_services(), "podinfo",
        [](const Json& k) {
            return applied_percent(k, "podinfo-00001") == 100 &&
                   applied_percent(k, "podinfo-00002") == 0;
        },
        "all traffic back on podinfo-00001");
    CHECK(primary_revision(back) == "podinfo-00001");
    CHECK(at(back, "/status/latestCreatedRevisionName") == "podinfo-00002");
}

TEST_CASE("knative: autoscalerRef is refused with Accepted=False naming the field") {
    Scenario s;
    s.start_serin();
    s.create(route_types::knative_services(), knative_service());
    s.create(types::canaries(), knative_canary(s, {{"autoscalerRef",
                                                    {{"apiVersion", "autoscaling/v2"},
                                                     {"kind", "HorizontalPodAutoscaler"},
                                                     {"name", "podinfo"}}}}));
    const Json refused = s.wait_canary(
        [](const Json& c) {
            for (const Json& condition : at(c, "/status/conditions")) {
                if (condition.value("type", "") == "Accepted" &&
                    condition.value("status", "") == "False") {
                    return true;
                }
            }
            return false;
        },
        "Accepted=False");
    std::string message;
    for (const Json& condition : at(refused, "/status/conditions")) {
        if (condition.value("type", "") == "Accepted") {
            message = condition.value("message", "");
        }
    }
    CHECK(message.starts_with("spec.autoscalerRef: not allowed with a Knative Service target"));
    // Nothing was written to the Service.
    CHECK(primary_revision(s.get(route_types::knative_services(), "podinfo")).empty());
}
