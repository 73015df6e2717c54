#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "controller/notify/payload.hpp"
#include "platform/core/log.hpp"
#include "platform/core/result.hpp"

namespace serin::app {

/// The CMake project's version, as `serin --version` prints it.
std::string_view version();

/// serin's command line, typed. Every flag of Flagger's (flagger-spec-providers §15, klog's
/// included) is accepted with Flagger's type; the defaults are Flagger's except -log-level (info,
/// Flagger: debug) and -zap-encoding (console, Flagger: json), which keep serin's.
struct Config {
    std::string kubeconfig;  ///< -kubeconfig; "": $KUBECONFIG, in-cluster, ~/.kube/config
    std::string master;      ///< -master: accepted for compatibility, not used
    double qps = 100;        ///< -kubeconfig-qps: API writes per second
    int burst = 250;         ///< -kubeconfig-burst
    /// -kubeconfig-service-mesh: the cluster holding the routing objects ("": the same cluster).
    /// Stored; serin writes routing objects to its own cluster for now.
    std::string kubeconfig_service_mesh;
    std::string metrics_server = "http://prometheus:9090";
    /// -control-loop-interval: accepted, not used (serin ticks each canary at its interval).
    std::chrono::milliseconds control_loop_interval{10'000};
    /// -ingress-annotations-prefix and -ingress-class: for the NGINX and Contour routers, which
    /// are not built yet; stored for them.
    std::string ingress_annotations_prefix = "nginx.ingress.kubernetes.io";
    std::string ingress_class;
    std::string log_level = "info";           ///< "debug", "info", "warn" or "error"
    LogFormat log_format = LogFormat::kText;  ///< -log-format / -zap-encoding
    int port = 8080;                          ///< /metrics, /healthz, /readyz; 0: any
    std::string mesh_provider = "istio";
    std::string ns;  ///< -namespace: "" watches every namespace
    std::vector<std::string> selector_labels = {"app", "name", "app.kubernetes.io/name"};
    std::vector<std::string> include_label_prefixes;
    /// -threadiness: Flagger's work-queue workers, which only sync its Canary cache while each
    /// canary's analysis runs in a goroutine of its own. Serin reconciles
    /// max(threadiness, concurrent_reconciles) canaries at once (`reconcile_workers()`).
    int threadiness = 2;
    /// -concurrent-reconciles: canaries reconciled at once (coroutines on one thread, so mostly
    /// API round trips in flight; writes stay behind the -kubeconfig-qps token bucket).
    int concurrent_reconciles = 16;
    /// -release-start-workers: beside those, workers that take only canaries whose target got a
    /// new pod template, so that many releases started at once (a fleet-wide image bump) begin
    /// together while the steady state keeps the fewer workers above and their memory.
    int release_start_workers = 64;

    [[nodiscard]] int reconcile_workers() const {
        return std::max(threadiness, concurrent_reconciles);
    }
    bool leader_election = false;
    std::string leader_election_namespace = "kube-system";
    std::string leader_election_id = "flagger-leader-election";
    std::chrono::milliseconds lease_duration{15'000};
    std::chrono::milliseconds renew_deadline{10'000};
    std::chrono::milliseconds retry_period{2'000};
    std::chrono::milliseconds shutdown_grace{10'000};
    /// -address-policy-deny / -address-policy-allow: CIDRs and host names added to the address
    /// policy of webhooks, alerts and metrics servers (http::AddressPolicy::metadata_denied()
    /// first); each entry parses.
    std::vector<std::string> address_policy_deny;
    std::vector<std::string> address_policy_allow;
    bool config_tracking = true;
    std::string event_webhook;
    std::string cluster_name;
    bool no_cross_namespace_refs = false;
    std::string slack_url, slack_token, slack_proxy_url, slack_user = "flagger", slack_channel;
    std::string msteams_url, msteams_proxy_url;
    /// The flags given that mean nothing to serin (Flagger's -master, -zap-replace-globals,
    /// klog's, ...), as "-name", in the order given, each once: serin names them in a warning.
    std::vector<std::string> inert_flags_given;
};

/// The warning serin logs at start naming the inert flags given; nullopt when none was.
std::optional<std::string> inert_flags_warning(const Config& config);

/// What parse_flags decided: run with `config`, or exit at once with `exit_code` (after --help,
/// --version or a bad flag, whose text parse_flags has written).
struct ParsedFlags {
    std::optional<Config> config;
    int exit_code = 0;
};

/// Parses the arguments after the program name as Go's flag package does (Flagger's): a flag is
/// "-name=value", "-name value" (not for a bool flag) or "-name" (a bool flag), with one dash or
/// two; a bool flag's value is one of Go's (1, t, T, TRUE, true, True and the same for false);
/// parsing stops at the first argument that is not a flag, or after "--"; the same flag twice:
/// the last wins. -h, -help and --help write the usage to `out` and exit 0; -version writes
/// "serin <version>" and exits 0; an unknown flag or a bad value writes the reason and the usage
/// to `err` and exits 2.
ParsedFlags parse_flags(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// Reads one environment variable; nullopt when unset.
using Environment = std::function<std::optional<std::string>(std::string_view name)>;

/// The process's environment (std::getenv).
Environment process_environment();

/// Applies the variables that override flags, as Flagger does: EVENT_WEBHOOK_URL, SLACK_URL,
/// SLACK_TOKEN, SLACK_PROXY_URL, MSTEAMS_URL and MSTEAMS_PROXY_URL. An empty variable is unset.
void apply_environment(Config& config, const Environment& environment);

/// The global notifier, for canaries without alerts (-slack-url or -msteams-url; Teams takes
/// precedence over Slack); nullopt when neither is set. kInvalid, with the message serin logs,
/// when its proxy URL cannot be used.
Result<std::optional<notify::Destination>> global_notifier(const Config& config);

}  // namespace serin::app
