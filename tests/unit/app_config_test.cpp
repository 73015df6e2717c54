// serin's flags: Flagger's names and defaults, one dash or two, and the exit codes of --help,
// --version and bad flags (CLI11's, which scripts around serin may test).
#include <CLI/CLI.hpp>
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

constexpr int code(CLI::ExitCodes c) { return static_cast<int>(c); }

}  // namespace

TEST_CASE("no flags: Flagger's defaults") {
    const Config c = config_of({});
    CHECK(c.kubeconfig.empty());
    CHECK(c.qps == 100);
    CHECK(c.burst == 250);
    CHECK(c.metrics_server == "http://prometheus:9090");
    CHECK(c.log_level == "info");
    CHECK(c.log_format == serin::LogFormat::kText);
    CHECK(c.port == 8080);
    CHECK(c.mesh_provider == "istio");
    CHECK(c.ns.empty());
    CHECK(c.selector_labels == std::vector<std::string>{"app", "name", "app.kubernetes.io/name"});
    CHECK(c.include_label_prefixes.empty());
    CHECK(c.threadiness == 2);
    CHECK_FALSE(c.leader_election);
    CHECK(c.leader_election_namespace == "kube-system");
    CHECK(c.leader_election_id == "serin-leader-election");
    CHECK(c.lease_duration == std::chrono::seconds{15});
    CHECK(c.renew_deadline == std::chrono::seconds{10});
    CHECK(c.retry_period == std::chrono::seconds{2});
    CHECK(c.shutdown_grace == std::chrono::seconds{10});
    CHECK(c.config_tracking);
    CHECK(c.event_webhook.empty());
    CHECK_FALSE(c.no_cross_namespace_refs);
    CHECK(c.slack_user == "flagger");
}

TEST_CASE("flags are taken with one dash or two, with = or a space") {
    const Config c =
        config_of({"-mesh-provider=kubernetes", "--namespace", "test", "-threadiness", "4",
                   "--enable-leader-election", "-leader-election-retry-period=500ms",
                   "--shutdown-grace=1m30s", "-log-level=warning", "--zap-encoding=logfmt",
                   "-selector-labels=app,,team", "-include-label-prefix=*",
                   "--enable-config-tracking=false", "-port=0"});
    CHECK(c.mesh_provider == "kubernetes");
    CHECK(c.ns == "test");
    CHECK(c.threadiness == 4);
    CHECK(c.leader_election);
    CHECK(c.retry_period == std::chrono::milliseconds{500});
    CHECK(c.shutdown_grace == std::chrono::seconds{90});
    CHECK(c.log_level == "warn");  // spdlog's name for it
    CHECK(c.log_format == serin::LogFormat::kLogfmt);
    CHECK(c.selector_labels == std::vector<std::string>{"app", "team"});
    CHECK(c.include_label_prefixes == std::vector<std::string>{"*"});
    CHECK_FALSE(c.config_tracking);
    CHECK(c.port == 0);
    CHECK(config_of({"--log-format", "json"}).log_format == serin::LogFormat::kJson);
}

TEST_CASE("help prints the usage and exits 0, and so does version with the version") {
    for (const std::string flag : {"--help", "-help", "-h"}) {
        const Parsed help = parse({flag});
        CHECK_FALSE(help.flags.config.has_value());
        CHECK(help.flags.exit_code == 0);
        CHECK_THAT(help.out,
                   Catch::Contains("--mesh-provider") && Catch::Contains("--shutdown-grace"));
    }
    const Parsed version = parse({"-version"});
    CHECK_FALSE(version.flags.config.has_value());
    CHECK(version.flags.exit_code == 0);
    CHECK(version.out == "serin " + std::string(serin::app::version()) + "\n");
}

TEST_CASE("a bad flag or value exits with CLI11's code and says why on stderr") {
    struct Case {
        std::vector<std::string> args;
        int exit_code;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"--no-such-flag"}, code(CLI::ExitCodes::ExtrasError), "--no-such-flag"},
        {{"stray"}, code(CLI::ExitCodes::ExtrasError), "stray"},
        {{"--threadiness=0"}, code(CLI::ExitCodes::ValidationError), "not in range 1 to 64"},
        {{"--log-format=xml"}, code(CLI::ExitCodes::ValidationError), "xml"},
        {{"--port=abc"}, code(CLI::ExitCodes::ConversionError), "--port"},
        {{"--shutdown-grace=soon"},
         code(CLI::ExitCodes::ValidationError),
         "--shutdown-grace: \"soon\" is not a duration like 15s"},
        // The values are checked before --version is obeyed.
        {{"--version", "--leader-election-lease-duration=x"},
         code(CLI::ExitCodes::ValidationError),
         "--leader-election-lease-duration"},
    };
    for (const Case& c : cases) {
        INFO(c.args.front());
        const Parsed parsed = parse(c.args);
        CHECK_FALSE(parsed.flags.config.has_value());
        CHECK(parsed.flags.exit_code == c.exit_code);
        CHECK_THAT(parsed.err, Catch::Contains(c.message));
        CHECK(parsed.out.empty());
    }
    CHECK(code(CLI::ExitCodes::ExtrasError) == 109);  // what `serin --typo; echo $?` shows
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
