// Serin installed as a cluster admin installs it: crds/overlays/kubernetes rendered by
// `kubectl kustomize` and applied with kubectl, and the rendered Deployment's pod run as close to
// a real pod as a test can: the build's serin binary with the container's args, the in-cluster
// environment, the ServiceAccount's token and the cluster CA at the in-cluster paths, a read-only
// root file system, an emptyDir at /tmp, no capabilities and no privilege escalation. It then
// has to carry a release to the end with only the rendered RBAC.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "devcluster/process.hpp"
#include "platform/kube/resource.hpp"
#include "tests/e2e/e2e.hpp"
#include "tests/support/kustomize.hpp"

namespace {

using namespace serin::e2e;
namespace fs = std::filesystem;
namespace types = serin::kube::types;
using serin::testing::Rendered;
using serin::testing::run;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";

// What the kubelet and the container runtime would do for the rendered pod, done with mount and
// user namespaces (util-linux's unshare and setpriv; the user namespace lets a non-root developer
// run it too). $1 is a folder holding token, ca.crt and namespace; the rest is the command.
// - a fresh tmpfs over /run (/var/run links there) receives the service account files at
//   /var/run/secrets/kubernetes.io/serviceaccount, read-only as the kubelet mounts them;
// - the pod's emptyDir at /tmp is a tmpfs;
// - readOnlyRootFilesystem: / is remounted read-only;
// - allowPrivilegeEscalation: false and capabilities drop ALL: no_new_privs and empty capability
//   sets for what is exec'd.
// All of it happens in serin's own mount namespace, so nothing outside it sees any of it.
constexpr const char* kPodSandbox = R"(set -eu
secrets=$1; shift
run=$(readlink -f /var/run)
mount -t tmpfs -o mode=0755 tmpfs "$run"
mkdir -p "$run/secrets/kubernetes.io/serviceaccount"
cp "$secrets/token" "$secrets/ca.crt" "$secrets/namespace" "$run/secrets/kubernetes.io/serviceaccount/"
mount -o remount,ro "$run"
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -o remount,bind,ro /
exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all "$@"
)";

std::string read_text(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// Peak resident memory (VmHWM, KiB) and CPU time (user + system, seconds) of a live process.
struct Usage {
    long peak_rss_kib = 0;
    double cpu_seconds = 0;
};

Usage usage_of(pid_t pid) {
    Usage usage;
    std::istringstream status(read_text("/proc/" + std::to_string(pid) + "/status"));
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmHWM:", 0) == 0) {
            usage.peak_rss_kib = std::stol(line.substr(6));
        }
    }
    // /proc/<pid>/stat: the command (field 2) is in parentheses and may hold spaces; utime and
    // stime are fields 14 and 15, in clock ticks.
    const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::vector<std::string> after_command;
    for (std::string field; fields >> field;) {
        after_command.push_back(field);
    }
    REQUIRE(after_command.size() > 13);
    const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    usage.cpu_seconds = (std::stod(after_command[11]) + std::stod(after_command[12])) / ticks;
    return usage;
}

/// The HTTP status of GET url, or 0.
int http_status(const std::string& url) {
    auto answer = serin::devcluster::run_command(
        "curl", {"-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2", url},
        std::chrono::seconds{5});
    return answer && answer->exit_code == 0 ? std::atoi(answer->output.c_str()) : 0;
}

}  // namespace

