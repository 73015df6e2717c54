// Alerts from the real serin binary to a loopback receiver standing in for Slack, Discord,
// Rocket.Chat, Google Chat and Microsoft Teams: which provider gets which alert, what each
// payload carries, and posting through an AlertProvider's proxy.
#include <catch2/catch.hpp>

#include <algorithm>

#include "platform/core/base64.hpp"
#include "tests/e2e/e2e.hpp"
#include "tests/support/test_http_proxy.hpp"

namespace {

using namespace serin::e2e;
namespace types = serin::kube::types;

const std::string kV1 = "ghcr.io/stefanprodan/podinfo:6.0.0";
const std::string kV2 = "ghcr.io/stefanprodan/podinfo:6.0.1";
const std::string kV3 = "ghcr.io/stefanprodan/podinfo:6.0.2";

Json provider(const std::string& name, const std::string& type, Json spec_extra) {
    Json spec = {{"type", type}};
    spec.update(spec_extra);
    return {{"apiVersion", "flagger.app/v1beta1"},
            {"kind", "AlertProvider"},
            {"metadata", {{"name", name}}},
            {"spec", spec}};
}

Json alert(const std::string& name, const std::string& severity) {
    return {{"name", name}, {"severity", severity}, {"providerRef", {{"name", name}}}};
}

/// The Slack-shaped body (slack, discord, rocket) whose text contains `text`, or null.
Json slack_body(const std::vector<Json>& bodies, const std::string& text) {
    for (const Json& b : bodies) {
        if (at(b, "/attachments/0/text").get<std::string>().find(text) != std::string::npos) {
            return b;
        }
    }
    return nullptr;
}

/// The value of field `title` of a Slack-shaped body, or "".
std::string slack_field(const Json& body, const std::string& title) {
    for (const Json& f : at(body, "/attachments/0/fields")) {
        if (f.value("title", "") == title) {
            return f.value("value", "");
        }
    }
    return "";
}

std::vector<std::string> texts(const std::vector<Json>& bodies, const std::string& pointer) {
    std::vector<std::string> out;
    for (const Json& b : bodies) {
        out.push_back(at(b, pointer).get<std::string>());
    }
    return out;
}

bool has(const std::vector<std::string>& all, const std::string& part) {
    return std::any_of(all.begin(), all.end(),
                       [&](const std::string& t) { return t.find(part) != std::string::npos; });
}

}  // namespace

