// kubectl-serin in a pipeline: a shell script (cli_pipeline.sh) waits with `kubectl-serin status
// NAME --watch --timeout D` on a release run by the real serin, and passes on its exit code:
// 0 for a release that is promoted, 1 for one that fails, 2 when the timeout comes first.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace fs = std::filesystem;
namespace types = serin::kube::types;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

struct PipelineRun {
    int exit_code = -1;
    std::string output;
};

/// Runs the pipeline script with kubectl-serin on PATH and the admin's KUBECONFIG, serving the
/// scenario's gates while it runs.
PipelineRun run_pipeline(Scenario& s, const std::string& timeout) {
    const fs::path log = fs::temp_directory_path() / ("cli-pipeline-" + s.ns() + ".log");
    const char* path = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
    auto process = serin::devcluster::Process::spawn(
        {"cli_pipeline.sh",
         std::string(SERIN_SOURCE_DIR) + "/tests/e2e/cli_pipeline.sh",
         {s.ns(), "podinfo", timeout},
         {{"PATH", fs::path(SERIN_CLI_BINARY).parent_path().string() + ":" +
                       (path != nullptr ? path : "/usr/bin:/bin")},
          {"KUBECONFIG", s.cluster().kubeconfig_path().string()},
          {"NO_COLOR", "1"}},
         log,
         {}});
    REQUIRE(process.has_value());
    s.wait_until([&] { return !process->running(); }, "the pipeline script to end", 120s);
    PipelineRun result;
    result.output = process->log_tail(200);
    const std::string exit = process->describe_exit();
    const std::string prefix = "exited with status ";
    if (exit.rfind(prefix, 0) == 0) {
        result.exit_code = std::stoi(exit.substr(prefix.size()));
    }
    fs::remove(log);
    return result;
}

/// podinfo at v1 with a blue/green canary whose rollout webhook is `gate`, initialized; then v2.
/// A closed gate is a failed check: `threshold` of them roll the release back.
void start_release(Scenario& s, GateServer& gates, const std::string& gate, int threshold = 2) {
    s.start_serin();
    const Json analysis = {
        {"interval", "1s"},
        {"threshold", threshold},
        {"iterations", 3},
        {"webhooks", {{{"name", "load-test"}, {"type", "rollout"}, {"url", gates.url(gate)}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Progressing", 20s);
}

}  // namespace

TEST_CASE("a pipeline waiting on kubectl-serin status --watch passes on a promoted release") {
    Scenario s;
    GateServer gates(s.io());
    start_release(s, gates, "/approve");
    auto run = run_pipeline(s, "90s");
    INFO(run.output);
    CHECK(run.exit_code == 0);
    // Each change is a line: the iterations as they advance, then the verdict.
    CHECK_THAT(run.output, Catch::Contains("/podinfo: Progressing, iteration "));
    CHECK_THAT(run.output, Catch::Contains("/podinfo: Succeeded"));
    CHECK_THAT(run.output, Catch::Contains("pipeline: podinfo promoted"));
    CHECK(phase(s.get(types::canaries(), "podinfo")) == "Succeeded");
}

TEST_CASE("a pipeline waiting on kubectl-serin status --watch fails on a failed release") {
    Scenario s;
    GateServer gates(s.io());
    start_release(s, gates, "/deny");
    auto run = run_pipeline(s, "90s");
    INFO(run.output);
    CHECK(run.exit_code == 1);
    CHECK_THAT(run.output, Catch::Contains("/podinfo: Failed"));
    CHECK_THAT(run.output, Catch::Contains("pipeline: podinfo failed and was rolled back"));
    CHECK(phase(s.get(types::canaries(), "podinfo")) == "Failed");
}

TEST_CASE("a pipeline waiting on kubectl-serin status --watch gives up at its timeout") {
    Scenario s;
    GateServer gates(s.io());
    // Closed, and 60 failed checks allowed: the release stays Progressing for a minute.
    start_release(s, gates, "/gate/held", 60);
    auto run = run_pipeline(s, "3s");
    INFO(run.output);
    CHECK(run.exit_code == 2);
    CHECK_THAT(run.output, Catch::Contains("timed out after 3s waiting for canary " + s.ns() +
                                           "/podinfo (phase Progressing)"));
    CHECK_THAT(run.output, Catch::Contains("pipeline: no verdict on podinfo within 3s"));
    CHECK(phase(s.get(types::canaries(), "podinfo")) == "Progressing");
}
