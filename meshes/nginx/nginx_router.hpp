#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "meshes/router.hpp"

/// The NGINX ingress router (flagger-spec-providers §2): the Ingress `<ingressRef>-canary`
/// (networking.k8s.io/v1), a copy of the user's Ingress whose backends S point at S-canary,
/// steered by ingress-nginx's canary annotations under a prefix P (flag
/// -ingress-annotations-prefix, default nginx.ingress.kubernetes.io). The user's Ingress is read,
/// never written.
namespace serin::meshes {

inline constexpr std::string_view kDefaultIngressAnnotationsPrefix = "nginx.ingress.kubernetes.io";

/// `<prefix>/<name>`, e.g. nginx.ingress.kubernetes.io/canary-weight.
std::string nginx_annotation(std::string_view prefix, std::string_view name);

/// What NGINX routes to the canary by in an A/B release: a cookie named `cookie` whose value is
/// "always", and a header `header` with the value `header_value` (exact) or matching
/// `header_pattern` (regex). Empty strings are unset.
struct NginxMatch {
    std::string cookie;
    std::string header;
    std::string header_value;
    std::string header_pattern;
    bool empty() const { return cookie.empty() && header.empty(); }
    bool operator==(const NginxMatch&) const = default;
};

/// analysis.match (an array of Istio HTTPMatchRequests, or null) as NGINX canary rules. The
/// entries of the list are alternatives, and NGINX has one header rule and one cookie rule, which
/// it also tries in turn: so each entry must hold exactly one header (`cookie: {exact: <cookie
/// name>}` for the cookie rule, any other name with `exact` or `regex` for the header rule), and
/// at most one entry may use each rule. Errors: kInvalid naming the field of anything else (uri,
/// method, queryParams, sourceLabels, several headers in one entry, prefix or suffix matches, a
/// second header or cookie entry).
Result<NginxMatch> nginx_match(const nlohmann::json& match);

/// The spec of the canary Ingress: the user's Ingress spec in which every
/// `rules[].http.paths[].backend.service.name` equal to S names S-canary (ports and everything
/// else kept; spec.defaultBackend untouched). Errors: kInvalid when a rule has no `http` or no
/// path's backend is S.
Result<nlohmann::json> canary_ingress_spec(const RouteContext& context,
                                           const nlohmann::json& user_ingress);

/// The canary annotations for `routes`: `P/canary: "true"` and `P/canary-weight: "<w>"`; in an
/// A/B release (match not empty) with canary traffic, the weight is "0" and the header and
/// cookie rules of `match` are added (P/canary-by-header, -by-header-value, -by-header-pattern,
/// -by-cookie).
nlohmann::json canary_annotations(std::string_view prefix, const NginxMatch& match,
                                  const analysis::Routes& routes);

/// The canary Ingress `<I>-canary` for `routes` (pure): labels = I's labels; annotations = I's
/// (without any `P/canary*` key and kubectl's last-applied-configuration), the Flux and Helm
/// anti-drift annotations and canary_annotations; the owner reference; spec =
/// canary_ingress_spec. Errors: canary_ingress_spec's and nginx_match's.
Result<nlohmann::json> build_canary_ingress(const RouteContext& context,
                                            const nlohmann::json& user_ingress,
                                            const analysis::Routes& routes,
                                            std::string_view prefix);

/// The update that brings a live canary Ingress to `desired` (pure), or nullopt when it already
/// is: spec replaced when it differs; labels and annotations of `desired` set; every `P/canary*`
/// annotation that `desired` lacks removed (the header and cookie rules after an A/B release);
/// other labels and annotations kept.
std::optional<nlohmann::json> canary_ingress_update(const nlohmann::json& live,
                                                    const nlohmann::json& desired,
                                                    std::string_view prefix);

/// The routes a live canary Ingress holds: in an A/B release (analysis.match set) with a header
/// or cookie rule, (0, 100); otherwise canary = P/canary-weight (absent: 0), primary = 100 - it.
/// Never mirrored. Errors: kInvalid when the weight is not a whole number from 0 to 100.
Result<analysis::Routes> canary_ingress_routes(const RouteContext& context,
                                               const nlohmann::json& canary_ingress,
                                               std::string_view prefix);

/// The router of provider "nginx". reconcile creates the canary Ingress from the user's or
/// brings its spec back to the user's, keeping the weights it holds; set_routes writes the
/// annotations; finalize (revertOnDeletion) sends everything back to the user's Ingress: the
/// canary Ingress Serin created goes to weight 0 (the garbage collector removes it with the
/// canary); one it adopted gets back the spec and canary annotations it had.
std::unique_ptr<MeshRouter> make_nginx_router(RouterDeps deps, std::string prefix);

}  // namespace serin::meshes