TEST_CASE("alerts reach each provider type by severity: a waiting gate, a promotion, a rollback") {
    Scenario s;
    GateServer hooks(s.io());
    s.start_serin();
    s.create(types::secrets(),
             {{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"metadata", {{"name", "teams-hook"}}},
              {"data",
               {{"address", serin::encode_base64(hooks.url("/ok/teams"))},
                {"token", serin::encode_base64("t0k3n")}}}});
    s.create(types::alert_providers(),
             provider("slack", "slack",
                      {{"address", hooks.url("/ok/slack")}, {"channel", "on-call"},
                       {"username", "serin"}}));
    s.create(types::alert_providers(), provider("discord", "discord", {{"address", hooks.url("/ok/discord")}}));
    s.create(types::alert_providers(), provider("rocket", "rocket", {{"address", hooks.url("/ok/rocket")}}));
    s.create(types::alert_providers(), provider("gchat", "gchat", {{"address", hooks.url("/ok/gchat")}}));
    s.create(types::alert_providers(),
             provider("msteams", "msteams", {{"secretRef", {{"name", "teams-hook"}}}}));
    const Json analysis = {
        {"interval", "1s"},
        {"threshold", 2},
        {"iterations", 2},
        {"webhooks",
         {{{"name", "checks"}, {"type", "rollout"}, {"url", hooks.url("/gate/checks")}},
          {{"name", "promote"}, {"type", "confirm-promotion"}, {"url", hooks.url("/gate/promote")}}}},
        {"alerts",
         {alert("slack", "info"), alert("discord", ""), alert("rocket", "warn"),
          alert("gchat", "error"), alert("msteams", "info")}}};
    hooks.open("checks");
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");

    // Release 1 waits for promotion approval (warn), then is promoted (info).
    s.bump_image(kV2);
    s.wait_phase("WaitingPromotion");
    s.wait_until([&] { return hooks.calls("/ok/rocket") >= 1; }, "the waiting alert at rocket");
    hooks.open("promote");
    s.wait_phase("Succeeded");
    s.wait_until([&] { return has(texts(hooks.bodies("/ok/slack"), "/attachments/0/text"),
                                  "promotion finished"); },
                 "the promotion alert at slack");

    // Release 2 fails its rollout check twice and is rolled back (error).
    hooks.close("checks");
    s.bump_image(kV3);
    s.wait_phase("Failed");
    // Every provider's last alert, before looking at what each got.
    s.wait_until([&] { return hooks.calls("/ok/gchat") >= 1; }, "the rollback alert at gchat");
    s.wait_until([&] { return hooks.calls("/ok/rocket") >= 2; }, "the rollback alert at rocket");
    s.wait_until([&] { return hooks.calls("/ok/discord/slack") >= 6; }, "6 alerts at discord");
    s.wait_until([&] { return hooks.calls("/ok/teams") >= 6; }, "6 alerts at msteams");
    s.wait_until([&] { return has(texts(hooks.bodies("/ok/slack"), "/attachments/0/text"),
                                  "threshold reached"); },
                 "the rollback alert at slack");

    const std::string id = "podinfo." + s.ns();
    {
        INFO("slack (info) gets every alert, with its channel, username and the fields");
        const auto bodies = hooks.bodies("/ok/slack");
        const auto all = texts(bodies, "/attachments/0/text");
        CHECK(has(all, "New Deployment detected, initialization completed."));
        CHECK(has(all, "New revision detected, progressing canary analysis."));
        CHECK(has(all, "Canary promotion is waiting for approval."));
        CHECK(has(all, "Canary analysis completed successfully, promotion finished."));
        CHECK(has(all, "Failed checks threshold reached 2"));

        const Json init = slack_body(bodies, "initialization completed");
        CHECK(init["channel"] == "on-call");
        CHECK(init["username"] == "serin");
        CHECK(init["icon_emoji"] == ":rocket:");
        CHECK(at(init, "/attachments/0/author_name") == id);
        CHECK(at(init, "/attachments/0/color") == "good");
        CHECK(slack_field(init, "Target") == "Deployment/podinfo." + s.ns());
        CHECK(slack_field(init, "Failed checks threshold") == "2");
        CHECK(slack_field(init, "Progress deadline") == "60s");
        CHECK(slack_field(init, "Traffic routing") == "Blue/Green");

        // Serin's summary on the alerts that end a release.
        const Json promoted = slack_body(bodies, "promotion finished");
        CHECK_THAT(slack_field(promoted, "Analysis"), Catch::Contains("0 failed"));
        const Json rolled_back = slack_body(bodies, "threshold reached");
        CHECK(at(rolled_back, "/attachments/0/color") == "danger");
        CHECK_THAT(slack_field(rolled_back, "Analysis"), Catch::Contains("2 failed"));
    }
    {
        INFO("discord (no severity: info) gets Slack's shape at its /slack endpoint");
        CHECK(hooks.calls("/ok/discord") == 0);
        const auto all = texts(hooks.bodies("/ok/discord/slack"), "/attachments/0/text");
        CHECK(all.size() == 6);  // init, 2 new revisions, waiting, promoted, rolled back
        CHECK(has(all, "promotion finished"));
    }
    {
        INFO("rocket (warn) gets the waiting gate and the rollback, in its colors");
        const auto bodies = hooks.bodies("/ok/rocket");
        const auto all = texts(bodies, "/attachments/0/text");
        CHECK(all.size() == 2);
        CHECK(at(slack_body(bodies, "waiting for approval"), "/attachments/0/color") == "#0076D7");
        CHECK(at(slack_body(bodies, "threshold reached"), "/attachments/0/color") == "#FF0000");
    }
    {
        INFO("gchat (error) gets only the rollback, as a card");
        const auto bodies = hooks.bodies("/ok/gchat");
        REQUIRE(bodies.size() == 1);
        CHECK(at(bodies[0], "/cards/0/header/title") == "Flagger");
        CHECK(at(bodies[0], "/cards/0/header/subtitle") == id);
        CHECK_THAT(at(bodies[0], "/cards/0/sections/0/widgets/0/textParagraph/text").get<std::string>(),
                   Catch::Contains("Failed checks threshold reached 2"));
    }
    {
        INFO("msteams (address from its Secret) gets MessageCards");
        const auto bodies = hooks.bodies("/ok/teams");
        REQUIRE(bodies.size() == 6);
        for (const Json& b : bodies) {
            CHECK(b["@type"] == "MessageCard");
            CHECK(b["summary"] == id);
        }
        const auto all = texts(bodies, "/sections/0/activityTitle");
        CHECK(has(all, "promotion finished"));
        CHECK(bodies.back()["themeColor"] == "FF0000");  // the rollback is the last
    }
}

