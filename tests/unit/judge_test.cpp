// Kayenta-style classification and scoring (field-notes §3.2-§3.4).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "analysis/canary_judge.hpp"
#include "analysis/mann_whitney.hpp"

namespace {

using namespace serin::analysis::judge;

/// n latency-like samples without randomness: the (i + 0.5)/n quantiles of N(mean, sd²).
std::vector<double> normal_sample(std::size_t n, double mean, double sd) {
    std::vector<double> out;
    for (std::size_t i = 0; i < n; ++i) {
        const double p = (static_cast<double>(i) + 0.5) / static_cast<double>(n);
        out.push_back(mean + sd * normal_quantile(p));
    }
    return out;
}

std::vector<double> scaled(std::vector<double> values, double factor) {
    for (double& v : values) {
        v *= factor;
    }
    return values;
}

std::vector<double> shifted(std::vector<double> values, double offset) {
    for (double& v : values) {
        v += offset;
    }
    return values;
}

MetricConfig with_direction(Direction direction) {
    MetricConfig config;
    config.direction = direction;
    return config;
}

NamedClassification named(std::string name, Label label, bool critical = false) {
    NamedClassification metric;
    metric.name = std::move(name);
    metric.result.label = label;
    metric.result.critical = critical;
    metric.result.reason = "test";
    return metric;
}

const std::vector<double> kPrimaryLatency = normal_sample(60, 100.0, 10.0);

}  // namespace

TEST_CASE("labels, summaries and config names use Kayenta's spelling") {
    CHECK(to_string(Label::kPass) == "Pass");
    CHECK(to_string(Label::kHigh) == "High");
    CHECK(to_string(Label::kLow) == "Low");
    CHECK(to_string(Label::kNodata) == "Nodata");
    CHECK(to_string(Label::kNodataFailMetric) == "NodataFailMetric");
    CHECK(to_string(Label::kError) == "Error");
    CHECK(to_string(Summary::kPass) == "Pass");
    CHECK(to_string(Summary::kMarginal) == "Marginal");
    CHECK(to_string(Summary::kFail) == "Fail");
    CHECK(parse_direction("either") == Direction::kEither);
    CHECK(parse_direction("increase") == Direction::kIncrease);
    CHECK(parse_direction("decrease") == Direction::kDecrease);
    CHECK_FALSE(parse_direction("Increase").has_value());
    CHECK_FALSE(parse_direction("").has_value());
    CHECK(parse_effect_measure("meanRatio") == EffectMeasure::kMeanRatio);
    CHECK(parse_effect_measure("cles") == EffectMeasure::kCles);
    CHECK_FALSE(parse_effect_measure("ratio").has_value());
}

TEST_CASE("a 30% latency increase is High when increases are flagged") {
    const auto canary = scaled(kPrimaryLatency, 1.3);
    for (Direction direction : {Direction::kIncrease, Direction::kEither}) {
        const Classification c = classify(canary, kPrimaryLatency, with_direction(direction));
        CHECK(c.label == Label::kHigh);
        CHECK_FALSE(c.critical);
        CHECK(c.estimate == Approx(30.0).epsilon(0.1));
        CHECK(c.ci_lower > 0.25 * std::fabs(c.estimate));
        CHECK(c.ratio == Approx(1.3));
        CHECK(c.effect_size == Approx(1.3));
        CHECK(c.canary_count == 60);
        CHECK(c.primary_count == 60);
        CHECK(c.canary_mean == Approx(130.0));
        CHECK(c.primary_mean == Approx(100.0));
        CHECK_THAT(c.reason, Catch::StartsWith("Canary is higher than primary"));
    }
}

TEST_CASE("a 30% latency increase passes when only decreases are flagged") {
    const Classification c = classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency,
                                      with_direction(Direction::kDecrease));
    CHECK(c.label == Label::kPass);
    CHECK_THAT(c.reason, Catch::Contains("only a decrease is flagged"));
}

TEST_CASE("a 30% drop is Low unless only increases are flagged") {
    const auto canary = scaled(kPrimaryLatency, 0.7);
    CHECK(classify(canary, kPrimaryLatency, with_direction(Direction::kEither)).label ==
          Label::kLow);
    CHECK(classify(canary, kPrimaryLatency, with_direction(Direction::kDecrease)).label ==
          Label::kLow);
    CHECK(classify(canary, kPrimaryLatency, with_direction(Direction::kIncrease)).label ==
          Label::kPass);
}

