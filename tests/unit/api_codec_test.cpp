#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "crds/api/alert_provider.hpp"
#include "crds/api/canary.hpp"
#include "crds/api/metric_template.hpp"
#include "platform/kube/manifest.hpp"

using serin::ErrorKind;
using serin::api::Json;
using namespace std::chrono_literals;

namespace {

Json yaml(const std::string& text) {
    auto docs = serin::kube::parse_manifests(text);
    REQUIRE(docs.has_value());
    REQUIRE(docs->size() == 1);
    return docs->front();
}

Json minimal_canary() {
    return yaml(R"(
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis: {interval: 1m, threshold: 5, stepWeight: 10}
)");
}

/// Decodes `canary` after setting the JSON pointer `ptr` to `value`; returns the error message.
std::string canary_error(const std::string& ptr, const Json& value) {
    Json c = minimal_canary();
    c[Json::json_pointer(ptr)] = value;
    auto decoded = serin::api::decode_canary(c);
    REQUIRE_FALSE(decoded.has_value());
    CHECK(decoded.error().kind == ErrorKind::kInvalid);
    return decoded.error().message;
}

const char* const kFullCanary = R"yaml(
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
  uid: 1234-abcd
  generation: 7
  resourceVersion: "991"
  labels: {app: podinfo}
  annotations: {note: hi}
  finalizers: [finalizer.flagger.app]
  deletionTimestamp: "2024-01-01T00:00:00Z"
spec:
  provider: istio
  metricsServer: http://prometheus:9090
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
    primaryScalerQueries: {q: "sum(up)"}
    primaryScalerReplicas: {minReplicas: 2, maxReplicas: 5}
  ingressRef: {apiVersion: networking.k8s.io/v1, kind: Ingress, name: podinfo}
  routeRef: {apiVersion: apisix.apache.org/v2, kind: ApisixRoute, name: podinfo}
  upstreamRef: {apiVersion: gloo.solo.io/v1, kind: Upstream, name: up, namespace: gloo}
  service:
    name: web
    port: 9898
    portName: grpc
    targetPort: http
    appProtocol: tcp
    trafficDistribution: PreferClose
    portDiscovery: true
    headless: true
    timeout: 5s
    backendTimeout: 4s
    gateways: [public-gateway, mesh]
    gatewayRefs:
      - {name: gw, namespace: istio-system, sectionName: https, port: 443}
      - {name: gw2, group: example.io, kind: Other}
    hosts: [app.example.com]
    delegation: false
    meshName: global
    backends: [backend1]
    apex: {labels: {a: "1"}, annotations: {b: "2"}}
    primary: {labels: {p: "1"}}
    canary: {annotations: {c: "3"}}
    unmanagedMetadata: {annotations: [x/y], labels: [z]}
    trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
    match: [{uri: {prefix: /}}]
    rewrite: {uri: /, authority: web}
    retries: {attempts: 3, perTryTimeout: 1s, retryOn: "gateway-error"}
    headers: {request: {add: {x-a: b}}}
    corsPolicy: {allowOrigin: ["*"], maxAge: 24h}
    mirror: [{backendRef: {name: shadow, port: 80}}]
  analysis:
    interval: 30s
    threshold: 3
    iterations: 4
    maxWeight: 60
    stepWeight: 5
    stepWeights: [1, 10, 50]
    stepWeightPromotion: 20
    primaryReadyThreshold: 90
    canaryReadyThreshold: 80
    mirror: true
    mirrorWeight: 25
    match: [{headers: {x-canary: {exact: "insider"}}}]
    sessionAffinity:
      cookieName: canary-cookie
      primaryCookieName: primary-cookie
      domain: example.com
      httpOnly: true
      maxAge: 3600
      partitioned: false
      path: /app
      sameSite: Strict
      secure: true
    metrics:
      - name: request-success-rate
        interval: 1m30s
        thresholdRange: {min: 99.5, max: 100}
      - name: custom
        threshold: 4.5
        query: "sum(x)"
        templateRef: {name: latency, namespace: flagger}
        templateVariables: {v: w}
    webhooks:
      - name: gate
        type: confirm-promotion
        url: http://gate/
        timeout: 15s
        retries: 3
        disableTLS: true
        muteAlert: true
        metadata: {cmd: run}
    alerts:
      - name: on-call
        severity: error
        providerRef: {name: slack, namespace: ops}
  progressDeadlineSeconds: 120
  skipAnalysis: true
  revertOnDeletion: true
  suspend: true
status:
  phase: Progressing
  canaryWeight: 10
  failedChecks: 1
  iterations: 2
)yaml";

}  // namespace

