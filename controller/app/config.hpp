#pragma once

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

/// serin's command line, typed. Flags follow Flagger's (flagger-spec §9); the defaults are
/// Flagger's where it has the flag.
struct Config {
    std::string kubeconfig;  ///< -kubeconfig; "": $KUBECONFIG, in-cluster, ~/.kube/config
    std::string master;      ///< -master: accepted for compatibility, not used
    double qps = 100;        ///< -kubeconfig-qps: API writes per second
    int burst = 250;         ///< -kubeconfig-burst
    std::string metrics_server = "http://prometheus:9090";
    std::string control_loop_interval = "10s";  ///< accepted for compatibility, not used
    std::string log_level = "info";             ///< "debug", "info", "warn" or "error"
    LogFormat log_format = LogFormat::kText;    ///< -log-format / -zap-encoding
    int port = 8080;                            ///< /metrics, /healthz, /readyz; 0: any
    std::string mesh_provider = "istio";
    std::string ns;  ///< -namespace: "" watches every namespace
    std::vector<std::string> selector_labels = {"app", "name", "app.kubernetes.io/name"};
    std::vector<std::string> include_label_prefixes;
    int threadiness = 2;
    bool leader_election = false;
    std::string leader_election_namespace = "kube-system";
    std::string leader_election_id = "serin-leader-election";
    std::chrono::milliseconds lease_duration{15'000};
    std::chrono::milliseconds renew_deadline{10'000};
    std::chrono::milliseconds retry_period{2'000};
    std::chrono::milliseconds shutdown_grace{10'000};
    bool config_tracking = true;
    std::string event_webhook;
    std::string cluster_name;
    bool no_cross_namespace_refs = false;
    std::string slack_url, slack_token, slack_proxy_url, slack_user = "flagger", slack_channel;
    std::string msteams_url, msteams_proxy_url;
};

/// What parse_flags decided: run with `config`, or exit at once with `exit_code` (after --help,
/// --version or a bad flag, whose text parse_flags has written).
struct ParsedFlags {
    std::optional<Config> config;
    int exit_code = 0;
};

/// Parses the arguments after the program name. Each flag is taken with one dash or two
/// ("-mesh-provider=kubernetes", "--mesh-provider kubernetes"), as Go's flag package does.
/// --help writes the usage to `out` and exits 0, --version writes "serin <version>" and exits
/// 0; a bad flag or value writes CLI11's message to `err` and exits with CLI11's code for it
/// (CLI::ExitCodes: 109 for an unknown flag, 105 for a value that fails its check).
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
