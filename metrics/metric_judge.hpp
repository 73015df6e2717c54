#pragma once

#include <optional>
#include <string>
#include <vector>

#include "analysis/release.hpp"
#include "metrics/queries.hpp"

/// Judging one metric's value against its thresholds (flagger-spec §5.1, §5.3). Pure.
namespace serin::metrics {

/// Where a metric's query came from, which decides its units and wording.
enum class MetricSource { kBuiltinSuccessRate, kBuiltinDuration, kInlineQuery, kTemplate };

/// The verdict for `value` (nullopt: the query found no data) of `metric` of `canary`, with
/// Flagger's Warning texts: thresholdRange min/max (durations in milliseconds, truncated), else
/// the deprecated `threshold` (success rate: fail below it; everything else: fail above it).
analysis::MetricResult judge_metric(const api::Canary& canary, const api::CanaryMetric& metric,
                          MetricSource source, Observer observer, std::optional<double> value);

/// The statistical judge's settings of a metric's `judge` field.
analysis::judge::MetricConfig judge_config(const api::MetricJudge& judge);

/// One line with each metric's outcome of a step, in order, for the log: "request-success-rate
/// 99.87% pass, request-duration 21ms pass, mean-latency High (ratio 1.30, 10 vs 11 samples)".
std::string describe_metrics(const std::vector<analysis::MetricResult>& results);

/// A duration of `ms` milliseconds as Go prints it: 500ms, 1.5s, 2m0s.
std::string go_duration(long long ms);

}  // namespace serin::metrics
