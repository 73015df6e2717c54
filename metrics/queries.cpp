#include "metrics/queries.hpp"

#include <cctype>

namespace serin::metrics {

std::string_view observer_name(Observer observer) {
    switch (observer) {
        case Observer::kIstio: return "istio";
        case Observer::kLinkerd: return "linkerd";
        case Observer::kOsm: return "osm";
        case Observer::kHttp: return "http";
        case Observer::kAppMesh: return "appmesh";
        case Observer::kContour: return "contour";
        case Observer::kGloo: return "gloo";
        case Observer::kNginx: return "nginx";
        case Observer::kSkipper: return "skipper";
        case Observer::kTraefik: return "traefik";
        case Observer::kKuma: return "kuma";
        case Observer::kApisix: return "apisix";
        case Observer::kKnative: return "knative";
    }
    return "istio";
}

namespace {

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

}  // namespace

Observer observer_for(std::string_view mesh_provider_flag, const api::CanarySpec& spec) {
    std::string provider(contains(mesh_provider_flag, "crossover") ? "crossover"
                                                                   : mesh_provider_flag);
    if (!spec.provider.empty()) {
        provider = contains(mesh_provider_flag, "linkerd") ? "linkerd" : spec.provider;
    }
    const bool knative = spec.target_ref.api_version.starts_with("serving.knative.dev");
    if (spec.target_ref.kind == "Service" && !knative) {
        provider += ":service";
    }
    const std::string_view p = provider;
    if (p.ends_with(":service")) {
        return Observer::kIstio;
    }
    if (p.starts_with("appmesh")) return Observer::kAppMesh;
    if (p.starts_with("linkerd")) return Observer::kLinkerd;
    if (p.starts_with("istio")) return Observer::kIstio;
    if (p.starts_with("osm")) return Observer::kOsm;
    if (p == "kubernetes" || p.starts_with("gatewayapi")) return Observer::kHttp;
    if (p.starts_with("contour")) return Observer::kContour;
    if (p.starts_with("gloo")) return Observer::kGloo;
    if (p.starts_with("nginx")) return Observer::kNginx;
    if (p.starts_with("skipper")) return Observer::kSkipper;
    if (p.starts_with("traefik")) return Observer::kTraefik;
    if (p.starts_with("kuma")) return Observer::kKuma;
    if (p.starts_with("apisix")) return Observer::kApisix;
    if (p.starts_with("knative")) return Observer::kKnative;
    return Observer::kIstio;
}

namespace {

/// success = sum(rate(<family>{<labels>,<ok>}[i])) / sum(rate(<family>{<labels>}[i])) * 100
std::string success_rate(std::string_view family, std::string_view labels, std::string_view ok) {
    const std::string window = "[{{ interval }}]))";
    return "sum(rate(" + std::string(family) + "{" + std::string(labels) + "," + std::string(ok) +
           "}" + window + " / sum(rate(" + std::string(family) + "{" + std::string(labels) + "}" +
           window + " * 100";
}

/// p99 = histogram_quantile(0.99, sum(rate(<bucket>{<labels>}[i])) by (le))
std::string p99(std::string_view bucket, std::string_view labels) {
    return "histogram_quantile(0.99, sum(rate(" + std::string(bucket) + "{" +
           std::string(labels) + "}[{{ interval }}])) by (le))";
}

/// The selector of Envoy's upstream-cluster series for the observers whose data plane is Envoy
/// (their queries differ only in it), or nullopt for the others.
std::optional<std::string> envoy_labels(Observer observer) {
    switch (observer) {
        case Observer::kContour:
            // Envoy's upstream cluster of S-canary as Contour names it: <ns>_<S>-canary_<port>.
            return "envoy_cluster_name=~\"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+\"";
        case Observer::kGloo:
            // Envoy's cluster of the canary Upstream as Gloo names it: <upstream>_<namespace>.
            // Flagger writes {{ target }} where its Upstreams are named from S: S is used here.
            return "envoy_cluster_name=~\"{{ namespace }}-{{ service }}-canaryupstream-[0-9a-zA-Z-]+_"
                "[0-9a-zA-Z-]+\"";
        case Observer::kAppMesh:
            // The Envoy sidecars of the canary's pods (flagger-spec-providers §12).
            return "kubernetes_namespace=\"{{ namespace }}\","
                "kubernetes_pod_name=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"";
        case Observer::kKuma:
            // Kuma's Envoy series of the canary's Kuma service <S>-canary_<ns>_svc_<port>.
            // Flagger writes {{ target }} where its TrafficRoute uses S; Serin writes {{ service }}
            // (the same when spec.service.name is unset), so the query finds what was routed.
            return "service=~\"{{ service }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+\"";
        case Observer::kKnative:
            // Envoy's upstream cluster of the latest created revision, <ns>/<revision>: the
            // template variable `route` is that revision for Knative targets (§5.3).
            return "envoy_cluster_name=~\"{{ namespace }}/{{ route }}\"";
        default:
            return std::nullopt;
    }
}

}  // namespace

std::optional<BuiltinQuery> builtin_query(Observer observer, std::string_view metric) {
    const bool success = metric == "request-success-rate";
    if (!success && metric != "request-duration") {
        return std::nullopt;
    }
    if (const std::optional<std::string> labels = envoy_labels(observer)) {
        return success ? BuiltinQuery{success_rate("envoy_cluster_upstream_rq", *labels,
                                                   "envoy_response_code!~\"5.*\""),
                                      1}
                       : BuiltinQuery{p99("envoy_cluster_upstream_rq_time_bucket", *labels), 1};
    }
    switch (observer) {
        case Observer::kIstio: {
            const std::string labels =
                "reporter=\"destination\",destination_workload_namespace=\"{{ namespace }}\","
                "destination_workload=~\"{{ target }}\"";
            return success ? BuiltinQuery{success_rate("istio_requests_total", labels,
                                                       "response_code!~\"5.*\""),
                                          1}
                           : BuiltinQuery{p99("istio_request_duration_milliseconds_bucket", labels), 1};
        }
        case Observer::kLinkerd: {
            const std::string labels =
                "namespace=\"{{ namespace }}\",deployment=~\"{{ target }}\",direction=\"inbound\"";
            // Flagger puts classification before direction; the set of matchers is the same.
            return success ? BuiltinQuery{success_rate("response_total", labels,
                                                       "classification!=\"failure\""),
                                          1}
                           : BuiltinQuery{p99("response_latency_ms_bucket", labels), 1};
        }
        case Observer::kOsm: {
            const std::string labels =
                "destination_namespace=\"{{ namespace }}\",destination_kind=\"Deployment\","
                "destination_name=\"{{ target }}\"";
            return success ? BuiltinQuery{success_rate("osm_request_total", labels,
                                                       "response_code!~\"5.*\""),
                                          1}
                           : BuiltinQuery{p99("osm_request_duration_ms_bucket", labels), 1};
        }
        case Observer::kHttp: {
            const std::string labels =
                "kubernetes_namespace=\"{{ namespace }}\","
                "kubernetes_pod_name=~\"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)\"";
            return success ? BuiltinQuery{success_rate("http_request_duration_seconds_count",
                                                       labels, "status!~\"5.*\""),
                                          1}
                           : BuiltinQuery{p99("http_request_duration_seconds_bucket", labels), 1000};
        }
        case Observer::kNginx: {
            // The NGINX ingress controller's requests through ingress I that its canary
            // upstream served (flagger-spec-providers §12); the mean duration, already in ms.
            const std::string labels =
                "namespace=\"{{ namespace }}\",ingress=\"{{ ingress }}\",canary!=\"\"";
            const std::string window = "[{{ interval }}]))";
            return success ? BuiltinQuery{success_rate("nginx_ingress_controller_requests", labels,
                                                       "status!~\"5.*\""),
                                          1}
                           : BuiltinQuery{"sum(rate(nginx_ingress_controller_response_duration_"
                                          "seconds_sum{" + labels + "}" + window +
                                              " / sum(rate(nginx_ingress_controller_response_"
                                              "duration_seconds_count{" + labels + "}" + window +
                                              " * 1000",
                                          1};
        }
        case Observer::kTraefik: {
            // Traefik's service of S-canary from the TraefikService: <ns>-<S>-canary-<port>@kubernetescrd
            // (Flagger writes {{ target }}; S is used here, as the objects are named from it).
            const std::string service =
                "service=~\"{{ namespace }}-{{ service }}-canary-[0-9a-zA-Z-]+@kubernetescrd\"";
            return success
                       ? BuiltinQuery{success_rate("traefik_service_request_duration_seconds_bucket",
                                                   service + ",le=\"+Inf\"", "code!~\"5..\""),
                                      1}
                       : BuiltinQuery{p99("traefik_service_request_duration_seconds_bucket", service) +
                                          " * 1000",
                                      1};
        }
        case Observer::kApisix: {
            // APISIX's route <ns>_<route>-<S>-canary_<http name>: the canary route is named
            // after S, so {{ service }} where Flagger writes {{ target }} (the same when
            // spec.service.name is unset).
            const std::string route =
                "route=~\"{{ namespace }}_{{ route }}-{{ service }}-canary_.+\"";
            return success ? BuiltinQuery{success_rate("apisix_http_status", route, "code!~\"5..\""), 1}
                           : BuiltinQuery{p99("apisix_http_latency_bucket", "type=~\"request\"," + route), 1};
        }
        case Observer::kSkipper: {
            // Skipper's routes of the canary Ingress to S-canary; the names with every non-word
            // character as '_' (word_names), as Skipper's route ids have them.
            const std::string route =
                "route=~\"kube(ew)?_{{ namespace }}__{{ ingress }}_canary__.*__{{ service }}_canary(_[0-9]+)?\"";
            const std::string window = "[{{ interval }}]))";
            BuiltinQuery query;
            query.word_names = true;
            query.query =
                success ? "sum(rate(skipper_response_duration_seconds_bucket{" + route +
                              ",code!~\"5..\",le=\"+Inf\"}" + window +
                              " / sum(rate(skipper_response_duration_seconds_bucket{" + route +
                              ",le=\"+Inf\"}" + window + " * 100"
                        : "sum(rate(skipper_serve_route_duration_seconds_sum{" + route + "}" + window +
                              " / sum(rate(skipper_serve_route_duration_seconds_count{" + route + "}" +
                              window + " * 1000";
            return query;
        }
        default:
            return std::nullopt;
    }
}

TemplateVars word_names(TemplateVars vars) {
    for (std::string* value : {&vars.name, &vars.ns, &vars.target, &vars.service, &vars.ingress, &vars.route}) {
        for (char& c : *value) {
            if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') {
                c = '_';
            }
        }
    }
    return vars;
}

