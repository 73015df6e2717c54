// What each AlertProvider type is sent (flagger-spec §7), severity routing and redaction.
#include <catch2/catch.hpp>

#include "controller/notify/payload.hpp"

namespace {

using namespace serin::notify;

Message message(Severity severity = Severity::kInfo) {
    Message m;
    m.name = "podinfo";
    m.ns = "test";
    m.text = "Promotion completed! podinfo.test";
    m.severity = severity;
    m.fields = {{"Target", "Deployment/podinfo.test"}, {"Failed checks threshold", "5"}};
    return m;
}

Destination to(Kind kind, std::string address = "https://hooks.example.com/services/T0/B0/s3cr3t") {
    Destination d;
    d.kind = kind;
    d.label = "AlertProvider on-call.test";
    d.address = std::move(address);
    d.channel = "on-call";
    d.username = "serin";
    return d;
}

}  // namespace

TEST_CASE("slack: channel, username, icon and one attachment with the fields") {
    const Json body = payload(to(Kind::kSlack), message());
    CHECK(body["channel"] == "on-call");
    CHECK(body["username"] == "serin");
    CHECK(body["icon_url"] == "");
    CHECK(body["icon_emoji"] == ":rocket:");
    REQUIRE(body["attachments"].size() == 1);
    const Json& a = body["attachments"][0];
    CHECK(a["color"] == "good");
    CHECK(a["author_name"] == "podinfo.test");
    CHECK(a["text"] == "Promotion completed! podinfo.test");
    CHECK(a["mrkdwn_in"] == Json::array({"text"}));
    REQUIRE(a["fields"].size() == 2);
    CHECK(a["fields"][0] == Json{{"title", "Target"}, {"value", "Deployment/podinfo.test"},
                                 {"short", false}});
    CHECK(payload(to(Kind::kSlack), message(Severity::kError))["attachments"][0]["color"] ==
          "danger");
    CHECK(payload(to(Kind::kSlack), message(Severity::kWarn))["attachments"][0]["color"] == "good");
}

TEST_CASE("discord posts Slack's shape to the /slack endpoint, rocket uses its own colors") {
    CHECK(payload(to(Kind::kDiscord), message()) == payload(to(Kind::kSlack), message()));
    CHECK(post_url(to(Kind::kDiscord, "https://discord.com/api/webhooks/1/x")) ==
          "https://discord.com/api/webhooks/1/x/slack");
    CHECK(post_url(to(Kind::kDiscord, "https://discord.com/api/webhooks/1/x/slack")) ==
          "https://discord.com/api/webhooks/1/x/slack");
    CHECK(post_url(to(Kind::kSlack, "https://hooks.slack.com/a")) == "https://hooks.slack.com/a");
    CHECK(payload(to(Kind::kRocket), message())["attachments"][0]["color"] == "#0076D7");
    CHECK(payload(to(Kind::kRocket), message(Severity::kError))["attachments"][0]["color"] ==
          "#FF0000");
}

TEST_CASE("msteams: a MessageCard with the fields as facts") {
    const Json body = payload(to(Kind::kMsTeams), message());
    CHECK(body["@type"] == "MessageCard");
    CHECK(body["@context"] == "http://schema.org/extensions");
    CHECK(body["themeColor"] == "0076D7");
    CHECK(body["summary"] == "podinfo.test");
    REQUIRE(body["sections"].size() == 1);
    CHECK(body["sections"][0]["activityTitle"] == "Promotion completed! podinfo.test");
    CHECK(body["sections"][0]["activitySubtitle"] == "podinfo.test");
    CHECK(body["sections"][0]["facts"][1] ==
          Json{{"name", "Failed checks threshold"}, {"value", "5"}});
    CHECK(payload(to(Kind::kMsTeams), message(Severity::kError))["themeColor"] == "FF0000");
}

TEST_CASE("gchat: a card headed Flagger, the message, then one widget per field") {
    const Json body = payload(to(Kind::kGChat), message());
    REQUIRE(body["cards"].size() == 1);
    const Json& card = body["cards"][0];
    CHECK(card["header"] == Json{{"title", "Flagger"},
                                 {"subtitle", "podinfo.test"},
                                 {"imageUrl", "https://flagger.app/favicon.png"}});
    REQUIRE(card["sections"].size() == 2);
    CHECK(card["sections"][0]["widgets"][0]["textParagraph"]["text"] ==
          "<font color=#848484><strong>Promotion completed! podinfo.test</strong></font>");
    CHECK(card["sections"][1]["widgets"][0]["textParagraph"]["text"] ==
          "Target<br><font color=#848484><strong>Deployment/podinfo.test</strong></font>");
}

TEST_CASE("provider types and severity routing") {
    for (const char* type : {"slack", "discord", "rocket", "msteams", "gchat"}) {
        const auto kind = parse_kind(type);
        REQUIRE(kind);
        CHECK(to_string(*kind) == type);
    }
    CHECK_FALSE(parse_kind("pagerduty"));

    CHECK(severity_matches("info", Severity::kInfo) == true);
    CHECK(severity_matches("info", Severity::kError) == true);
    CHECK(severity_matches("", Severity::kWarn) == true);  // Flagger's documented default
    CHECK(severity_matches("warn", Severity::kInfo) == false);
    CHECK(severity_matches("warn", Severity::kWarn) == true);
    CHECK(severity_matches("warn", Severity::kError) == true);
    CHECK(severity_matches("error", Severity::kWarn) == false);
    CHECK(severity_matches("error", Severity::kError) == true);
    CHECK_FALSE(severity_matches("critical", Severity::kError).has_value());
}

TEST_CASE("redact removes a webhook URL and its secret path from an error") {
    const std::string url = "https://hooks.example.com/services/T0/B0/s3cr3t";
    CHECK(redact("POST " + url + " failed", url) == "POST <redacted> failed");
    CHECK(redact("connect to hooks.example.com/services/T0/B0/s3cr3t refused", url) ==
          "connect to hooks.example.com<redacted> refused");
    CHECK(redact("token abc in abc", "abc") == "token <redacted> in <redacted>");
    CHECK(redact("nothing here", "") == "nothing here");
}
