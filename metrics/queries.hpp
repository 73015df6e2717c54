#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "crds/api/canary.hpp"
#include "platform/core/result.hpp"

/// The builtin metrics' PromQL and MetricTemplate rendering (flagger-spec §5.1, §5.3). Pure.
namespace serin::metrics {

/// Whose metric families the builtin metrics query.
enum class Observer {
    kIstio,
    kLinkerd,
    kOsm,
    kHttp,  ///< kubernetes and gatewayapi: http_request_duration_seconds of the app itself
    kAppMesh,
    kContour,
    kGloo,
    kNginx,
    kSkipper,
    kTraefik,
    kKuma,
    kApisix,
    kKnative,
};

std::string_view observer_name(Observer observer);

/// The observer of a canary (flagger-spec §5.1): spec.provider, else the -mesh-provider flag
/// (a flag containing "linkerd" wins over spec.provider; a flag containing "crossover" stands for
/// crossover); a Service target that is not Knative observes as Istio; then by prefix, with
/// every other provider (smi:*, crossover) on Istio's families.
Observer observer_for(std::string_view mesh_provider_flag, const api::CanarySpec& spec);

/// A builtin metric's query and the factor that turns its result into the metric's unit
/// (request-duration is in milliseconds; the generic HTTP histogram is in seconds).
struct BuiltinQuery {
    std::string query;  ///< a template (§5.3) with {{ namespace }}, {{ target }}, {{ interval }}
    double scale = 1;
    bool word_names = false;  ///< rendered with word_names(vars) (Skipper's route ids)
};

/// The query of builtin metric `metric` ("request-success-rate" or "request-duration") for
/// `observer`, or nullopt when it is not a builtin name or Serin has no query for that observer
/// yet (only Istio, Linkerd, OSM, NGINX, Contour, Gloo, Traefik, Kuma, APISIX and the generic HTTP families are
/// written).
std::optional<BuiltinQuery> builtin_query(Observer observer, std::string_view metric);

/// The values a query template can use (§5.3).
struct TemplateVars {
    std::string name;       ///< the canary's name
    std::string ns;         ///< {{ namespace }}
    std::string target;     ///< targetRef.name
    std::string service;    ///< service.name, else the target
    std::string ingress;    ///< ingressRef.name, else the target
    std::string route;      ///< routeRef.name, else the target
    std::string interval;   ///< the metric's interval, "1m" when absent
    api::StringMap variables;  ///< templateVariables: {{ variables.key }}
};

TemplateVars template_vars(const api::Canary& canary, const api::CanaryMetric& metric);

/// `vars` with every character of the names (not the interval or variables) that is not a
/// letter, digit or '_' replaced by '_': what Skipper's builtin queries render with.
TemplateVars word_names(TemplateVars vars);

/// Renders `text` the way Flagger's Go text/template does for these functions: actions
/// `{{ name }}`, `{{ variables.key }}`, comments `{{/* ... */}}` and the trim markers `{{-`
/// and `-}}`. Errors: kInvalid naming the offset and the action for an unknown function, a
/// missing variable, an unclosed action, or any other action (pipelines, if, range...).
Result<std::string> render_query(std::string_view text, const TemplateVars& vars);

/// Runs of whitespace (newlines included) as one space, trimmed: what is sent to Prometheus.
std::string collapse_whitespace(std::string_view query);

}  // namespace serin::metrics
