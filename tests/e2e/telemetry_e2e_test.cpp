// The controller's own endpoints: the cluster's Prometheus scrapes the serin binary's /metrics
// during a release (job serin, found through its scrape target file) and answers Flagger's series
// with the release's outcome.
#include <catch2/catch.hpp>

#include "devcluster/process.hpp"
#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

/// The body of GET `path` on serin's port, with the status code appended after a newline.
std::string get(const SerinProcess& serin, const std::string& path) {
    auto answer = serin::devcluster::run_command(
        "curl", {"-s", "-m", "5", "-w", "\n%{http_code}",
                 "http://127.0.0.1:" + std::to_string(serin.port()) + path},
        std::chrono::seconds{10});
    REQUIRE(answer.has_value());
    return answer->output;
}

}  // namespace

TEST_CASE("Prometheus scraping serin sees Flagger's status, weight and success series") {
    Scenario s;
    GateServer hooks(s.io());
    SerinProcess& serin = s.start_serin();
    const Json analysis = {
        {"interval", "1s"},
        {"threshold", 2},
        {"iterations", 2},
        {"webhooks", {{{"name", "checks"}, {"type", "rollout"}, {"url", hooks.url("/approve")}}}},
        // An inline query that always passes, so serin times its queries to Prometheus.
        {"metrics",
         {{{"name", "always-one"}, {"query", "vector(1)"}, {"thresholdRange", {{"max", 2}}}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(),
             s.canary(analysis, {{"metricsServer", s.cluster().prometheus_url()}}));
    s.wait_phase("Initialized");
    // This serin's series, among those of the serins other tests run beside it.
    const std::string mine = "serin_test=\"" + serin.scrape_label() + "\"";
    const std::string prometheus_url = s.cluster().prometheus_url();
    auto value = [&](const std::string& promql) { return prometheus_value(prometheus_url, promql); };
    s.wait_until([&] { return value("up{job=\"serin\"," + mine + "}") == 1.0; },
                 "the cluster's Prometheus to scrape serin", std::chrono::seconds{30});

    // /healthz answers at once; /readyz once the informers have synced, which they have.
    CHECK(get(serin, "/healthz") == "OK\n200");
    CHECK(get(serin, "/readyz") == "OK\n200");
    CHECK(get(serin, "/nothing").substr(get(serin, "/nothing").size() - 3) == "404");

    s.bump_image(kV2);
    s.wait_phase("Succeeded");
    const std::string in_ns = "namespace=\"" + s.ns() + "\"";
    const std::string successes =
        "flagger_canary_successes_total{" + mine + ",name=\"podinfo\"," + in_ns +
        ",deployment_strategy=\"blue-green\",analysis_status=\"completed\"}";
    s.wait_until([&] { return value(successes) == 1.0; },
                 "Prometheus to see the promotion in " + successes, std::chrono::seconds{30});
    CHECK(value("flagger_canary_status{name=\"podinfo\"," + in_ns + "}") == 1.0);
    CHECK(value("flagger_canary_weight{workload=\"podinfo-primary\"," + in_ns + "}") ==
          100.0);
    CHECK(value("flagger_canary_weight{workload=\"podinfo\"," + in_ns + "}") == 0.0);
    CHECK(value("flagger_canary_total{" + in_ns + "}") == 1.0);
    CHECK(value("flagger_info{" + mine + ",mesh_provider=\"istio\"}") == 1.0);
    CHECK_FALSE(value("flagger_canary_failures_total{" + in_ns + "}").has_value());
    // A reconcile that reached the analysis was timed (Flagger's tick duration) ...
    CHECK(value("flagger_canary_duration_seconds_count{name=\"podinfo\"," + in_ns + "}") >
          0.0);
    // ... and so was every reconcile (Serin's).
    CHECK(value("sum(serin_reconcile_duration_seconds_count{" + mine + "})") > 0.0);
    // API requests by verb and code, the queue's wait and the Prometheus queries.
    CHECK(value("sum(serin_api_requests_total{" + mine + ",verb=~\"POST|PUT|PATCH\",code=~\"2..\"})") >
          0.0);
    CHECK(value("sum(serin_api_requests_total{" + mine + ",verb=\"WATCH\",code=\"200\"})") > 0.0);
    CHECK(value("serin_workqueue_wait_seconds_count{" + mine + "}") > 0.0);
    CHECK(value("serin_prometheus_query_duration_seconds_count{" + mine + ",result=\"ok\"}") > 0.0);

    // Deleting the canary takes its series off /metrics (a cluster where canaries come and go
    // does not keep them for ever).
    const std::string before = get(serin, "/metrics");
    CHECK(before.find("flagger_canary_status{name=\"podinfo\"," + in_ns) != std::string::npos);
    s.remove(types::canaries(), "podinfo");
    s.wait_until(
        [&] {
            const std::string text = get(serin, "/metrics");
            return text.find("flagger_canary_status{name=\"podinfo\"," + in_ns) == std::string::npos &&
                   text.find("flagger_canary_successes_total{analysis_status=\"completed\","
                             "deployment_strategy=\"blue-green\",name=\"podinfo\"," + in_ns) ==
                       std::string::npos &&
                   text.find("workload=\"podinfo-primary\"") == std::string::npos;
        },
        "the deleted canary's series to leave /metrics");
}