TEST_CASE("parse_duration accepts Go durations") {
    CHECK(serin::api::parse_duration("1m").value() == 60s);
    CHECK(serin::api::parse_duration("30s").value() == 30s);
    CHECK(serin::api::parse_duration("1m30s").value() == 90s);
    CHECK(serin::api::parse_duration("500ms").value() == 500ms);
    CHECK(serin::api::parse_duration("1h").value() == 1h);
    CHECK(serin::api::parse_duration("1.5h").value() == 90min);
    CHECK(serin::api::parse_duration("0").value() == 0ms);
    CHECK(serin::api::parse_duration("1500us").value() == 1ms);
    for (const char* bad : {"", "1", "m", "1x", "ten", "-1s", "1.s5", "1m 30s"}) {
        INFO(bad);
        auto d = serin::api::parse_duration(bad);
        REQUIRE_FALSE(d.has_value());
        CHECK(d.error().kind == ErrorKind::kInvalid);
    }
}

TEST_CASE("a full canary decodes every field") {
    auto decoded = serin::api::decode_canary(yaml(kFullCanary));
    REQUIRE(decoded.has_value());
    const serin::api::Canary& c = *decoded;

    CHECK(c.metadata.name == "podinfo");
    CHECK(c.metadata.ns == "test");
    CHECK(c.metadata.uid == "1234-abcd");
    CHECK(c.metadata.generation == 7);
    CHECK(c.metadata.resource_version == "991");
    CHECK(c.metadata.labels.at("app") == "podinfo");
    CHECK(c.metadata.annotations.at("note") == "hi");
    CHECK(c.metadata.finalizers == std::vector<std::string>{"finalizer.flagger.app"});
    CHECK(c.metadata.deletion_timestamp == "2024-01-01T00:00:00Z");

    const auto& s = c.spec;
    CHECK(s.provider == "istio");
    CHECK(s.metrics_server == "http://prometheus:9090");
    CHECK(s.target_ref.api_version == "apps/v1");
    CHECK(s.target_ref.kind == "Deployment");
    CHECK(s.target_ref.name == "podinfo");
    REQUIRE(s.autoscaler_ref);
    CHECK(s.autoscaler_ref->kind == "HorizontalPodAutoscaler");
    CHECK(s.autoscaler_ref->api_version == "autoscaling/v2");
    CHECK(s.autoscaler_ref->name == "podinfo");
    CHECK(s.autoscaler_ref->primary_scaler_queries.at("q") == "sum(up)");
    REQUIRE(s.autoscaler_ref->primary_scaler_replicas);
    CHECK(s.autoscaler_ref->primary_scaler_replicas->min_replicas == 2);
    CHECK(s.autoscaler_ref->primary_scaler_replicas->max_replicas == 5);
    REQUIRE(s.ingress_ref);
    CHECK(s.ingress_ref->kind == "Ingress");
    CHECK(s.ingress_ref->name == "podinfo");
    REQUIRE(s.route_ref);
    CHECK(s.route_ref->kind == "ApisixRoute");
    REQUIRE(s.upstream_ref);
    CHECK(s.upstream_ref->name == "up");
    CHECK(s.upstream_ref->ns == "gloo");

    const auto& svc = s.service;
    CHECK(svc.name == "web");
    CHECK(svc.port == 9898);
    CHECK(svc.port_name == "grpc");
    CHECK(std::get<std::string>(svc.target_port) == "http");
    CHECK(svc.app_protocol == "tcp");
    CHECK(svc.traffic_distribution == "PreferClose");
    CHECK(svc.port_discovery);
    CHECK(svc.headless);
    CHECK(svc.timeout == "5s");
    CHECK(svc.backend_timeout == "4s");
    CHECK(svc.gateways == std::vector<std::string>{"public-gateway", "mesh"});
    REQUIRE(svc.gateway_refs.size() == 2);
    CHECK(svc.gateway_refs[0].group == "gateway.networking.k8s.io");
    CHECK(svc.gateway_refs[0].kind == "Gateway");
    CHECK(svc.gateway_refs[0].ns == "istio-system");
    CHECK(svc.gateway_refs[0].name == "gw");
    CHECK(svc.gateway_refs[0].section_name == "https");
    CHECK(svc.gateway_refs[0].port == 443);
    CHECK(svc.gateway_refs[1].group == "example.io");
    CHECK(svc.gateway_refs[1].kind == "Other");
    CHECK_FALSE(svc.gateway_refs[1].port);
    CHECK(svc.hosts == std::vector<std::string>{"app.example.com"});
    CHECK_FALSE(svc.delegation);
    CHECK(svc.mesh_name == "global");
    CHECK(svc.backends == std::vector<std::string>{"backend1"});
    REQUIRE(svc.apex);
    CHECK(svc.apex->labels.at("a") == "1");
    CHECK(svc.apex->annotations.at("b") == "2");
    REQUIRE(svc.primary);
    CHECK(svc.primary->labels.at("p") == "1");
    REQUIRE(svc.canary);
    CHECK(svc.canary->annotations.at("c") == "3");
    REQUIRE(svc.unmanaged_metadata);
    CHECK(svc.unmanaged_metadata->annotations == std::vector<std::string>{"x/y"});
    CHECK(svc.unmanaged_metadata->labels == std::vector<std::string>{"z"});
    CHECK(svc.traffic_policy == Json::parse(R"({"tls":{"mode":"ISTIO_MUTUAL"}})"));
    CHECK(svc.match == Json::parse(R"([{"uri":{"prefix":"/"}}])"));
    CHECK(svc.rewrite == Json::parse(R"({"uri":"/","authority":"web"})"));
    CHECK(svc.retries ==
          Json::parse(R"({"attempts":3,"perTryTimeout":"1s","retryOn":"gateway-error"})"));
    CHECK(svc.headers == Json::parse(R"({"request":{"add":{"x-a":"b"}}})"));
    CHECK(svc.cors_policy == Json::parse(R"({"allowOrigin":["*"],"maxAge":"24h"})"));
    CHECK(svc.mirror == Json::parse(R"([{"backendRef":{"name":"shadow","port":80}}])"));

    REQUIRE(s.analysis);
    const auto& a = *s.analysis;
    CHECK(a.interval == "30s");
    CHECK(a.interval_duration == 30s);
    CHECK(a.threshold == 3);
    CHECK(a.iterations == 4);
    CHECK(a.max_weight == 60);
    CHECK(a.step_weight == 5);
    CHECK(a.step_weights == std::vector<std::int32_t>{1, 10, 50});
    CHECK(a.step_weight_promotion == 20);
    CHECK(a.primary_ready_threshold == 90);
    CHECK(a.canary_ready_threshold == 80);
    CHECK(a.mirror);
    CHECK(a.mirror_weight == 25);
    CHECK(a.match == Json::parse(R"([{"headers":{"x-canary":{"exact":"insider"}}}])"));
    REQUIRE(a.session_affinity);
    CHECK(a.session_affinity->cookie_name == "canary-cookie");
    CHECK(a.session_affinity->primary_cookie_name == "primary-cookie");
    CHECK(a.session_affinity->domain == "example.com");
    CHECK(a.session_affinity->http_only == true);
    CHECK(a.session_affinity->max_age == 3600);
    CHECK(a.session_affinity->partitioned == false);
    CHECK(a.session_affinity->path == "/app");
    CHECK(a.session_affinity->same_site == "Strict");
    CHECK(a.session_affinity->secure == true);

    REQUIRE(a.metrics.size() == 2);
    CHECK(a.metrics[0].name == "request-success-rate");
    CHECK(a.metrics[0].interval == "1m30s");
    CHECK(a.metrics[0].interval_duration == 90s);
    REQUIRE(a.metrics[0].threshold_range);
    CHECK(a.metrics[0].threshold_range->min == 99.5);
    CHECK(a.metrics[0].threshold_range->max == 100.0);
    CHECK_FALSE(a.metrics[0].threshold);
    CHECK(a.metrics[1].threshold == 4.5);
    CHECK(a.metrics[1].query == "sum(x)");
    REQUIRE(a.metrics[1].template_ref);
    CHECK(a.metrics[1].template_ref->name == "latency");
    CHECK(a.metrics[1].template_ref->ns == "flagger");
    CHECK(a.metrics[1].template_variables.at("v") == "w");

    REQUIRE(a.webhooks.size() == 1);
    const auto& w = a.webhooks[0];
    CHECK(w.name == "gate");
    CHECK(w.type == "confirm-promotion");
    CHECK(w.url == "http://gate/");
    CHECK(w.timeout == "15s");
    CHECK(w.timeout_duration == 15s);
    CHECK(w.retries == 3);
    CHECK(w.disable_tls);
    CHECK(w.mute_alert);
    CHECK(w.metadata.at("cmd") == "run");

    REQUIRE(a.alerts.size() == 1);
    CHECK(a.alerts[0].name == "on-call");
    CHECK(a.alerts[0].severity == "error");
    CHECK(a.alerts[0].provider_ref.name == "slack");
    CHECK(a.alerts[0].provider_ref.ns == "ops");

    CHECK(s.progress_deadline_seconds == 120);
    CHECK(s.skip_analysis);
    CHECK(s.revert_on_deletion);
    CHECK(s.suspend);

    CHECK(c.status.phase == "Progressing");
    CHECK(c.status.canary_weight == 10);
    CHECK(c.status.failed_checks == 1);
    CHECK(c.status.iterations == 2);
}

