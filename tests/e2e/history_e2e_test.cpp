// Release history on the devcluster: the real serin binary, with nothing but the permissions of
// crds/base/rbac.yaml, records a promoted and a rolled-back release in the canary's
// CanaryHistory, with the weights it stepped through and each check's value as Prometheus gave
// it, and a restarted serin appends to what the first one wrote.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;


const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";
const std::string kV3 = "ghcr.io/stefanprodan/podinfo:6.0.2";

/// A new version `image` whose pods answer with `error_rate`% errors.
void release(Scenario& s, const std::string& image, const std::string& error_rate) {
    s.patch(
        types::deployments(), "podinfo",
        {{"spec",
          {{"template",
            {{"metadata",
              {{"annotations",
                {{"sim.serin.dev/error-rate", error_rate}, {"sim.serin.dev/latency-ms", "20"}}}}},
             {"spec", {{"containers", {{{"name", "podinfod"}, {"image", image}}}}}}}}}}});
}

/// An Istio canary checking Flagger's builtin metrics on the cluster's Prometheus.
Json metric_canary(Scenario& s) {
    const Json metrics = Json::array(
        {{{"name", "request-success-rate"}, {"interval", "10s"}, {"thresholdRange", {{"min", 99}}}},
         {{"name", "request-duration"}, {"interval", "10s"}, {"thresholdRange", {{"max", 500}}}}});
    const Json analysis = {{"interval", "3s"},
                           {"threshold", 2},
                           {"stepWeight", 20},
                           {"maxWeight", 40},
                           {"metrics", metrics}};
    return s.canary(analysis,
                    {{"provider", "istio"}, {"metricsServer", s.cluster().prometheus_url()}});
}

/// Waits until the history holds `count` releases and the last one has ended.
Json wait_history(Scenario& s, std::size_t count) {
    return s.wait_object(
        types::canary_histories(), "podinfo",
        [count](const Json& h) {
            const Json releases = at(h, "/spec/releases");
            return releases.is_array() && releases.size() == count &&
                   releases.back().value("outcome", "") != "Running";
        },
        std::to_string(count) + " releases recorded");
}

/// The checks named `name` of every step of `release` that ran checks.
std::vector<Json> checks_named(const Json& release, const std::string& name) {
    std::vector<Json> out;
    for (const Json& step : release["steps"]) {
        for (const Json& check : step["checks"]) {
            if (check["name"] == name) {
                out.push_back(check);
            }
        }
    }
    return out;
}

}  // namespace

TEST_CASE(
    "the CanaryHistory holds a promoted and a rolled-back release with their steps, "
    "checks, outcomes and reasons, across a serin restart") {
    Scenario s;
    SerinProcess& serin = s.start_serin(least_privilege_kubeconfig(s, "serin"));
    s.create(types::deployments(), s.deployment(kV1));
    const Json created = s.create(types::canaries(), metric_canary(s));
    s.wait_phase("Initialized");

    // A healthy version: promoted.
    release(s, kV2, "0");
    s.wait_phase("Succeeded");
    const Json first_history = wait_history(s, 1);
    const Json promoted = at(first_history, "/spec/releases/0");
    CHECK(at(first_history, "/metadata/ownerReferences/0/uid") == at(created, "/metadata/uid"));
    CHECK(at(first_history, "/spec/canaryRef/name") == "podinfo");
    CHECK(promoted["outcome"] == "Succeeded");
    CHECK(promoted["image"] == kV2);
    CHECK(promoted["strategy"] == "canary");
    CHECK(promoted["reason"] == "Promotion completed! Scaling down podinfo." + s.ns());
    CHECK(promoted["revision"] ==
          at(s.get(types::canaries(), "podinfo"), "/status/lastPromotedSpec"));
    std::vector<int> weights;
    for (const Json& step : promoted["steps"]) {
        weights.push_back(step["weight"].get<int>());
    }
    INFO("weights " << Json(weights).dump());
    CHECK(std::find(weights.begin(), weights.end(), 20) != weights.end());
    CHECK(std::find(weights.begin(), weights.end(), 40) != weights.end());
    CHECK(weights.back() == 0);
    // Each check with a value holds Prometheus's answer against the spec's threshold. (On a
    // loaded machine a step may find no data yet: recorded as NoData without a value.)
    int valued = 0;
    for (const Json& check : checks_named(promoted, "request-success-rate")) {
        INFO(check.dump());
        CHECK(check["min"] == 99);
        CHECK(check["max"].is_null());
        if (check.contains("value")) {
            ++valued;
            CHECK(check["verdict"] == "Pass");
            CHECK(check["value"].get<double>() >= 99);
            CHECK(check["value"].get<double>() <= 100);
        } else {
            CHECK(check["verdict"] == "NoData");
        }
    }
    for (const Json& check : checks_named(promoted, "request-duration")) {
        INFO(check.dump());
        CHECK(check["min"].is_null());
        CHECK(check["max"] == 500);
        if (check.contains("value")) {
            ++valued;
            CHECK(check["verdict"] == "Pass");
            CHECK(check["value"].get<double>() > 0);
            CHECK(check["value"].get<double>() < 500);
        } else {
            CHECK(check["verdict"] == "NoData");
        }
    }
    CHECK(valued >= 2);

    // A restart: the new serin reads the history when the next release needs it.
    serin.stop();
    serin.start();

    // A version failing 20% of its requests: rolled back on its success rate.
    release(s, kV3, "20");
    s.wait_phase("Failed");
    const Json history = wait_history(s, 2);
    CHECK(at(history, "/metadata/uid") == at(first_history, "/metadata/uid"));
    CHECK(at(history, "/spec/releases/0") == promoted);  // kept as it was
    const Json failed = at(history, "/spec/releases/1");
    CHECK(failed["outcome"] == "Failed");
    CHECK(failed["image"] == kV3);
    CHECK(failed["previousRevision"] == promoted["revision"]);
    CHECK(failed["reason"] ==
          "Rolling back podinfo." + s.ns() + " failed checks threshold reached 2");
    CHECK(failed.contains("end"));
    bool failing_check = false;
    for (const Json& check : checks_named(failed, "request-success-rate")) {
        INFO(check.dump());
        CHECK(check["min"] == 99);
        if (check["verdict"] == "Fail") {
            failing_check = true;
            CHECK(check["value"].get<double>() < 99);
            CHECK(check["value"].get<double>() > 50);
            CHECK(check["message"].get<std::string>().find("success rate") != std::string::npos);
        }
    }
    CHECK(failing_check);
    const Json last_step = failed["steps"].back();
    CHECK(last_step["phase"] == "Failed");
    CHECK(last_step["weight"] == 0);
    CHECK(last_step["failedChecks"] == 2);
}
