// serin-loadtester on the devcluster: the real serin, the real serin-loadtester and Debian's
// `hey`. A rollout webhook runs hey against meshsim's HTTP front for the apex Service, and a
// confirm-promotion webhook at /gate/check holds a release until the test opens the gate.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <thread>

#include "tests/e2e/e2e.hpp"

namespace {

using namespace serin::e2e;
namespace fs = std::filesystem;
namespace types = serin::kube::types;
namespace devcluster = serin::devcluster;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

/// Polls `done` every 20 ms until it holds; fails after `timeout`.
void wait_for(const std::function<bool()>& done, const std::string& what,
              std::chrono::milliseconds timeout, const std::function<std::string()>& detail) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            FAIL("timed out waiting for " << what << "\n" << detail());
        }
        std::this_thread::sleep_for(20ms);
    }
}

/// The number in a port file once it is whole (ends with a newline), else 0.
std::uint16_t read_port(const fs::path& file) {
    std::ifstream in(file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.empty() || text.back() != '\n') {
        return 0;
    }
    return static_cast<std::uint16_t>(std::stoi(text));
}

std::string read_file(const fs::path& file) {
    std::ifstream in(file);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// A child process of this build (serin-loadtester, serin-meshsim) with its log in a temp file
/// and the ports it writes to port files.
class Child {
public:
    Child(const std::string& name, const std::string& executable, std::vector<std::string> args,
          const std::vector<std::string>& port_files) {
        dir_ = fs::temp_directory_path() / ("serin-e2e-" + name + "-" + std::to_string(::getpid()) +
                                            "-" + std::to_string(counter()++));
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        for (const std::string& f : port_files) {
            args.push_back("--" + f + "=" + (dir_ / f).string());
        }
        devcluster::ProcessSpec spec;
        spec.name = name;
        spec.executable = executable;
        spec.args = std::move(args);
        spec.log_file = dir_ / "log";
        auto process = devcluster::Process::spawn(std::move(spec));
        REQUIRE(process.has_value());
        process_.emplace(std::move(*process));
        for (const std::string& f : port_files) {
            wait_for([&] { return read_port(dir_ / f) != 0 || !process_->running(); },
                     name + " to write its port", 20s, [&] { return log(); });
            REQUIRE(process_->running());
            ports_.push_back(read_port(dir_ / f));
        }
    }
    ~Child() {
        process_->stop(std::chrono::seconds{5});
        std::error_code ignored;
        fs::remove_all(dir_, ignored);
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    std::string url(std::size_t port_index = 0) const {
        return "http://127.0.0.1:" + std::to_string(ports_.at(port_index));
    }
    std::string log() const { return read_file(dir_ / "log"); }
    devcluster::Process& process() { return *process_; }

private:
    static int& counter() {
        static int n = 0;
        return n;
    }
    fs::path dir_;
    std::optional<devcluster::Process> process_;
    std::vector<std::uint16_t> ports_;
};

/// serin-loadtester on a free loopback port.
Child start_loadtester() {
    return Child("loadtester", SERIN_LOADTESTER_BINARY,
                 {"-port=0", "-address=127.0.0.1", "-zap-encoding=console", "-log-level=debug",
                  "-timeout=1m"},
                 {"port-file"});
}

/// curl's answer: the status code, then the body.
std::pair<int, std::string> post(const std::string& url, const std::string& body) {
    auto answer = devcluster::run_command(
        "curl", {"-s", "-m", "5", "-w", "\n%{http_code}", "-d", body, url}, 10s);
    REQUIRE(answer.has_value());
    const auto newline = answer->output.rfind('\n');
    REQUIRE(newline != std::string::npos);
    return {std::stoi(answer->output.substr(newline + 1)), answer->output.substr(0, newline)};
}

std::string get(const std::string& url) {
    auto answer = devcluster::run_command("curl", {"-s", "-m", "5", url}, 10s);
    REQUIRE(answer.has_value());
    return answer->output;
}

/// The sum of the samples of `metric` whose labels contain every one of `labels`.
double sum_samples(const std::string& exposition, const std::string& metric,
                   const std::vector<std::string>& labels) {
    double sum = 0;
    std::istringstream in(exposition);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(metric + "{", 0) != 0) {
            continue;
        }
        bool all = true;
        for (const std::string& l : labels) {
            all = all && line.find(l) != std::string::npos;
        }
        if (all) {
            sum += std::stod(line.substr(line.rfind(' ') + 1));
        }
    }
    return sum;
}

}  // namespace

