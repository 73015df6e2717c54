// serin's flags: every one of Flagger's (klog's included) with Flagger's types and defaults, read
// with the rules of Go's flag package, and the exit codes of -help, -version and bad flags (Go's).
#include <catch2/catch.hpp>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "controller/app/config.hpp"

namespace {

using serin::app::Config;
using serin::app::ParsedFlags;

struct Parsed {
    ParsedFlags flags;
    std::string out;
    std::string err;
};

Parsed parse(const std::vector<std::string>& args) {
    std::ostringstream out;
    std::ostringstream err;
    ParsedFlags flags = serin::app::parse_flags(args, out, err);
    return Parsed{std::move(flags), out.str(), err.str()};
}

Config config_of(const std::vector<std::string>& args) {
    Parsed parsed = parse(args);
    INFO(parsed.err);
    REQUIRE(parsed.flags.config.has_value());
    return *parsed.flags.config;
}

}  // namespace

TEST_CASE("no flags: Flagger's defaults") {
    const Config c = config_of({});
    CHECK(c.kubeconfig.empty());
    CHECK(c.master.empty());
    CHECK(c.qps == 100);
    CHECK(c.burst == 250);
    CHECK(c.kubeconfig_service_mesh.empty());
    CHECK(c.metrics_server == "http://prometheus:9090");
    CHECK(c.control_loop_interval == std::chrono::seconds{10});
    CHECK(c.ingress_annotations_prefix == "nginx.ingress.kubernetes.io");
    CHECK(c.ingress_class.empty());
    // serin's own defaults, where they differ from Flagger's (debug, json).
    CHECK(c.log_level == "info");
    CHECK(c.log_format == serin::LogFormat::kText);
    CHECK(c.port == 8080);
    CHECK(c.mesh_provider == "istio");
    CHECK(c.ns.empty());
    CHECK(c.selector_labels == std::vector<std::string>{"app", "name", "app.kubernetes.io/name"});
    CHECK(c.include_label_prefixes.empty());
    CHECK(c.threadiness == 2);
    CHECK(c.concurrent_reconciles == 16);
    CHECK(c.reconcile_workers() == 16);
    CHECK(c.release_start_workers == 64);
    CHECK_FALSE(c.leader_election);
    CHECK(c.leader_election_namespace == "kube-system");
    CHECK(c.leader_election_id == "flagger-leader-election");
    CHECK(c.lease_duration == std::chrono::seconds{15});
    CHECK(c.renew_deadline == std::chrono::seconds{10});
    CHECK(c.retry_period == std::chrono::seconds{2});
    CHECK(c.shutdown_grace == std::chrono::seconds{10});
    CHECK(c.config_tracking);
    CHECK(c.event_webhook.empty());
    CHECK(c.cluster_name.empty());
    CHECK_FALSE(c.no_cross_namespace_refs);
    CHECK(c.slack_user == "flagger");
    CHECK(c.inert_flags_given.empty());
    CHECK_FALSE(serin::app::inert_flags_warning(c).has_value());
}

TEST_CASE("canaries reconciled at once: the larger of -threadiness and -concurrent-reconciles") {
    CHECK(config_of({"-concurrent-reconciles=4"}).reconcile_workers() == 4);
    CHECK(config_of({"-concurrent-reconciles=1", "-threadiness=1"}).reconcile_workers() == 1);
    CHECK(config_of({"-threadiness=32"}).reconcile_workers() == 32);
}

TEST_CASE("release starts get their own workers: -release-start-workers, 0 for none") {
    CHECK(config_of({"-release-start-workers=0"}).release_start_workers == 0);
    CHECK(config_of({"-release-start-workers=8"}).release_start_workers == 8);
    CHECK(config_of({"-release-start-workers=8"}).reconcile_workers() == 16);  // unchanged
}