TEST_CASE("an alert receiver that never answers does not hold up the release") {
    Scenario s;
    GateServer hooks(s.io());
    s.start_serin();
    s.create(types::alert_providers(), provider("stuck", "slack", {{"address", hooks.url("/hang")}}));
    const Json analysis = {
        {"interval", "1s"},
        {"threshold", 2},
        {"iterations", 1},
        {"webhooks", {{{"name", "checks"}, {"type", "rollout"}, {"url", hooks.url("/approve")}}}},
        {"alerts", {alert("stuck", "info")}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.bump_image(kV2);
    s.wait_phase("Succeeded");
    // Each alert's post lives up to 3 attempts of 5 s; the release did not wait for any of them.
    CHECK(hooks.calls("/hang") >= 2);
    for (const std::string& event : s.events()) {
        CHECK(event.find("alert to AlertProvider") == std::string::npos);
    }
    // The failure is reported on the canary once the attempts are used up.
    s.wait_event("alert to AlertProvider stuck." + s.ns() + " failed", 60s);
}

TEST_CASE("alerts go through an AlertProvider's proxy, and a proxy URL it cannot use is refused") {
    Scenario s;
    GateServer hooks(s.io());
    serin::test::TestHttpProxy proxy(s.io().get_executor());
    s.start_serin();
    s.create(types::alert_providers(),
             provider("proxied", "slack",
                      {{"address", hooks.url("/ok/proxied")},
                       {"proxy", "http://serin:s3cret@127.0.0.1:" + std::to_string(proxy.port())}}));
    s.create(types::alert_providers(),
             provider("bad-proxy", "slack",
                      {{"address", hooks.url("/ok/never")}, {"proxy", "socks5://127.0.0.1:1080"}}));
    const Json analysis = {{"interval", "1s"},
                           {"threshold", 2},
                           {"iterations", 1},
                           {"alerts", {alert("proxied", "info"), alert("bad-proxy", "info")}}};
    s.create(types::deployments(), s.deployment(kV1));
    s.create(types::canaries(), s.canary(analysis));
    s.wait_phase("Initialized");
    s.wait_until([&] { return hooks.calls("/ok/proxied") >= 1; }, "the alert through the proxy");

    REQUIRE_FALSE(proxy.asks().empty());
    const auto& ask = proxy.asks().front();
    CHECK(ask.method == "POST");
    CHECK(ask.target == hooks.url("/ok/proxied"));  // absolute form: the receiver is http
    CHECK(ask.proxy_authorization == "Basic " + serin::encode_base64("serin:s3cret"));
    CHECK_THAT(at(hooks.bodies("/ok/proxied").front(), "/attachments/0/text").get<std::string>(),
               Catch::Contains("initialization completed"));

    s.wait_event("AlertProvider bad-proxy." + s.ns() + " spec.proxy: invalid proxy URL");
    CHECK(hooks.calls("/ok/never") == 0);
    for (const std::string& event : s.events()) {
        CHECK(event.find("s3cret") == std::string::npos);
    }
}
