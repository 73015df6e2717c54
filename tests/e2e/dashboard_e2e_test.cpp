// The dashboard in a real browser during a live release: the real serin drives a canary on the
// devcluster (istio provider, a step of 10 every 5 s up to 50, held at 50 by a closed confirm-promotion
// gate); `kubectl-serin dashboard --port 0` serves the page with the admin's kubeconfig; Debian's
// chromium, driven by playwright-core (tests/e2e/browser/dashboard.js), sees the list update
// live, opens the canary's page and clicks abort, which must create a CanaryRequest.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "cli/dashboard/dashboard.hpp"
#include "devcluster/process.hpp"
#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;
namespace fs = std::filesystem;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

/// Whether serin acts on CanaryRequests (branch i17-requests). TODO(lead): set to true once
/// i17-requests is merged, so the test also asserts the abort's effect.
constexpr bool kSerinHandlesRequests = false;

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("the dashboard shows a live release and its abort button creates a CanaryRequest") {
    const fs::path browser_dir = fs::path(SERIN_SOURCE_DIR) / "tests/e2e/browser";
    INFO("playwright-core is missing: run hack/setup (npm ci in tests/e2e/browser)");
    REQUIRE(fs::exists(browser_dir / "node_modules/playwright-core"));
    const auto node = serin::devcluster::find_executable("node");
    INFO("node is missing: run hack/setup");
    REQUIRE(node.has_value());
    INFO("chromium is missing: run hack/setup");
    REQUIRE((fs::exists("/usr/bin/chromium") || std::getenv("SERIN_CHROMIUM") != nullptr));

    Scenario s;
    GateServer gates(s.io());
    s.start_serin();
    const Json analysis = {
        {"interval", "5s"},
        {"threshold", 2},
        {"stepWeight", 10},
        {"maxWeight", 50},
        {"webhooks",
         {{{"name", "promotion-gate"}, {"type", "confirm-promotion"}, {"url", gates.url("/gate/promote")}}}}};
    const Json extra = {{"provider", "istio"}, {"service", {{"port", 80}, {"targetPort", "http"}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis, extra));
    s.wait_phase("Initialized");

    const fs::path artifacts = fs::path(SERIN_ARTIFACTS_DIR) / s.ns();
    fs::create_directories(artifacts);
    const fs::path dashboard_log = artifacts / "kubectl-serin.log";
    auto dashboard = serin::devcluster::Process::spawn(
        {"kubectl-serin dashboard",
         KUBECTL_SERIN_BINARY,
         {"--kubeconfig", s.cluster().kubeconfig_path().string(), "-n", s.ns(), "dashboard",
          "--port", "0", "--requested-by", "e2e-browser"},
         {},
         dashboard_log,
         {}});
    REQUIRE(dashboard.has_value());
    std::string url;
    s.wait_until(
        [&] {
            std::smatch m;
            const std::string log = read_file(dashboard_log);
            if (std::regex_search(log, m, std::regex(R"((http://127\.0\.0\.1:\d+/\?token=[0-9a-f]+))"))) {
                url = m[1];
            }
            return !url.empty() || !dashboard->running();
        },
        "kubectl-serin dashboard prints its URL", 20s);
    INFO("kubectl-serin dashboard: " << dashboard->describe_exit() << "\n"
                                     << read_file(dashboard_log));
    REQUIRE(!url.empty());

    s.bump_image(kV2);
    const fs::path browser_log = artifacts / "browser.log";
    auto browser = serin::devcluster::Process::spawn(
        {"browser", *node, {(browser_dir / "dashboard.js").string(), url, s.ns(), "podinfo",
                            artifacts.string()},
         {},
         browser_log,
         browser_dir});
    REQUIRE(browser.has_value());
    // The scenario's io_context runs meanwhile: the gate server answers serin's webhooks.
    s.wait_until([&] { return !browser->running(); }, "the browser script finishes", 150s);
    const std::string output = read_file(browser_log);
    INFO("browser log:\n" << output << "\nkubectl-serin log:\n" << read_file(dashboard_log));
    REQUIRE(browser->describe_exit() == "exited with status 0");

    std::smatch result;
    REQUIRE(std::regex_search(output, result, std::regex(R"(RESULT (\{.*\}))")));
    const Json seen = Json::parse(result[1].str());
    CHECK(seen["weights"][0] != seen["weights"][1]);
    const std::string request_name = seen["request"];

    // The click created exactly one CanaryRequest: abort of podinfo, owned by the canary.
    const Json request = s.get(serin::dashboard::canary_requests(), request_name);
    CHECK(at(request, "/spec/action") == "abort");
    CHECK(at(request, "/spec/canaryRef/name") == "podinfo");
    CHECK(at(request, "/spec/requestedBy") == "e2e-browser");
    CHECK(at(request, "/spec/reason") == "aborted from the dashboard e2e test");
    const Json canary = s.get(types::canaries(), "podinfo");
    CHECK(at(request, "/metadata/ownerReferences/0/uid") == at(canary, "/metadata/uid"));
    auto listed = serin::testing::run(
        s.io(), s.client().list(serin::dashboard::canary_requests(), s.ns()));
    REQUIRE(listed.has_value());
    CHECK(listed->items.size() == 1);

    if constexpr (kSerinHandlesRequests) {
        // Serin acts on the abort: rolled back, the primary untouched.
        s.wait_phase("Failed", 60s);
        CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    }
    dashboard->stop();
    CHECK(dashboard->describe_exit() == "exited with status 0");
}