TEST_CASE("flags are taken with one dash or two, with = or a space") {
    const Config c =
        config_of({"-mesh-provider=kubernetes", "--namespace", "test", "-threadiness", "4",
                   "--enable-leader-election", "-leader-election-retry-period=500ms",
                   "--shutdown-grace=1m30s", "-log-level=warning", "--zap-encoding=logfmt",
                   "-selector-labels=app,,team", "-include-label-prefix=*",
                   "--enable-config-tracking=false", "-port=0", "-kubeconfig-qps", "0x20",
                   "-slack-channel=", "-ingress-class=contour", "-kubeconfig-service-mesh=/m"});
    CHECK(c.mesh_provider == "kubernetes");
    CHECK(c.ns == "test");
    CHECK(c.threadiness == 4);
    CHECK(c.reconcile_workers() == 16);  // -threadiness is a lower bound
    CHECK(c.leader_election);
    CHECK(c.retry_period == std::chrono::milliseconds{500});
    CHECK(c.shutdown_grace == std::chrono::seconds{90});
    CHECK(c.log_level == "warn");  // spdlog's name for it
    CHECK(c.log_format == serin::LogFormat::kLogfmt);
    CHECK(c.selector_labels == std::vector<std::string>{"app", "team"});
    CHECK(c.include_label_prefixes == std::vector<std::string>{"*"});
    CHECK_FALSE(c.config_tracking);
    CHECK(c.port == 0);
    CHECK(c.qps == 32);  // Go's integers take 0x, 0o, 0b and a leading 0
    CHECK(c.slack_channel.empty());
    CHECK(c.ingress_class == "contour");
    CHECK(c.kubeconfig_service_mesh == "/m");
    CHECK(config_of({"--log-format", "json"}).log_format == serin::LogFormat::kJson);
}

TEST_CASE("a value taken after a space may start with a dash, and the last of a flag wins") {
    const Config c = config_of({"-cluster-name", "-prod", "-port=1", "--port", "2"});
    CHECK(c.cluster_name == "-prod");
    CHECK(c.port == 2);
}

TEST_CASE("a bool flag takes Go's spellings after = and never the next argument") {
    for (const std::string yes : {"1", "t", "T", "TRUE", "true", "True"}) {
        CHECK(config_of({"-enable-leader-election=" + yes}).leader_election);
    }
    for (const std::string no : {"0", "f", "F", "FALSE", "false", "False"}) {
        CHECK_FALSE(config_of({"-enable-config-tracking=" + no}).config_tracking);
    }
    // "false" is not the bool's value but the first argument that is not a flag: the flags
    // end there and what follows is ignored, as Go's flag.Parse leaves it in flag.Args().
    const Config c = config_of({"-enable-config-tracking", "false", "-port=1"});
    CHECK(c.config_tracking);
    CHECK(c.port == 8080);
}

TEST_CASE("the flags end at the first argument that is not a flag, or after --") {
    CHECK(config_of({"-port=1", "stray", "-port=2", "-no-such-flag"}).port == 1);
    CHECK(config_of({"-port=1", "--", "-port=2"}).port == 1);
    CHECK(config_of({"-port=1", "-", "-port=2"}).port == 1);  // a lone dash is not a flag
}

