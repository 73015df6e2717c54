// Releases through the nginx router on the devcluster: the real serin binary writes the canary
// Ingress beside the user's; meshsim sends traffic through both by the canary annotations and
// exports the NGINX ingress controller's families, which Prometheus scrapes and serin's builtin
// metrics judge.
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
const std::string kWeightKey = "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-weight";

/// The user's Ingress podinfo: podinfo.example.com to Service podinfo.
Json user_ingress() {
    return Json::parse(R"({
      "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
      "metadata": {"name": "podinfo", "labels": {"app": "podinfo"},
                   "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"}},
      "spec": {"ingressClassName": "nginx",
               "rules": [{"host": "podinfo.example.com",
                          "http": {"paths": [{"path": "/", "pathType": "Prefix",
                                              "backend": {"service": {"name": "podinfo",
                                                                      "port": {"number": 80}}}}]}}]}
    })");
}

/// A new version whose pods answer with `error_rate` errors and `latency_ms` latency.
void release(Scenario& s, const std::string& error_rate, const std::string& latency_ms) {
    s.patch(types::deployments(), "podinfo",
            {{"spec",
              {{"template",
                {{"metadata",
                  {{"annotations",
                    {{"sim.serin.dev/error-rate", error_rate}, {"sim.serin.dev/latency-ms", latency_ms}}}}},
                 {"spec", {{"containers", {{{"name", "podinfod"}, {"image", kV2}}}}}}}}}}});
}

/// An nginx canary for Ingress podinfo judged on the builtin metrics; `analysis_extra` merged in.
Json nginx_canary(Scenario& s, Json analysis_extra = Json::object(), Json spec_extra = Json::object()) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    Json analysis = {{"interval", "3s"}, {"threshold", 2}, {"stepWeight", 20},
                     {"maxWeight", 40},  {"metrics", metrics}};
    analysis.merge_patch(analysis_extra);
    Json spec = {{"provider", "nginx"},
                 {"metricsServer", s.cluster().prometheus_url()},
                 {"ingressRef", {{"apiVersion", "networking.k8s.io/v1"}, {"kind", "Ingress"}, {"name", "podinfo"}}},
                 {"service", {{"port", 80}, {"targetPort", "http"}}}};
    spec.update(spec_extra);
    return s.canary(analysis, spec);
}

int weight_of(const Json& canary) {
    const Json w = at(canary, "/status/canaryWeight");
    return w.is_number() ? w.get<int>() : 0;
}

std::string annotation(const Json& ingress, const std::string& pointer) {
    const Json value = at(ingress, pointer);
    return value.is_string() ? value.get<std::string>() : "";
}

/// Starts serin, the user's Ingress and the canary, and waits for the initialized canary.
Json initialize(Scenario& s, const Json& canary) {
    s.start_serin();
    const Json user = s.create(route_types::ingresses(), user_ingress());
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), canary);
    s.wait_phase("Initialized");
    return user;
}

/// Whether `ingress` is still as the user wrote it (Serin never writes it).
void check_untouched(Scenario& s, const Json& user) {
    const Json now = s.get(route_types::ingresses(), "podinfo");
    CHECK(at(now, "/metadata/resourceVersion") == at(user, "/metadata/resourceVersion"));
}

}  // namespace

TEST_CASE("nginx: a release steps the canary Ingress weight, passes the NGINX builtin metrics and is promoted") {
    Scenario s;
    const Json user = initialize(s, nginx_canary(s));
    const Json created = s.get(route_types::ingresses(), "podinfo-canary");
    CHECK(annotation(created, kWeightKey) == "0");
    CHECK(annotation(created, "/metadata/annotations/nginx.ingress.kubernetes.io~1canary") == "true");
    CHECK(at(created, "/spec/rules/0/http/paths/0/backend/service/name") == "podinfo-canary");
    CHECK(at(created, "/metadata/ownerReferences/0/kind") == "Canary");

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
        const Json ingress = s.get(route_types::ingresses(), "podinfo-canary");
        const Json after = s.get(types::canaries(), "podinfo");
        if (at(before, "/metadata/resourceVersion") != at(after, "/metadata/resourceVersion") ||
            phase(before) != "Progressing") {
            continue;  // moved on while we looked
        }
        CHECK(annotation(ingress, kWeightKey) == std::to_string(weight_of(before)));
        seen.insert(weight_of(before));
    }
    CHECK(seen == std::set<int>{20, 40});
    const Json done = s.wait_phase("Succeeded");
    CHECK(at(done, "/status/failedChecks") == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(annotation(s.get(route_types::ingresses(), "podinfo-canary"), kWeightKey) == "0");
    for (const std::string& event : s.events()) {
        CHECK(event.find("advancement success rate") == std::string::npos);
        CHECK(event.find("advancement request duration") == std::string::npos);
    }
    // The checks read real NGINX series: the canary upstream of Ingress podinfo served requests.
    const auto canary_requests = prometheus_value(
        s.cluster().prometheus_url(),
        "sum(nginx_ingress_controller_requests{namespace=\"" + s.ns() +
            "\",ingress=\"podinfo\",canary=\"" + s.ns() + "-podinfo-canary-80\"})");
    REQUIRE(canary_requests.has_value());
    CHECK(*canary_requests > 0);
    check_untouched(s, user);
}

