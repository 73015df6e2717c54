#pragma once

#include <string>

#include "analysis/providers/prometheus.hpp"
#include "controller/canary/metric_checker.hpp"
#include "controller/kube/object_store.hpp"

namespace serin::canary {

struct PrometheusCheckerOptions {
    std::string mesh_provider = "istio";                  ///< -mesh-provider: picks the observer
    std::string metrics_server = "http://prometheus:9090";  ///< -metrics-server
};

/// Runs a canary's metrics on Prometheus (flagger-spec §5): builtin request-success-rate and
/// request-duration with the observer's queries at spec.metricsServer (else -metrics-server);
/// inline `query`s there too; `templateRef`s with the MetricTemplate's address, headers and
/// secret (token, else username and password). Each value is judged by judge_metric. Templates
/// and secrets are read from the informer caches of `store` (given by use_store once the
/// controller has one). Only the prometheus provider type is supported; others are errors.
class PrometheusMetricChecker final : public MetricChecker {
public:
    PrometheusMetricChecker(http::HttpClient& http, PrometheusCheckerOptions options)
        : client_(http), options_(std::move(options)) {}

    /// The cache MetricTemplates and Secrets are read from; until set, templates are errors.
    void use_store(const kube::ObjectStore& store) { store_ = &store; }

    boost::asio::awaitable<std::vector<analysis::MetricResult>> check(api::Canary canary) override;

private:
    boost::asio::awaitable<analysis::MetricResult> check_one(const api::Canary& canary,
                                                             const api::CanaryMetric& metric);
    boost::asio::awaitable<analysis::MetricResult> check_template(const api::Canary& canary,
                                                                  const api::CanaryMetric& metric);

    metrics::PrometheusClient client_;
    PrometheusCheckerOptions options_;
    const kube::ObjectStore* store_ = nullptr;
};

}  // namespace serin::canary
