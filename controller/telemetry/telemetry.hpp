#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "crds/api/canary.hpp"

namespace prometheus {
class Registry;
template <typename T>
class Family;
class Gauge;
class Counter;
class Histogram;
}  // namespace prometheus

/// The controller's own metrics, served at /metrics in Prometheus's text format.
///
/// Flagger's series, with its names and labels (flagger-spec §8.1), so existing dashboards and
/// alerts work: flagger_info, flagger_canary_total, flagger_canary_status, flagger_canary_weight,
/// flagger_canary_duration_seconds, flagger_canary_metric_analysis,
/// flagger_canary_successes_total, flagger_canary_failures_total. Serin's own, prefixed serin_:
/// reconcile duration by result, work-queue depth and wait, Prometheus query duration, API
/// requests by verb and code, watch restarts, notification failures.
///
/// Thread safety: the setters run on the controller's loop (they keep bookkeeping of their own);
/// scrape() and set_heap() may run on another thread meanwhile (prometheus-cpp's registry,
/// families and metrics lock or are atomic).
namespace serin::telemetry {

class Telemetry {
public:
    Telemetry(std::string_view version, std::string_view mesh_provider);
    ~Telemetry();
    Telemetry(const Telemetry&) = delete;
    Telemetry& operator=(const Telemetry&) = delete;

    /// Every series, in Prometheus's text exposition format (version 0.0.4).
    std::string scrape() const;

    // ---- Flagger's series -------------------------------------------------------------------
    /// flagger_canary_total{namespace}: the canaries per namespace, read at each scrape. A
    /// namespace seen before and missing now has none left (0).
    void set_canary_totals(const std::map<std::string, std::size_t>& per_namespace);
    /// flagger_canary_status{name = target name, namespace}: 0 Progressing, 2 Failed, else 1.
    void set_status(const api::Canary& canary, std::string_view phase);
    /// flagger_canary_weight{workload = X-primary and X, namespace}.
    void set_weights(const api::Canary& canary, int primary, int canary_weight);
    /// flagger_canary_duration_seconds{name, namespace}: a reconcile that reached the analysis.
    void observe_analysis(const api::Canary& canary, double seconds);
    /// flagger_canary_metric_analysis{name, namespace, metric}: the metric's last value (a
    /// duration in seconds).
    void set_metric_value(const api::Canary& canary, const std::string& metric, double value);
    /// flagger_canary_successes_total / failures_total{name, namespace, deployment_strategy,
    /// analysis_status = completed | skipped}.
    void count_release(const api::Canary& canary, bool succeeded, bool skipped);
    /// Removes every series about the canary `name` in `ns` (it was deleted), so a cluster
    /// where canaries come and go does not keep their series for ever.
    void forget_canary(const std::string& ns, const std::string& name);
    /// Canaries with series, for tests.
    std::size_t canaries_with_series() const { return series_.size(); }

    // ---- Serin's own ------------------------------------------------------------------------
    /// serin_reconcile_duration_seconds{result = ok | error}.
    void observe_reconcile(double seconds, bool ok);
    /// serin_workqueue_depth: keys waiting to be reconciled.
    void set_queue_depth(std::size_t depth);
    /// What an informer cache holds.
    struct CacheSize {
        std::size_t objects = 0;
        std::size_t encoded_bytes = 0;
    };
    /// serin_cache_objects{resource} and serin_cache_encoded_bytes{resource}.
    void set_cache_sizes(const std::map<std::string, CacheSize>& per_resource);
    /// serin_heap_bytes{state = in_use | free}: the allocator's heap, what is allocated and what
    /// it holds free (RSS beyond the two is code and mappings).
    void set_heap(std::size_t in_use, std::size_t free);
    /// serin_workqueue_wait_seconds: how long a canary waited, ready, before a worker took it.
    void observe_queue_wait(double seconds);
    /// serin_prometheus_query_duration_seconds{result = ok | error}: each request to Prometheus.
    void observe_metric_query(double seconds, bool ok);
    /// serin_notification_failures_total: alerts that could not be delivered.
    void count_notification_failure();

    /// Counters kept elsewhere (the API client, the informers), read at each scrape. Each is a
    /// running total since the process started; a total below the last one is ignored.
    struct Totals {
        /// Requests to the API server by verb (GET, POST, ..., WATCH) and code ("200", "error").
        std::map<std::pair<std::string, std::string>, std::uint64_t> api_requests;
        /// The same by Kubernetes verb (get, list, watch, create, update, patch, delete),
        /// resource ("canaries/status" for a subresource) and code.
        std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> kube_requests;
        std::uint64_t api_throttled = 0;  ///< writes that waited for the token bucket
        std::uint64_t api_connections_opened = 0;  ///< connections (TCP, TLS) established
        std::uint64_t api_connections_reused = 0;  ///< requests sent on a kept-alive one
        std::uint64_t api_tls_resumed = 0;  ///< connections whose TLS handshake resumed
        std::uint64_t watch_failures = 0; ///< watches that ended in an error (then restarted)
        std::uint64_t relists = 0;        ///< re-lists after 410 Gone
    };
    /// serin_api_requests_total{verb, code}, serin_kube_requests_total{verb, resource, code},
    /// serin_api_throttled_total, serin_api_connections_opened_total,
    /// serin_api_connections_reused_total, serin_api_tls_sessions_resumed_total,
    /// serin_watch_restarts_total{reason = error | gone}.
    void set_totals(const Totals& totals);

private:
    std::shared_ptr<prometheus::Registry> registry_;
    prometheus::Family<prometheus::Gauge>* canary_total_;
    prometheus::Family<prometheus::Gauge>* status_;
    prometheus::Family<prometheus::Gauge>* weight_;
    prometheus::Family<prometheus::Histogram>* duration_;
    prometheus::Family<prometheus::Gauge>* metric_analysis_;
    prometheus::Family<prometheus::Counter>* successes_;
    prometheus::Family<prometheus::Counter>* failures_;
    prometheus::Family<prometheus::Histogram>* reconcile_;
    prometheus::Gauge* queue_depth_;
    prometheus::Histogram* queue_wait_;
    prometheus::Family<prometheus::Gauge>* cache_objects_;
    prometheus::Family<prometheus::Gauge>* cache_bytes_;
    prometheus::Family<prometheus::Gauge>* heap_;
    prometheus::Family<prometheus::Histogram>* metric_queries_;
    prometheus::Counter* notification_failures_;
    prometheus::Family<prometheus::Counter>* api_requests_;
    prometheus::Family<prometheus::Counter>* kube_requests_;
    prometheus::Counter* api_throttled_;
    prometheus::Counter* api_connections_opened_;
    prometheus::Counter* api_connections_reused_;
    prometheus::Counter* api_tls_resumed_;
    prometheus::Family<prometheus::Counter>* watch_restarts_;
    Totals totals_;
    std::set<std::string> namespaces_;  ///< with a flagger_canary_total series
    using Labels = std::map<std::string, std::string>;
    /// The label sets each canary ("ns/name") has series under, per family.
    struct CanarySeries {
        std::set<Labels> status, weight, duration, metric, successes, failures;
    };
    std::map<std::string, CanarySeries> series_;
    CanarySeries& series_of(const api::Canary& canary);
};

}  // namespace serin::telemetry