TEST_CASE("a small shift whose interval reaches the tolerance band passes") {
    // +1 ms on a 100 ± 10 ms latency: the 98% interval of the shift straddles zero.
    const Classification c = classify(shifted(kPrimaryLatency, 1.0), kPrimaryLatency, {});
    CHECK(c.label == Label::kPass);
    CHECK(c.estimate == Approx(1.0).margin(0.5));
    CHECK(c.ci_lower < 0.25 * std::fabs(c.estimate));
    CHECK(c.ci_upper > -0.25 * std::fabs(c.estimate));
    CHECK_THAT(c.reason, Catch::StartsWith("No significant difference"));
}

TEST_CASE("identical samples pass without a test") {
    auto reordered = kPrimaryLatency;
    std::reverse(reordered.begin(), reordered.end());
    const Classification c = classify(reordered, kPrimaryLatency, {});
    CHECK(c.label == Label::kPass);
    CHECK(std::isnan(c.estimate));
    CHECK(c.ratio == Approx(1.0));
    CHECK(c.reason == "Canary and primary samples are identical");
}

TEST_CASE("a single distinct value overall passes") {
    const Classification c = classify({7.0, 7.0}, {7.0, 7.0, 7.0}, {});
    CHECK(c.label == Label::kPass);
    CHECK(c.reason == "All samples have the same value 7");
}

TEST_CASE("an empty canary is Nodata, or NodataFailMetric when the metric must have data") {
    MetricConfig config;
    Classification c = classify({}, kPrimaryLatency, config);
    CHECK(c.label == Label::kNodata);
    CHECK_FALSE(c.critical);
    CHECK(c.canary_count == 0);
    CHECK(c.primary_count == 60);
    CHECK(std::isnan(c.canary_mean));
    CHECK(std::isnan(c.ratio));

    config.must_have_data = true;
    c = classify({}, kPrimaryLatency, config);
    CHECK(c.label == Label::kNodataFailMetric);
    CHECK_FALSE(c.critical);

    // A critical metric stays Nodata but is marked critical (it fails the canary when scored).
    config.critical = true;
    c = classify({}, kPrimaryLatency, config);
    CHECK(c.label == Label::kNodata);
    CHECK(c.critical);
}

TEST_CASE("NaN and infinite samples are removed before judging") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    CHECK(classify({nan, inf, -inf}, kPrimaryLatency, {}).label == Label::kNodata);
    auto canary = scaled(kPrimaryLatency, 1.3);
    canary.push_back(nan);
    canary.push_back(inf);
    const Classification c = classify(canary, kPrimaryLatency, {});
    CHECK(c.label == Label::kHigh);
    CHECK(c.canary_count == 60);
}

TEST_CASE("a failing test is Error with the reason, critical for a critical metric") {
    MetricConfig config;
    config.confidence = 1.5;
    Classification c = classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config);
    CHECK(c.label == Label::kError);
    CHECK_FALSE(c.critical);
    CHECK_THAT(c.reason, Catch::StartsWith("Metric Classification Failed: "));
    CHECK_THAT(c.reason, Catch::Contains("confidence"));
    config.critical = true;
    c = classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config);
    CHECK(c.label == Label::kError);
    CHECK(c.critical);
}

TEST_CASE("cles is the Vargha-Delaney A of canary over primary") {
    MetricConfig config;
    config.measure = EffectMeasure::kCles;
    // Pooled ranks 1..4; the canary holds ranks 1 and 3: (2·4 − 2·3) / (2·2·2) = 0.25.
    CHECK(classify({1.0, 3.0}, {2.0, 4.0}, config).effect_size == Approx(0.25));
    // A tie at 2 shares rank 2.5: canary rank sum 3.5 → (7 − 6) / 8 = 0.125.
    CHECK(classify({1.0, 2.0}, {2.0, 3.0}, config).effect_size == Approx(0.125));
    // Every canary sample above every primary one.
    const Classification high = classify(shifted(kPrimaryLatency, 100.0), kPrimaryLatency, config);
    CHECK(high.effect_size == 1.0);
    CHECK(high.label == Label::kHigh);
    // The mean ratio is still reported.
    CHECK(high.ratio == Approx(2.0));
    // 30% up: most, not all, canary samples are above the primary ones.
    const Classification up = classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config);
    CHECK(up.effect_size > 0.9);
    CHECK(up.effect_size < 1.0);
    CHECK(up.label == Label::kHigh);
    // Requiring A ≥ 0.99 turns the same change into a Pass.
    config.allowed_increase = 0.99;
    CHECK(classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config).label == Label::kPass);
}

