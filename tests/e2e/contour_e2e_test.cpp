// Releases through the contour router on the devcluster: the real serin binary writes HTTPProxy S
// (the real Contour CRD); meshsim sends traffic by its weights and exports Envoy's upstream
// cluster families, which Prometheus scrapes and serin's builtin metrics judge.
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

Json contour_canary(Scenario& s, Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 20},
                           {"maxWeight", 40},  {"metrics", metrics}};
    Json spec = {{"provider", "contour"}, {"metricsServer", s.cluster().prometheus_url()}};
    spec.update(spec_extra);
    return s.canary(analysis, spec);
}

/// The canary Service's weight in the HTTPProxy's first route (absent: 0).
int proxy_weight(const Json& proxy) {
    for (const Json& service : at(proxy, "/spec/routes/0/services")) {
        if (service["name"] == "podinfo-canary") {
            return service.value("weight", 0);
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

TEST_CASE("contour: a release steps the HTTPProxy weights, passes Envoy's builtin metrics and is promoted") {
    Scenario s;
    initialize(s, contour_canary(s));
    const auto type = route_types::contour_http_proxies();
    CHECK(proxy_weight(s.get(type, "podinfo")) == 0);
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
        const Json proxy = s.get(type, "podinfo");
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;
        }
        CHECK(proxy_weight(proxy) == weight_of(before));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(proxy_weight(s.get(type, "podinfo")) == 0);
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(envoy_cluster_upstream_rq{envoy_cluster_name=\"" + s.ns() + "_podinfo-canary_80\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
}

TEST_CASE("contour: a version answering in 600 ms is rolled back on Envoy's p99") {
    Scenario s;
    initialize(s, contour_canary(s));
    release(s, "0", "600");
    s.wait_event("advancement request duration");
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    // A rollback is recorded before the traffic moves: wait for the weight.
    s.wait_object(
        route_types::contour_http_proxies(), "podinfo",
        [](const Json& p) { return proxy_weight(p) == 0; }, "the canary weight back at 0");
}

TEST_CASE("contour: a user's HTTPProxy is taken over with its virtualhost and given back with revertOnDeletion") {
    Scenario s;
    const auto type = route_types::contour_http_proxies();
    const Json user = s.create(type, Json::parse(R"({
        "apiVersion": "projectcontour.io/v1", "kind": "HTTPProxy", "metadata": {"name": "podinfo"},
        "spec": {"virtualhost": {"fqdn": "app.example.com"},
                 "routes": [{"conditions": [{"prefix": "/"}],
                             "services": [{"name": "podinfo", "port": 80}]}]}})"));
    initialize(s, contour_canary(s, {{"revertOnDeletion", true}}));
    const Json taken = s.get(type, "podinfo");
    CHECK(at(taken, "/spec/virtualhost/fqdn") == "app.example.com");
    CHECK(at(taken, "/spec/routes/0/services/0/name") == "podinfo-primary");
    release(s, "20", "20");  // 20% errors: rolled back on the success rate
    s.wait_event("advancement success rate");
    s.wait_phase("Failed");
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    const Json given_back = s.wait_object(
        type, "podinfo", [&](const Json& p) { return at(p, "/spec") == at(user, "/spec"); },
        "the user's spec back");
    CHECK(at(given_back, "/metadata/ownerReferences").is_null());
}