TEST_CASE("nginx: a version with 20% errors is rolled back on the NGINX success rate") {
    Scenario s;
    const Json user = initialize(s, nginx_canary(s));
    release(s, "20", "20");
    s.wait_event("advancement success rate");  // about 80% < 99%
    const Json failed = s.wait_phase("Failed");
    CHECK(weight_of(failed) == 0);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    // A rollback is recorded before the traffic moves: wait for the weight.
    s.wait_object(
        route_types::ingresses(), "podinfo-canary",
        [](const Json& i) { return annotation(i, kWeightKey) == "0"; }, "the canary weight back at 0");
    check_untouched(s, user);
}

TEST_CASE("nginx: an A/B release routes the header and the cookie to the canary, then drops them") {
    Scenario s;
    const Json match = Json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}},
                                       {"headers": {"cookie": {"exact": "canary"}}}])");
    const Json user = initialize(s, nginx_canary(s, {{"iterations", 3}, {"match", match},
                                                     {"stepWeight", nullptr}, {"maxWeight", nullptr}}));
    release(s, "0", "20");
    const std::string header = "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-by-header";
    const Json ab = s.wait_object(
        route_types::ingresses(), "podinfo-canary",
        [&](const Json& i) { return at(i, header).is_string(); }, "the header rule");
    CHECK(annotation(ab, header) == "x-canary");
    CHECK(annotation(ab, header + "-value") == "insider");
    CHECK(annotation(ab, "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-by-cookie") == "canary");
    CHECK(annotation(ab, kWeightKey) == "0");  // everyone else stays on the primary
    s.wait_phase("Succeeded");
    const Json done = s.get(route_types::ingresses(), "podinfo-canary");
    CHECK(at(done, header).is_null());
    CHECK(at(done, "/metadata/annotations/nginx.ingress.kubernetes.io~1canary-by-cookie").is_null());
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    check_untouched(s, user);
}

TEST_CASE("nginx: a canary Ingress left from before is taken over, and given back on deletion with revertOnDeletion") {
    Scenario s;
    // Left by someone else (no owner reference): another spec, weight 0.
    Json left = user_ingress();
    left["metadata"] = {{"name", "podinfo-canary"},
                        {"annotations", {{"nginx.ingress.kubernetes.io/canary", "true"},
                                         {"nginx.ingress.kubernetes.io/canary-weight", "0"}}}};
    left["spec"]["rules"][0]["host"] = "old.example.com";
    left["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "podinfo-canary";
    const Json left_spec = s.create(route_types::ingresses(), left)["spec"];
    const Json user = initialize(s, nginx_canary(s, Json::object(), {{"revertOnDeletion", true}}));
    const Json taken = s.get(route_types::ingresses(), "podinfo-canary");
    CHECK(at(taken, "/spec/rules/0/host") == "podinfo.example.com");
    CHECK(at(taken, "/metadata/ownerReferences").is_null());

    release(s, "0", "20");
    s.wait_canary([](const Json& c) { return phase(c) == "Progressing" && weight_of(c) >= 20; },
                  "the analysis at 20%");
    s.remove(types::canaries(), "podinfo");
    s.wait_event("Terminated canary podinfo." + s.ns());
    const Json given_back = s.wait_object(
        route_types::ingresses(), "podinfo-canary",
        [&](const Json& i) { return at(i, "/spec") == left_spec; }, "the original spec back");
    CHECK(annotation(given_back, kWeightKey) == "0");
    CHECK(at(given_back, "/metadata/annotations/flagger.kubernetes.io~1original-configuration").is_null());
    check_untouched(s, user);
}

TEST_CASE("nginx: an edit of the user's Ingress is copied to the canary Ingress") {
    Scenario s;
    initialize(s, nginx_canary(s));
    Json rules = user_ingress()["spec"]["rules"];
    rules[0]["host"] = "www.example.com";
    s.patch(route_types::ingresses(), "podinfo", {{"spec", {{"rules", rules}}}});
    const Json copied = s.wait_object(
        route_types::ingresses(), "podinfo-canary",
        [](const Json& i) { return at(i, "/spec/rules/0/host") == "www.example.com"; },
        "the canary Ingress following the user's host");
    CHECK(at(copied, "/spec/rules/0/http/paths/0/backend/service/name") == "podinfo-canary");
    CHECK(annotation(copied, kWeightKey) == "0");
}
