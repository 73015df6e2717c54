#include "analysis/canary_judge.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numbers>
#include <random>

#include "analysis/mann_whitney.hpp"

namespace serin::analysis::judge {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Relative standard deviation of the jitter the ties guard adds (§3.3 step 3).
constexpr double kTieNoiseScale = 1e-5;
// A fixed seed keeps the ties guard, and so every verdict, reproducible run to run.
constexpr std::uint64_t kTieNoiseSeed = 0x5e41'9a7d'c0de'2024ULL;
// At least this share of Nodata results fails the canary (Kayenta's NODATA_THRESHOLD).
constexpr double kNodataThresholdPercent = 50.0;

std::string format_number(double value) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.6g", value);
    return buffer;
}

double mean(const std::vector<double>& values) {
    if (values.empty()) {
        return kNaN;
    }
    double sum = 0.0;
    for (double v : values) {
        sum += v;
    }
    return sum / static_cast<double>(values.size());
}

void remove_non_finite(std::vector<double>& values) {
    std::erase_if(values, [](double v) { return !std::isfinite(v); });
}

/// The p-quantile (p in [0, 1]) of sorted, non-empty data by the R-7 rule (linear interpolation
/// between order statistics at (n − 1)·p), as Apache Commons' Percentile with R_7 computes it.
double percentile_r7(const std::vector<double>& sorted, double p) {
    const double h = static_cast<double>(sorted.size() - 1) * p;
    const auto below = static_cast<std::size_t>(std::floor(h));
    if (below + 1 >= sorted.size()) {
        return sorted.back();
    }
    const double fraction = h - static_cast<double>(below);
    return sorted[below] + fraction * (sorted[below + 1] - sorted[below]);
}

/// Kayenta's IQR outlier detector with reduced sensitivity (§3.2 step 2): keeps values within
/// [min(P1, Q1 − f·IQR), max(P99, Q3 + f·IQR)], so the 1st-99th percentile range always stays.
void remove_outliers(std::vector<double>& values, double factor) {
    if (values.empty()) {
        return;
    }
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    const double q1 = percentile_r7(sorted, 0.25);
    const double q3 = percentile_r7(sorted, 0.75);
    const double iqr = q3 - q1;
    const double low = std::min(percentile_r7(sorted, 0.01), q1 - factor * iqr);
    const double high = std::max(percentile_r7(sorted, 0.99), q3 + factor * iqr);
    std::erase_if(values, [&](double v) { return v < low || v > high; });
}

bool single_distinct_value(const std::vector<double>& values) {
    return std::adjacent_find(values.begin(), values.end(), std::not_equal_to<>()) == values.end();
}

/// One standard normal draw by the Box-Muller transform. std::normal_distribution is not used
/// because its algorithm differs between standard libraries; mt19937_64's output does not.
double standard_normal(std::mt19937_64& engine) {
    constexpr double kTwoPow53 = 9007199254740992.0;
    const double u1 = (static_cast<double>(engine() >> 11) + 1.0) / kTwoPow53;  // (0, 1]
    const double u2 = static_cast<double>(engine() >> 11) / kTwoPow53;          // [0, 1)
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

/// Adds Gaussian noise with σ = kTieNoiseScale × |v| to each value v (zero stays zero).
void add_tie_noise(std::vector<double>& values, std::mt19937_64& engine) {
    for (double& v : values) {
        v += kTieNoiseScale * std::fabs(v) * standard_normal(engine);
    }
}

/// Vargha-Delaney A: (2·R₁ − m(m+1)) / (2·m·n), R₁ the rank sum of x in the pooled sample
/// (average ranks for ties). Both samples non-empty.
double cles(const std::vector<double>& x, const std::vector<double>& y) {
    struct Tagged {
        double value;
        bool from_x;
    };
    std::vector<Tagged> pooled;
    pooled.reserve(x.size() + y.size());
    for (double v : x) {
        pooled.push_back({v, true});
    }
    for (double v : y) {
        pooled.push_back({v, false});
    }
    std::sort(pooled.begin(), pooled.end(),
              [](const Tagged& a, const Tagged& b) { return a.value < b.value; });
    double rank_sum_x = 0.0;
    for (std::size_t start = 0; start < pooled.size();) {
        std::size_t end = start;
        std::size_t in_x = 0;
        while (end < pooled.size() && pooled[end].value == pooled[start].value) {
            in_x += pooled[end].from_x ? 1 : 0;
            ++end;
        }
        const double average_rank = static_cast<double>(start + 1 + end) / 2.0;
        rank_sum_x += static_cast<double>(in_x) * average_rank;
        start = end;
    }
    const auto m = static_cast<double>(x.size());
    const auto n = static_cast<double>(y.size());
    return (2.0 * rank_sum_x - m * (m + 1.0)) / (2.0 * m * n);
}

double neutral_effect(EffectMeasure measure) {
    return measure == EffectMeasure::kMeanRatio ? 1.0 : 0.5;
}

std::string effect_name(EffectMeasure measure) {
    return measure == EffectMeasure::kMeanRatio ? "mean ratio" : "cles";
}

std::string interval_text(const Classification& c, double confidence) {
    return "shift " + format_number(c.estimate) + " with " + format_number(confidence * 100.0) +
           "% interval [" + format_number(c.ci_lower) + ", " + format_number(c.ci_upper) + "]";
}

}  // namespace

