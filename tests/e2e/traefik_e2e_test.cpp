// Releases through the traefik router on the devcluster: the real serin binary writes the
// TraefikService S (the real Traefik CRD); meshsim sends traffic by its weighted services and
// exports Traefik's service families (<ns>-<service>-<port>@kubernetescrd), which Prometheus
// scrapes and serin's builtin metrics judge.
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

Json traefik_canary(Scenario& s, Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 20},
                           {"maxWeight", 40},  {"metrics", metrics}};
    Json spec = {{"provider", "traefik"}, {"metricsServer", s.cluster().prometheus_url()}};
    spec.update(spec_extra);
    return s.canary(analysis, spec);
}

/// The canary's weight in the TraefikService (no entry: 0).
int service_weight(const Json& service) {
    for (const Json& entry : at(service, "/spec/weighted/services")) {
        if (entry["name"] == "podinfo-canary") {
            return entry.value("weight", 1);
        }
    }
    return 0;
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

TEST_CASE("traefik: a release steps the TraefikService weights, passes Traefik's builtin metrics and is promoted") {
    Scenario s;
    initialize(s, traefik_canary(s));
    const auto type = route_types::traefik_services();
    CHECK(service_weight(s.get(type, "podinfo")) == 0);
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
        const Json service = s.get(type, "podinfo");
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;
        }
        CHECK(service_weight(service) == weight_of(before));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(service_weight(s.get(type, "podinfo")) == 0);
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(traefik_service_requests_total{service=\"" + s.ns() + "-podinfo-canary-80@kubernetescrd\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
}

TEST_CASE("traefik: a version answering in 600 ms is rolled back on Traefik's p99") {
    Scenario s;
    initialize(s, traefik_canary(s));
    release(s, "0", "600");
    s.wait_event("advancement request duration");
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    s.wait_object(
        route_types::traefik_services(), "podinfo",
        [](const Json& t) { return service_weight(t) == 0; }, "the canary weight back at 0");
}

TEST_CASE("traefik: A/B testing is refused with a condition naming the match field") {
    Scenario s;
    s.start_serin();
    s.create(types::deployments(), s.deployment(kV1));
    Json canary = traefik_canary(s);
    canary["spec"]["analysis"]["iterations"] = 5;
    canary["spec"]["analysis"].erase("stepWeight");
    canary["spec"]["analysis"].erase("maxWeight");
    canary["spec"]["analysis"]["match"] = Json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
    s.create(types::canaries(), canary);
    const Json refused = s.wait_canary(
        [](const Json& c) {
            const Json* accepted = serin::testing::find_condition(c, "Accepted");
            return accepted != nullptr && (*accepted)["status"] == "False";
        },
        "Accepted=False");
    const Json* accepted = serin::testing::find_condition(refused, "Accepted");
    CHECK((*accepted)["message"].get<std::string>().find(
              "spec.analysis.match[0].headers.x-canary: not supported by provider traefik") !=
          std::string::npos);
    s.wait_event("spec.analysis.match[0].headers.x-canary: not supported by provider traefik");
}

TEST_CASE("traefik: a user's TraefikService is taken over and given back with revertOnDeletion") {
    Scenario s;
    const auto type = route_types::traefik_services();
    const Json user = s.create(type, Json::parse(R"({
        "apiVersion": "traefik.io/v1alpha1", "kind": "TraefikService", "metadata": {"name": "podinfo"},
        "spec": {"weighted": {"services": [{"name": "podinfo", "port": 80}]}}})"));
    initialize(s, traefik_canary(s, {{"revertOnDeletion", true}}));
    const Json taken = s.get(type, "podinfo");
    CHECK(at(taken, "/spec/weighted/services/0/name") == "podinfo-primary");
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
