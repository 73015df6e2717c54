// The builtin metrics' PromQL per observer, the observer chosen for a canary, and MetricTemplate
// rendering (flagger-spec §5.1, §5.3).
#include <catch2/catch.hpp>

#include "metrics/queries.hpp"

namespace {

using namespace serin::metrics;

serin::api::CanarySpec spec(std::string provider, std::string kind = "Deployment",
                            std::string api_version = "apps/v1") {
    serin::api::CanarySpec s;
    s.provider = std::move(provider);
    s.target_ref = {std::move(api_version), std::move(kind), "podinfo"};
    return s;
}

TemplateVars podinfo_vars() {
    serin::api::Canary canary;
    canary.metadata.name = "podinfo-canary-object";
    canary.metadata.ns = "test";
    canary.spec = spec("istio");
    serin::api::CanaryMetric metric;
    metric.interval = "30s";
    metric.template_variables = {{"reporter", "source"}};
    return template_vars(canary, metric);
}

std::string rendered(Observer observer, const char* metric) {
    auto query = builtin_query(observer, metric);
    REQUIRE(query.has_value());
    auto text = render_query(query->query, podinfo_vars());
    REQUIRE(text.has_value());
    return collapse_whitespace(*text);
}

}  // namespace

TEST_CASE("nginx's builtin queries read the controller's canary requests of the ingress") {
    // No ingressRef in podinfo_vars: {{ ingress }} falls back to the target.
    CHECK(rendered(Observer::kNginx, "request-success-rate") ==
          "sum(rate(nginx_ingress_controller_requests{namespace=\"test\",ingress=\"podinfo\","
          "canary!=\"\",status!~\"5.*\"}[30s])) / sum(rate(nginx_ingress_controller_requests{"
          "namespace=\"test\",ingress=\"podinfo\",canary!=\"\"}[30s])) * 100");
    CHECK(rendered(Observer::kNginx, "request-duration") ==
          "sum(rate(nginx_ingress_controller_response_duration_seconds_sum{namespace=\"test\","
          "ingress=\"podinfo\",canary!=\"\"}[30s])) / sum(rate(nginx_ingress_controller_"
          "response_duration_seconds_count{namespace=\"test\",ingress=\"podinfo\",canary!="
          "\"\"}[30s])) * 1000");
    CHECK(observer_for("istio", spec("nginx")) == Observer::kNginx);
}