std::string_view to_string(Label label) {
    switch (label) {
        case Label::kPass:
            return "Pass";
        case Label::kHigh:
            return "High";
        case Label::kLow:
            return "Low";
        case Label::kNodata:
            return "Nodata";
        case Label::kNodataFailMetric:
            return "NodataFailMetric";
        case Label::kError:
            return "Error";
    }
    return "Error";
}

std::optional<Direction> parse_direction(std::string_view text) {
    if (text == "either") {
        return Direction::kEither;
    }
    if (text == "increase") {
        return Direction::kIncrease;
    }
    if (text == "decrease") {
        return Direction::kDecrease;
    }
    return std::nullopt;
}

std::optional<EffectMeasure> parse_effect_measure(std::string_view text) {
    if (text == "meanRatio") {
        return EffectMeasure::kMeanRatio;
    }
    if (text == "cles") {
        return EffectMeasure::kCles;
    }
    return std::nullopt;
}

namespace {

/// §3.3 steps 5-8: the label from where the confidence interval lies against the tolerance band
/// and the effect size, and whether a failure fails the whole canary.
void label_by_interval(Classification& out, const MetricConfig& config, double effect) {
    // §3.3 steps 5-7.
    const double band = config.tolerance * std::fabs(out.estimate);
    const double lower_bound = -band;
    const double upper_bound = band;
    const double neutral = neutral_effect(config.measure);
    const double allowed_increase = config.allowed_increase.value_or(neutral);
    const double allowed_decrease = config.allowed_decrease.value_or(neutral);
    const bool effect_unknown = std::isnan(effect);
    const bool higher = out.ci_lower > upper_bound;
    const bool lower = out.ci_upper < lower_bound;
    const bool flags_increase = config.direction != Direction::kDecrease;
    const bool flags_decrease = config.direction != Direction::kIncrease;
    const std::string interval = interval_text(out, config.confidence);
    const std::string effect_text = effect_name(config.measure) + " " + format_number(effect);

    if (higher && flags_increase && (effect_unknown || effect >= allowed_increase)) {
        out.label = Label::kHigh;
        out.reason = "Canary is higher than primary: " + interval + " above the tolerance " +
                     format_number(upper_bound) + "; " + effect_text;
    } else if (lower && flags_decrease && (effect_unknown || effect <= allowed_decrease)) {
        out.label = Label::kLow;
        out.reason = "Canary is lower than primary: " + interval + " below the tolerance " +
                     format_number(lower_bound) + "; " + effect_text;
    } else {
        out.label = Label::kPass;
        if (higher && !flags_increase) {
            out.reason =
                "Canary is higher than primary, but only a decrease is flagged: " + interval +
                "; " + effect_text;
        } else if (lower && !flags_decrease) {
            out.reason =
                "Canary is lower than primary, but only an increase is flagged: " + interval +
                "; " + effect_text;
        } else if (higher) {
            out.reason = "Canary is higher than primary, but the " + effect_text +
                         " is below the allowed increase " + format_number(allowed_increase) +
                         ": " + interval;
        } else if (lower) {
            out.reason = "Canary is lower than primary, but the " + effect_text +
                         " is above the allowed decrease " + format_number(allowed_decrease) +
                         ": " + interval;
        } else {
            out.reason = "No significant difference: " + interval + " overlaps the tolerance ±" +
                         format_number(band) + "; " + effect_text;
        }
    }

    // §3.3 step 8: does this failure fail the whole canary?
    if (config.critical) {
        const double critical_increase = config.critical_increase.value_or(neutral);
        const double critical_decrease = config.critical_decrease.value_or(neutral);
        out.critical =
            (out.label == Label::kHigh && (effect_unknown || effect >= critical_increase)) ||
            (out.label == Label::kLow && (effect_unknown || effect <= critical_decrease));
    }
}

}  // namespace

