// kubectl-serin explain: the words for each situation a release can be in (cli/explain), from
// the JSON fixtures in tests/data/cli/.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "cli/explain.hpp"
#include "platform/core/time_format.hpp"

namespace {

using Json = nlohmann::json;
using serin::cli::ExplainInput;

Json fixture(const std::string& name) {
    std::ifstream in(std::string(SERIN_SOURCE_DIR) + "/tests/data/cli/" + name);
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    return Json::parse(text.str());
}

ExplainInput input(Json canary, Json history = Json(), std::vector<Json> events = {}) {
    return ExplainInput{std::move(canary), std::move(history), std::move(events),
                        *serin::parse_time("2026-12-05T20:00:00Z")};
}

/// All sentences, one per line, for readable failure messages.
std::string said(const ExplainInput& in) {
    std::string text;
    for (const auto& s : serin::cli::explain(in)) {
        text += s + "\n";
    }
    return text;
}

using Catch::Contains;

}  // namespace

TEST_CASE("explain names the failed check, its value and its threshold, and the budget left") {
    const std::string words = said(input(fixture("canary_progressing.json"), fixture("history.json")));
    CHECK_THAT(words, Contains("metric check request-success-rate failed: 81.39 is below its "
                               "minimum 99"));
    CHECK_THAT(words, Contains("1 failed check so far; the release is rolled back at 3 "
                               "(analysis.threshold)"));
    // The passing check is not a reason.
    CHECK_THAT(words, !Contains("request-duration"));

    Json history = fixture("history.json");
    Json& check = history["spec"]["releases"][1]["steps"][1]["checks"][1];
    check["value"] = 750;
    check["verdict"] = "Fail";
    CHECK_THAT(said(input(fixture("canary_progressing.json"), history)),
               Contains("metric check request-duration failed: 750 is above its maximum 500"));
    check.erase("value");
    check["verdict"] = "NoData";
    check["message"] = "no values found for query";
    CHECK_THAT(said(input(fixture("canary_progressing.json"), history)),
               Contains("metric check request-duration has no data: no values found for query"));
}

TEST_CASE("explain names the closed gate and what the release waits for") {
    Json canary = fixture("canary_progressing.json");
    canary["status"]["phase"] = "WaitingPromotion";
    canary["status"]["failedChecks"] = 0;
    Json history = fixture("history.json");
    Json& step = history["spec"]["releases"][1]["steps"][1];
    step["checks"] = Json::array();
    step["gates"] = {{{"name", "approve"}, {"type", "confirm-promotion"}, {"ok", false},
                      {"error", "403 Forbidden: gate closed"}}};
    const std::string words = said(input(canary, history));
    CHECK_THAT(words, Contains("podinfo finished its analysis and waits for its "
                               "confirm-promotion gate to open"));
    CHECK_THAT(words, Contains("gate approve (confirm-promotion) is closed: 403 Forbidden: gate "
                               "closed"));

    canary["status"]["phase"] = "Waiting";
    CHECK_THAT(said(input(canary)), Contains("podinfo waits for its confirm-rollout gate to open"));
}

TEST_CASE("explain names the readiness awaited from the newest Warning Event") {
    Json canary = fixture("canary_progressing.json");
    canary["status"]["failedChecks"] = 0;
    std::vector<Json> events = fixture("events_readiness.json");
    const std::string words = said(input(canary, Json(), events));
    CHECK_THAT(words, Contains("waiting for readiness: podinfo.test not ready: waiting for "
                               "rollout to finish: 1 of 2 (readyThreshold 100%) updated replicas "
                               "are available (10s ago)"));
    CHECK_THAT(words, !Contains("an older warning"));
}

