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

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

fs::path browser_dir() { return fs::path(SERIN_SOURCE_DIR) / "tests/e2e/browser"; }

void require_browser() {
    INFO("playwright-core is missing: run hack/setup (npm ci in tests/e2e/browser)");
    REQUIRE(fs::exists(browser_dir() / "node_modules/playwright-core"));
    INFO("node is missing: run hack/setup");
    REQUIRE(serin::devcluster::find_executable("node").has_value());
    INFO("chromium is missing: run hack/setup");
    REQUIRE((fs::exists("/usr/bin/chromium") || std::getenv("SERIN_CHROMIUM") != nullptr));
}

/// `kubectl-serin dashboard` on the scenario's namespace, and the URL it printed.
struct DashboardProcess {
    std::optional<serin::devcluster::Process> process;
    fs::path log;
    std::string url;
};

DashboardProcess start_dashboard(Scenario& s, const fs::path& kubeconfig, const fs::path& artifacts) {
    DashboardProcess d;
    d.log = artifacts / "kubectl-serin.log";
    auto spawned = serin::devcluster::Process::spawn(
        {"kubectl-serin dashboard",
         KUBECTL_SERIN_BINARY,
         {"--kubeconfig", kubeconfig.string(), "-n", s.ns(), "dashboard", "--port", "0"},
         {},
         d.log,
         {}});
    REQUIRE(spawned.has_value());
    d.process.emplace(std::move(*spawned));
    s.wait_until(
        [&] {
            std::smatch m;
            const std::string log = read_file(d.log);
            if (std::regex_search(log, m,
                                  std::regex(R"((http://127\.0\.0\.1:\d+/\?token=[0-9a-f]+))"))) {
                d.url = m[1];
            }
            return !d.url.empty() || !d.process->running();
        },
        "kubectl-serin dashboard prints its URL", 20s);
    INFO("kubectl-serin dashboard: " << d.process->describe_exit() << "\n" << read_file(d.log));
    REQUIRE(!d.url.empty());
    return d;
}

/// Runs dashboard.js in `mode` to its end (the scenario's io_context runs meanwhile, so its
/// GateServers answer) and returns its RESULT.
Json run_browser(Scenario& s, const std::string& mode, const DashboardProcess& dashboard,
                 const fs::path& artifacts) {
    const fs::path log = artifacts / ("browser-" + mode + ".log");
    auto browser = serin::devcluster::Process::spawn(
        {"browser", *serin::devcluster::find_executable("node"),
         {(browser_dir() / "dashboard.js").string(), mode, dashboard.url, s.ns(), "podinfo",
          artifacts.string()},
         {},
         log,
         browser_dir()});
    REQUIRE(browser.has_value());
    s.wait_until([&] { return !browser->running(); }, "the browser script finishes", 150s);
    const std::string output = read_file(log);
    INFO("browser log:\n" << output << "\nkubectl-serin log:\n" << read_file(dashboard.log));
    REQUIRE(browser->describe_exit() == "exited with status 0");
    std::smatch result;
    REQUIRE(std::regex_search(output, result, std::regex(R"(RESULT (\{.*\}))")));
    return Json::parse(result[1].str());
}