TEST_CASE("defaults are applied") {
    Json j = minimal_canary();
    j["spec"]["analysis"] = yaml(R"(
threshold: 0
metrics: [{name: request-duration}]
webhooks: [{name: w, url: http://x/}]
sessionAffinity: {cookieName: c}
)");
    auto decoded = serin::api::decode_canary(j);
    REQUIRE(decoded.has_value());
    const auto& s = decoded->spec;
    CHECK(s.progress_deadline_seconds == 600);
    CHECK_FALSE(s.skip_analysis);
    CHECK_FALSE(s.revert_on_deletion);
    CHECK_FALSE(s.suspend);
    CHECK(s.service.name == "podinfo");
    CHECK(s.service.port_name == "http");
    CHECK(std::get<std::int32_t>(s.service.target_port) == 9898);
    CHECK(s.service.gateways.empty());
    CHECK(s.service.traffic_policy.is_null());
    CHECK_FALSE(s.autoscaler_ref);
    REQUIRE(s.analysis);
    const auto& a = *s.analysis;
    CHECK(a.interval.empty());
    CHECK(a.interval_duration == 60s);
    CHECK(a.threshold == 1);
    CHECK(a.iterations == 0);
    CHECK(a.max_weight == 100);
    CHECK(a.step_weight == 0);
    CHECK(a.primary_ready_threshold == 100);
    CHECK(a.canary_ready_threshold == 100);
    CHECK_FALSE(a.mirror);
    CHECK(a.mirror_weight == 0);
    CHECK(a.match.is_null());
    REQUIRE(a.session_affinity);
    CHECK(a.session_affinity->max_age == 86400);
    REQUIRE(a.metrics.size() == 1);
    CHECK(a.metrics[0].interval == "1m");
    CHECK(a.metrics[0].interval_duration == 60s);
    CHECK_FALSE(a.metrics[0].threshold_range);
    REQUIRE(a.webhooks.size() == 1);
    CHECK(a.webhooks[0].type.empty());
    CHECK(a.webhooks[0].timeout == "10s");
    CHECK(a.webhooks[0].timeout_duration == 10s);
    CHECK(a.webhooks[0].retries == 0);
    CHECK_FALSE(a.webhooks[0].mute_alert);
    CHECK(decoded->status.phase.empty());
    CHECK_FALSE(decoded->status.tracked_configs);
}

TEST_CASE("intervals down to 1s are kept, shorter ones clamp to 1s, an explicit progressDeadlineSeconds of 0 is kept") {
    Json j = minimal_canary();
    j["spec"]["analysis"]["interval"] = "1s";
    j["spec"]["progressDeadlineSeconds"] = 0;
    auto decoded = serin::api::decode_canary(j);
    REQUIRE(decoded.has_value());
    CHECK(decoded->spec.analysis->interval == "1s");
    CHECK(decoded->spec.analysis->interval_duration == 1s);
    j["spec"]["analysis"]["interval"] = "0s";
    auto zero = serin::api::decode_canary(j);
    REQUIRE(zero.has_value());
    CHECK(zero->spec.analysis->interval_duration == 1s);
    CHECK(decoded->spec.progress_deadline_seconds == 0);
}

TEST_CASE("the deprecated canaryAnalysis is decoded when analysis is absent") {
    Json j = minimal_canary();
    j["spec"].erase("analysis");
    j["spec"]["canaryAnalysis"] = yaml("{interval: 2m, threshold: 4, iterations: 3}");
    auto decoded = serin::api::decode_canary(j);
    REQUIRE(decoded.has_value());
    REQUIRE(decoded->spec.analysis);
    CHECK(decoded->spec.analysis->interval_duration == 120s);
    CHECK(decoded->spec.analysis->threshold == 4);
    CHECK(decoded->spec.analysis->iterations == 3);

    SECTION("analysis wins when both are set") {
        j["spec"]["analysis"] = yaml("{interval: 1m, threshold: 7, stepWeight: 5}");
        auto both = serin::api::decode_canary(j);
        REQUIRE(both.has_value());
        CHECK(both->spec.analysis->threshold == 7);
        CHECK(both->spec.analysis->iterations == 0);
    }
    SECTION("errors name the canaryAnalysis path") {
        j["spec"]["canaryAnalysis"]["stepWeight"] = "ten";
        auto bad = serin::api::decode_canary(j);
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().message ==
              "spec.canaryAnalysis.stepWeight: expected an integer, got \"ten\"");
    }
    SECTION("no analysis at all means skip analysis") {
        j["spec"].erase("canaryAnalysis");
        auto none = serin::api::decode_canary(j);
        REQUIRE(none.has_value());
        CHECK_FALSE(none->spec.analysis);
    }
}

TEST_CASE("wrong types name the field path and the value") {
    CHECK(canary_error("/spec/analysis/stepWeight", "ten") ==
          "spec.analysis.stepWeight: expected an integer, got \"ten\"");
    CHECK(canary_error("/spec/analysis/threshold", 1.5) ==
          "spec.analysis.threshold: expected an integer, got 1.5");
    CHECK(canary_error("/spec/service/port", "80") ==
          "spec.service.port: expected an integer, got \"80\"");
    CHECK(canary_error("/spec/service/port", 1LL << 40) ==
          "spec.service.port: 1099511627776 is out of range for a 32-bit integer");
    CHECK(canary_error("/spec/service/targetPort", true) ==
          "spec.service.targetPort: expected an integer or a string, got true");
    CHECK(canary_error("/spec/suspend", "yes") == "spec.suspend: expected a boolean, got \"yes\"");
    CHECK(canary_error("/spec/provider", 3) == "spec.provider: expected a string, got 3");
    CHECK(canary_error("/spec/service/hosts", "a.com") ==
          "spec.service.hosts: expected an array, got \"a.com\"");
    CHECK(canary_error("/spec/service/hosts", Json::array({"a", 1})) ==
          "spec.service.hosts[1]: expected a string, got 1");
    CHECK(canary_error("/spec/service/retries", Json::array()) ==
          "spec.service.retries: expected an object, got []");
    CHECK(canary_error("/metadata/labels", Json{{"app", 1}}) ==
          "metadata.labels.app: expected a string, got 1");
    CHECK(canary_error("/spec/analysis/metrics",
                       Json::array({Json{{"name", "m"}, {"thresholdRange", {{"min", "x"}}}}})) ==
          "spec.analysis.metrics[0].thresholdRange.min: expected a number, got \"x\"");
    CHECK(canary_error("/spec/analysis/webhooks", Json::array({"hook"})) ==
          "spec.analysis.webhooks[0]: expected an object, got \"hook\"");
    CHECK(canary_error("/spec/analysis/stepWeights", Json::array({10, "x"})) ==
          "spec.analysis.stepWeights[1]: expected an integer, got \"x\"");
    CHECK(canary_error("/status/canaryWeight", "10") ==
          "status.canaryWeight: expected an integer, got \"10\"");
    CHECK(canary_error("/spec", "oops") == "spec: expected an object, got \"oops\"");
}

TEST_CASE("bad durations name the field path and the value") {
    CHECK(canary_error("/spec/analysis/interval", "1h") ==
          "spec.analysis.interval: \"1h\" is not a duration like 30s or 1m");
    CHECK(canary_error("/spec/analysis/interval", "10") ==
          "spec.analysis.interval: \"10\" is not a duration like 30s or 1m");
    CHECK(canary_error("/spec/analysis/interval", "1mm") ==
          "spec.analysis.interval: \"1mm\" is not a duration like 30s or 1m");
    CHECK(canary_error("/spec/analysis/metrics", yaml("[{name: m, interval: soon}]")) ==
          "spec.analysis.metrics[0].interval: \"soon\" is not a duration like 30s or 1m");
    CHECK(canary_error("/spec/analysis/webhooks", yaml("[{name: w, url: u, timeout: 5}]")) ==
          "spec.analysis.webhooks[0].timeout: expected a string, got 5");
}

TEST_CASE("bad enums name the field path and the value") {
    CHECK(canary_error("/spec/targetRef/kind", "StatefulSet") ==
          "spec.targetRef.kind: \"StatefulSet\" is not one of Deployment, DaemonSet, Service");
    CHECK(canary_error("/spec/analysis/webhooks", yaml("[{name: w, url: u, type: pre}]")) ==
          "spec.analysis.webhooks[0].type: \"pre\" is not one of confirm-rollout, pre-rollout, "
          "rollout, confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event");
    CHECK(canary_error("/spec/analysis/alerts",
                       yaml("[{name: a, severity: fatal, providerRef: {name: p}}]")) ==
          "spec.analysis.alerts[0].severity: \"fatal\" is not one of info, warn, error");
    CHECK(canary_error("/spec/autoscalerRef", yaml("{kind: VPA, name: x}")) ==
          "spec.autoscalerRef.kind: \"VPA\" is not one of HorizontalPodAutoscaler, ScaledObject");
    CHECK(
        canary_error("/spec/analysis/sessionAffinity", yaml("{cookieName: c, sameSite: Loose}")) ==
        "spec.analysis.sessionAffinity.sameSite: \"Loose\" is not one of Strict, Lax, None");
    CHECK(canary_error("/status/phase", "Exploded") ==
          "status.phase: \"Exploded\" is not one of Initializing, Initialized, Waiting, "
          "Progressing, WaitingPromotion, Promoting, Finalising, Succeeded, Failed, Terminating, "
          "Terminated");
}

TEST_CASE("Serin's noData, errorLimit and judge decode, with defaults and errors naming the field") {
    Json canary = minimal_canary();
    canary["spec"]["analysis"]["metrics"] = yaml(R"yaml(
- name: request-success-rate
  thresholdRange: {min: 99}
  noData: hold
  errorLimit: 3
- name: request-duration
  judge:
    direction: increase
    tolerance: 0.1
    confidence: 0.95
    effectSize: {measure: cles, allowedIncrease: 0.7}
    critical: true
    mustHaveData: true
    outliers: remove
    step: 5s
- name: error-rate
  templateRef: {name: errors}
  judge: {}
)yaml");
    canary["spec"]["analysis"]["judge"] = yaml("{pass: 90, marginal: 40}");
    auto c = serin::api::decode_canary(canary);
    REQUIRE(c.has_value());
    const auto& metrics = c->spec.analysis->metrics;
    REQUIRE(metrics.size() == 3);
    CHECK(metrics[0].no_data == serin::api::NoDataPolicy::kHold);
    CHECK(metrics[0].error_limit == 3);
    CHECK_FALSE(metrics[0].judge);
    REQUIRE(metrics[1].judge);
    const auto& j = *metrics[1].judge;
    CHECK(j.direction == "increase");
    CHECK(j.tolerance == 0.1);
    CHECK(j.confidence == 0.95);
    CHECK(j.effect_size.measure == "cles");
    CHECK(j.effect_size.allowed_increase == 0.7);
    CHECK_FALSE(j.effect_size.allowed_decrease);
    CHECK(j.critical);
    CHECK(j.must_have_data);
    CHECK(j.remove_outliers);
    CHECK(j.step == std::chrono::milliseconds{5000});
    CHECK(metrics[1].no_data == serin::api::NoDataPolicy::kFail);  // Flagger's default
    CHECK(metrics[1].error_limit == 0);
    REQUIRE(metrics[2].judge);
    CHECK(metrics[2].judge->direction == "either");
    CHECK(metrics[2].judge->tolerance == 0.25);
    CHECK(metrics[2].judge->confidence == 0.98);
    CHECK(c->spec.analysis->judge.pass == 90);
    CHECK(c->spec.analysis->judge.marginal == 40);

    CHECK(canary_error("/spec/analysis/metrics", yaml("[{name: m, query: q, noData: maybe}]")) ==
          "spec.analysis.metrics[0].noData: \"maybe\" is not one of fail, pass, hold");
    CHECK(canary_error("/spec/analysis/metrics", yaml("[{name: m, query: q, errorLimit: -1}]")) ==
          "spec.analysis.metrics[0].errorLimit: -1 is negative");
    CHECK(canary_error("/spec/analysis/metrics",
                       yaml("[{name: m, query: q, judge: {confidence: 1.5}}]")) ==
          "spec.analysis.metrics[0].judge.confidence: 1.5 is not in (0, 1)");
    CHECK(canary_error("/spec/analysis/metrics",
                       yaml("[{name: m, query: q, judge: {direction: up}}]")) ==
          "spec.analysis.metrics[0].judge.direction: \"up\" is not one of either, increase, "
          "decrease");
    CHECK(canary_error("/spec/analysis/judge", yaml("{pass: 50, marginal: 60}")) ==
          "spec.analysis.judge.marginal: 60.0 is not below pass (50.0)");
}

TEST_CASE("negative and out-of-range weights are rejected") {
    CHECK(canary_error("/spec/analysis/stepWeight", -5) ==
          "spec.analysis.stepWeight: -5 must not be negative");
    CHECK(canary_error("/spec/analysis/maxWeight", -1) ==
          "spec.analysis.maxWeight: -1 must not be negative");
    CHECK(canary_error("/spec/analysis/stepWeights", Json::array({5, -10})) ==
          "spec.analysis.stepWeights[1]: -10 must not be negative");
    CHECK(canary_error("/spec/analysis/stepWeightPromotion", -1) ==
          "spec.analysis.stepWeightPromotion: -1 must not be negative");
    CHECK(canary_error("/spec/analysis/mirrorWeight", 101) ==
          "spec.analysis.mirrorWeight: 101 is not between 0 and 100");
    CHECK(canary_error("/spec/progressDeadlineSeconds", -1) ==
          "spec.progressDeadlineSeconds: -1 must not be negative");
}

TEST_CASE("missing required fields are reported") {
    Json j = minimal_canary();
    j["spec"].erase("targetRef");
    auto no_target = serin::api::decode_canary(j);
    REQUIRE_FALSE(no_target.has_value());
    CHECK(no_target.error().message == "spec.targetRef: is required");

    CHECK(canary_error("/spec/service", Json::object()) == "spec.service.port: is required");
    CHECK(canary_error("/spec/targetRef/name", "") == "spec.targetRef.name: is required");
    CHECK(canary_error("/spec/analysis/webhooks", yaml("[{name: w}]")) ==
          "spec.analysis.webhooks[0].url: is required");
    CHECK(canary_error("/spec/analysis/alerts", yaml("[{name: a}]")) ==
          "spec.analysis.alerts[0].providerRef: is required");
    CHECK(canary_error("/spec/analysis/metrics", yaml("[{interval: 1m}]")) ==
          "spec.analysis.metrics[0].name: is required");

    auto not_object = serin::api::decode_canary(Json::array());
    REQUIRE_FALSE(not_object.has_value());
    CHECK(not_object.error().kind == ErrorKind::kInvalid);
}

TEST_CASE("status round-trips through encode and decode") {
    serin::api::CanaryStatus status;
    status.phase = "Promoting";
    status.failed_checks = 2;
    status.canary_weight = 30;
    status.iterations = 4;
    status.tracked_configs = serin::api::StringMap{{"configmap/cfg", "0123456789abcdef"}};
    status.last_applied_spec = "hash-a";
    status.last_promoted_spec = "hash-b";
    status.last_transition_time = "2024-05-01T10:00:00Z";
    status.conditions.push_back({"Promoted", "Unknown", "2024-05-01T10:00:00Z",
                                 "2024-05-01T09:00:00Z", "Progressing", "Canary analysis ok"});
    status.session_affinity_cookie = "flagger-cookie-abc=xyz";
    status.primary_session_affinity_cookie = "flagger-primary=1";
    status.previous_session_affinity_cookie = "flagger-cookie-old=1";

    Json encoded = serin::api::encode_status(status);
    CHECK(encoded == Json::parse(R"({
        "phase": "Promoting", "failedChecks": 2, "canaryWeight": 30, "iterations": 4,
        "trackedConfigs": {"configmap/cfg": "0123456789abcdef"},
        "lastAppliedSpec": "hash-a", "lastPromotedSpec": "hash-b",
        "lastTransitionTime": "2024-05-01T10:00:00Z",
        "sessionAffinityCookie": "flagger-cookie-abc=xyz",
        "primarySessionAffinityCookie": "flagger-primary=1",
        "previousSessionAffinityCookie": "flagger-cookie-old=1",
        "conditions": [{"type": "Promoted", "status": "Unknown",
                        "lastUpdateTime": "2024-05-01T10:00:00Z",
                        "lastTransitionTime": "2024-05-01T09:00:00Z",
                        "reason": "Progressing", "message": "Canary analysis ok"}]})"));

    auto decoded = serin::api::decode_status(encoded);
    REQUIRE(decoded.has_value());
    CHECK(serin::api::encode_status(*decoded) == encoded);
    CHECK(decoded->tracked_configs == status.tracked_configs);
    REQUIRE(decoded->conditions.size() == 1);
    CHECK(decoded->conditions[0].message == "Canary analysis ok");

    SECTION("empty fields are omitted, counters and conditions always written") {
        Json empty = serin::api::encode_status({});
        CHECK(empty == Json::parse(R"({"phase":"","failedChecks":0,"canaryWeight":0,
                                       "iterations":0,"conditions":[]})"));
        auto back = serin::api::decode_status(empty);
        REQUIRE(back.has_value());
        CHECK(back->phase.empty());
        CHECK_FALSE(back->tracked_configs);
    }
    SECTION("a condition without a message still has one, for Argo CD's health check") {
        serin::api::CanaryStatus bare;
        bare.conditions.push_back({"Accepted", "True", "", "", "Valid", ""});
        const Json conditions = serin::api::encode_status(bare).at("conditions");
        REQUIRE(conditions.size() == 1);
        CHECK(conditions[0].at("message") == "");
    }
    SECTION("bad status") {
        auto bad = serin::api::decode_status(Json{{"trackedConfigs", {{"secret/x", 5}}}});
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error().kind == ErrorKind::kInvalid);
        CHECK(bad.error().message == "status.trackedConfigs.secret/x: expected a string, got 5");
        CHECK_FALSE(serin::api::decode_status(Json("x")).has_value());
        CHECK(serin::api::decode_status(Json()).has_value());
    }
}

