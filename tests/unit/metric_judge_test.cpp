// Judging a metric's value (flagger-spec §5.1, §5.3): thresholds, units and Flagger's messages.
#include <catch2/catch.hpp>

#include "metrics/metric_judge.hpp"

#include <limits>

namespace {

using namespace serin::analysis;
using namespace serin::metrics;

serin::api::Canary canary() {
    serin::api::Canary c;
    c.metadata.name = "podinfo";
    c.metadata.ns = "test";
    c.spec.target_ref = {"apps/v1", "Deployment", "podinfo"};
    return c;
}

serin::api::CanaryMetric metric(const std::string& name, std::optional<double> min,
                                std::optional<double> max) {
    serin::api::CanaryMetric m;
    m.name = name;
    m.threshold_range = serin::api::ThresholdRange{min, max};
    return m;
}

MetricResult judged(const serin::api::CanaryMetric& m, MetricSource source, std::optional<double> v) {
    return judge_metric(canary(), m, source, Observer::kIstio, v);
}

}  // namespace

TEST_CASE("success rate below its minimum fails with Flagger's message") {
    const auto m = metric("request-success-rate", 99, std::nullopt);
    CHECK(judged(m, MetricSource::kBuiltinSuccessRate, 99.5).verdict == Verdict::kPass);
    const MetricResult low = judged(m, MetricSource::kBuiltinSuccessRate, 80.004);
    CHECK(low.verdict == Verdict::kFail);
    CHECK(low.message == "Halt podinfo.test advancement success rate 80.00% < 99%");
    const auto capped = metric("request-success-rate", std::nullopt, 99.9);
    CHECK(judged(capped, MetricSource::kBuiltinSuccessRate, 100).message ==
          "Halt podinfo.test advancement success rate 100.00% > 99.9%");
}

TEST_CASE("request duration is whole milliseconds, shown as a Go duration") {
    const auto m = metric("request-duration", std::nullopt, 500);
    CHECK(judged(m, MetricSource::kBuiltinDuration, 500.9).verdict == Verdict::kPass);  // truncated
    const MetricResult slow = judged(m, MetricSource::kBuiltinDuration, 1250.7);
    CHECK(slow.verdict == Verdict::kFail);
    CHECK(slow.value == 1250);
    CHECK(slow.message == "Halt podinfo.test advancement request duration 1.25s > 500ms");
}

TEST_CASE("the deprecated threshold: a floor for success rate, a ceiling for the rest") {
    serin::api::CanaryMetric rate;
    rate.name = "request-success-rate";
    rate.threshold = 99;
    CHECK(judged(rate, MetricSource::kBuiltinSuccessRate, 98).verdict == Verdict::kFail);
    serin::api::CanaryMetric custom;
    custom.name = "errors";
    custom.threshold = 5;
    CHECK(judged(custom, MetricSource::kTemplate, 4).verdict == Verdict::kPass);
    CHECK(judged(custom, MetricSource::kTemplate, 6).message ==
          "Halt podinfo.test advancement errors 6.00 > 5");
}

TEST_CASE("custom metrics outside their range fail, no data is not a value") {
    const auto m = metric("queue-depth", 1, 10);
    CHECK(judged(m, MetricSource::kTemplate, 0.5).message ==
          "Halt podinfo.test advancement queue-depth 0.50 < 1");
    CHECK(judged(m, MetricSource::kInlineQuery, 12).message ==
          "Halt podinfo.test advancement queue-depth 12.00 > 10");
    const MetricResult none = judged(m, MetricSource::kTemplate, std::nullopt);
    CHECK(none.verdict == Verdict::kNoData);
    CHECK(none.message == "Halt advancement no values found for custom metric: queue-depth");
    CHECK(judged(metric("request-success-rate", 99, std::nullopt), MetricSource::kBuiltinSuccessRate,
                std::nullopt)
              .message ==
          "Halt advancement no values found for istio metric request-success-rate probably "
          "podinfo.test is not receiving traffic");
    CHECK(judged(m, MetricSource::kInlineQuery, std::nullopt).message ==
          "Halt advancement no values found for metric: queue-depth");
}

TEST_CASE("Go durations") {
    CHECK(go_duration(0) == "0s");
    CHECK(go_duration(500) == "500ms");
    CHECK(go_duration(1000) == "1s");
    CHECK(go_duration(1500) == "1.5s");
    CHECK(go_duration(61'001) == "1m1.001s");
    CHECK(go_duration(120'000) == "2m0s");
    CHECK(go_duration(3'600'000) == "1h0m0s");
}

TEST_CASE("describe_metrics gives each metric's value and outcome in one line") {
    std::vector<MetricResult> results{
        MetricResult{"request-success-rate", Verdict::kPass, 99.874, "", std::nullopt},
        MetricResult{"request-duration", Verdict::kFail, 612.7, "too slow", std::nullopt},
        MetricResult{"error-rate", Verdict::kNoData, std::nullopt, "no values", std::nullopt},
        MetricResult{"cpu", Verdict::kError, std::nullopt, "refused", std::nullopt},
        MetricResult{"queue", Verdict::kPass, 0.25, "", std::nullopt}};
    judge::Classification high;
    high.label = judge::Label::kHigh;
    high.ratio = 1.304;
    high.canary_count = 10;
    high.primary_count = 11;
    results.push_back(MetricResult{"mean-latency", Verdict::kFail, std::nullopt, "", high});
    CHECK(describe_metrics(results) ==
          "request-success-rate 99.87% pass, request-duration 612ms fail, error-rate no data, "
          "cpu error, queue 0.25 pass, mean-latency High (ratio 1.30, 10 vs 11 samples)");
}

TEST_CASE("latencies too large for a long long, or infinite once scaled, fail max: 500") {
    const auto m = metric("request-duration", std::nullopt, 500);
    for (double v : {9.3e18, 1e300, std::numeric_limits<double>::infinity()}) {
        INFO(v);
        const MetricResult huge = judged(m, MetricSource::kBuiltinDuration, v);
        CHECK(huge.verdict == Verdict::kFail);
        CHECK(huge.message.rfind("Halt podinfo.test advancement request duration ", 0) == 0);
    }
    CHECK(judged(m, MetricSource::kBuiltinDuration, std::numeric_limits<double>::infinity())
              .message == "Halt podinfo.test advancement request duration +Inf > 500ms");
    // Thresholds beyond a long long are shown clamped, not wrapped.
    const auto wide = metric("request-duration", 1e300, std::nullopt);
    CHECK(judged(wide, MetricSource::kBuiltinDuration, 10).verdict == Verdict::kFail);
    const MetricResult negative =
        judged(metric("request-duration", std::nullopt, -1e300), MetricSource::kBuiltinDuration, 1);
    CHECK(negative.verdict == Verdict::kFail);
    CHECK(negative.message.find("> -") != std::string::npos);
}

TEST_CASE("go_duration takes every long long, LLONG_MIN included") {
    CHECK(go_duration(std::numeric_limits<long long>::min()) == "-2562047788015h12m55.808s");
    CHECK(go_duration(std::numeric_limits<long long>::max()) == "2562047788015h12m55.807s");
    CHECK(go_duration(-1500) == "-1.5s");
}
