#include "controller/app/config.hpp"

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <utility>

#include "crds/api/canary.hpp"
#include "platform/http/http_client.hpp"

namespace serin::app {

namespace {

/// The flags as CLI11 reads them: durations, lists and enums stay text until parse_flags
/// checks them, so their errors and defaults are the ones serin has always printed.
struct RawFlags {
    std::string control_loop_interval = "10s";
    std::string log_level = "info";
    std::string log_format = "console";
    std::string selector_labels = "app,name,app.kubernetes.io/name";
    std::string include_label_prefix;
    std::string lease_duration = "15s";
    std::string renew_deadline = "10s";
    std::string retry_period = "2s";
    std::string shutdown_grace = "10s";
    bool version = false;
};

std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t comma = text.find(',', start);
        std::string item =
            text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) {
            out.push_back(std::move(item));
        }
        if (comma == std::string::npos) {
            break;
        }
        start = comma + 1;
    }
    return out;
}

/// Go's flag package takes "-name" and "--name" alike; CLI11 wants "--name" for long options.
std::vector<std::string> go_style_args(const std::vector<std::string>& given) {
    std::vector<std::string> args;
    args.reserve(given.size());
    for (auto it = given.rbegin(); it != given.rend(); ++it) {  // CLI11 takes them reversed
        std::string arg = *it;
        if (arg.size() > 2 && arg[0] == '-' && arg[1] != '-') {
            arg.insert(0, "-");
        }
        args.push_back(std::move(arg));
    }
    return args;
}

std::chrono::milliseconds duration_flag(const std::string& name, const std::string& text) {
    auto parsed = api::parse_duration(text);
    if (!parsed) {
        throw CLI::ValidationError("--" + name, "\"" + text + "\" is not a duration like 15s");
    }
    return *parsed;
}

void add_cluster_flags(CLI::App& app, Config& c, RawFlags& raw) {
    app.add_option("--kubeconfig", c.kubeconfig,
                   "Path to a kubeconfig; default: $KUBECONFIG, in-cluster, ~/.kube/config");
    app.add_option("--master", c.master,
                   "Accepted for compatibility; the kubeconfig's server is used");
    app.add_option("--kubeconfig-qps", c.qps, "API writes per second (token bucket)");
    app.add_option("--kubeconfig-burst", c.burst, "API write burst");
    app.add_option("--metrics-server", c.metrics_server,
                   "Default Prometheus URL for builtin metrics and inline queries");
    app.add_option("--control-loop-interval", raw.control_loop_interval,
                   "Accepted for compatibility: Serin is event-driven and ticks each canary at its "
                   "analysis interval");
    app.add_option("--log-level", raw.log_level, "debug, info, warning or error")
        ->check(CLI::IsMember({"debug", "info", "warning", "warn", "error"}));
    app.add_option("--zap-encoding,--log-format", raw.log_format,
                   "json, logfmt or console (text); lines about a canary carry its key")
        ->check(CLI::IsMember({"json", "logfmt", "console"}));
    app.add_option("--port", c.port,
                   "HTTP port for /metrics, /healthz and /readyz (0: any free port, logged)");
    app.add_option("--mesh-provider", c.mesh_provider,
                   "Default routing provider when a Canary has no spec.provider");
    app.add_option("--namespace", c.ns, "Watch only this namespace (default: all)");
    app.add_option("--selector-labels", raw.selector_labels,
                   "Candidate pod selector label keys, comma-separated, first match wins");
    app.add_option("--include-label-prefix", raw.include_label_prefix,
                   "Label/annotation key prefixes copied to primary objects (comma list; * = all)");
    app.add_option("--threadiness", c.threadiness, "Canaries reconciled concurrently")
        ->check(CLI::Range(1, 64));
}

void add_leader_election_flags(CLI::App& app, Config& c, RawFlags& raw) {
    app.add_flag("--enable-leader-election", c.leader_election,
                 "Run only while holding a coordination.k8s.io/v1 Lease");
    app.add_option("--leader-election-namespace", c.leader_election_namespace,
                   "Namespace of the Lease (default kube-system, or --namespace when set)");
    app.add_option("--leader-election-id", c.leader_election_id, "Name of the Lease");
    app.add_option("--leader-election-lease-duration", raw.lease_duration,
                   "How long a lease is valid without renewal");
    app.add_option("--leader-election-renew-deadline", raw.renew_deadline,
                   "The leader steps down when it could not renew for this long");
    app.add_option("--leader-election-retry-period", raw.retry_period,
                   "Pause between attempts to acquire or renew");
}