TemplateVars template_vars(const api::Canary& canary, const api::CanaryMetric& metric) {
    const api::CanarySpec& spec = canary.spec;
    TemplateVars vars;
    vars.name = canary.metadata.name;
    vars.ns = canary.metadata.ns;
    vars.target = spec.target_ref.name;
    vars.service = spec.service.name.empty() ? spec.target_ref.name : spec.service.name;
    vars.ingress = spec.ingress_ref ? spec.ingress_ref->name : spec.target_ref.name;
    vars.route = spec.route_ref ? spec.route_ref->name : spec.target_ref.name;
    vars.interval = metric.interval.empty() ? "1m" : metric.interval;
    vars.variables = metric.template_variables;
    return vars;
}

namespace {

std::string_view trim(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
        text.remove_prefix(1);
    }
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
        text.remove_suffix(1);
    }
    return text;
}

bool is_identifier(std::string_view text) {
    if (text.empty()) {
        return false;
    }
    for (char c : text) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') {
            return false;
        }
    }
    return !std::isdigit(static_cast<unsigned char>(text.front()));
}

/// The value of one action (already trimmed), or the reason it cannot be rendered.
Result<std::string> action_value(std::string_view action, const TemplateVars& vars) {
    if (action.starts_with("variables.")) {
        const std::string key(action.substr(10));
        auto found = vars.variables.find(key);
        if (found == vars.variables.end()) {
            return fail(ErrorKind::kInvalid, "map has no entry for key \"" + key + "\"");
        }
        return found->second;
    }
    const std::pair<std::string_view, const std::string*> functions[] = {
        {"name", &vars.name},       {"namespace", &vars.ns},       {"target", &vars.target},
        {"service", &vars.service}, {"ingress", &vars.ingress},    {"route", &vars.route},
        {"interval", &vars.interval}};
    for (const auto& [function, value] : functions) {
        if (action == function) {
            return *value;
        }
    }
    if (is_identifier(action)) {
        return fail(ErrorKind::kInvalid, "function \"" + std::string(action) + "\" not defined");
    }
    return fail(ErrorKind::kInvalid, "action \"" + std::string(action) +
                                         "\" is not supported (only the template functions "
                                         "name, namespace, target, service, ingress, route, "
                                         "interval and variables.<key>)");
}

}  // namespace