TEST_CASE("allowedIncrease 1.5 stops a 1.3x mean ratio from being High") {
    MetricConfig config;
    config.allowed_increase = 1.5;
    const Classification c = classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config);
    CHECK(c.label == Label::kPass);
    CHECK(c.ci_lower > 0.25 * std::fabs(c.estimate));  // significant, but too small an effect
    CHECK_THAT(c.reason, Catch::Contains("below the allowed increase 1.5"));
    config.allowed_increase = 1.25;
    CHECK(classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config).label == Label::kHigh);
}

TEST_CASE("allowedDecrease gates Low the same way") {
    MetricConfig config;
    config.allowed_decrease = 0.5;
    CHECK(classify(scaled(kPrimaryLatency, 0.7), kPrimaryLatency, config).label == Label::kPass);
    config.allowed_decrease = 0.75;
    CHECK(classify(scaled(kPrimaryLatency, 0.7), kPrimaryLatency, config).label == Label::kLow);
}

TEST_CASE("critical escalation needs the critical effect size") {
    MetricConfig config;
    config.critical = true;
    Classification c = classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config);
    CHECK(c.label == Label::kHigh);
    CHECK(c.critical);

    config.critical_increase = 1.5;
    c = classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config);
    CHECK(c.label == Label::kHigh);
    CHECK_FALSE(c.critical);

    config.critical_decrease = 0.5;
    c = classify(scaled(kPrimaryLatency, 0.7), kPrimaryLatency, config);
    CHECK(c.label == Label::kLow);
    CHECK_FALSE(c.critical);
    config.critical_decrease = 0.75;
    CHECK(classify(scaled(kPrimaryLatency, 0.7), kPrimaryLatency, config).critical);

    // A Pass is never critical, and neither is a non-critical metric's High.
    CHECK_FALSE(classify(kPrimaryLatency, kPrimaryLatency, config).critical);
    CHECK_FALSE(classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, {}).critical);
}

TEST_CASE("outlier removal drops only what lies outside the 1st-99th percentile range") {
    // 97 samples at 10, then 11, 12 and 1000. Q1 = Q3 = 10, so the IQR fence alone would drop
    // 11 and 12 too; P99 (R-7) = 12 + 0.01 · 988 = 21.88 keeps them and drops only 1000.
    std::vector<double> canary(97, 10.0);
    canary.push_back(11.0);
    canary.push_back(12.0);
    canary.push_back(1000.0);
    MetricConfig config;
    config.remove_outliers = true;
    Classification c = classify(canary, kPrimaryLatency, config);
    CHECK(c.canary_count == 99);
    CHECK(c.canary_mean == Approx((97.0 * 10.0 + 11.0 + 12.0) / 99.0));
    CHECK(c.primary_count == 60);  // nothing in a normal sample is beyond 3 IQR

    // 1..99 and 1e6: P99 = 99 + 0.01 · (1e6 − 99) ≈ 10099 is above Q3 + 3·IQR = 223.75, and
    // the fence there removes only the 1e6.
    std::vector<double> wide;
    for (int v = 1; v <= 99; ++v) {
        wide.push_back(v);
    }
    wide.push_back(1e6);
    c = classify(wide, kPrimaryLatency, config);
    CHECK(c.canary_count == 99);
    CHECK(c.canary_mean == Approx(50.0));

    // Without the option everything stays.
    c = classify(canary, kPrimaryLatency, {});
    CHECK(c.canary_count == 100);
}

TEST_CASE("the ties guard makes two constant sides comparable, deterministically") {
    const std::vector<double> twos(10, 2.0);
    const std::vector<double> ones(10, 1.0);
    const Classification first = classify(twos, ones, {});
    const Classification second = classify(twos, ones, {});
    CHECK(first.label == Label::kHigh);
    CHECK(first.estimate == Approx(1.0).epsilon(1e-3));
    CHECK(first.ratio == 2.0);  // from the real samples, not the jittered ones
    CHECK(second.label == first.label);
    CHECK(second.estimate == first.estimate);
    CHECK(second.ci_lower == first.ci_lower);
    CHECK(second.ci_upper == first.ci_upper);

    const Classification low = classify(ones, twos, {});
    CHECK(low.label == Label::kLow);
    CHECK(classify(ones, twos, {}).estimate == low.estimate);
    CHECK(classify(twos, ones, with_direction(Direction::kDecrease)).label == Label::kPass);

    // With one sample per side there is still nothing to rank: the test fails and says why.
    const Classification single = classify({2.0}, {1.0}, {});
    CHECK(single.label == Label::kError);
    CHECK_THAT(single.reason, Catch::Contains("tied"));
}

