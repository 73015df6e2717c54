// kubectl-serin's table, steps and history output (cli/format), from the JSON fixtures in
// tests/data/cli/.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "cli/format.hpp"
#include "platform/core/time_format.hpp"

namespace {

using serin::cli::Json;
namespace cli = serin::cli;

Json fixture(const std::string& name) {
    std::ifstream in(std::string(SERIN_SOURCE_DIR) + "/tests/data/cli/" + name);
    REQUIRE(in.good());
    std::stringstream text;
    text << in.rdbuf();
    return Json::parse(text.str());
}

serin::SystemTime at(const std::string& text) {
    auto t = serin::parse_time(text);
    REQUIRE(t.has_value());
    return *t;
}

std::string step_text(const Json& canary) {
    auto step = cli::release_step(canary);
    return step ? std::to_string(step->index) + "/" + std::to_string(step->total) : "-";
}

std::string strip_ansi(const std::string& text) {
    return std::regex_replace(text, std::regex("\x1b\\[[0-9;]*m"), "");
}

}  // namespace

TEST_CASE("step i/n of a canary release counts weight steps up to maxWeight") {
    Json canary = fixture("canary_progressing.json");  // stepWeight 10, maxWeight 50, weight 20
    CHECK(cli::strategy_of(canary) == cli::Strategy::kCanary);
    CHECK(step_text(canary) == "2/5");
    canary["status"]["canaryWeight"] = 0;
    CHECK(step_text(canary) == "0/5");
    canary["status"]["canaryWeight"] = 50;
    CHECK(step_text(canary) == "5/5");
    // A maxWeight that is not a multiple of the step still ends on a last, shorter step.
    canary["spec"]["analysis"]["maxWeight"] = 45;
    canary["status"]["canaryWeight"] = 45;
    CHECK(step_text(canary) == "5/5");
}

TEST_CASE("step i/n of a canary release with stepWeights counts the listed weights") {
    Json canary = fixture("canary_progressing.json");
    canary["spec"]["analysis"].erase("stepWeight");
    canary["spec"]["analysis"]["stepWeights"] = {5, 10, 25, 50};
    canary["status"]["canaryWeight"] = 10;
    CHECK(step_text(canary) == "2/4");
    canary["status"]["canaryWeight"] = 50;
    CHECK(step_text(canary) == "4/4");
}

TEST_CASE("step i/n of blue-green and A/B releases counts iterations") {
    Json blue_green = fixture("canary_blue_green.json");
    CHECK(cli::strategy_of(blue_green) == cli::Strategy::kBlueGreen);
    CHECK(step_text(blue_green) == "3/5");
    // The kubernetes provider without iterations: serin runs 10 (analysis/release.cpp).
    blue_green["spec"]["analysis"].erase("iterations");
    CHECK(step_text(blue_green) == "3/10");

    Json ab = fixture("canary_ab_testing.json");
    CHECK(cli::strategy_of(ab) == cli::Strategy::kABTesting);
    CHECK(step_text(ab) == "4/10");
    // A/B testing needs routing by header: on the kubernetes provider it is blue/green.
    ab["spec"]["provider"] = "kubernetes";
    CHECK(cli::strategy_of(ab) == cli::Strategy::kBlueGreen);
}

TEST_CASE("a canary that is not releasing has no step") {
    Json canary = fixture("canary_progressing.json");
    for (const char* phase : {"Succeeded", "Failed", "Initialized", ""}) {
        canary["status"]["phase"] = phase;
        CHECK(step_text(canary) == "-");
    }
    canary.erase("status");
    CHECK(step_text(canary) == "-");
}

TEST_CASE("the CHECKS column holds the last step's values and marks failed checks") {
    CHECK(cli::checks_summary(fixture("history.json")) ==
          "request-success-rate=81.39! request-duration=312.5");
    CHECK(cli::checks_summary(Json::object()).empty());
    Json no_data = fixture("history.json");
    no_data["spec"]["releases"][1]["steps"][1]["checks"][0].erase("value");
    no_data["spec"]["releases"][1]["steps"][1]["checks"][0]["verdict"] = "NoData";
    CHECK(cli::checks_summary(no_data) == "request-success-rate=? request-duration=312.5");
}