Result<std::string> render_query(std::string_view text, const TemplateVars& vars) {
    std::string out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const std::size_t open = text.find("{{", pos);
        if (open == std::string_view::npos) {
            out.append(text.substr(pos));
            break;
        }
        out.append(text.substr(pos, open - pos));
        const std::size_t close = text.find("}}", open + 2);
        if (close == std::string_view::npos) {
            return fail(ErrorKind::kInvalid,
                        "query render error: unclosed action at offset " + std::to_string(open));
        }
        std::string_view action = text.substr(open + 2, close - open - 2);
        pos = close + 2;
        // {{- trims the whitespace before the action, -}} the whitespace after it.
        if (action.starts_with("- ") || action == "-") {
            while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) {
                out.pop_back();
            }
            action.remove_prefix(1);
        }
        if (action.ends_with(" -")) {
            action.remove_suffix(1);
            while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) {
                ++pos;
            }
        }
        action = trim(action);
        if (action.starts_with("/*") && action.ends_with("*/")) {
            continue;  // a comment
        }
        auto value = action_value(action, vars);
        if (!value) {
            return fail(ErrorKind::kInvalid, "query render error at offset " +
                                                 std::to_string(open) + ": " +
                                                 value.error().message);
        }
        out += *value;
    }
    return out;
}

std::string collapse_whitespace(std::string_view query) {
    std::string out;
    bool space = false;
    for (char c : query) {
        if (std::isspace(static_cast<unsigned char>(c))) {
            space = !out.empty();
            continue;
        }
        if (space) {
            out += ' ';
            space = false;
        }
        out += c;
    }
    return out;
}

}  // namespace serin::metrics