TEST_CASE("every flag of Flagger's and klog's is accepted with Flagger's type") {
    const std::vector<std::string> args = {
        "-kubeconfig=/k", "-master=https://m:6443", "-kubeconfig-qps=50", "-kubeconfig-burst=60",
        "-kubeconfig-service-mesh=/mesh", "-metrics-server=http://p:9090",
        "-control-loop-interval=1m30s", "-log-level=debug", "-zap-encoding=json",
        "-zap-replace-globals", "-port=9999", "-slack-url=http://s", "-slack-token=t",
        "-slack-proxy-url=http://proxy:3128", "-slack-user=u", "-slack-channel=c",
        "-msteams-url=http://t", "-msteams-proxy-url=http://proxy:3128", "-event-webhook=http://e",
        "-include-label-prefix=a,b", "-threadiness=3", "-namespace=n", "-mesh-provider=linkerd",
        "-selector-labels=x", "-ingress-annotations-prefix=custom.nginx.org", "-ingress-class=ic",
        "-enable-leader-election=true", "-leader-election-namespace=le",
        "-enable-config-tracking=true", "-cluster-name=cn", "-no-cross-namespace-refs=true",
        // klog's
        "-v=4", "-vmodule=controller=2,router*=3", "-log_dir=/tmp", "-log_file=/tmp/f",
        "-log_file_max_size=100", "-logtostderr=false", "-alsologtostderr", "-add_dir_header",
        "-skip_headers", "-skip_log_headers", "-one_output", "-stderrthreshold=WARNING",
        "-log_backtrace_at=main.go:10", "-legacy_stderr_threshold_behavior=false"};
    const Config c = config_of(args);
    CHECK(c.kubeconfig == "/k");
    CHECK(c.master == "https://m:6443");
    CHECK(c.qps == 50);
    CHECK(c.burst == 60);
    CHECK(c.control_loop_interval == std::chrono::seconds{90});
    CHECK(c.log_level == "debug");
    CHECK(c.log_format == serin::LogFormat::kJson);
    CHECK(c.port == 9999);
    CHECK(c.msteams_proxy_url == "http://proxy:3128");
    CHECK(c.include_label_prefixes == std::vector<std::string>{"a", "b"});
    CHECK(c.ingress_annotations_prefix == "custom.nginx.org");
    CHECK(c.leader_election_namespace == "le");
    CHECK(c.cluster_name == "cn");
    CHECK(c.no_cross_namespace_refs);
    CHECK(c.inert_flags_given == std::vector<std::string>{"-master",
                                                          "-kubeconfig-service-mesh",
                                                          "-control-loop-interval",
                                                          "-zap-replace-globals",
                                                          "-v",
                                                          "-vmodule",
                                                          "-log_dir",
                                                          "-log_file",
                                                          "-log_file_max_size",
                                                          "-logtostderr",
                                                          "-alsologtostderr",
                                                          "-add_dir_header",
                                                          "-skip_headers",
                                                          "-skip_log_headers",
                                                          "-one_output",
                                                          "-stderrthreshold",
                                                          "-log_backtrace_at",
                                                          "-legacy_stderr_threshold_behavior"});
}

TEST_CASE("the inert flags given are named once in one warning") {
    const Config c = config_of({"-zap-replace-globals", "-v", "2", "--v=3", "-log-level=info"});
    CHECK(serin::app::inert_flags_warning(c) ==
          "flags accepted for Flagger compatibility with no effect in serin: "
          "-zap-replace-globals, -v");
}

TEST_CASE("help prints the usage and exits 0, and so does version with the version") {
    for (const std::string flag : {"--help", "-help", "-h", "--h"}) {
        const Parsed help = parse({"-port=1", flag, "-no-such-flag"});
        CHECK_FALSE(help.flags.config.has_value());
        CHECK(help.flags.exit_code == 0);
        CHECK_THAT(help.out, Catch::Contains("  -mesh-provider string\n") &&
                                 Catch::Contains("(default \"istio\")") &&
                                 Catch::Contains("  -shutdown-grace duration\n") &&
                                 Catch::Contains("  -enable-config-tracking\n") &&
                                 Catch::Contains("  -v value\n") &&
                                 Catch::Contains("  -zap-replace-globals\n"));
    }
    const Parsed version = parse({"-version"});
    CHECK_FALSE(version.flags.config.has_value());
    CHECK(version.flags.exit_code == 0);
    CHECK(version.out == "serin " + std::string(serin::app::version()) + "\n");
}