TEST_CASE("a critical High scores 0 with the metric named in the reason") {
    const std::vector<NamedClassification> metrics{
        named("request-success-rate", Label::kPass),
        named("request-duration", Label::kHigh, true),
        named("cpu", Label::kPass),
    };
    const Score s = score(metrics, 95, 50);
    CHECK(s.score == 0.0);
    CHECK(s.summary == Summary::kFail);
    CHECK_THAT(s.reason, Catch::StartsWith("Canary Failed: request-duration High"));
}

TEST_CASE("a classified critical High fails the canary through score") {
    MetricConfig config;
    config.critical = true;
    const std::vector<NamedClassification> metrics{
        {"latency", classify(scaled(kPrimaryLatency, 1.3), kPrimaryLatency, config)},
        {"errors", classify(kPrimaryLatency, kPrimaryLatency, {})},
    };
    const Score s = score(metrics, 95, 50);
    CHECK(s.score == 0.0);
    CHECK(s.summary == Summary::kFail);
    CHECK_THAT(s.reason, Catch::StartsWith("Canary Failed: latency High"));
    // Without a marginal threshold a score of 0 would be Marginal; a critical failure is a Fail.
    CHECK(score(metrics, 95, -1).summary == Summary::kFail);
}

TEST_CASE("2 of 3 passing metrics score 66.67, Marginal at pass 95 / marginal 50") {
    const std::vector<NamedClassification> metrics{
        named("request-success-rate", Label::kPass),
        named("request-duration", Label::kHigh),
        named("cpu", Label::kPass),
    };
    const Score s = score(metrics, 95, 50);
    CHECK(s.score == 66.67);
    CHECK(s.summary == Summary::kMarginal);
    CHECK_THAT(s.reason, Catch::Contains("2 of 3 counted metrics passed"));
    CHECK_THAT(s.reason, Catch::Contains("High: request-duration"));
}

TEST_CASE("Nodata and Error are left out of the score but NodataFailMetric counts as a failure") {
    const std::vector<NamedClassification> metrics{
        named("a", Label::kPass),  named("b", Label::kPass),   named("c", Label::kLow),
        named("d", Label::kError), named("e", Label::kNodata),
    };
    Score s = score(metrics, 95, 50);
    CHECK(s.score == 66.67);
    CHECK_THAT(s.reason, Catch::Contains("Low: c"));
    CHECK_THAT(s.reason, Catch::Contains("Nodata: e"));
    CHECK_THAT(s.reason, Catch::Contains("Error: d"));

    const std::vector<NamedClassification> must{named("a", Label::kPass),
                                                named("b", Label::kNodataFailMetric)};
    s = score(must, 95, 50);
    CHECK(s.score == 50.0);
    CHECK(s.summary == Summary::kFail);  // at the marginal threshold is a Fail
}

TEST_CASE("no counted metrics scores 100") {
    const std::vector<NamedClassification> errors{named("a", Label::kError)};
    const Score s = score(errors, 95, 50);
    CHECK(s.score == 100.0);
    CHECK(s.summary == Summary::kPass);
    CHECK(score({}, 95, 50).score == 100.0);
}

TEST_CASE("half or more of the metrics without data scores 0") {
    const std::vector<NamedClassification> metrics{named("a", Label::kPass),
                                                   named("b", Label::kNodata)};
    const Score s = score(metrics, 95, 50);
    CHECK(s.score == 0.0);
    CHECK(s.summary == Summary::kFail);
    CHECK_THAT(s.reason, Catch::StartsWith("Canary Failed: 1 of 2 metrics have no data"));

    const std::vector<NamedClassification> fewer{named("a", Label::kPass), named("b", Label::kPass),
                                                 named("c", Label::kNodata)};
    CHECK(score(fewer, 95, 50).score == 100.0);
}

TEST_CASE("summary thresholds: at pass is Pass, above marginal is Marginal, at marginal is Fail") {
    std::vector<NamedClassification> metrics;
    for (int i = 0; i < 19; ++i) {
        metrics.push_back(named("m" + std::to_string(i), Label::kPass));
    }
    metrics.push_back(named("bad", Label::kHigh));
    Score s = score(metrics, 95, 50);  // 19 / 20 = 95
    CHECK(s.score == 95.0);
    CHECK(s.summary == Summary::kPass);
    s = score(metrics, 95.01, 94.99);
    CHECK(s.summary == Summary::kMarginal);
    s = score(metrics, 99, 95);
    CHECK(s.summary == Summary::kFail);
}