TEST_CASE("the get table has kubectl's columns, one row per canary") {
    const auto now = at("2026-12-05T20:00:00Z");
    const Json history = fixture("history.json");
    std::vector<cli::CanaryRow> rows = {
        cli::make_row(fixture("canary_progressing.json"), &history, now),
        cli::make_row(fixture("canary_blue_green.json"), nullptr, now),
        cli::make_row(fixture("canary_ab_testing.json"), nullptr, now)};
    const std::string table = cli::render_rows(rows, true, cli::Style{false});
    CHECK(table ==
          "NAMESPACE   NAME      PHASE         WEIGHT   STEP   FAILED   CHECKS"
          "                                               AGE\n"
          "test        podinfo   Progressing   20       2/5    1        "
          "request-success-rate=81.39! request-duration=312.5   3h\n"
          "prod        web       Progressing   0        3/5    0        -"
          "                                                    2d\n"
          "prod        shop      Progressing   0        4/10   0        -"
          "                                                    30m\n");
    // Without -A the namespace column goes.
    CHECK(cli::render_rows({rows[1]}, false, cli::Style{false}) ==
          "NAME   PHASE         WEIGHT   STEP   FAILED   CHECKS   AGE\n"
          "web    Progressing   0        3/5    0        -        2d\n");
    const Json json = cli::row_json(rows[0]);
    CHECK(json["step"] == Json{{"index", 2}, {"total", 5}});
    CHECK(json["checks"] == "request-success-rate=81.39! request-duration=312.5");
}

TEST_CASE("colour paints the phase without moving the columns, and only when asked") {
    const auto now = at("2026-12-05T20:00:00Z");
    Json failed = fixture("canary_blue_green.json");
    failed["status"]["phase"] = "Failed";
    std::vector<cli::CanaryRow> rows = {cli::make_row(fixture("canary_blue_green.json"), nullptr, now),
                                        cli::make_row(failed, nullptr, now)};
    const std::string plain = cli::render_rows(rows, false, cli::Style{false});
    const std::string coloured = cli::render_rows(rows, false, cli::Style{true});
    CHECK(plain.find('\x1b') == std::string::npos);
    CHECK(coloured.find("\x1b[33mProgressing\x1b[0m") != std::string::npos);
    CHECK(coloured.find("\x1b[31mFailed\x1b[0m") != std::string::npos);
    CHECK(strip_ansi(coloured) == plain);
}

TEST_CASE("AGE reads like kubectl's") {
    using std::chrono::seconds;
    CHECK(cli::format_age(seconds(45)) == "45s");
    CHECK(cli::format_age(seconds(119)) == "119s");
    CHECK(cli::format_age(seconds(600)) == "10m");
    CHECK(cli::format_age(seconds(5 * 3600)) == "5h");
    CHECK(cli::format_age(seconds(3 * 86400)) == "3d");
    CHECK(cli::format_age(seconds(-5)) == "0s");
}

TEST_CASE("status_line puts the release in words per strategy") {
    CHECK(cli::status_line(fixture("canary_progressing.json")) ==
          "test/podinfo: Progressing, weight 20%, step 2/5, 1 failed check");
    CHECK(cli::status_line(fixture("canary_blue_green.json")) ==
          "prod/web: Progressing, iteration 3/5, 0 failed checks");
    Json done = fixture("canary_progressing.json");
    done["status"]["phase"] = "Succeeded";
    CHECK(cli::status_line(done) == "test/podinfo: Succeeded");
}

TEST_CASE("history lists releases newest first, with their steps on request") {
    const Json history = fixture("history.json");
    const std::string table = cli::render_history(history, false, cli::Style{false});
    auto newest = table.find("ghcr.io/stefanprodan/podinfo:6.0.1");
    auto oldest = table.find("ghcr.io/stefanprodan/podinfo:6.0.0");
    REQUIRE(newest != std::string::npos);
    REQUIRE(oldest != std::string::npos);
    CHECK(newest < oldest);
    CHECK(table.find("Running") != std::string::npos);
    CHECK(table.find("TIME") == std::string::npos);

    const std::string steps = cli::render_history(history, true, cli::Style{false});
    CHECK(steps.find("request-success-rate=81.39! request-duration=312.5") != std::string::npos);
    CHECK(steps.find("load-test=open") != std::string::npos);
    CHECK(cli::render_history(Json::object(), true, cli::Style{false}) == "no releases recorded\n");
}

TEST_CASE("-o yaml keeps strings that look like numbers or booleans strings") {
    const std::string yaml =
        cli::to_yaml(Json{{"name", "podinfo"}, {"weight", 20}, {"version", "1"}, {"flag", "true"},
                          {"list", {1, "two"}}});
    CHECK(yaml.find("name: podinfo") != std::string::npos);
    CHECK(yaml.find("weight: 20") != std::string::npos);
    CHECK(yaml.find("version: \"1\"") != std::string::npos);
    CHECK(yaml.find("flag: \"true\"") != std::string::npos);
}

TEST_CASE("hostile objects are read without throwing") {
    for (const Json& odd : {Json(nullptr), Json(42), Json::array(),
                            Json{{"status", "x"}, {"spec", {{"analysis", {{"stepWeight", "10"}}}}}},
                            Json{{"status", {{"phase", "Progressing"}, {"canaryWeight", 1e300}}},
                                 {"spec", {{"analysis", {{"stepWeight", -5}}}}}}}) {
        CHECK_NOTHROW(cli::make_row(odd, &odd, at("2026-12-05T20:00:00Z")));
        CHECK_NOTHROW(cli::status_line(odd));
        CHECK_NOTHROW(cli::render_history(odd, true, cli::Style{true}));
    }
}
