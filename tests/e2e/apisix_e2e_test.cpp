// Releases through the apisix router on the devcluster: the real serin binary copies the user's
// ApisixRoute into <route>-<S>-canary (the real APISIX CRD) and steps its backend weights;
// meshsim routes by the canary route and exports APISIX's families, which Prometheus scrapes and
// serin's builtin metrics judge. The user's route is never written.
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
const std::string kCanaryRoute = "podinfo-podinfo-canary";

void release(Scenario& s, const std::string& error_rate, const std::string& latency_ms) {
    s.patch(types::deployments(), "podinfo",
            {{"spec",
              {{"template",
                {{"metadata",
                  {{"annotations",
                    {{"sim.serin.dev/error-rate", error_rate}, {"sim.serin.dev/latency-ms", latency_ms}}}}},
                 {"spec", {{"containers", {{{"name", "podinfod"}, {"image", kV2}}}}}}}}}}});
}

Json apisix_canary(Scenario& s, Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 20},
                           {"maxWeight", 40},  {"metrics", metrics}};
    Json spec = {{"provider", "apisix"},
                 {"metricsServer", s.cluster().prometheus_url()},
                 {"routeRef", {{"apiVersion", "apisix.apache.org/v2"}, {"kind", "ApisixRoute"}, {"name", "podinfo"}}}};
    spec.update(spec_extra);
    return s.canary(analysis, spec);
}

/// The user's ApisixRoute podinfo: one entry "main" to Service podinfo.
Json user_route(Scenario& s) {
    return s.create(route_types::apisix_routes(), Json::parse(R"({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": "podinfo"},
        "spec": {"http": [{"name": "main", "match": {"hosts": ["app.example.com"], "paths": ["/*"]},
                           "backends": [{"serviceName": "podinfo", "servicePort": 80}]}]}})"));
}

/// The canary backend's weight in the canary route (-1 when absent).
int backend_weight(const Json& route) {
    for (const Json& backend : at(route, "/spec/http/0/backends")) {
        if (backend["serviceName"] == "podinfo-canary") {
            return backend.value("weight", 0);
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

TEST_CASE("apisix: a release steps the canary route's weights, passes APISIX's builtin metrics and is promoted") {
    Scenario s;
    const Json user = user_route(s);
    initialize(s, apisix_canary(s));
    const auto type = route_types::apisix_routes();
    const Json created = s.get(type, kCanaryRoute);
    CHECK(at(created, "/spec/http/0/priority") == 10000);
    CHECK(at(created, "/metadata/ownerReferences/0/kind") == "Canary");
    CHECK(backend_weight(created) == 0);
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
        const Json route = s.get(type, kCanaryRoute);
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;
        }
        CHECK(backend_weight(route) == weight_of(before));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(backend_weight(s.get(type, kCanaryRoute)) == 0);
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(apisix_http_status{route=\"" + s.ns() + "_" + kCanaryRoute + "_main\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
    // The user's route was never written.
    CHECK(at(s.get(type, "podinfo"), "/metadata/resourceVersion") == at(user, "/metadata/resourceVersion"));
}

TEST_CASE("apisix: a canary route left from before is taken over, 20% errors rolled back on APISIX's success rate, and it is given back") {
    Scenario s;
    user_route(s);
    const auto type = route_types::apisix_routes();
    const Json left = s.create(type, Json::parse(R"({
        "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "metadata": {"name": ")" + kCanaryRoute + R"("},
        "spec": {"http": [{"name": "old", "priority": 5, "match": {"paths": ["/old/*"]},
                           "backends": [{"serviceName": "podinfo", "servicePort": 80}]}]}})"));
    initialize(s, apisix_canary(s, {{"revertOnDeletion", true}}));
    const Json taken = s.get(type, kCanaryRoute);
    CHECK(at(taken, "/spec/http/0/name") == "main");
    CHECK(backend_weight(taken) == 0);
    release(s, "20", "20");
    s.wait_event("advancement success rate");
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    s.wait_object(
        type, kCanaryRoute, [](const Json& r) { return backend_weight(r) == 0; }, "the canary weight back at 0");
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    s.wait_object(
        type, kCanaryRoute, [&](const Json& r) { return at(r, "/spec") == at(left, "/spec"); },
        "the left route's spec back");
}
