// The serin binary started with the command lines Flagger's own install methods write: the Helm
// chart (rendered with its default values, and with every value that adds a flag set) and the
// kustomize base with its overlays' args. Each must start, serve /healthz on -port, and name the
// flags that mean nothing to serin in one warning line.
//
// Each list is run as a user's Deployment would run it, with three additions after it (Go's flag
// package, like serin, lets the last occurrence of a flag win): -port=<a free port> instead of
// the 8080 the chart relies on, since tests run side by side on one machine; -kubeconfig=<the
// devcluster's>, since serin runs outside the cluster here; and -namespace=<the test's>, so this
// serin does not reconcile the canaries of the tests running beside it.
#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "devcluster/process.hpp"
#include "tests/support/cluster.hpp"

namespace {

using namespace std::chrono_literals;
namespace devcluster = serin::devcluster;

constexpr std::string_view kInertWarning =
    "flags accepted for Flagger compatibility with no effect in serin: ";

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The warning line serin logged about inert flags, from the name list on; "" when none.
std::string inert_warning(const std::string& log) {
    const std::size_t at = log.find(kInertWarning);
    if (at == std::string::npos) {
        return "";
    }
    const std::size_t start = at + kInertWarning.size();
    return log.substr(start, log.find('\n', start) - start);
}

/// Starts serin with `args` (plus the three additions above), waits until /healthz answers 200
/// on the port given, and returns its log.
std::string run_until_healthy(const std::string& name, std::vector<std::string> args) {
    serin::testing::TestCluster& cluster = serin::testing::shared_cluster();
    serin::testing::TestNamespace ns(cluster, "flags");
    auto port = devcluster::pick_free_port();
    REQUIRE(port.has_value());
    args.push_back("-kubeconfig=" + cluster.kubeconfig_path().string());
    args.push_back("-namespace=" + ns.name());
    args.push_back("-port=" + std::to_string(*port));
    devcluster::ProcessSpec spec;
    spec.name = "serin";
    spec.executable = SERIN_BINARY;
    spec.args = std::move(args);
    spec.log_file = std::filesystem::temp_directory_path() / ("serin-flags-" + ns.name() + ".log");
    auto process = devcluster::Process::spawn(spec);
    REQUIRE(process.has_value());
    // curl waits for the port itself: it retries a refused connection once a second and gives
    // up after 60 s; -f makes anything but a 2xx a failure, -w prints the status.
    auto answer = devcluster::run_command(
        "curl", {"-s", "-f", "-m", "5", "--retry", "60", "--retry-connrefused", "--retry-delay",
                 "1", "--retry-max-time", "60", "-w", "\n%{http_code}",
                 "http://127.0.0.1:" + std::to_string(*port) + "/healthz"},
        90s);
    const std::string log = read_file(spec.log_file);
    INFO(name << ": serin " << process->describe_exit() << "; its log:\n" << log);
    REQUIRE(answer.has_value());
    CHECK(answer->exit_code == 0);
    CHECK(answer->output == "OK\n200");
    CHECK(process->running());
    process->stop();
    return log;
}

}  // namespace

TEST_CASE("serin runs the Helm chart's command line with the chart's default values") {
    // charts/flagger/templates/deployment.yaml rendered with values.yaml: logLevel info, no
    // meshProvider, metricsServer, configTracking.enabled true, slack.user flagger.
    const std::string log = run_until_healthy(
        "helm defaults", {"-log-level=info", "-metrics-server=http://prometheus:9090",
                          "-enable-config-tracking=true", "-slack-user=flagger"});
    CHECK(inert_warning(log).empty());
}

TEST_CASE("serin runs the Helm chart's command line with every flag-adding value set") {
    // The same template with meshProvider, selectorLabels, namespace, slack.*, msteams.*,
    // leaderElection.enabled, ingressAnnotationsPrefix, includeLabelPrefix, ingressClass,
    // eventWebhook, kubeconfigQPS/Burst, controlplane.kubeconfig.secretName, threadiness,
    // clusterName and noCrossNamespaceRefs set.
    const std::string log = run_until_healthy(
        "helm all values",
        {"-log-level=info", "-mesh-provider=istio", "-metrics-server=http://prometheus:9090",
         "-selector-labels=app,name,app.kubernetes.io/name", "-enable-config-tracking=true",
         "-namespace=flagger-system", "-slack-url=https://hooks.slack.com/services/T0/B0/X",
         "-slack-proxy-url=http://proxy.example:3128", "-slack-user=flagger",
         "-slack-channel=general", "-msteams-url=https://example.webhook.office.com/x",
         "-msteams-proxy-url=http://proxy.example:3128", "-enable-leader-election=true",
         "-leader-election-namespace=flagger-system",
         "-ingress-annotations-prefix=custom.ingress.kubernetes.io",
         "-include-label-prefix=app.kubernetes.io", "-ingress-class=contour",
         "-event-webhook=http://events.example:8080/", "-kubeconfig-qps=200",
         "-kubeconfig-burst=300", "-kubeconfig-service-mesh=/tmp/controlplane/kubeconfig",
         "-threadiness=4", "-cluster-name=production", "-no-cross-namespace-refs=true"});
    CHECK(inert_warning(log) ==
          "-kubeconfig-service-mesh");
}

TEST_CASE("serin runs the kustomize base with the istio overlay's args") {
    // kustomize/istio/patch.yaml: empty -slack-channel= and -slack-url= included.
    const std::string log = run_until_healthy(
        "kustomize istio", {"-log-level=info", "-mesh-provider=istio",
                            "-metrics-server=http://prometheus:9090", "-slack-user=flagger",
                            "-slack-channel=", "-slack-url="});
    CHECK(inert_warning(log).empty());
}

TEST_CASE("serin runs the kustomize base with the linkerd overlay's args") {
    const std::string log = run_until_healthy(
        "kustomize linkerd",
        {"-log-level=info", "-include-label-prefix=app.kubernetes.io",
         "-mesh-provider=gatewayapi:v1beta1", "-metrics-server=http://prometheus.linkerd-viz:9090"});
    CHECK(inert_warning(log).empty());
}

TEST_CASE("serin runs a Flagger command line with zap's and klog's flags, naming them once") {
    const std::string log = run_until_healthy(
        "zap and klog", {"-zap-replace-globals", "-zap-encoding=json", "-v=2", "-v", "4",
                         "-logtostderr=true", "-control-loop-interval=10s", "-master="});
    CHECK(inert_warning(log).find("-zap-replace-globals, -v, -logtostderr, -control-loop-interval, "
                                  "-master") != std::string::npos);
}