void add_release_flags(CLI::App& app, Config& c, RawFlags& raw) {
    app.add_option("--enable-config-tracking", c.config_tracking,
                   "Track the ConfigMaps and Secrets of targets and copy them to -primary")
        ->default_str("true");
    app.add_option("--event-webhook", c.event_webhook,
                   "URL that receives every canary event (env EVENT_WEBHOOK_URL overrides)");
    app.add_option("--cluster-name", c.cluster_name, "Cluster name shown in alerts");
    app.add_flag("--no-cross-namespace-refs", c.no_cross_namespace_refs,
                 "Reject references to objects in other namespaces");
    app.add_option("--slack-url", c.slack_url, "Global Slack webhook (env SLACK_URL)");
    app.add_option("--slack-token", c.slack_token, "Slack token");
    app.add_option("--slack-proxy-url", c.slack_proxy_url, "Proxy for Slack");
    app.add_option("--slack-user", c.slack_user, "Slack user name");
    app.add_option("--slack-channel", c.slack_channel, "Slack channel");
    app.add_option("--msteams-url", c.msteams_url, "Global MS Teams webhook");
    app.add_option("--msteams-proxy-url", c.msteams_proxy_url, "Proxy for MS Teams");
    app.add_option("--shutdown-grace", raw.shutdown_grace,
                   "On SIGTERM, how long in-flight reconciles may take to finish before they are "
                   "cancelled");
    app.add_flag("--version", raw.version, "Print the version and exit");
}

}  // namespace

std::string_view version() { return SERIN_VERSION; }  // the CMake project's version

ParsedFlags parse_flags(const std::vector<std::string>& args, std::ostream& out,
                        std::ostream& err) {
    Config config;
    RawFlags raw;
    // The options are registered in the order --help lists them.
    CLI::App app{
        "serin: progressive delivery for Kubernetes, compatible with Flagger's Canary API.\n"
        "Flags may be given with one dash (Flagger's style) or two."};
    add_cluster_flags(app, config, raw);
    add_leader_election_flags(app, config, raw);
    add_release_flags(app, config, raw);
    try {
        std::vector<std::string> reversed = go_style_args(args);
        app.parse(reversed);
        config.lease_duration = duration_flag("leader-election-lease-duration", raw.lease_duration);
        config.renew_deadline = duration_flag("leader-election-renew-deadline", raw.renew_deadline);
        config.retry_period = duration_flag("leader-election-retry-period", raw.retry_period);
        config.shutdown_grace = duration_flag("shutdown-grace", raw.shutdown_grace);
    } catch (const CLI::ParseError& e) {
        return ParsedFlags{std::nullopt, app.exit(e, out, err)};
    }
    if (raw.version) {
        out << "serin " << version() << "\n";
        return ParsedFlags{std::nullopt, 0};
    }
    config.control_loop_interval = raw.control_loop_interval;
    config.log_level = raw.log_level == "warning" ? "warn" : raw.log_level;
    config.log_format = raw.log_format == "json"     ? LogFormat::kJson
                        : raw.log_format == "logfmt" ? LogFormat::kLogfmt
                                                     : LogFormat::kText;
    config.selector_labels = split_list(raw.selector_labels);
    config.include_label_prefixes = split_list(raw.include_label_prefix);
    return ParsedFlags{std::move(config), 0};
}

Environment process_environment() {
    return [](std::string_view name) -> std::optional<std::string> {
        if (const char* value = std::getenv(std::string{name}.c_str()); value != nullptr) {
            return std::string{value};
        }
        return std::nullopt;
    };
}

void apply_environment(Config& config, const Environment& environment) {
    const auto from_env = [&environment](std::string_view name, std::string& value) {
        if (auto env = environment(name); env && !env->empty()) {
            value = std::move(*env);
        }
    };
    from_env("EVENT_WEBHOOK_URL", config.event_webhook);
    from_env("SLACK_URL", config.slack_url);
    from_env("SLACK_TOKEN", config.slack_token);
    from_env("SLACK_PROXY_URL", config.slack_proxy_url);
    from_env("MSTEAMS_URL", config.msteams_url);
    from_env("MSTEAMS_PROXY_URL", config.msteams_proxy_url);
}

Result<std::optional<notify::Destination>> global_notifier(const Config& config) {
    if (config.msteams_url.empty() && config.slack_url.empty()) {
        return std::optional<notify::Destination>{};
    }
    const bool teams = !config.msteams_url.empty();
    notify::Destination d;
    d.kind = teams ? notify::Kind::kMsTeams : notify::Kind::kSlack;
    d.label = teams ? "--msteams-url" : "--slack-url";
    d.address = teams ? config.msteams_url : config.slack_url;
    d.token = teams ? std::string() : config.slack_token;
    d.username = config.slack_user;
    d.proxy = teams ? config.msteams_proxy_url : config.slack_proxy_url;
    if (!config.slack_channel.empty()) {
        d.channel = config.slack_channel;
    }
    if (!d.proxy.empty()) {
        if (auto proxy = http::Proxy::parse(d.proxy); !proxy) {
            return fail(ErrorKind::kInvalid, std::string("--") + (teams ? "msteams" : "slack") +
                                                 "-proxy-url: " + proxy.error().message);
        }
    }
    return std::optional<notify::Destination>{std::move(d)};
}

}  // namespace serin::app