TEST_CASE("MetricTemplate decodes and validates") {
    auto t = serin::api::decode_metric_template(yaml(R"yaml(
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: latency, namespace: flagger}
spec:
  provider:
    type: prometheus
    address: http://prometheus:9090
    headers: {X-Scope-OrgID: [tenant]}
    secretRef: {name: creds}
    region: us-east-1
    insecureSkipVerify: true
  query: "sum(rate(x[{{ interval }}]))"
)yaml"));
    REQUIRE(t.has_value());
    CHECK(t->metadata.name == "latency");
    CHECK(t->spec.provider.type == "prometheus");
    CHECK(t->spec.provider.address == "http://prometheus:9090");
    CHECK(t->spec.provider.headers.at("X-Scope-OrgID") == std::vector<std::string>{"tenant"});
    REQUIRE(t->spec.provider.secret_ref);
    CHECK(t->spec.provider.secret_ref->name == "creds");
    CHECK(t->spec.provider.region == "us-east-1");
    CHECK(t->spec.provider.insecure_skip_verify);
    CHECK(t->spec.query == "sum(rate(x[{{ interval }}]))");

    auto bad_type = serin::api::decode_metric_template(
        yaml("{metadata: {name: m}, spec: {provider: {type: mysql}, query: q}}"));
    REQUIRE_FALSE(bad_type.has_value());
    CHECK(bad_type.error().kind == ErrorKind::kInvalid);
    CHECK(bad_type.error().message.rfind("spec.provider.type: \"mysql\" is not one of", 0) == 0);

    auto no_query = serin::api::decode_metric_template(
        yaml("{metadata: {name: m}, spec: {provider: {type: datadog}}}"));
    REQUIRE_FALSE(no_query.has_value());
    CHECK(no_query.error().message == "spec.query: is required");

    auto bad_header = serin::api::decode_metric_template(yaml(
        "{metadata: {name: m}, spec: {provider: {type: prometheus, headers: {A: b}}, query: q}}"));
    REQUIRE_FALSE(bad_header.has_value());
    CHECK(bad_header.error().message == "spec.provider.headers.A: expected an array, got \"b\"");
}