Classification classify(std::vector<double> canary, std::vector<double> primary,
                        const MetricConfig& config) {
    // §3.2: preprocessing, then the descriptive numbers of what is left.
    remove_non_finite(canary);
    remove_non_finite(primary);
    if (config.remove_outliers) {
        remove_outliers(canary, config.outlier_factor);
        remove_outliers(primary, config.outlier_factor);
    }
    Classification out;
    out.canary_count = canary.size();
    out.primary_count = primary.size();
    out.canary_mean = mean(canary);
    out.primary_mean = mean(primary);
    if (!canary.empty() && !primary.empty() && out.canary_mean != 0.0 && out.primary_mean != 0.0) {
        out.ratio = out.canary_mean / out.primary_mean;
    }

    // §3.3 step 1: no data.
    if (canary.empty() || primary.empty()) {
        const std::string counts = "canary has " + std::to_string(canary.size()) +
                                   " samples, primary " + std::to_string(primary.size());
        if (config.must_have_data && !config.critical) {
            out.label = Label::kNodataFailMetric;
            out.critical = false;
            out.reason = "No data and the metric must have data: " + counts;
        } else {
            out.label = Label::kNodata;
            out.critical = config.critical;
            out.reason = "No data: " + counts;
        }
        return out;
    }

    // §3.3 step 2: nothing to compare.
    std::sort(canary.begin(), canary.end());
    std::sort(primary.begin(), primary.end());
    if (canary == primary) {
        out.label = Label::kPass;
        out.reason = "Canary and primary samples are identical";
        return out;
    }
    const bool canary_constant = single_distinct_value(canary);
    const bool primary_constant = single_distinct_value(primary);
    if (canary_constant && primary_constant && canary.front() == primary.front()) {
        out.label = Label::kPass;
        out.reason = "All samples have the same value " + format_number(canary.front());
        return out;
    }

    // The effect size describes the real observations, so it is taken before the ties guard's
    // jitter (which moves means by about 1e-5 relative).
    const double effect =
        config.measure == EffectMeasure::kMeanRatio ? out.ratio : cles(canary, primary);
    out.effect_size = effect;

    // §3.3 step 3: with each side constant every observation within a side is tied, and the
    // rank test's interval degenerates; a deterministic jitter separates them.
    std::vector<double> tested_canary = canary;
    std::vector<double> tested_primary = primary;
    if (canary_constant && primary_constant) {
        std::mt19937_64 engine(kTieNoiseSeed);
        add_tie_noise(tested_canary, engine);
        add_tie_noise(tested_primary, engine);
    }

    // §3.3 step 4.
    const Result<MannWhitney> test = mann_whitney(tested_canary, tested_primary, config.confidence);
    if (!test) {
        out.label = Label::kError;
        out.critical = config.critical;
        out.reason = "Metric Classification Failed: " + test.error().message;
        return out;
    }
    out.estimate = test->estimate;
    out.ci_lower = test->lower;
    out.ci_upper = test->upper;

    label_by_interval(out, config, effect);
    return out;
}

std::string_view to_string(Summary summary) {
    switch (summary) {
        case Summary::kPass:
            return "Pass";
        case Summary::kMarginal:
            return "Marginal";
        case Summary::kFail:
            return "Fail";
    }
    return "Fail";
}

Score score(std::span<const NamedClassification> metrics, double pass_threshold,
            double marginal_threshold) {
    std::size_t passed = 0;
    std::size_t counted = 0;
    std::size_t nodata = 0;
    std::string critical_failures;
    // Names per failing label, in the order of Label, for the reason.
    const Label listed[] = {Label::kHigh, Label::kLow, Label::kNodataFailMetric, Label::kNodata,
                            Label::kError};
    std::string names[std::size(listed)];
    for (const NamedClassification& metric : metrics) {
        const Label label = metric.result.label;
        switch (label) {
            case Label::kPass:
                ++passed;
                ++counted;
                break;
            case Label::kHigh:
            case Label::kLow:
            case Label::kNodataFailMetric:
                ++counted;
                break;
            case Label::kNodata:
                ++nodata;
                break;
            case Label::kError:
                break;
        }
        for (std::size_t i = 0; i < std::size(listed); ++i) {
            if (listed[i] == label) {
                names[i] += (names[i].empty() ? "" : ", ") + metric.name;
            }
        }
        if (metric.result.critical && label != Label::kPass) {
            critical_failures += (critical_failures.empty() ? "" : "; ") + metric.name + " " +
                                 std::string(to_string(label)) + " (" + metric.result.reason + ")";
        }
    }

    double value = 100.0;  // a group without counted metrics is "noData" and scores 100
    if (counted > 0) {
        value = static_cast<double>(passed) / static_cast<double>(counted) * 100.0;
    }
    value = std::round(value * 100.0) / 100.0;

    std::string detail =
        std::to_string(passed) + " of " + std::to_string(counted) + " counted metrics passed";
    for (std::size_t i = 0; i < std::size(listed); ++i) {
        if (!names[i].empty()) {
            detail += "; " + std::string(to_string(listed[i])) + ": " + names[i];
        }
    }

    std::string reason;
    if (!critical_failures.empty()) {
        value = 0.0;
        reason = "Canary Failed: " + critical_failures + "; " + detail;
    } else if (!metrics.empty() &&
               static_cast<double>(nodata) * 100.0 / static_cast<double>(metrics.size()) >=
                   kNodataThresholdPercent) {
        value = 0.0;
        reason = "Canary Failed: " + std::to_string(nodata) + " of " +
                 std::to_string(metrics.size()) + " metrics have no data; " + detail;
    } else {
        reason = "Score " + format_number(value) + ": " + detail;
    }

    Summary summary = Summary::kFail;
    if (!critical_failures.empty()) {
        summary = Summary::kFail;  // whatever the thresholds: a critical metric failed
    } else if (value >= pass_threshold) {
        summary = Summary::kPass;
    } else if (value > marginal_threshold) {
        summary = Summary::kMarginal;
    }
    return Score{value, summary, std::move(reason)};
}

}  // namespace serin::analysis::judge
