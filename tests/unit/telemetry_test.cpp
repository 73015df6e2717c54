// Flagger's series as a dashboard reads them (flagger-spec §8.1), in the text exposition.
#include <catch2/catch.hpp>

#include "controller/telemetry/telemetry.hpp"

namespace {

serin::api::Canary canary() {
    serin::api::Canary c;
    c.metadata.name = "podinfo-canary";
    c.metadata.ns = "test";
    c.spec.target_ref = {"apps/v1", "Deployment", "podinfo"};
    c.spec.analysis.emplace();
    c.spec.analysis->iterations = 5;
    return c;
}

bool has(const std::string& text, const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("telemetry exposes Flagger's series with Flagger's labels") {
    serin::telemetry::Telemetry t("0.1.0", "istio");
    const auto c = canary();
    t.set_canary_totals({{"test", 3}, {"prod", 1}});
    t.set_status(c, "Progressing");
    t.set_weights(c, 80, 20);
    t.set_metric_value(c, "request-duration", 0.25);
    t.observe_analysis(c, 0.2);
    t.count_release(c, true, false);
    t.count_release(c, false, false);
    t.count_release(c, false, false);
    const std::string text = t.scrape();
    CHECK(has(text, "flagger_info{mesh_provider=\"istio\",version=\"0.1.0\"} 1"));
    CHECK(has(text, "flagger_canary_total{namespace=\"test\"} 3"));
    // status and weight are keyed by the target's name, as in Flagger.
    CHECK(has(text, "flagger_canary_status{name=\"podinfo\",namespace=\"test\"} 0"));
    CHECK(has(text, "flagger_canary_weight{namespace=\"test\",workload=\"podinfo-primary\"} 80"));
    CHECK(has(text, "flagger_canary_weight{namespace=\"test\",workload=\"podinfo\"} 20"));
    CHECK(has(text, "flagger_canary_metric_analysis{metric=\"request-duration\",name=\"podinfo-canary\",namespace=\"test\"} 0.25"));
    CHECK(has(text, "flagger_canary_duration_seconds_count{name=\"podinfo-canary\",namespace=\"test\"} 1"));
    CHECK(has(text, "flagger_canary_duration_seconds_bucket{name=\"podinfo-canary\",namespace=\"test\",le=\"0.25\"} 1"));
    CHECK(has(text, "flagger_canary_successes_total{analysis_status=\"completed\",deployment_strategy=\"blue-green\",name=\"podinfo-canary\",namespace=\"test\"} 1"));
    CHECK(has(text, "flagger_canary_failures_total{analysis_status=\"completed\",deployment_strategy=\"blue-green\",name=\"podinfo-canary\",namespace=\"test\"} 2"));

    // A namespace whose canaries are all gone reads 0, not its last count.
    t.set_canary_totals({{"test", 3}});
    CHECK(has(t.scrape(), "flagger_canary_total{namespace=\"prod\"} 0"));

    t.set_status(c, "Failed");
    CHECK(has(t.scrape(), "flagger_canary_status{name=\"podinfo\",namespace=\"test\"} 2"));
    t.set_status(c, "Succeeded");
    CHECK(has(t.scrape(), "flagger_canary_status{name=\"podinfo\",namespace=\"test\"} 1"));
}

TEST_CASE("telemetry exposes Serin's own series") {
    serin::telemetry::Telemetry t("0.1.0", "istio");
    t.observe_reconcile(0.003, true);
    t.observe_reconcile(0.5, false);
    t.set_queue_depth(7);
    t.count_notification_failure();
    t.observe_queue_wait(0.02);
    t.observe_queue_wait(3);
    t.observe_metric_query(0.004, true);
    t.observe_metric_query(5, false);
    const std::string text = t.scrape();
    CHECK(has(text, "serin_workqueue_wait_seconds_count 2"));
    CHECK(has(text, "serin_workqueue_wait_seconds_bucket{le=\"0.025\"} 1"));
    CHECK(has(text, "serin_prometheus_query_duration_seconds_count{result=\"ok\"} 1"));
    CHECK(has(text, "serin_prometheus_query_duration_seconds_bucket{result=\"error\",le=\"2.5\"} 0"));
    CHECK(has(text, "serin_prometheus_query_duration_seconds_bucket{result=\"error\",le=\"5\"} 1"));
    CHECK(has(text, "serin_reconcile_duration_seconds_count{result=\"ok\"} 1"));
    CHECK(has(text, "serin_reconcile_duration_seconds_count{result=\"error\"} 1"));
    CHECK(has(text, "serin_workqueue_depth 7"));
    CHECK(has(text, "serin_notification_failures_total 1"));
}

TEST_CASE("the informer caches' sizes become serin_cache_objects and serin_cache_encoded_bytes") {
    serin::telemetry::Telemetry t("0.1.0", "istio");
    t.set_cache_sizes({{"deployments.apps", {2000, 2'900'000}}, {"services", {3000, 0}}});
    t.set_cache_sizes({{"deployments.apps", {1999, 2'898'000}}});
    const std::string text = t.scrape();
    CHECK(has(text, "serin_cache_objects{resource=\"deployments.apps\"} 1999"));
    CHECK(has(text, "serin_cache_encoded_bytes{resource=\"deployments.apps\"} 2898000"));
    CHECK(has(text, "serin_cache_objects{resource=\"services\"} 3000"));
    t.set_heap(22'000'000, 57'000'000);
    const std::string heap = t.scrape();
    CHECK(has(heap, "serin_heap_bytes{state=\"in_use\"} 22000000"));
    CHECK(has(heap, "serin_heap_bytes{state=\"free\"} 57000000"));
}

TEST_CASE("totals read at each scrape become counters that only go up") {
    serin::telemetry::Telemetry t("0.1.0", "istio");
    serin::telemetry::Telemetry::Totals totals;
    totals.api_requests[{"GET", "200"}] = 10;
    totals.api_requests[{"PUT", "409"}] = 4;
    totals.api_requests[{"WATCH", "200"}] = 2;
    totals.watch_failures = 1;
    totals.api_connections_opened = 3;
    totals.api_connections_reused = 9;
    totals.api_tls_resumed = 2;
    t.set_totals(totals);
    totals.api_requests[{"GET", "200"}] = 15;
    totals.api_connections_opened = 4;
    totals.api_requests[{"GET", "error"}] = 1;
    totals.relists = 1;
    t.set_totals(totals);
    std::string text = t.scrape();
    CHECK(has(text, "serin_api_requests_total{code=\"200\",verb=\"GET\"} 15"));
    CHECK(has(text, "serin_api_requests_total{code=\"error\",verb=\"GET\"} 1"));
    CHECK(has(text, "serin_api_requests_total{code=\"409\",verb=\"PUT\"} 4"));
    CHECK(has(text, "serin_api_requests_total{code=\"200\",verb=\"WATCH\"} 2"));
    CHECK(has(text, "serin_api_throttled_total 0"));
    CHECK(has(text, "serin_api_connections_opened_total 4"));
    CHECK(has(text, "serin_api_connections_reused_total 9"));
    CHECK(has(text, "serin_api_tls_sessions_resumed_total 2"));
    CHECK(has(text, "serin_watch_restarts_total{reason=\"error\"} 1"));
    CHECK(has(text, "serin_watch_restarts_total{reason=\"gone\"} 1"));
    totals.api_requests[{"GET", "200"}] = 3;  // a lower total (it cannot happen) never lowers it
    t.set_totals(totals);
    CHECK(has(t.scrape(), "serin_api_requests_total{code=\"200\",verb=\"GET\"} 15"));
}

TEST_CASE("a deleted canary's series are removed, another canary's are kept") {
    serin::telemetry::Telemetry t("0.1.0", "istio");
    const auto c = canary();
    const auto other = [] {
        auto o = canary();
        o.metadata.name = "other";
        o.spec.target_ref.name = "other";
        return o;
    }();
    for (const auto* one : {&c, &other}) {
        t.set_status(*one, "Progressing");
        t.set_weights(*one, 80, 20);
        t.set_metric_value(*one, "request-success-rate", 99);
        t.observe_analysis(*one, 0.2);
        t.count_release(*one, true, false);
        t.count_release(*one, false, true);
    }
    CHECK(t.canaries_with_series() == 2);
    t.forget_canary("test", "podinfo-canary");
    const std::string text = t.scrape();
    CHECK(t.canaries_with_series() == 1);
    CHECK(text.find("name=\"podinfo-canary\"") == std::string::npos);
    CHECK(text.find("name=\"podinfo\"") == std::string::npos);
    CHECK(text.find("workload=\"podinfo") == std::string::npos);
    CHECK(has(text, "flagger_canary_status{name=\"other\",namespace=\"test\"} 0"));
    CHECK(has(text, "flagger_canary_weight{namespace=\"test\",workload=\"other-primary\"} 80"));
    t.forget_canary("test", "never-seen");  // nothing to do
}

TEST_CASE("API requests by Kubernetes verb and resource become serin_kube_requests_total") {
    serin::telemetry::Telemetry t("0.1.0", "istio");
    serin::telemetry::Telemetry::Totals totals;
    totals.kube_requests[{"get", "deployments", "200"}] = 3;
    totals.kube_requests[{"update", "canaries/status", "409"}] = 1;
    t.set_totals(totals);
    totals.kube_requests[{"get", "deployments", "200"}] = 5;
    totals.kube_requests[{"watch", "services", "200"}] = 1;
    t.set_totals(totals);
    const std::string text = t.scrape();
    CHECK(has(text, "serin_kube_requests_total{code=\"200\",resource=\"deployments\",verb=\"get\"} 5"));
    CHECK(has(text, "serin_kube_requests_total{code=\"409\",resource=\"canaries/status\",verb=\"update\"} 1"));
    CHECK(has(text, "serin_kube_requests_total{code=\"200\",resource=\"services\",verb=\"watch\"} 1"));
}