TEST_CASE("the kubernetes overlay runs in-cluster and completes a release with only its RBAC") {
    Scenario s;
    const fs::path work = fs::temp_directory_path() / ("serin-install-" + s.ns());
    fs::create_directories(work);

    // 1. Render the overlay and apply everything but the Deployment, as an admin would.
    auto rendered = serin::testing::kustomize(
        fs::path(SERIN_SOURCE_DIR) / "crds" / "overlays" / "kubernetes", work / "rendered.yaml");
    if (!rendered) {
        FAIL(rendered.error().describe());
    }
    const Json* deployment = rendered->find("Deployment", "serin");
    REQUIRE(deployment != nullptr);
    Json rest = {{"apiVersion", "v1"}, {"kind", "List"}, {"items", Json::array()}};
    for (const Json& object : rendered->objects) {
        if (&object != deployment) {
            rest["items"].push_back(object);
        }
    }
    std::ofstream(work / "install.json") << rest.dump();
    auto applied = serin::testing::kubectl(s.cluster().kubeconfig_path(),
                                           {"apply", "-f", (work / "install.json").string()});
    if (!applied) {
        FAIL(applied.error().describe());
    }

    // 2. The pod's identity: its ServiceAccount's token, from the TokenRequest API as the kubelet
    // gets the projected token it mounts, the cluster CA and the namespace.
    const std::string pod_ns = at(*deployment, "/metadata/namespace").get<std::string>();
    const Json pod = at(*deployment, "/spec/template/spec");
    const std::string account = at(pod, "/serviceAccountName").get<std::string>();
    serin::kube::ResourceType token_requests = types::service_accounts();
    token_requests.resource = "serviceaccounts/" + account + "/token";
    auto token = run(s.io(), s.client().create(token_requests, pod_ns,
                                               {{"apiVersion", "authentication.k8s.io/v1"},
                                                {"kind", "TokenRequest"},
                                                {"spec", {{"expirationSeconds", 3600}}}}));
    if (!token) {
        FAIL("TokenRequest for " << pod_ns << "/" << account << ": " << token.error().describe());
    }
    const fs::path secrets = work / "serviceaccount";
    fs::create_directories(secrets);
    std::ofstream(secrets / "token") << at(*token, "/status/token").get<std::string>();
    std::ofstream(secrets / "ca.crt") << s.cluster().ca_pem();
    std::ofstream(secrets / "namespace") << pod_ns;

    // 3. The container's command line, as rendered. One argument is replaced: -port, because a
    // pod has a network namespace of its own and here serin shares the host's with the other
    // tests' processes; the probes are then checked on that port. Nothing else is changed: serin
    // watches every namespace, which is why this test runs alone (RUN_SERIAL), and
    // -metrics-server names a Prometheus that does not exist here, which this canary (no
    // metrics) never queries.
    const Json container = at(pod, "/containers/0");
    REQUIRE(at(container, "/command").is_null());  // the image's entrypoint: the serin binary
    auto port = serin::devcluster::pick_free_port();
    REQUIRE(port.has_value());
    std::vector<std::string> args = {"sh", "-c", kPodSandbox, "pod-sandbox", secrets.string(),
                                     SERIN_BINARY};
    bool port_replaced = false;
    for (const Json& arg : at(container, "/args")) {
        std::string value = arg.get<std::string>();
        if (value.rfind("-port=", 0) == 0) {
            value = "-port=" + std::to_string(*port);
            port_replaced = true;
        }
        args.push_back(value);
    }
    REQUIRE(port_replaced);

    // 4. The in-cluster environment: the API server's address as the kubernetes Service's
    // variables. KUBECONFIG is emptied (serin takes an empty one as unset), so the in-cluster
    // configuration is the one that loads.
    const std::string server = s.cluster().config().server;  // https://127.0.0.1:<port>
    const auto host_start = server.find("//") + 2;
    const auto colon = server.rfind(':');
    serin::devcluster::ProcessSpec spec;
    spec.name = "serin (in-cluster)";
    spec.executable = "unshare";
    spec.args = {"--user", "--map-root-user", "--mount"};
    spec.args.insert(spec.args.end(), args.begin(), args.end());
    spec.env = {{"KUBERNETES_SERVICE_HOST", server.substr(host_start, colon - host_start)},
                {"KUBERNETES_SERVICE_PORT", server.substr(colon + 1)},
                {"KUBECONFIG", ""}};
    spec.log_file = work / "serin.log";
    const auto started = std::chrono::steady_clock::now();
    auto spawned = serin::devcluster::Process::spawn(spec);
    if (!spawned) {
        FAIL("cannot start serin: " << spawned.error().describe());
    }
    serin::devcluster::Process serin = std::move(*spawned);
    auto log = [&] { return serin::devcluster::tail_file(spec.log_file, 60); };

    // The probes of the rendered Deployment answer on serin's port.
    const std::string base = "http://127.0.0.1:" + std::to_string(*port);
    const bool ready = serin::testing::wait_until(
        [&] { return !serin.is_running() || http_status(base + "/readyz") == 200; }, 60s, 100ms);
    INFO("serin log:\n" << log());
    REQUIRE(ready);
    REQUIRE(serin.is_running());
    CHECK(http_status(base + "/healthz") == 200);

    // 5. A blue/green release on the kubernetes provider, without metrics.
    try {
        s.create(types::deployments(), s.deployment(kV1));
        s.create(types::canaries(), s.canary({{"interval", "1s"}, {"threshold", 2},
                                              {"iterations", 1}}));
        s.wait_phase("Initialized");
        s.bump_image(kV2);
        s.wait_phase("Succeeded");
        s.wait_event("Promotion completed! Scaling down podinfo." + s.ns());
    } catch (...) {
        std::cerr << "--- serin log ---\n" << log() << "\n";
        throw;
    }
    CHECK(image_of(s.get(types::deployments(), "podinfo-primary")) == kV2);

    // It led through the rendered Lease Role, in the rendered namespace, on Flagger's Lease.
    auto lease = run(s.io(), s.client().get(types::leases(), pod_ns, "flagger-leader-election"));
    REQUIRE(lease.has_value());
    CHECK_FALSE(at(*lease, "/spec/holderIdentity").get<std::string>().empty());

    // Measured for the Deployment's requests and limits (crds/base/deployment.yaml).
    const Usage used = usage_of(serin.pid());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << "serin in-cluster: peak RSS " << used.peak_rss_kib / 1024.0 << " MiB, CPU "
              << used.cpu_seconds << " s over " << seconds << " s ("
              << 100.0 * used.cpu_seconds / seconds << "% of a core)\n";

    serin.stop(std::chrono::seconds{10});
    const std::string full_log = read_text(spec.log_file);
    INFO(log());
    CHECK(serin.describe_exit() == "exited with status 0");
    // No request was refused by RBAC: the API server's words for it are 'User
    // "system:serviceaccount:<ns>:<name>" cannot <verb> resource ...' (the quotes escaped in the
    // log). And the token was always accepted.
    const std::string user = "system:serviceaccount:" + pod_ns + ":" + account;
    std::istringstream lines(full_log);
    std::string refused;  // the first refusal logged
    for (std::string line; refused.empty() && std::getline(lines, line);) {
        if (line.find(user) != std::string::npos && line.find(" cannot ") != std::string::npos) {
            refused = line;
        }
    }
    CHECK(refused == "");
    CHECK(full_log.find("Unauthorized") == std::string::npos);
    std::error_code ec;
    fs::remove_all(work, ec);
}