TEST_CASE("AlertProvider decodes, defaults and validates") {
    auto p = serin::api::decode_alert_provider(yaml(R"(
apiVersion: flagger.app/v1beta1
kind: AlertProvider
metadata: {name: on-call, namespace: flagger}
spec: {type: slack, address: "https://hooks.slack.com/x"}
)"));
    REQUIRE(p.has_value());
    CHECK(p->spec.type == "slack");
    CHECK(p->spec.channel == "general");
    CHECK(p->spec.username == "flagger");
    CHECK(p->spec.address == "https://hooks.slack.com/x");
    CHECK_FALSE(p->spec.secret_ref);

    auto full = serin::api::decode_alert_provider(yaml(R"(
metadata: {name: teams}
spec: {type: msteams, channel: ops, username: bot, proxy: "http://proxy:3128", secretRef: {name: s}}
)"));
    REQUIRE(full.has_value());
    CHECK(full->spec.channel == "ops");
    CHECK(full->spec.username == "bot");
    CHECK(full->spec.proxy == "http://proxy:3128");
    REQUIRE(full->spec.secret_ref);
    CHECK(full->spec.secret_ref->name == "s");

    auto bad = serin::api::decode_alert_provider(
        yaml("{metadata: {name: x}, spec: {type: pager, address: u}}"));
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == ErrorKind::kInvalid);
    CHECK(bad.error().message ==
          "spec.type: \"pager\" is not one of slack, msteams, discord, rocket, gchat");

    auto neither =
        serin::api::decode_alert_provider(yaml("{metadata: {name: x}, spec: {type: slack}}"));
    REQUIRE_FALSE(neither.has_value());
    CHECK(neither.error().message == "spec: one of address or secretRef is required");
}

TEST_CASE("every example manifest decodes") {
    namespace fs = std::filesystem;
    const fs::path root = fs::path(SERIN_SOURCE_DIR) / "examples";
    REQUIRE(fs::is_directory(root));
    int decoded_objects = 0;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        const auto ext = entry.path().extension();
        if (!entry.is_regular_file() || (ext != ".yaml" && ext != ".yml")) {
            continue;
        }
        INFO(entry.path().string());
        std::ifstream in(entry.path());
        std::stringstream text;
        text << in.rdbuf();
        auto docs = serin::kube::parse_manifests(text.str());
        REQUIRE(docs.has_value());
        for (const Json& doc : *docs) {
            const auto kind_it = doc.find("kind");
            const std::string kind =
                kind_it != doc.end() && kind_it->is_string() ? kind_it->get<std::string>() : "";
            if (kind == "Canary") {
                auto c = serin::api::decode_canary(doc);
                INFO((c ? std::string() : c.error().message));
                CHECK(c.has_value());
                ++decoded_objects;
            } else if (kind == "MetricTemplate") {
                auto t = serin::api::decode_metric_template(doc);
                INFO((t ? std::string() : t.error().message));
                CHECK(t.has_value());
                ++decoded_objects;
            } else if (kind == "AlertProvider") {
                auto a = serin::api::decode_alert_provider(doc);
                INFO((a ? std::string() : a.error().message));
                CHECK(a.has_value());
                ++decoded_objects;
            }
        }
    }
    CHECK(decoded_objects >= 2);
}