TEST_CASE("a rollout webhook runs hey through serin-loadtester against meshsim's apex") {
    Scenario s;
    Child loadtester = start_loadtester();
    // A meshsim of the test's own, watching its namespace, with the HTTP front for apexes.
    Child meshsim("meshsim", SERIN_MESHSIM_BINARY,
                  {"--kubeconfig=" + s.cluster().kubeconfig_path().string(), "--namespace=" + s.ns(),
                   "--listen=127.0.0.1:0", "--http-listen=127.0.0.1:0", "--rate=1"},
                  {"port-file", "http-port-file"});
    s.start_serin();
    const std::string apex = meshsim.url(1) + "/" + s.ns() + "/podinfo";
    const std::string hey = "hey -z 2s -q 10 -c 2 " + apex;
    const Json analysis = {
        {"interval", "1s"},
        {"threshold", 2},
        {"iterations", 3},
        {"webhooks",
         {{{"name", "load-test"},
           {"type", "rollout"},
           {"url", loadtester.url() + "/"},
           {"timeout", "5s"},
           {"metadata", {{"type", "cmd"}, {"cmd", hey}, {"logCmdOutput", "true"}}}}}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Succeeded");

    // hey sent its requests to the apex and meshsim answered them; the loadtester logged hey's
    // report (logCmdOutput).
    const std::vector<std::string> ours{"namespace=\"" + s.ns() + "\"", "service=\"podinfo\""};
    double answered = 0;
    wait_for(
        [&] {
            answered = sum_samples(get(meshsim.url(0) + "/metrics"), "meshsim_http_requests_total",
                                   ours);
            return answered > 0 && loadtester.log().find("Status code distribution") !=
                                       std::string::npos;
        },
        "hey's requests at meshsim and its report in the loadtester's log", 30s,
        [&] { return loadtester.log(); });
    const std::string log = loadtester.log();
    CHECK(log.find("command starting: " + hey) != std::string::npos);
    CHECK(log.find("command finished: " + hey) != std::string::npos);
    // hey's "[200]<TAB>N responses", with the tab escaped as the log escapes control characters.
    CHECK(std::regex_search(log, std::regex(R"(\[200\](\s|\\t)+[1-9]\d* responses)")));
    const std::string metrics = get(loadtester.url() + "/metrics");
    CHECK(metrics.find("serin_loadtester_tasks_started_total{type=\"cmd\"}") != std::string::npos);
    CHECK(sum_samples(get(meshsim.url(0) + "/metrics"), "meshsim_http_requests_total",
                      {"namespace=\"" + s.ns() + "\"", "code=\"200\""}) > 0);
    WARN("hey through serin-loadtester: meshsim answered " << answered
                                                           << " requests to the apex; loadtester:\n"
                                                           << metrics);
}

TEST_CASE("a confirm-promotion webhook at serin-loadtester's gate holds a release until opened") {
    Scenario s;
    Child loadtester = start_loadtester();
    s.start_serin();
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(),
             s.canary({{"interval", "1s"},
                       {"threshold", 2},
                       {"iterations", 1},
                       {"webhooks",
                        {{{"name", "approve-promotion"},
                          {"type", "confirm-promotion"},
                          {"url", loadtester.url() + "/gate/check"}}}}}));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("WaitingPromotion");
    s.wait_event("Halt podinfo." + s.ns() +
                 " advancement waiting for promotion approval approve-promotion");
    CHECK(s.canary_stays([](const Json& c) { return phase(c) != "WaitingPromotion"; }, 3s));
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV1);
    const std::string gate = R"({"name":"podinfo","namespace":")" + s.ns() + R"("})";
    CHECK(post(loadtester.url() + "/gate/check", gate) == std::make_pair(403, std::string("Forbidden")));

    auto opened = post(loadtester.url() + "/gate/open", gate);
    CHECK(opened.first == 202);
    s.wait_phase("Succeeded");
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);
    CHECK(loadtester.log().find("promotion gate podinfo." + s.ns() + " checked: open") !=
          std::string::npos);
    // The gate stays open for the next release until closed.
    CHECK(post(loadtester.url() + "/gate/check", gate) == std::make_pair(200, std::string("Approved")));
    CHECK(post(loadtester.url() + "/gate/close", gate).first == 202);
    CHECK(post(loadtester.url() + "/gate/check", gate).first == 403);
}
