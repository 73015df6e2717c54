// Flagger's alert fields and where an AlertProvider posts (flagger-spec §7).
#include <catch2/catch.hpp>

#include "controller/canary/alerts.hpp"
#include "platform/core/base64.hpp"

namespace {

using namespace serin;
using Json = nlohmann::json;

api::Canary make_canary() {
    api::Canary c;
    c.metadata.name = "podinfo";
    c.metadata.ns = "test";
    c.spec.target_ref = {"apps/v1", "Deployment", "podinfo"};
    c.spec.progress_deadline_seconds = 120;
    c.spec.analysis.emplace();
    c.spec.analysis->threshold = 5;
    c.spec.analysis->step_weight = 10;
    c.spec.analysis->max_weight = 50;
    return c;
}

std::vector<std::string> render(const std::vector<notify::Field>& fields) {
    std::vector<std::string> out;
    for (const auto& f : fields) {
        out.push_back(f.title + ": " + f.value);
    }
    return out;
}

api::AlertProvider provider(const std::string& type) {
    api::AlertProvider p;
    p.metadata.name = "on-call";
    p.metadata.ns = "ops";
    p.spec.type = type;
    p.spec.address = "https://hooks.example.com/x";
    return p;
}

}  // namespace

TEST_CASE("alert fields: Cluster when set, with metadata, the target and the analysis") {
    CHECK(render(canary::alert_fields(make_canary(), false, "")).empty());
    CHECK(render(canary::alert_fields(make_canary(), false, "prod-eu")) ==
          std::vector<std::string>{"Cluster: prod-eu"});
    CHECK(render(canary::alert_fields(make_canary(), true, "")) ==
          std::vector<std::string>{"Target: Deployment/podinfo.test", "Failed checks threshold: 5",
                                   "Progress deadline: 120s", "Traffic routing: Weight step: 10 max: 50"});
    auto steps = make_canary();
    steps.spec.analysis->step_weights = {5, 20, 60};
    CHECK(render(canary::alert_fields(steps, true, "")).back() ==
          "Traffic routing: Weight steps: 5,20,60 max: 50");
    auto blue_green = make_canary();
    blue_green.spec.analysis->iterations = 3;
    CHECK(render(canary::alert_fields(blue_green, true, "")).back() == "Traffic routing: Blue/Green");
    blue_green.spec.analysis->match = Json::array({{{"headers", Json::object()}}});
    CHECK(render(canary::alert_fields(blue_green, true, "")).back() ==
          "Traffic routing: A/B Testing");
}

TEST_CASE("an AlertProvider's destination: its type and address, or its Secret's") {
    auto slack = canary::alert_destination(provider("slack"), nullptr);
    REQUIRE(slack.has_value());
    CHECK(slack->kind == notify::Kind::kSlack);
    CHECK(slack->address == "https://hooks.example.com/x");
    CHECK(slack->label == "AlertProvider on-call.ops");
    CHECK(slack->channel == "general");
    CHECK(slack->username == "flagger");

    auto teams = provider("msteams");
    teams.spec.secret_ref = api::SecretRef{"teams"};
    const Json secret = {{"data",
                          {{"address", encode_base64("https://teams.example.com/y")},
                           {"token", encode_base64("t0k3n")}}}};
    auto from_secret = canary::alert_destination(teams, &secret);
    REQUIRE(from_secret.has_value());
    CHECK(from_secret->address == "https://teams.example.com/y");  // the Secret's wins
    CHECK(from_secret->token == "t0k3n");

    auto missing = canary::alert_destination(teams, nullptr);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message == "AlertProvider on-call.ops secret teams not found");
    const Json no_address = {{"data", {{"token", encode_base64("t0k3n")}}}};
    auto empty = canary::alert_destination(teams, &no_address);
    REQUIRE_FALSE(empty.has_value());
    CHECK(empty.error().message == "AlertProvider on-call.ops secret teams has no data key address");

    auto unknown = canary::alert_destination(provider("pagerduty"), nullptr);
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().message.rfind("AlertProvider on-call.ops spec.type: \"pagerduty\"", 0) == 0);

    auto bad_proxy = provider("slack");
    bad_proxy.spec.proxy = "https://bot:hunter2@proxy:3128";
    auto refused = canary::alert_destination(bad_proxy, nullptr);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == ErrorKind::kInvalid);
    CHECK_THAT(refused.error().message, Catch::Contains("spec.proxy: invalid proxy URL"));
    CHECK_THAT(refused.error().message, Catch::Contains("only http:// proxies"));
    CHECK_THAT(refused.error().message, !Catch::Contains("hunter2"));
}

TEST_CASE("an AlertProvider's spec.proxy is carried to its destination") {
    auto proxied = provider("slack");
    proxied.spec.proxy = "http://proxy.corp:3128";
    auto destination = canary::alert_destination(proxied, nullptr);
    REQUIRE(destination.has_value());
    CHECK(destination->proxy == "http://proxy.corp:3128");
}