TEST_CASE("explain names the pause, who asked and how to resume") {
    Json canary = fixture("canary_progressing.json");
    canary["status"]["paused"] = {{"since", "2026-12-05T19:55:00Z"},
                                  {"request", "podinfo-pause-x7k2p"}};
    const std::string words = said(input(canary));
    CHECK_THAT(words, Contains("paused by request podinfo-pause-x7k2p since "
                               "2026-12-05T19:55:00Z (5m ago): the analysis clock is frozen at "
                               "weight 20%; `kubectl serin resume podinfo` continues it"));
}

TEST_CASE("explain gives the Accepted=False reason and the suspension first") {
    Json canary = fixture("canary_progressing.json");
    canary["status"]["phase"] = "Failed";
    canary["status"]["conditions"][1] = {{"type", "Accepted"},
                                         {"status", "False"},
                                         {"reason", "InvalidSpec"},
                                         {"message", "spec.analysis.stepWeight: must be > 0"}};
    canary["spec"]["suspend"] = true;
    auto reasons = serin::cli::explain(input(canary));
    REQUIRE(reasons.size() >= 2);
    CHECK(reasons[0] == "serin does not accept podinfo's spec (InvalidSpec): "
                        "spec.analysis.stepWeight: must be > 0; nothing moves until the spec is "
                        "changed");
    CHECK_THAT(reasons[1], Contains("podinfo is suspended (spec.suspend: true)"));
}

TEST_CASE("explain says why a release failed and how to retry") {
    Json canary = fixture("canary_progressing.json");
    canary["status"]["phase"] = "Failed";
    Json history = fixture("history.json");
    history["spec"]["releases"][1]["outcome"] = "Failed";
    history["spec"]["releases"][1]["reason"] =
        "Canary analysis failed, podinfo.test failed checks threshold reached 3";
    const std::string words = said(input(canary, history));
    CHECK_THAT(words, Contains("the release of podinfo failed and was rolled back: Canary "
                               "analysis failed, podinfo.test failed checks threshold reached 3"));
    CHECK_THAT(words, Contains("metric check request-success-rate failed: 81.39"));
    CHECK_THAT(words, Contains("`kubectl serin retry podinfo`"));

    // Without a history the Promoted condition and the last Warning speak.
    canary["status"]["conditions"][0]["message"] = "Canary analysis failed, rolled back.";
    const std::string bare = said(input(canary, Json(), fixture("events_readiness.json")));
    CHECK_THAT(bare, Contains("failed and was rolled back: Canary analysis failed, rolled back."));
    CHECK_THAT(bare, Contains("last warning: podinfo.test not ready"));
}

TEST_CASE("explain describes a release at rest, one advancing and a canary never reconciled") {
    Json canary = fixture("canary_progressing.json");
    canary["status"]["phase"] = "Succeeded";
    Json history = fixture("history.json");
    history["spec"]["releases"][1]["end"] = "2026-12-05T19:59:40Z";
    CHECK_THAT(said(input(canary, history)),
               Contains("the last release of podinfo (ghcr.io/stefanprodan/podinfo:6.0.1) at "
                        "2026-12-05T19:59:40Z was promoted"));

    Json advancing = fixture("canary_progressing.json");
    advancing["status"]["failedChecks"] = 0;
    CHECK_THAT(said(input(advancing)),
               Contains("Progressing, weight 20%, step 2/5, 0 failed checks: the analysis "
                        "advances one step per 30s while the checks pass"));

    Json fresh = fixture("canary_progressing.json");
    fresh.erase("status");
    CHECK_THAT(said(input(fresh)), Contains("podinfo has no status yet"));
}

TEST_CASE("explain reports a refused request") {
    Json canary = fixture("canary_progressing.json");
    canary["status"]["requests"] = {{{"name", "podinfo-retry-abcde"},
                                     {"action", "retry"},
                                     {"requestedBy", "alice"},
                                     {"result", "Refused"},
                                     {"message", "nothing to retry: podinfo is releasing"}}};
    CHECK_THAT(said(input(canary)),
               Contains("the last request (retry by alice) was refused: nothing to retry: "
                        "podinfo is releasing"));
}
