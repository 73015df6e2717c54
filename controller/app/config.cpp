#include "controller/app/config.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <utility>

#include "crds/api/canary.hpp"
#include "platform/core/go_flags.hpp"
#include "platform/http/address_policy.hpp"
#include "platform/http/http_client.hpp"

namespace serin::app {

namespace {

using namespace goflags;  // FlagDef, FlagType and the setters

/// Values that stay text until the whole command line is read.
struct RawFlags {
    std::string selector_labels = "app,name,app.kubernetes.io/name";
    std::string include_label_prefix;
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

/// A comma-separated list of address policy entries (CIDRs, addresses, host names).
FlagSetter address_list_to(std::vector<std::string>& target) {
    return [&target](const std::string& value) {
        std::vector<std::string> entries = split_list(value);
        http::AddressPolicy probe;
        for (const std::string& entry : entries) {
            if (auto added = probe.deny(entry); !added) {
                return added.error().message;
            }
        }
        target = std::move(entries);
        return std::string();
    };
}

/// A Go duration ("15s", "1m30s").
FlagSetter duration_to(std::chrono::milliseconds& target) {
    return parsed_to(target, api::parse_duration, "not a duration like 15s or 1m30s");
}

bool all_digits(std::string_view text) {
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isdigit(static_cast<unsigned char>(c)) != 0;
    });
}

/// klog's -stderrthreshold: a severity by number (0-3) or name.
bool valid_severity(const std::string& value) {
    std::string upper;
    for (char c : value) {
        upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return value == "0" || value == "1" || value == "2" || value == "3" || upper == "INFO" ||
           upper == "WARNING" || upper == "ERROR" || upper == "FATAL";
}

/// klog's -vmodule: "pattern=N,..." (empty: none).
bool valid_vmodule(const std::string& value) {
    for (const std::string& item : split_list(value)) {
        const std::size_t eq = item.find('=');
        if (eq == std::string::npos || eq == 0 || !all_digits(item.substr(eq + 1))) {
            return false;
        }
    }
    return true;
}

/// klog's -log_backtrace_at: "file:line" (empty or ":0": none).
bool valid_trace_location(const std::string& value) {
    if (value.empty()) {
        return true;
    }
    const std::size_t colon = value.rfind(':');
    return colon != std::string::npos && all_digits(value.substr(colon + 1));
}

std::vector<FlagDef> cluster_flags(Config& c, RawFlags& raw) {
    return {
        {"kubeconfig", FlagType::kString, "",
         "Path to a kubeconfig; default: $KUBECONFIG, in-cluster, ~/.kube/config", false,
         text_to(c.kubeconfig)},
        {"master", FlagType::kString, "",
         "Accepted for Flagger compatibility; the kubeconfig's server is used", true,
         text_to(c.master)},
        {"kubeconfig-qps", FlagType::kInt, "100", "API writes per second (token bucket)", false,
         [&c](const std::string& value) {
             int qps = 0;
             std::string why = int_to(qps, 1, 1'000'000)(value);
             if (why.empty()) {
                 c.qps = qps;
             }
             return why;
         }},
        {"kubeconfig-burst", FlagType::kInt, "250", "API write burst", false,
         int_to(c.burst, 1, 1'000'000)},
        {"kubeconfig-service-mesh", FlagType::kString, "",
         "Kubeconfig of the cluster holding the routing objects; accepted, not used yet", true,
         text_to(c.kubeconfig_service_mesh)},
        {"metrics-server", FlagType::kString, "http://prometheus:9090",
         "Default Prometheus URL for builtin metrics and inline queries", false,
         text_to(c.metrics_server)},
        {"control-loop-interval", FlagType::kDuration, "10s",
         "Accepted for Flagger compatibility: serin is event-driven and ticks each canary at its "
         "analysis interval",
         true, duration_to(c.control_loop_interval)},
        {"port", FlagType::kInt, "8080",
         "HTTP port for /metrics, /healthz and /readyz (0: any free port, logged)", false,
         int_to(c.port, 0, 65535)},
        {"mesh-provider", FlagType::kString, "istio",
         "Default routing provider when a Canary has no spec.provider", false,
         text_to(c.mesh_provider)},
        {"namespace", FlagType::kString, "", "Watch only this namespace (default: all)", false,
         text_to(c.ns)},
        {"selector-labels", FlagType::kString, "app,name,app.kubernetes.io/name",
         "Candidate pod selector label keys, comma-separated, first match wins", false,
         text_to(raw.selector_labels)},
        {"include-label-prefix", FlagType::kString, "",
         "Label/annotation key prefixes copied to primary objects (comma list; * = all)", false,
         text_to(raw.include_label_prefix)},
        {"ingress-annotations-prefix", FlagType::kString, "nginx.ingress.kubernetes.io",
         "Annotations prefix of the NGINX router's canary Ingress", false,
         text_to(c.ingress_annotations_prefix)},
        {"ingress-class", FlagType::kString, "",
         "spec.ingressClassName of the Contour router's HTTPProxy", false,
         text_to(c.ingress_class)},
        {"threadiness", FlagType::kInt, "2",
         "Canaries reconciled at once, at least (the larger of this and -concurrent-reconciles)",
         false, int_to(c.threadiness, 1, 64)},
        {"concurrent-reconciles", FlagType::kInt, "16",
         "Canaries reconciled at once (coroutines on one thread: API round trips in flight); "
         "-threadiness raises it",
         false, int_to(c.concurrent_reconciles, 1, 256)},
        {"release-start-workers", FlagType::kInt, "64",
         "Workers beside -concurrent-reconciles that take only canaries whose target got a new "
         "pod template (release starts); 0: none",
         false, int_to(c.release_start_workers, 0, 256)},
    };
}

std::vector<FlagDef> logging_flags(Config& c) {
    return {
        {"log-level", FlagType::kString, "info", "debug, info, warning or error", false,
         one_of(c.log_level, {"debug", "info", "warning", "warn", "error"})},
        {"zap-encoding", FlagType::kString, "console",
         "json, logfmt or console (text); lines about a canary carry its key", false,
         [&c](const std::string& value) {
             if (value != "json" && value != "logfmt" && value != "console") {
                 return std::string("not one of json, logfmt, console");
             }
             c.log_format = value == "json"     ? LogFormat::kJson
                            : value == "logfmt" ? LogFormat::kLogfmt
                                                : LogFormat::kText;
             return std::string();
         }},
        {"zap-replace-globals", FlagType::kBool, "", "Accepted for Flagger compatibility", true,
         checked([](const std::string& v) { return parse_go_bool(v).has_value(); }, "parse error")},
    };
}

/// klog's flags, which Flagger registers on its flag set: accepted and checked, no effect.
std::vector<FlagDef> klog_flags() {
    const auto is_bool = [](const std::string& v) { return parse_go_bool(v).has_value(); };
    const auto flag = [&](std::string name, FlagType type, std::string def) {
        FlagSetter set = type == FlagType::kBool ? checked(is_bool, "parse error") : any_value();
        return FlagDef{std::move(name),
                       type,
                       std::move(def),
                       "klog's; accepted for Flagger compatibility",
                       true,
                       std::move(set)};
    };
    std::vector<FlagDef> flags = {
        flag("vmodule", FlagType::kValue, ""),
        flag("log_dir", FlagType::kString, ""),
        flag("log_file", FlagType::kString, ""),
        flag("logtostderr", FlagType::kBool, "true"),
        flag("alsologtostderr", FlagType::kBool, ""),
        flag("add_dir_header", FlagType::kBool, ""),
        flag("skip_headers", FlagType::kBool, ""),
        flag("skip_log_headers", FlagType::kBool, ""),
        flag("one_output", FlagType::kBool, ""),
        flag("stderrthreshold", FlagType::kValue, "2"),
        flag("log_backtrace_at", FlagType::kValue, ":0"),
        flag("legacy_stderr_threshold_behavior", FlagType::kBool, "true"),
    };
    flags[0].set = checked(valid_vmodule, "expect comma-separated list of pattern=N");
    flags[9].set = checked(valid_severity, "not a severity (INFO, WARNING, ERROR, FATAL or 0-3)");
    flags[10].set = checked(valid_trace_location, "expect file:line");
    flags.push_back(FlagDef{"v", FlagType::kValue, "0",
                            "klog's log level; accepted for Flagger "
                            "compatibility",
                            true, [](const std::string& value) {
                                std::int32_t level = 0;
                                return int_to(level, std::numeric_limits<std::int32_t>::min(),
                                              std::numeric_limits<std::int32_t>::max())(value);
                            }});
    flags.push_back(
        FlagDef{"log_file_max_size", FlagType::kUint, "1800",
                "klog's; accepted for Flagger compatibility", true, [](const std::string& value) {
                    std::int64_t size = 0;
                    return int_to(size, 0, std::numeric_limits<std::int64_t>::max())(value);
                }});
    return flags;
}

std::vector<FlagDef> leader_election_flags(Config& c) {
    return {
        {"enable-leader-election", FlagType::kBool, "",
         "Run only while holding a coordination.k8s.io/v1 Lease", false,
         bool_to(c.leader_election)},
        {"leader-election-namespace", FlagType::kString, "kube-system",
         "Namespace of the Lease (-namespace wins when set)", false,
         text_to(c.leader_election_namespace)},
        {"leader-election-id", FlagType::kString, "flagger-leader-election", "Name of the Lease",
         false, text_to(c.leader_election_id)},
        {"leader-election-lease-duration", FlagType::kDuration, "15s",
         "How long a lease is valid without renewal", false, duration_to(c.lease_duration)},
        {"leader-election-renew-deadline", FlagType::kDuration, "10s",
         "The leader steps down when it could not renew for this long", false,
         duration_to(c.renew_deadline)},
        {"leader-election-retry-period", FlagType::kDuration, "2s",
         "Pause between attempts to acquire or renew", false, duration_to(c.retry_period)},
    };
}

std::vector<FlagDef> release_flags(Config& c) {
    return {
        {"enable-config-tracking", FlagType::kBool, "true",
         "Track the ConfigMaps and Secrets of targets and copy them to -primary", false,
         bool_to(c.config_tracking)},
        {"event-webhook", FlagType::kString, "",
         "URL that receives every canary event (env EVENT_WEBHOOK_URL overrides)", false,
         text_to(c.event_webhook)},
        {"cluster-name", FlagType::kString, "", "Cluster name shown in alerts", false,
         text_to(c.cluster_name)},
        {"no-cross-namespace-refs", FlagType::kBool, "",
         "Reject references to objects in other namespaces", false,
         bool_to(c.no_cross_namespace_refs)},
        {"slack-url", FlagType::kString, "", "Global Slack webhook (env SLACK_URL)", false,
         text_to(c.slack_url)},
        {"slack-token", FlagType::kString, "", "Slack token (env SLACK_TOKEN)", false,
         text_to(c.slack_token)},
        {"slack-proxy-url", FlagType::kString, "", "Proxy for Slack (env SLACK_PROXY_URL)", false,
         text_to(c.slack_proxy_url)},
        {"slack-user", FlagType::kString, "flagger", "Slack user name", false,
         text_to(c.slack_user)},
        {"slack-channel", FlagType::kString, "", "Slack channel", false, text_to(c.slack_channel)},
        {"msteams-url", FlagType::kString, "", "Global MS Teams webhook (env MSTEAMS_URL)", false,
         text_to(c.msteams_url)},
        {"msteams-proxy-url", FlagType::kString, "", "Proxy for MS Teams (env MSTEAMS_PROXY_URL)",
         false, text_to(c.msteams_proxy_url)},
        {"address-policy-deny", FlagType::kString, "",
         "CIDRs and host names (comma-separated) that webhooks, alerts and metrics servers may "
         "not reach, beside link-local and cloud metadata addresses, which are always denied",
         false, address_list_to(c.address_policy_deny)},
        {"address-policy-allow", FlagType::kString, "",
         "CIDRs and host names (comma-separated) exempt from the denied ones, e.g. "
         "169.254.0.0/16 to allow link-local addresses again",
         false, address_list_to(c.address_policy_allow)},
        {"shutdown-grace", FlagType::kDuration, "10s",
         "On SIGTERM, how long in-flight reconciles may take to finish before they are cancelled",
         false, duration_to(c.shutdown_grace)},
    };
}

/// Every flag serin takes, bound to `c` and `raw`, sorted by name as Go's usage lists them.
std::vector<FlagDef> all_flags(Config& c, RawFlags& raw) {
    std::vector<FlagDef> flags = cluster_flags(c, raw);
    for (std::vector<FlagDef> group :
         {logging_flags(c), leader_election_flags(c), release_flags(c), klog_flags()}) {
        flags.insert(flags.end(), std::make_move_iterator(group.begin()),
                     std::make_move_iterator(group.end()));
    }
    // -log-format is serin's name for -zap-encoding; -version prints serin's version.
    FlagDef log_format = *std::find_if(flags.begin(), flags.end(),
                                       [](const FlagDef& f) { return f.name == "zap-encoding"; });
    log_format.name = "log-format";
    log_format.usage = "Same as -zap-encoding";
    flags.push_back(std::move(log_format));
    flags.push_back(FlagDef{"version", FlagType::kBool, "", "Print the version and exit", false,
                            bool_to(raw.version)});
    std::sort(flags.begin(), flags.end(),
              [](const FlagDef& a, const FlagDef& b) { return a.name < b.name; });
    return flags;
}

}  // namespace

std::string_view version() { return SERIN_VERSION; }  // the CMake project's version

ParsedFlags parse_flags(const std::vector<std::string>& args, std::ostream& out,
                        std::ostream& err) {
    Config config;
    RawFlags raw;
    const std::vector<FlagDef> flags = all_flags(config, raw);
    Scan scanned = scan(args, flags);
    constexpr std::string_view kPreamble =
        "serin: progressive delivery for Kubernetes, compatible with Flagger's Canary API.\n"
        "Flags take one dash or two: -name=value, -name value, or -name for a bool flag.\n";
    if (scanned.help) {
        write_usage(kPreamble, "serin", flags, out);
        return ParsedFlags{std::nullopt, 0};
    }
    if (!scanned.error.empty()) {
        err << scanned.error << "\n";
        write_usage(kPreamble, "serin", flags, err);
        return ParsedFlags{std::nullopt, 2};  // Go's flag.ExitOnError
    }
    if (raw.version) {
        out << "serin " << version() << "\n";
        return ParsedFlags{std::nullopt, 0};
    }
    if (config.log_level == "warning") {
        config.log_level = "warn";  // spdlog's name for it
    }
    config.selector_labels = split_list(raw.selector_labels);
    config.include_label_prefixes = split_list(raw.include_label_prefix);
    config.inert_flags_given = std::move(scanned.inert_given);
    return ParsedFlags{std::move(config), 0};
}

std::optional<std::string> inert_flags_warning(const Config& config) {
    if (config.inert_flags_given.empty()) {
        return std::nullopt;
    }
    std::string text = "flags accepted for Flagger compatibility with no effect in serin: ";
    for (std::size_t i = 0; i < config.inert_flags_given.size(); ++i) {
        text += (i == 0 ? "" : ", ") + config.inert_flags_given[i];
    }
    return text;
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
