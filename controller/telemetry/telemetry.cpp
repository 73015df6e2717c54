#include "controller/telemetry/telemetry.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "analysis/release.hpp"

namespace serin::telemetry {

namespace {

/// Prometheus client_golang's default buckets, which Flagger's histogram uses.
prometheus::Histogram::BucketBoundaries default_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace

Telemetry::Telemetry(std::string_view version, std::string_view mesh_provider)
    : registry_(std::make_shared<prometheus::Registry>()) {
    auto& info = prometheus::BuildGauge()
                     .Name("flagger_info")
                     .Help("Flagger version and mesh provider information")
                     .Register(*registry_);
    info.Add({{"version", std::string(version)}, {"mesh_provider", std::string(mesh_provider)}})
        .Set(1);
    canary_total_ = &prometheus::BuildGauge()
                         .Name("flagger_canary_total")
                         .Help("Total number of canary object")
                         .Register(*registry_);
    status_ = &prometheus::BuildGauge()
                   .Name("flagger_canary_status")
                   .Help("Last canary analysis result")
                   .Register(*registry_);
    weight_ = &prometheus::BuildGauge()
                   .Name("flagger_canary_weight")
                   .Help("The virtual service destination weight current value")
                   .Register(*registry_);
    duration_ = &prometheus::BuildHistogram()
                     .Name("flagger_canary_duration_seconds")
                     .Help("Seconds spent performing canary analysis.")
                     .Register(*registry_);
    metric_analysis_ = &prometheus::BuildGauge()
                            .Name("flagger_canary_metric_analysis")
                            .Help("Last canary analysis result per metric")
                            .Register(*registry_);
    successes_ = &prometheus::BuildCounter()
                      .Name("flagger_canary_successes_total")
                      .Help("Total number of canary successes")
                      .Register(*registry_);
    failures_ = &prometheus::BuildCounter()
                     .Name("flagger_canary_failures_total")
                     .Help("Total number of canary failures")
                     .Register(*registry_);
    reconcile_ = &prometheus::BuildHistogram()
                      .Name("serin_reconcile_duration_seconds")
                      .Help("Time to reconcile one canary, by result (ok or error)")
                      .Register(*registry_);
    queue_depth_ = &prometheus::BuildGauge()
                        .Name("serin_workqueue_depth")
                        .Help("Canaries waiting in the work queue")
                        .Register(*registry_)
                        .Add({});
    cache_objects_ = &prometheus::BuildGauge()
                          .Name("serin_cache_objects")
                          .Help("Objects in the informer cache, by resource")
                          .Register(*registry_);
    cache_bytes_ = &prometheus::BuildGauge()
                        .Name("serin_cache_encoded_bytes")
                        .Help("Bytes of the cached objects' encodings, by resource")
                        .Register(*registry_);
    heap_ = &prometheus::BuildGauge()
                 .Name("serin_heap_bytes")
                 .Help("The allocator's heap: bytes allocated (in_use) and held free (free)")
                 .Register(*registry_);
    queue_wait_ = &prometheus::BuildHistogram()
                       .Name("serin_workqueue_wait_seconds")
                       .Help("Time a canary waited in the work queue, ready, before a worker took it")
                       .Register(*registry_)
                       .Add({}, default_buckets());
    metric_queries_ = &prometheus::BuildHistogram()
                           .Name("serin_prometheus_query_duration_seconds")
                           .Help("Requests to Prometheus for metric checks, by result (ok or error)")
                           .Register(*registry_);
    notification_failures_ = &prometheus::BuildCounter()
                                  .Name("serin_notification_failures_total")
                                  .Help("Alerts that could not be delivered")
                                  .Register(*registry_)
                                  .Add({});
    api_requests_ = &prometheus::BuildCounter()
                         .Name("serin_api_requests_total")
                         .Help("Requests to the Kubernetes API server, retries included, by verb "
                               "(the HTTP method, or WATCH) and code (the status, or error)")
                         .Register(*registry_);
    kube_requests_ = &prometheus::BuildCounter()
                          .Name("serin_kube_requests_total")
                          .Help("Requests to the Kubernetes API server, retries included, by "
                                "Kubernetes verb (get, list, watch, create, update, patch, "
                                "delete), resource (resource/subresource) and code (the status, "
                                "or error)")
                          .Register(*registry_);
    api_throttled_ = &prometheus::BuildCounter()
                          .Name("serin_api_throttled_total")
                          .Help("Writes that waited for the client's token bucket")
                          .Register(*registry_)
                          .Add({});
    api_connections_opened_ = &prometheus::BuildCounter()
                                   .Name("serin_api_connections_opened_total")
                                   .Help("Connections to the Kubernetes API server established "
                                         "(TCP, and TLS when https), watches' included")
                                   .Register(*registry_)
                                   .Add({});
    api_connections_reused_ = &prometheus::BuildCounter()
                                   .Name("serin_api_connections_reused_total")
                                   .Help("Requests to the Kubernetes API server sent on a "
                                         "kept-alive connection")
                                   .Register(*registry_)
                                   .Add({});
    api_tls_resumed_ = &prometheus::BuildCounter()
                            .Name("serin_api_tls_sessions_resumed_total")
                            .Help("Connections to the Kubernetes API server whose TLS handshake "
                                  "resumed an earlier session")
                            .Register(*registry_)
                            .Add({});
    watch_restarts_ = &prometheus::BuildCounter()
                           .Name("serin_watch_restarts_total")
                           .Help("Informer watches restarted, by reason (error, gone)")
                           .Register(*registry_);
}

Telemetry::~Telemetry() = default;

std::string Telemetry::scrape() const {
    return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Telemetry::set_canary_totals(const std::map<std::string, std::size_t>& per_namespace) {
    for (const std::string& ns : namespaces_) {
        if (!per_namespace.contains(ns)) {
            canary_total_->Add({{"namespace", ns}}).Set(0);
        }
    }
    for (const auto& [ns, count] : per_namespace) {
        canary_total_->Add({{"namespace", ns}}).Set(static_cast<double>(count));
        namespaces_.insert(ns);
    }
}

Telemetry::CanarySeries& Telemetry::series_of(const api::Canary& canary) {
    return series_[canary.metadata.ns + "/" + canary.metadata.name];
}

void Telemetry::forget_canary(const std::string& ns, const std::string& name) {
    const auto it = series_.find(ns + "/" + name);
    if (it == series_.end()) {
        return;
    }
    const CanarySeries& s = it->second;
    // Add() with labels already present returns that series, which Remove() then drops.
    for (const Labels& labels : s.status) {
        status_->Remove(&status_->Add(labels));
    }
    for (const Labels& labels : s.weight) {
        weight_->Remove(&weight_->Add(labels));
    }
    for (const Labels& labels : s.duration) {
        duration_->Remove(&duration_->Add(labels, default_buckets()));
    }
    for (const Labels& labels : s.metric) {
        metric_analysis_->Remove(&metric_analysis_->Add(labels));
    }
    for (const Labels& labels : s.successes) {
        successes_->Remove(&successes_->Add(labels));
    }
    for (const Labels& labels : s.failures) {
        failures_->Remove(&failures_->Add(labels));
    }
    series_.erase(it);
}

void Telemetry::set_status(const api::Canary& canary, std::string_view phase) {
    const double value = phase == "Progressing" ? 0 : phase == "Failed" ? 2 : 1;
    const Labels labels{{"name", canary.spec.target_ref.name}, {"namespace", canary.metadata.ns}};
    series_of(canary).status.insert(labels);
    status_->Add(labels).Set(value);
}

void Telemetry::set_weights(const api::Canary& canary, int primary, int canary_weight) {
    const std::string& target = canary.spec.target_ref.name;
    const Labels primary_labels{{"workload", target + "-primary"}, {"namespace", canary.metadata.ns}};
    const Labels canary_labels{{"workload", target}, {"namespace", canary.metadata.ns}};
    series_of(canary).weight.insert(primary_labels);
    series_of(canary).weight.insert(canary_labels);
    weight_->Add(primary_labels).Set(primary);
    weight_->Add(canary_labels).Set(canary_weight);
}

void Telemetry::observe_analysis(const api::Canary& canary, double seconds) {
    const Labels labels{{"name", canary.metadata.name}, {"namespace", canary.metadata.ns}};
    series_of(canary).duration.insert(labels);
    duration_->Add(labels, default_buckets()).Observe(seconds);
}

void Telemetry::set_metric_value(const api::Canary& canary, const std::string& metric,
                                 double value) {
    const Labels labels{
        {"name", canary.metadata.name}, {"namespace", canary.metadata.ns}, {"metric", metric}};
    series_of(canary).metric.insert(labels);
    metric_analysis_->Add(labels).Set(value);
}

void Telemetry::count_release(const api::Canary& canary, bool succeeded, bool skipped) {
    auto* family = succeeded ? successes_ : failures_;
    const Labels labels{{"name", canary.metadata.name},
                        {"namespace", canary.metadata.ns},
                        {"deployment_strategy", std::string(analysis::strategy(canary.spec))},
                        {"analysis_status", skipped ? "skipped" : "completed"}};
    (succeeded ? series_of(canary).successes : series_of(canary).failures).insert(labels);
    family->Add(labels).Increment();
}

void Telemetry::observe_reconcile(double seconds, bool ok) {
    reconcile_->Add({{"result", ok ? "ok" : "error"}}, default_buckets()).Observe(seconds);
}

void Telemetry::set_queue_depth(std::size_t depth) {
    queue_depth_->Set(static_cast<double>(depth));
}

void Telemetry::set_cache_sizes(const std::map<std::string, CacheSize>& per_resource) {
    for (const auto& [resource, size] : per_resource) {
        cache_objects_->Add({{"resource", resource}}).Set(static_cast<double>(size.objects));
        cache_bytes_->Add({{"resource", resource}}).Set(static_cast<double>(size.encoded_bytes));
    }
}

void Telemetry::set_heap(std::size_t in_use, std::size_t free) {
    heap_->Add({{"state", "in_use"}}).Set(static_cast<double>(in_use));
    heap_->Add({{"state", "free"}}).Set(static_cast<double>(free));
}

void Telemetry::observe_queue_wait(double seconds) { queue_wait_->Observe(seconds); }

void Telemetry::observe_metric_query(double seconds, bool ok) {
    metric_queries_->Add({{"result", ok ? "ok" : "error"}}, default_buckets()).Observe(seconds);
}

void Telemetry::count_notification_failure() { notification_failures_->Increment(); }

void Telemetry::set_totals(const Totals& now) {
    const auto advance = [](prometheus::Counter& counter, std::uint64_t& last, std::uint64_t total) {
        if (total > last) {
            counter.Increment(static_cast<double>(total - last));
            last = total;
        }
    };
    for (const auto& [verb_and_code, total] : now.api_requests) {
        const auto& [verb, code] = verb_and_code;
        advance(api_requests_->Add({{"verb", verb}, {"code", code}}),
                totals_.api_requests[verb_and_code], total);
    }
    for (const auto& [key, total] : now.kube_requests) {
        const auto& [verb, resource, code] = key;
        advance(kube_requests_->Add({{"verb", verb}, {"resource", resource}, {"code", code}}),
                totals_.kube_requests[key], total);
    }
    advance(*api_throttled_, totals_.api_throttled, now.api_throttled);
    advance(*api_connections_opened_, totals_.api_connections_opened, now.api_connections_opened);
    advance(*api_connections_reused_, totals_.api_connections_reused, now.api_connections_reused);
    advance(*api_tls_resumed_, totals_.api_tls_resumed, now.api_tls_resumed);
    advance(watch_restarts_->Add({{"reason", "error"}}), totals_.watch_failures, now.watch_failures);
    advance(watch_restarts_->Add({{"reason", "gone"}}), totals_.relists, now.relists);
}

}  // namespace serin::telemetry
