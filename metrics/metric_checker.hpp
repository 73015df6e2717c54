#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analysis/release.hpp"
#include "crds/api/canary.hpp"

namespace serin::metrics {

/// Runs the metric checks of a canary's analysis (flagger-spec §5) and judges each one.
///
/// Thread safety: one io_context thread. Never fails as a whole: a query that cannot be run is
/// that metric's Verdict::kError.
class MetricChecker {
public:
    virtual ~MetricChecker() = default;
    /// One result per entry of spec.analysis.metrics, in spec order.
    virtual boost::asio::awaitable<std::vector<analysis::MetricResult>> check(
        api::Canary canary) = 0;
    /// The MetricTemplate provider types (spec.provider.type) this checker can query, sorted: a
    /// canary whose template names another is refused before its release starts. nullopt: the
    /// checker does not say, and nothing is refused for it.
    virtual std::optional<std::vector<std::string>> provider_types() const { return std::nullopt; }
};

/// The checker of a build without a metrics provider: every metric is an error saying so, which
/// counts as a failed check, so a canary whose analysis needs metrics is never promoted on
/// metrics nobody looked at.
class UnavailableMetricChecker final : public MetricChecker {
public:
    boost::asio::awaitable<std::vector<analysis::MetricResult>> check(api::Canary canary) override {
        std::vector<analysis::MetricResult> results;
        if (canary.spec.analysis) {
            for (const auto& metric : canary.spec.analysis->metrics) {
                results.push_back(analysis::MetricResult{
                    metric.name, analysis::Verdict::kError, std::nullopt,
                    "Metric query failed for " + metric.name +
                        ": no metrics provider was given to this controller", std::nullopt});
            }
        }
        co_return results;
    }
};

}  // namespace serin::metrics
