#include "metrics/metric_judge.hpp"

#include <cmath>
#include <cstdio>
#include <fmt/format.h>

namespace serin::metrics {

namespace {

std::string fixed2(double v) {
    char text[64];
    std::snprintf(text, sizeof text, "%.2f", v);
    return text;
}

/// A threshold as Go's %v prints a float64: 99, 99.5.
std::string plain(double v) {
    char text[64];
    std::snprintf(text, sizeof text, "%g", v);
    return text;
}

/// Milliseconds as a whole number for display, clamped where a double holds more than a long
/// long can (a cast out of range is undefined behaviour).
long long whole_ms(double ms) {
    constexpr double kLimit = 9.0e18;  // below LLONG_MAX (about 9.22e18)
    if (std::isnan(ms)) {
        return 0;
    }
    if (ms >= kLimit) {
        return static_cast<long long>(kLimit);
    }
    if (ms <= -kLimit) {
        return -static_cast<long long>(kLimit);
    }
    return static_cast<long long>(std::trunc(ms));
}

}  // namespace

std::string go_duration(long long signed_ms) {
    if (signed_ms == 0) {
        return "0s";
    }
    std::string sign = signed_ms < 0 ? "-" : "";
    // In unsigned arithmetic: the magnitude of LLONG_MIN does not fit a long long.
    const unsigned long long ms = signed_ms < 0
                                      ? 0ULL - static_cast<unsigned long long>(signed_ms)
                                      : static_cast<unsigned long long>(signed_ms);
    if (ms < 1000) {
        return sign + std::to_string(ms) + "ms";
    }
    const unsigned long long hours = ms / 3'600'000;
    const unsigned long long minutes = ms / 60'000 % 60;
    const unsigned long long millis = ms % 60'000;  // seconds part, in ms
    std::string seconds = std::to_string(millis / 1000);
    if (millis % 1000 != 0) {
        std::string fraction = std::to_string(1000 + millis % 1000).substr(1);  // 3 digits
        while (fraction.back() == '0') {
            fraction.pop_back();
        }
        seconds += "." + fraction;
    }
    std::string out = sign;
    if (hours > 0) {
        out += std::to_string(hours) + "h";
    }
    if (hours > 0 || minutes > 0) {
        out += std::to_string(minutes) + "m";
    }
    return out + seconds + "s";
}

analysis::MetricResult judge_metric(const api::Canary& canary, const api::CanaryMetric& metric,
                          MetricSource source, Observer observer, std::optional<double> value) {
    const std::string id = canary.metadata.name + "." + canary.metadata.ns;
    analysis::MetricResult result{metric.name, analysis::Verdict::kPass, value, {}, std::nullopt};
    if (!value) {
        result.verdict = analysis::Verdict::kNoData;
        switch (source) {
            case MetricSource::kBuiltinSuccessRate:
            case MetricSource::kBuiltinDuration:
                result.message = "Halt advancement no values found for " +
                                 std::string(observer_name(observer)) + " metric " + metric.name +
                                 " probably " + canary.spec.target_ref.name + "." +
                                 canary.metadata.ns + " is not receiving traffic";
                break;
            case MetricSource::kInlineQuery:
                result.message = "Halt advancement no values found for metric: " + metric.name;
                break;
            case MetricSource::kTemplate:
                result.message = "Halt advancement no values found for custom metric: " + metric.name;
                break;
        }
        return result;
    }
    const double v = *value;
    const auto& range = metric.threshold_range;
    auto failed = [&](std::string message) {
        result.verdict = analysis::Verdict::kFail;
        result.message = std::move(message);
        return result;
    };
    switch (source) {
        case MetricSource::kBuiltinSuccessRate:
            if (range) {
                if (range->min && v < *range->min) {
                    return failed("Halt " + id + " advancement success rate " + fixed2(v) + "% < " +
                                  plain(*range->min) + "%");
                }
                if (range->max && v > *range->max) {
                    return failed("Halt " + id + " advancement success rate " + fixed2(v) + "% > " +
                                  plain(*range->max) + "%");
                }
            } else if (metric.threshold && *metric.threshold > v) {
                return failed("Halt " + id + " advancement success rate " + fixed2(v) + "% < " +
                              plain(*metric.threshold) + "%");
            }
            return result;
        case MetricSource::kBuiltinDuration: {
            // Compared as doubles, truncated to whole milliseconds as Flagger does: a latency
            // too large for a long long (or infinite, once scaled from seconds) is still larger
            // than any threshold, never wrapped into a small one.
            const double ms = std::isfinite(v) ? std::trunc(v) : v;
            result.value = ms;
            const std::string shown = std::isfinite(ms) ? go_duration(whole_ms(ms))
                                                        : (ms > 0 ? "+Inf" : "-Inf");
            if (range) {
                if (range->min && ms < *range->min) {
                    return failed("Halt " + id + " advancement request duration " + shown + " < " +
                                  go_duration(whole_ms(*range->min)));
                }
                if (range->max && ms > *range->max) {
                    return failed("Halt " + id + " advancement request duration " + shown + " > " +
                                  go_duration(whole_ms(*range->max)));
                }
            } else if (metric.threshold && ms > *metric.threshold) {
                return failed("Halt " + id + " advancement request duration " + shown + " > " +
                              go_duration(whole_ms(*metric.threshold)));
            }
            return result;
        }
        case MetricSource::kInlineQuery:
        case MetricSource::kTemplate:
            if (range) {
                if (range->min && v < *range->min) {
                    return failed("Halt " + id + " advancement " + metric.name + " " + fixed2(v) +
                                  " < " + plain(*range->min));
                }
                if (range->max && v > *range->max) {
                    return failed("Halt " + id + " advancement " + metric.name + " " + fixed2(v) +
                                  " > " + plain(*range->max));
                }
            } else if (metric.threshold && v > *metric.threshold) {
                return failed("Halt " + id + " advancement " + metric.name + " " + fixed2(v) +
                              " > " + plain(*metric.threshold));
            }
            return result;
    }
    return result;
}

std::string describe_metrics(const std::vector<analysis::MetricResult>& results) {
    std::string line;
    for (const analysis::MetricResult& m : results) {
        line += (line.empty() ? "" : ", ") + m.name + " ";
        if (m.judged) {
            line += std::string(analysis::judge::to_string(m.judged->label));
            if (std::isfinite(m.judged->ratio)) {
                line += fmt::format(" (ratio {:.2f}, {} vs {} samples)", m.judged->ratio,
                                    m.judged->canary_count, m.judged->primary_count);
            }
            continue;
        }
        if (m.value) {
            if (m.name == "request-success-rate") {
                line += fmt::format("{:.2f}% ", *m.value);
            } else if (m.name == "request-duration") {
                line += (std::isfinite(*m.value) ? go_duration(whole_ms(*m.value)) : "+Inf") + " ";
            } else {
                line += fmt::format("{:g} ", *m.value);
            }
        }
        switch (m.verdict) {
        case analysis::Verdict::kPass:
            line += "pass";
            break;
        case analysis::Verdict::kFail:
            line += "fail";
            break;
        case analysis::Verdict::kNoData:
            line += "no data";
            break;
        case analysis::Verdict::kError:
            line += "error";
            break;
        }
    }
    return line;
}

analysis::judge::MetricConfig judge_config(const api::MetricJudge& j) {
    analysis::judge::MetricConfig config;
    config.direction = analysis::judge::parse_direction(j.direction).value_or(analysis::judge::Direction::kEither);
    config.tolerance = j.tolerance;
    config.confidence = j.confidence;
    config.measure =
        analysis::judge::parse_effect_measure(j.effect_size.measure).value_or(analysis::judge::EffectMeasure::kMeanRatio);
    config.allowed_increase = j.effect_size.allowed_increase;
    config.allowed_decrease = j.effect_size.allowed_decrease;
    config.critical_increase = j.effect_size.critical_increase;
    config.critical_decrease = j.effect_size.critical_decrease;
    config.critical = j.critical;
    config.must_have_data = j.must_have_data;
    config.remove_outliers = j.remove_outliers;
    config.outlier_factor = j.outlier_factor;
    return config;
}

}  // namespace serin::metrics