TEST_CASE("a bad flag or value exits 2 and says why, with the usage, on stderr") {
    struct Case {
        std::vector<std::string> args;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
        {{"-port"}, "flag needs an argument: -port"},
        {{"---port=1"}, "bad flag syntax: ---port=1"},
        {{"-=x"}, "bad flag syntax: -=x"},
        {{"--threadiness=0"}, "invalid value \"0\" for flag -threadiness: not in range 1 to 64"},
        {{"--concurrent-reconciles=300"},
         "for flag -concurrent-reconciles: not in range 1 to 256"},
        {{"--release-start-workers=-1"},
         "for flag -release-start-workers: not in range 0 to 256"},
        {{"--log-format=xml"}, "invalid value \"xml\" for flag -log-format"},
        {{"--port=abc"}, "invalid value \"abc\" for flag -port: parse error"},
        {{"--port=70000"}, "for flag -port: not in range 0 to 65535"},
        {{"-kubeconfig-qps=1.5"}, "for flag -kubeconfig-qps: parse error"},  // Go's int
        {{"-enable-leader-election=yes"},
         "invalid boolean value \"yes\" for -enable-leader-election: parse error"},
        {{"-zap-replace-globals=on"}, "invalid boolean value \"on\" for -zap-replace-globals"},
        {{"--shutdown-grace=soon"}, "invalid value \"soon\" for flag -shutdown-grace"},
        {{"-v=high"}, "for flag -v: parse error"},
        {{"-log_file_max_size=-1"}, "for flag -log_file_max_size"},
        {{"-stderrthreshold=LOUD"}, "for flag -stderrthreshold"},
        {{"-vmodule=x"}, "for flag -vmodule"},
        {{"-address-policy-deny=10.0.0.0/8,10.1.0.0/40"},
         "for flag -address-policy-deny: address policy entry '10.1.0.0/40' has a bad prefix"},
        {{"-address-policy-allow=x/8"}, "for flag -address-policy-allow"},
        // The values are checked before -version is obeyed.
        {{"--version", "--leader-election-lease-duration=x"},
         "for flag -leader-election-lease-duration"},
    };
    for (const Case& c : cases) {
        INFO(c.args.front());
        const Parsed parsed = parse(c.args);
        CHECK_FALSE(parsed.flags.config.has_value());
        CHECK(parsed.flags.exit_code == 2);  // Go's flag.ExitOnError
        CHECK_THAT(parsed.err, Catch::StartsWith(c.message) || Catch::Contains(c.message));
        CHECK_THAT(parsed.err, Catch::Contains("Usage of serin:"));
        CHECK(parsed.out.empty());
    }
}

TEST_CASE("the environment overrides the webhook and notifier flags, unless empty") {
    Config c = config_of({"--event-webhook=http://flag", "--slack-url=http://flag-slack"});
    const std::map<std::string, std::string> env = {
        {"EVENT_WEBHOOK_URL", "http://env"}, {"SLACK_URL", ""}, {"MSTEAMS_URL", "http://teams"}};
    serin::app::apply_environment(c, [&env](std::string_view name) -> std::optional<std::string> {
        if (auto it = env.find(std::string(name)); it != env.end()) {
            return it->second;
        }
        return std::nullopt;
    });
    CHECK(c.event_webhook == "http://env");
    CHECK(c.slack_url == "http://flag-slack");
    CHECK(c.msteams_url == "http://teams");
}

TEST_CASE("the global notifier: none, Slack, Teams before Slack, a proxy serin cannot use") {
    auto none = serin::app::global_notifier(config_of({}));
    REQUIRE(none.has_value());
    CHECK_FALSE(none->has_value());

    auto slack = serin::app::global_notifier(
        config_of({"--slack-url=http://slack", "--slack-channel=ops", "--slack-token=t"}));
    REQUIRE(slack.has_value());
    REQUIRE(slack->has_value());
    CHECK((*slack)->kind == serin::notify::Kind::kSlack);
    CHECK((*slack)->label == "--slack-url");
    CHECK((*slack)->channel == "ops");
    CHECK((*slack)->token == "t");

    auto teams = serin::app::global_notifier(
        config_of({"--slack-url=http://slack", "--msteams-url=http://teams", "--slack-token=t"}));
    REQUIRE(teams.has_value());
    REQUIRE(teams->has_value());
    CHECK((*teams)->kind == serin::notify::Kind::kMsTeams);
    CHECK((*teams)->address == "http://teams");
    CHECK((*teams)->token.empty());

    auto bad = serin::app::global_notifier(
        config_of({"--slack-url=http://slack", "--slack-proxy-url=ftp://proxy"}));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == serin::ErrorKind::kInvalid);
    CHECK_THAT(bad.error().message, Catch::StartsWith("--slack-proxy-url: "));
}

TEST_CASE("the address policy flags take comma-separated CIDRs and host names") {
    const Config config = config_of({"-address-policy-deny=10.96.0.0/12,kube-dns.kube-system",
                                     "-address-policy-allow=169.254.0.0/16"});
    CHECK(config.address_policy_deny ==
          std::vector<std::string>{"10.96.0.0/12", "kube-dns.kube-system"});
    CHECK(config.address_policy_allow == std::vector<std::string>{"169.254.0.0/16"});
    CHECK(config_of({}).address_policy_deny.empty());
}
