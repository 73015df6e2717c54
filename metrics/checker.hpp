#pragma once

#include <string>
#include <utility>

#include "metrics/metric_checker.hpp"
#include "metrics/metric_judge.hpp"
#include "metrics/provider.hpp"
#include "metrics/queries.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/object_store.hpp"

namespace serin::metrics {

struct MetricCheckerOptions {
    std::string mesh_provider = "istio";                    ///< -mesh-provider: picks the observer
    std::string metrics_server = "http://prometheus:9090";  ///< -metrics-server
};

/// Runs a canary's metrics (flagger-spec §5) through the providers of a ProviderRegistry:
/// - builtin request-success-rate and request-duration, with the observer's queries, and inline
///   `query`s, on the kMetricsServerType provider at spec.metricsServer (else -metrics-server);
/// - `templateRef`s on the provider of the MetricTemplate's spec.provider.type, built from its
///   address, headers, region, insecureSkipVerify and its Secret's data. A template of the
///   metrics server's type without an address runs at the metrics server, unless it carries
///   credentials (a secretRef or headers): those go to its own address or nowhere.
/// Each value is judged by judge_metric. A metric with a `judge` is instead queried over its
/// interval twice, for the canary and (with `target` set to the primary's name) for the primary,
/// and the two series are classified by judge::classify. Templates and Secrets are read from the
/// informer caches of `store` (given by use_store once the controller has one).
///
/// Thread safety: one io_context thread, the providers'.
class ProviderMetricChecker final : public MetricChecker {
public:
    /// `providers` must outlive the checker. `clock`: the end of judged windows (system clock
    /// when null).
    ProviderMetricChecker(ProviderRegistry& providers, MetricCheckerOptions options,
                          const Clock* clock = nullptr)
        : providers_(providers), options_(std::move(options)), clock_(clock) {}

    /// The cache MetricTemplates and Secrets are read from; until set, templates are errors.
    void use_store(const kube::ObjectStore& store) { store_ = &store; }

    /// Told the duration and outcome of every request the providers make.
    void set_query_observer(QueryObserver observer) {
        providers_.set_query_observer(std::move(observer));
    }

    boost::asio::awaitable<std::vector<analysis::MetricResult>> check(api::Canary canary) override;
    std::optional<std::vector<std::string>> provider_types() const override {
        return providers_.types();
    }

private:
    /// A metric's provider and its query before rendering, or the message of why there is none.
    struct Resolved {
        MetricProviderPtr provider;
        std::string query;    ///< a template (builtin or MetricTemplate), or an inline query
        bool render = true;   ///< false for an inline query, which Flagger sends as written
        std::string context;  ///< what a render error follows: "Metric template <id> " or ""
        MetricSource source = MetricSource::kInlineQuery;
        double scale = 1;  ///< turns the value into the metric's unit (builtin durations)
        bool word_names = false;  ///< render with word_names() (Skipper's builtin queries)
    };

    boost::asio::awaitable<analysis::MetricResult> check_one(const api::Canary& canary,
                                                             const api::CanaryMetric& metric);
    boost::asio::awaitable<analysis::MetricResult> check_judged(const api::Canary& canary,
                                                                const api::CanaryMetric& metric);
    /// Errors carry the full Warning text.
    Result<Resolved> resolve(const api::Canary& canary, const api::CanaryMetric& metric) const;
    Result<Resolved> resolve_template(const api::Canary& canary, const api::TemplateRef& ref) const;
    /// The provider at spec.metricsServer (else -metrics-server), for builtin and inline queries.
    Result<MetricProviderPtr> metrics_server(const api::Canary& canary,
                                             const api::CanaryMetric& metric) const;
    std::string metrics_server_address(const api::Canary& canary) const;

    ProviderRegistry& providers_;
    MetricCheckerOptions options_;
    const kube::ObjectStore* store_ = nullptr;
    const Clock* clock_ = nullptr;
};

}  // namespace serin::metrics
