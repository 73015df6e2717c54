// Canary specs that used to be accepted and then stalled or rushed a release, or whose error
// message could not be written (tests/data/hostile/canary): each is refused by name.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "analysis/release.hpp"
#include "analysis/validate.hpp"
#include "crds/api/canary.hpp"
#include "platform/core/text.hpp"
#include "tests/support/hostile.hpp"

namespace {

nlohmann::json load(const std::string& name) {
    return nlohmann::json::parse(serin::testing::hostile_input("canary/" + name));
}

/// The decoder's or validate()'s error for a Canary object.
std::string refusal(const nlohmann::json& object, const std::string& provider = "istio") {
    auto canary = serin::api::decode_canary(object);
    if (!canary) {
        return canary.error().message;
    }
    auto valid = serin::analysis::validate(canary->spec, provider);
    REQUIRE_FALSE(valid.has_value());
    CHECK(valid.error().kind == serin::ErrorKind::kInvalid);
    return valid.error().message;
}

}  // namespace

TEST_CASE("each hostile spec is refused with a message naming the field") {
    const std::map<std::string, std::string> field_of{
        {"interval-umlauts.json", "spec.analysis.interval: "},
        {"step-weight-zero.json", "spec.analysis.stepWeight: 0 never moves traffic"},
        {"step-weights-from-zero.json", "spec.analysis.stepWeights[0]: 0 is not between 1 and 100"},
        {"step-weights-above-100.json",
         "spec.analysis.stepWeights[0]: 150 is not between 1 and 100"},
        {"webhook-timeout-zero.json",
         "spec.analysis.webhooks[0].timeout: \"0s\" is not between 1s and 10m"},
        {"webhook-timeout-huge.json",
         "spec.analysis.webhooks[0].timeout: \"100000m\" is not between 1s and 10m"},
        {"webhook-retries-huge.json", "spec.analysis.webhooks[0].retries: 2147483647 is above 10"},
        {"metric-interval-zero.json", "spec.analysis.metrics[0].interval: \"0s\" is below 1s"},
        {"metric-interval-1ms.json", "spec.analysis.metrics[0].interval: \"1ms\" is below 1s"},
    };
    for (const auto& [file, expected] : field_of) {
        INFO(file);
        const std::string message = refusal(load(file));
        CHECK(message.rfind(expected, 0) == 0);
        CHECK(serin::text::is_valid_utf8(message));
        CHECK(message.size() <= serin::text::kMaxMessageBytes);
    }
}

TEST_CASE("an interval cut inside a character is quoted as valid UTF-8") {
    const std::string message = refusal(load("interval-umlauts.json"));
    CHECK(message.find("is not a duration like 30s or 1m") != std::string::npos);
    CHECK(message.find("...") != std::string::npos);
}

TEST_CASE("stepWeight 0 is fine where weights do not matter") {
    auto object = load("step-weight-zero.json");
    auto canary = serin::api::decode_canary(object);
    REQUIRE(canary.has_value());
    // The kubernetes provider runs a weighted canary as blue/green.
    CHECK(serin::analysis::validate(canary->spec, "kubernetes").has_value());
    // Blue/green by iterations.
    object["spec"]["analysis"]["iterations"] = 3;
    canary = serin::api::decode_canary(object);
    REQUIRE(canary.has_value());
    CHECK(serin::analysis::validate(canary->spec, "istio").has_value());
}

TEST_CASE("webhook timeouts and retries at the limits are accepted") {
    auto object = load("webhook-timeout-zero.json");
    object["spec"]["analysis"]["webhooks"][0]["timeout"] = "10m";
    object["spec"]["analysis"]["webhooks"][0]["retries"] = 10;
    auto canary = serin::api::decode_canary(object);
    REQUIRE(canary.has_value());
    CHECK(serin::analysis::validate(canary->spec, "istio").has_value());
}