TEST_CASE("contour's builtin queries read Envoy's upstream cluster of the canary Service") {
    CHECK(rendered(Observer::kContour, "request-success-rate") ==
          "sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~\"test_podinfo-canary_[0-9a-zA-Z-]+\","
          "envoy_response_code!~\"5.*\"}[30s])) / sum(rate(envoy_cluster_upstream_rq{"
          "envoy_cluster_name=~\"test_podinfo-canary_[0-9a-zA-Z-]+\"}[30s])) * 100");
    CHECK(rendered(Observer::kContour, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{"
          "envoy_cluster_name=~\"test_podinfo-canary_[0-9a-zA-Z-]+\"}[30s])) by (le))");
    CHECK(builtin_query(Observer::kContour, "request-duration")->scale == 1);
    CHECK(observer_for("istio", spec("contour")) == Observer::kContour);
}

TEST_CASE("gloo's builtin queries read Envoy's cluster of the canary Upstream") {
    CHECK(rendered(Observer::kGloo, "request-success-rate") ==
          "sum(rate(envoy_cluster_upstream_rq{envoy_cluster_name=~\"test-podinfo-canaryupstream-"
          "[0-9a-zA-Z-]+_[0-9a-zA-Z-]+\",envoy_response_code!~\"5.*\"}[30s])) / sum(rate("
          "envoy_cluster_upstream_rq{envoy_cluster_name=~\"test-podinfo-canaryupstream-"
          "[0-9a-zA-Z-]+_[0-9a-zA-Z-]+\"}[30s])) * 100");
    CHECK(rendered(Observer::kGloo, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{"
          "envoy_cluster_name=~\"test-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+\"}"
          "[30s])) by (le))");
    CHECK(builtin_query(Observer::kGloo, "request-duration")->scale == 1);
    CHECK(observer_for("istio", spec("gloo")) == Observer::kGloo);
    CHECK(observer_for("istio", spec("gloo:edge")) == Observer::kGloo);
}

TEST_CASE("traefik's builtin queries read Traefik's service histogram of the canary") {
    CHECK(rendered(Observer::kTraefik, "request-success-rate") ==
          "sum(rate(traefik_service_request_duration_seconds_bucket{service=~\"test-podinfo-canary-"
          "[0-9a-zA-Z-]+@kubernetescrd\",le=\"+Inf\",code!~\"5..\"}[30s])) / sum(rate("
          "traefik_service_request_duration_seconds_bucket{service=~\"test-podinfo-canary-"
          "[0-9a-zA-Z-]+@kubernetescrd\",le=\"+Inf\"}[30s])) * 100");
    CHECK(rendered(Observer::kTraefik, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(traefik_service_request_duration_seconds_bucket{"
          "service=~\"test-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd\"}[30s])) by (le)) * 1000");
    CHECK(builtin_query(Observer::kTraefik, "request-duration")->scale == 1);
    CHECK(observer_for("istio", spec("traefik")) == Observer::kTraefik);
}

TEST_CASE("kuma's builtin queries read Envoy's series of the canary's Kuma service") {
    CHECK(rendered(Observer::kKuma, "request-success-rate") ==
          "sum(rate(envoy_cluster_upstream_rq{service=~\"podinfo-canary_test_svc_[0-9a-zA-Z-]+\","
          "envoy_response_code!~\"5.*\"}[30s])) / sum(rate(envoy_cluster_upstream_rq{"
          "service=~\"podinfo-canary_test_svc_[0-9a-zA-Z-]+\"}[30s])) * 100");
    CHECK(rendered(Observer::kKuma, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{"
          "service=~\"podinfo-canary_test_svc_[0-9a-zA-Z-]+\"}[30s])) by (le))");
    CHECK(observer_for("istio", spec("kuma")) == Observer::kKuma);
}

TEST_CASE("apisix's builtin queries read APISIX's series of the canary route") {
    // No routeRef in podinfo_vars: {{ route }} falls back to the target.
    CHECK(rendered(Observer::kApisix, "request-success-rate") ==
          "sum(rate(apisix_http_status{route=~\"test_podinfo-podinfo-canary_.+\",code!~\"5..\"}[30s])) / "
          "sum(rate(apisix_http_status{route=~\"test_podinfo-podinfo-canary_.+\"}[30s])) * 100");
    CHECK(rendered(Observer::kApisix, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{type=~\"request\","
          "route=~\"test_podinfo-podinfo-canary_.+\"}[30s])) by (le))");
    CHECK(observer_for("istio", spec("apisix")) == Observer::kApisix);
}

TEST_CASE("kuma's and apisix's queries name S where Flagger's name the target") {
    // Their objects are named after spec.service.name: Flagger's {{ target }} would miss them.
    TemplateVars vars = podinfo_vars();
    vars.service = "frontend";
    vars.route = "shop";
    auto render = [&](Observer observer) {
        return collapse_whitespace(*render_query(builtin_query(observer, "request-duration")->query, vars));
    };
    CHECK(render(Observer::kKuma).find("service=~\"frontend-canary_test_svc_") != std::string::npos);
    CHECK(render(Observer::kApisix).find("route=~\"test_shop-frontend-canary_.+\"") != std::string::npos);
}

TEST_CASE("builtin queries are Flagger's, rendered for the canary") {
    CHECK(rendered(Observer::kIstio, "request-success-rate") ==
          "sum(rate(istio_requests_total{reporter=\"destination\",destination_workload_namespace="
          "\"test\",destination_workload=~\"podinfo\",response_code!~\"5.*\"}[30s])) / "
          "sum(rate(istio_requests_total{reporter=\"destination\",destination_workload_namespace="
          "\"test\",destination_workload=~\"podinfo\"}[30s])) * 100");
    CHECK(rendered(Observer::kIstio, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="
          "\"destination\",destination_workload_namespace=\"test\",destination_workload=~"
          "\"podinfo\"}[30s])) by (le))");
    CHECK(rendered(Observer::kLinkerd, "request-success-rate") ==
          "sum(rate(response_total{namespace=\"test\",deployment=~\"podinfo\",direction=\"inbound\","
          "classification!=\"failure\"}[30s])) / sum(rate(response_total{namespace=\"test\","
          "deployment=~\"podinfo\",direction=\"inbound\"}[30s])) * 100");
    CHECK(rendered(Observer::kLinkerd, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{namespace=\"test\","
          "deployment=~\"podinfo\",direction=\"inbound\"}[30s])) by (le))");
    CHECK(rendered(Observer::kOsm, "request-success-rate").find("osm_request_total{destination_namespace=\"test\",destination_kind=\"Deployment\",destination_name=\"podinfo\",response_code!~\"5.*\"}") !=
          std::string::npos);
    CHECK(rendered(Observer::kHttp, "request-success-rate") ==
          "sum(rate(http_request_duration_seconds_count{kubernetes_namespace=\"test\","
          "kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\",status!~\"5.*\"}[30s])) / "
          "sum(rate(http_request_duration_seconds_count{kubernetes_namespace=\"test\","
          "kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"}[30s])) * 100");
    // The generic HTTP histogram is in seconds; request-duration is in milliseconds.
    CHECK(builtin_query(Observer::kHttp, "request-duration")->scale == 1000);
    CHECK(builtin_query(Observer::kNginx, "request-duration")->scale == 1);
    CHECK(builtin_query(Observer::kIstio, "request-duration")->scale == 1);
}

TEST_CASE("only the two builtin names have queries, and only for the observers written") {
    CHECK_FALSE(builtin_query(Observer::kIstio, "error-rate").has_value());
}

TEST_CASE("the observer follows spec.provider, the flag and the target kind") {
    CHECK(observer_for("istio", spec("")) == Observer::kIstio);
    CHECK(observer_for("linkerd", spec("")) == Observer::kLinkerd);
    CHECK(observer_for("istio", spec("linkerd")) == Observer::kLinkerd);
    CHECK(observer_for("linkerd", spec("istio")) == Observer::kLinkerd);  // the flag wins
    CHECK(observer_for("istio", spec("gatewayapi:v1")) == Observer::kHttp);
    CHECK(observer_for("istio", spec("kubernetes")) == Observer::kHttp);
    CHECK(observer_for("istio", spec("osm")) == Observer::kOsm);
    CHECK(observer_for("istio", spec("smi:v1alpha3:linkerd")) == Observer::kIstio);
    CHECK(observer_for("kubernetes", spec("", "Service", "v1")) == Observer::kIstio);
    CHECK(observer_for("knative", spec("", "Service", "serving.knative.dev/v1")) ==
          Observer::kKnative);
    CHECK(observer_for("crossover:foo", spec("")) == Observer::kIstio);
    CHECK(observer_for("istio", spec("contour")) == Observer::kContour);
}

TEST_CASE("templates render every function, variables, comments and trim markers") {
    const TemplateVars vars = podinfo_vars();
    auto text = render_query(
        "{{ name }} {{namespace}} {{ target }} {{ service }} {{ ingress }} {{ route }} "
        "[{{ interval }}] {{ variables.reporter }}{{/* a comment */}}  {{- \" x\" -}}",
        vars);
    // The quoted string is an action Serin does not render: an error, checked below.
    REQUIRE_FALSE(text.has_value());
    auto plain = render_query(
        "{{ name }} {{namespace}} {{ target }} {{ service }} {{ ingress }} {{ route }} "
        "[{{ interval }}] {{ variables.reporter }}{{/* a comment */}}  \n  {{- interval -}}  !",
        vars);
    REQUIRE(plain.has_value());
    CHECK(*plain ==
          "podinfo-canary-object test podinfo podinfo podinfo podinfo [30s] source30s!");
}

TEST_CASE("a template that does not render names the action and the offset") {
    const TemplateVars vars = podinfo_vars();
    auto missing = render_query("rate(x{a=\"{{ variables.nope }}\"}[1m])", vars);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().kind == serin::ErrorKind::kInvalid);
    CHECK(missing.error().message ==
          "query render error at offset 10: map has no entry for key \"nope\"");
    auto unknown = render_query("{{ cluster }}", vars);
    REQUIRE_FALSE(unknown.has_value());
    CHECK(unknown.error().message == "query render error at offset 0: function \"cluster\" not defined");
    auto unclosed = render_query("sum({{ namespace }", vars);
    REQUIRE_FALSE(unclosed.has_value());
    CHECK(unclosed.error().message == "query render error: unclosed action at offset 4");
    auto pipeline = render_query("{{ if namespace }}x{{ end }}", vars);
    REQUIRE_FALSE(pipeline.has_value());
    CHECK(pipeline.error().message.find("is not supported") != std::string::npos);
}

TEST_CASE("defaults of the template variables") {
    serin::api::Canary canary;
    canary.metadata.name = "c";
    canary.metadata.ns = "n";
    canary.spec = spec("nginx");
    canary.spec.ingress_ref = serin::api::LocalObjectRef{"networking.k8s.io/v1", "Ingress", "web"};
    serin::api::CanaryMetric metric;
    metric.interval.clear();
    const TemplateVars vars = template_vars(canary, metric);
    CHECK(vars.ingress == "web");
    CHECK(vars.route == "podinfo");
    CHECK(vars.service == "podinfo");
    CHECK(vars.interval == "1m");
}

TEST_CASE("whitespace collapses to single spaces") {
    CHECK(collapse_whitespace("  sum(x)\n\t/  sum(y)  \n") == "sum(x) / sum(y)");
}

TEST_CASE("appmesh's builtin queries read the Envoy sidecars of the canary's pods") {
    CHECK(rendered(Observer::kAppMesh, "request-success-rate") ==
          "sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace=\"test\",kubernetes_pod_name=~"
          "\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\",envoy_response_code!~\"5.*\"}[30s])) / "
          "sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace=\"test\",kubernetes_pod_name=~"
          "\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"}[30s])) * 100");
    CHECK(rendered(Observer::kAppMesh, "request-duration") ==
          "histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{kubernetes_namespace="
          "\"test\",kubernetes_pod_name=~\"podinfo-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"}[30s])) by (le))");
    CHECK(observer_for("istio", spec("appmesh:v1beta2")) == Observer::kAppMesh);
    CHECK(observer_for("appmesh:v1beta2", spec("")) == Observer::kAppMesh);
}

TEST_CASE("skipper's builtin queries read the canary Ingress's routes with the names as word characters") {
    // Flagger's worked example: namespace skipper, ingress skipper-ingress, service backend.
    TemplateVars vars = podinfo_vars();
    vars.ns = "skipper";
    vars.ingress = "skipper-ingress";
    vars.service = "backend";
    auto render = [&](const char* metric) {
        auto query = builtin_query(Observer::kSkipper, metric);
        REQUIRE(query.has_value());
        CHECK(query->word_names);
        return collapse_whitespace(render_query(query->query, word_names(vars)).value());
    };
    const std::string route = "route=~\"kube(ew)?_skipper__skipper_ingress_canary__.*__backend_canary(_[0-9]+)?\"";
    CHECK(render("request-success-rate") ==
          "sum(rate(skipper_response_duration_seconds_bucket{" + route +
              ",code!~\"5..\",le=\"+Inf\"}[30s])) / sum(rate(skipper_response_duration_seconds_bucket{" +
              route + ",le=\"+Inf\"}[30s])) * 100");
    CHECK(render("request-duration") == "sum(rate(skipper_serve_route_duration_seconds_sum{" + route +
                                            "}[30s])) / sum(rate(skipper_serve_route_duration_seconds_count{" +
                                            route + "}[30s])) * 1000");
    CHECK(word_names(vars).interval == "30s");
    CHECK(word_names(vars).target == "podinfo");
    CHECK(observer_for("istio", spec("skipper")) == Observer::kSkipper);
}