TEST_CASE("decoding never throws, whatever type each field has") {
    const Json full = yaml(kFullCanary);
    // Every leaf of the full canary and every object or array holding one.
    std::set<std::string> pointers;
    const Json flat = full.flatten();
    for (const auto& item : flat.items()) {
        for (auto ptr = Json::json_pointer(item.key()); !ptr.empty(); ptr = ptr.parent_pointer()) {
            pointers.insert(ptr.to_string());
        }
    }
    const Json replacements[] = {Json("x"),      Json(1.5),  Json(-3), Json::array(),
                                 Json::object(), Json(true), Json()};
    int rejected = 0;
    for (const std::string& pointer : pointers) {
        for (const Json& replacement : replacements) {
            Json object = full;
            object[Json::json_pointer(pointer)] = replacement;
            INFO(pointer << " = " << replacement.dump());
            CHECK_NOTHROW([&] {
                auto decoded = serin::api::decode_canary(object);
                rejected += decoded.has_value() ? 0 : 1;
                auto status = serin::api::decode_status(object.value("status", Json()));
                auto t = serin::api::decode_metric_template(object);
                auto p = serin::api::decode_alert_provider(object);
                (void)status;
                (void)t;
                (void)p;
            }());
        }
    }
    CHECK(pointers.size() > 150);
    CHECK(rejected > 0);
}

TEST_CASE("the controller Deployment pins the image to this version, never :latest") {
    std::ifstream in(std::string(SERIN_SOURCE_DIR) + "/crds/base/deployment.yaml");
    REQUIRE(in.good());
    std::string line;
    std::string image;
    while (std::getline(in, line)) {
        if (const auto at = line.find("image: "); at != std::string::npos) {
            image = line.substr(at + 7);
        }
    }
    CHECK(image == std::string("ghcr.io/serin/serin:") + SERIN_VERSION);
}
