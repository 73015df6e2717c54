#pragma once

#include <string>

#include "metrics/metric_checker.hpp"
#include "metrics/metric_judge.hpp"
#include "metrics/prometheus/prometheus_client.hpp"
#include "metrics/queries.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/object_store.hpp"

namespace serin::metrics {

struct PrometheusCheckerOptions {
    std::string mesh_provider = "istio";                  ///< -mesh-provider: picks the observer
    std::string metrics_server = "http://prometheus:9090";  ///< -metrics-server
};

/// Runs a canary's metrics on Prometheus (flagger-spec §5): builtin request-success-rate and
/// request-duration with the observer's queries at spec.metricsServer (else -metrics-server);
/// inline `query`s there too; `templateRef`s with the MetricTemplate's address, headers, secret
/// (token, else username and password) and insecureSkipVerify. Each value is judged by
/// judge_metric. A metric with a `judge` is instead queried over its interval twice, for the
/// canary and (with `target` set to the primary's name) for the primary, and the two series are
/// classified by judge::classify. Templates and secrets are read from the informer caches of
/// `store` (given by use_store once the controller has one).
class PrometheusMetricChecker final : public MetricChecker {
public:
    /// `insecure`: the client for templates with insecureSkipVerify (TLS verification off);
    /// without one such templates are errors. `clock`: the end of judged windows (system clock
    /// when null).
    PrometheusMetricChecker(http::HttpClient& http, PrometheusCheckerOptions options,
                            http::HttpClient* insecure = nullptr, const Clock* clock = nullptr)
        : client_(http), options_(std::move(options)), clock_(clock) {
        if (insecure != nullptr) {
            insecure_client_.emplace(*insecure);
        }
    }

    /// The cache MetricTemplates and Secrets are read from; until set, templates are errors.
    void use_store(const kube::ObjectStore& store) { store_ = &store; }

    /// Told the duration and outcome of every request to Prometheus, by either client.
    void set_query_observer(const metrics::PrometheusClient::QueryObserver& observer) {
        client_.set_observer(observer);
        if (insecure_client_) {
            insecure_client_->set_observer(observer);
        }
    }

    boost::asio::awaitable<std::vector<analysis::MetricResult>> check(api::Canary canary) override;

private:
    /// A metric's query, ready to send, or the message of why it is not.
    struct Prepared {
        metrics::PrometheusQuery query;
        metrics::MetricSource source = metrics::MetricSource::kInlineQuery;
        double scale = 1;
        bool insecure = false;
    };

    boost::asio::awaitable<analysis::MetricResult> check_one(const api::Canary& canary,
                                                             const api::CanaryMetric& metric);
    boost::asio::awaitable<analysis::MetricResult> check_judged(const api::Canary& canary,
                                                                const api::CanaryMetric& metric);
    /// The query of `metric` rendered with `vars`; errors carry the full Warning text.
    Result<Prepared> prepare(const api::Canary& canary, const api::CanaryMetric& metric,
                             const metrics::TemplateVars& vars) const;
    metrics::PrometheusClient& client_for(const Prepared& prepared);

    metrics::PrometheusClient client_;
    std::optional<metrics::PrometheusClient> insecure_client_;
    PrometheusCheckerOptions options_;
    const kube::ObjectStore* store_ = nullptr;
    const Clock* clock_ = nullptr;
};

}  // namespace serin::metrics
