// The Mann-Whitney port (field-notes §3.3 step 4) against R's wilcox.test: the reference values
// in tests/data/judge/reference.json come from tests/data/judge/make_reference.R.
#include "analysis/mann_whitney.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using serin::analysis::judge::mann_whitney;
using serin::analysis::judge::MannWhitney;
using serin::analysis::judge::normal_quantile;

constexpr double kRelativeTolerance = 1e-6;
constexpr double kAbsoluteTolerance = 1e-9;

nlohmann::json load_reference() {
    const auto path =
        std::filesystem::path(SERIN_SOURCE_DIR) / "tests" / "data" / "judge" / "reference.json";
    std::ifstream in(path);
    REQUIRE(in.good());
    return nlohmann::json::parse(in);
}

/// |actual − expected| / |expected| (the plain difference when R's value is exactly 0).
double relative_error(double actual, double expected) {
    const double diff = std::fabs(actual - expected);
    return expected == 0.0 ? diff : diff / std::fabs(expected);
}

/// Within 1e-6 relative of R, or 1e-9 absolute for values near zero.
bool matches_r(double actual, double expected) {
    const double diff = std::fabs(actual - expected);
    return diff <= kAbsoluteTolerance || diff <= kRelativeTolerance * std::fabs(expected);
}

}  // namespace

TEST_CASE("estimate and interval match R's wilcox.test for every reference case") {
    const nlohmann::json reference = load_reference();
    const nlohmann::json& cases = reference.at("cases");
    REQUIRE(cases.size() >= 20);
    double worst = 0.0;
    for (const nlohmann::json& c : cases) {
        const std::string name = c.at("name").get<std::string>();
        INFO("case " << name);
        const auto x = c.at("x").get<std::vector<double>>();
        const auto y = c.at("y").get<std::vector<double>>();
        const serin::Result<MannWhitney> got = mann_whitney(x, y, c.at("conf_level").get<double>());
        REQUIRE(got.has_value());
        const double expected[] = {c.at("estimate").get<double>(), c.at("lower").get<double>(),
                                   c.at("upper").get<double>()};
        const double actual[] = {got->estimate, got->lower, got->upper};
        const char* what[] = {"estimate", "lower", "upper"};
        for (int i = 0; i < 3; ++i) {
            INFO(what[i] << ": serin " << actual[i] << ", R " << expected[i]);
            CHECK(matches_r(actual[i], expected[i]));
            worst = std::max(worst, relative_error(actual[i], expected[i]));
        }
        CHECK(c.at("r_warnings").empty());
    }
    WARN("max relative error vs R over " << cases.size() << " cases: " << worst);
}

TEST_CASE("an interval end without a sign change is clamped to the search range") {
    // One canary sample below 59 primary ones: R returns the range ends (min(x) − max(y) and
    // max(x) − min(y)) for both interval ends.
    std::vector<double> y;
    for (int v = 2; v <= 60; ++v) {
        y.push_back(v);
    }
    const std::vector<double> x{1.0};
    const auto got = mann_whitney(x, y, 0.98);
    REQUIRE(got.has_value());
    CHECK(got->lower == -59.0);
    CHECK(got->upper == -1.0);
}

TEST_CASE("the shift is the location difference x − y") {
    const std::vector<double> y{1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0};
    std::vector<double> x = y;
    for (double& v : x) {
        v += 100.0;
    }
    const auto got = mann_whitney(x, y, 0.98);
    REQUIRE(got.has_value());
    CHECK(got->estimate == Approx(100.0).margin(1e-3));
    CHECK(got->lower < got->estimate);
    CHECK(got->upper > got->estimate);
    CHECK(got->lower >= 100.0 - 7.0);
    CHECK(got->upper <= 100.0 + 7.0);
}

TEST_CASE("empty samples are invalid") {
    const std::vector<double> some{1.0, 2.0};
    const std::vector<double> none;
    for (const auto& [x, y] :
         {std::pair{none, some}, std::pair{some, none}, std::pair{none, none}}) {
        const auto got = mann_whitney(x, y, 0.98);
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error().kind == serin::ErrorKind::kInvalid);
        CHECK_THAT(got.error().message, Catch::Contains("empty"));
    }
}

TEST_CASE("all observations tied (sigma = 0) is invalid") {
    const std::vector<double> fives{5.0, 5.0, 5.0};
    const std::vector<double> threes{3.0, 3.0};
    for (const auto& [x, y] : {std::pair{fives, fives}, std::pair{fives, threes},
                               std::pair{std::vector<double>{2.0}, std::vector<double>{1.0}}}) {
        const auto got = mann_whitney(x, y, 0.98);
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error().kind == serin::ErrorKind::kInvalid);
        CHECK_THAT(got.error().message, Catch::Contains("tied"));
    }
}

TEST_CASE("non-finite samples and a confidence outside (0, 1) are invalid") {
    const std::vector<double> good{1.0, 2.0, 3.0};
    const std::vector<double> with_nan{1.0, std::numeric_limits<double>::quiet_NaN()};
    const std::vector<double> with_inf{1.0, std::numeric_limits<double>::infinity()};
    CHECK(mann_whitney(with_nan, good, 0.98).error().kind == serin::ErrorKind::kInvalid);
    CHECK(mann_whitney(good, with_inf, 0.98).error().kind == serin::ErrorKind::kInvalid);
    const std::vector<double> other{2.0, 3.0, 4.5};
    for (double confidence : {0.0, 1.0, -0.5, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
        const auto got = mann_whitney(good, other, confidence);
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error().kind == serin::ErrorKind::kInvalid);
    }
}

TEST_CASE("normal_quantile agrees with R's qnorm") {
    // Values printed by R 4.2 with sprintf("%.17g", qnorm(p)).
    CHECK(normal_quantile(0.5) == 0.0);
    CHECK(normal_quantile(0.99) == Approx(2.3263478740408408).epsilon(1e-15));
    CHECK(normal_quantile(0.01) == Approx(-2.3263478740408408).epsilon(1e-15));
    CHECK(normal_quantile(0.025) == Approx(-1.9599639845400538).epsilon(1e-15));
    CHECK(normal_quantile(1e-10) == Approx(-6.3613409024040557).epsilon(1e-15));
    CHECK(normal_quantile(0.4999) == Approx(-0.00025066283008800752).epsilon(1e-13));
    CHECK(normal_quantile(1e-300) == Approx(-37.047096299361201).epsilon(1e-15));
    CHECK(std::isinf(normal_quantile(0.0)));
    CHECK(std::isinf(normal_quantile(1.0)));
    CHECK(std::isnan(normal_quantile(1.5)));
}