/// A kubeconfig for ServiceAccount `name`, bound in the scenario's namespace to a Role that
/// reads canaries, their requests and histories and events (as serin-viewer does), and creates
/// nothing.
fs::path viewer_kubeconfig(Scenario& s, const std::string& name) {
    const serin::kube::ResourceType roles{"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
    const serin::kube::ResourceType bindings{"rbac.authorization.k8s.io", "v1", "rolebindings",
                                             "RoleBinding", true};
    const Json read = Json::array({"get", "list", "watch"});
    s.create(roles, {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                     {"kind", "Role"},
                     {"metadata", {{"name", name}}},
                     {"rules",
                      {{{"apiGroups", {"flagger.app"}}, {"resources", {"canaries"}}, {"verbs", read}},
                       {{"apiGroups", {"serin.dev"}},
                        {"resources", {"canaryrequests", "canaryhistories"}},
                        {"verbs", read}},
                       {{"apiGroups", {""}}, {"resources", {"events"}}, {"verbs", read}}}}});
    s.create(serin::kube::types::service_accounts(),
             {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", name}}}});
    s.create(bindings, {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                        {"kind", "RoleBinding"},
                        {"metadata", {{"name", name}}},
                        {"roleRef",
                         {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
                        {"subjects", {{{"kind", "ServiceAccount"}, {"name", name}, {"namespace", s.ns()}}}}});
    return service_account_kubeconfig(s, name);
}

}  // namespace

TEST_CASE("the dashboard shows a live release and its abort button creates a CanaryRequest") {
    require_browser();
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
    DashboardProcess dashboard = start_dashboard(s, s.cluster().kubeconfig_path(), artifacts);

    s.bump_image(kV2);
    const Json seen = run_browser(s, "release", dashboard, artifacts);
    CHECK(seen["weights"][0] != seen["weights"][1]);
    const std::string request_name = seen["request"];

    // The click created exactly one CanaryRequest: abort of podinfo, owned by the canary.
    const Json request = s.get(types::canary_requests(), request_name);
    CHECK(at(request, "/spec/action") == "abort");
    CHECK(at(request, "/spec/canaryRef/name") == "podinfo");
    // Who the admin kubeconfig's client certificate says the user is.
    CHECK(at(request, "/spec/requestedBy") == "serin-admin");
    CHECK(at(request, "/spec/reason") == "aborted from the dashboard e2e test");
    const Json canary = s.get(types::canaries(), "podinfo");
    CHECK(at(request, "/metadata/ownerReferences/0/uid") == at(canary, "/metadata/uid"));
    auto listed = serin::testing::run(
        s.io(), s.client().list(types::canary_requests(), s.ns()));
    REQUIRE(listed.has_value());
    CHECK(listed->items.size() == 1);

    // Serin acts on the abort: rolled back, the primary untouched.
    s.wait_phase("Failed", 60s);
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    dashboard.process->stop();
    CHECK(dashboard.process->describe_exit() == "exited with status 0");
}

TEST_CASE("a canary's page shows its history and names the permission a refused request lacks") {
    require_browser();
    Scenario s;  // no serin: the canary's status and history are written by hand
    Json canary = s.create(types::canaries(),
                           s.canary({{"interval", "1m"}, {"threshold", 2}, {"stepWeight", 10},
                                     {"maxWeight", 50}}));
    canary["status"] = {{"phase", "Progressing"}, {"canaryWeight", 30}, {"iterations", 0},
                        {"failedChecks", 1}};
    serin::kube::WriteOptions status_write;
    status_write.subresource = "status";
    auto written = serin::testing::run(
        s.io(), s.client().update(types::canaries(), s.ns(), canary, status_write));
    REQUIRE(written.has_value());

    auto step = [](const std::string& time, int weight, Json checks, Json judge, Json gates) {
        return Json{{"time", time},        {"phase", "Progressing"}, {"weight", weight},
                    {"iteration", 0},      {"failedChecks", 0},      {"checks", std::move(checks)},
                    {"judge", std::move(judge)}, {"gates", std::move(gates)}};
    };
    const Json success = {{"name", "request-success-rate"}, {"value", 99.5}, {"min", 99},
                          {"max", nullptr}, {"verdict", "Pass"}, {"message", ""}};
    const Json latency = {{"name", "request-duration"}, {"value", 620}, {"min", nullptr},
                          {"max", 500}, {"verdict", "Fail"}, {"message", "620 > 500"}};
    const Json judge = {{"score", 75},
                        {"result", "Pass"},
                        {"metrics", {{{"name", "latency"}, {"classification", "High"}, {"ratio", 1.3}}}}};
    const Json gates = {{{"name", "load-test"}, {"type", "rollout"}, {"ok", true}, {"error", ""}},
                        {{"name", "promotion-gate"}, {"type", "confirm-promotion"}, {"ok", false},
                         {"error", "gate closed (403)"}}};
    const Json history = {
        {"apiVersion", "serin.dev/v1alpha1"},
        {"kind", "CanaryHistory"},
        {"metadata", {{"name", "podinfo"}}},
        {"spec",
         {{"canaryRef", {{"name", "podinfo"}}},
          {"releases",
           {{{"revision", "s1:old"}, {"previousRevision", "s1:older"}, {"image", kV1},
             {"strategy", "canary"}, {"start", "2026-12-05T19:00:00Z"}, {"end", "2026-12-05T19:03:00Z"},
             {"outcome", "Succeeded"}, {"reason", "Promotion completed! podinfo"},
             {"steps", Json::array({step("2026-12-05T19:00:30Z", 10, Json::array({success}), nullptr,
                                        Json::array())})},
             {"droppedSteps", 0}, {"requests", Json::array()}},
            {{"revision", "s1:new"}, {"previousRevision", "s1:old"}, {"image", kV2},
             {"strategy", "canary"}, {"start", "2026-12-05T20:00:00Z"}, {"outcome", "Running"},
             {"steps", Json::array({step("2026-12-05T20:00:30Z", 10, Json::array({success, latency}),
                                         judge, gates),
                                    step("2026-12-05T20:01:30Z", 20, Json::array({success}), judge, gates),
                                    step("2026-12-05T20:02:30Z", 30, Json::array({success}), judge,
                                         gates)})},
             {"droppedSteps", 0},
             {"requests", {{{"name", "podinfo-pause-x7k2p"}, {"action", "pause"},
                            {"requestedBy", "alice"}, {"result", "Done"},
                            {"time", "2026-12-05T20:01:00Z"}}}}}}}}}};
    s.create(types::canary_histories(), history);

    const fs::path artifacts = fs::path(SERIN_ARTIFACTS_DIR) / s.ns();
    fs::create_directories(artifacts);
    DashboardProcess dashboard = start_dashboard(s, viewer_kubeconfig(s, "viewer"), artifacts);
    const Json shown = run_browser(s, "detail", dashboard, artifacts);

    const std::string steps = shown["steps"];
    INFO("steps table: " << steps);
    // Each metric's value against its threshold, with its verdict.
    CHECK(steps.find("request-success-rate: 99.5 (min 99) Pass") != std::string::npos);
    CHECK(steps.find("request-duration: 620 (max 500) Fail 620 > 500") != std::string::npos);
    // The judge's classification, the gates and their answers.
    CHECK(steps.find("Pass score 75") != std::string::npos);
    CHECK(steps.find("latency: High ×1.3") != std::string::npos);
    CHECK(steps.find("✓ load-test rollout") != std::string::npos);
    CHECK(steps.find("✗ promotion-gate confirm-promotion gate closed (403)") != std::string::npos);
    // The releases, newest first, with the requests handled during them.
    REQUIRE(shown["timeline"].size() == 2);
    const std::string current = shown["timeline"][0];
    CHECK(current.rfind("Running " + kV2, 0) == 0);
    CHECK(current.find("3 steps") != std::string::npos);
    CHECK(current.find("pause by alice: Done") != std::string::npos);
    CHECK(std::string(shown["timeline"][1]).rfind("Succeeded " + kV1, 0) == 0);
    CHECK(shown["weight"] == "30%");
    // The viewer may not create requests: the page says which permission is missing.
    CHECK(shown["messageClass"] == "error");
    CHECK(std::string(shown["message"]).find("may not create canaryrequests.serin.dev in namespace " +
                                             s.ns()) != std::string::npos);
    auto listed = serin::testing::run(
        s.io(), s.client().list(types::canary_requests(), s.ns()));
    REQUIRE(listed.has_value());
    CHECK(listed->items.empty());
    dashboard.process->stop();
}
