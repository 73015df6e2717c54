#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "meshes/router.hpp"

/// Gateway API HTTPRoute routers (flagger-spec §4.4, session affinity §4.5): `gatewayapi:v1` and
/// `gatewayapi:v1beta1`. Linkerd's GAMMA set-up (§4.2) is the v1beta1 flavour with a Service as
/// the parent.
///
/// The HTTPRoute S routes to S-primary and S-canary. Its fields follow the Gateway API v1.2.1
/// standard-channel schema: nothing outside it is written (the API server would prune it), and
/// the fields the server defaults (parentRef group and kind; backendRef group, kind and weight;
/// match path; header and query parameter match types; mirror backendRef group and kind) are
/// written explicitly, so the object read back equals the one written and reconcile does not
/// rewrite it every tick.
///
/// Exception: the v1 flavour turns spec.service.corsPolicy into a filter of type CORS, as
/// Flagger does. CORS is not in the v1.2.1 standard channel (it is experimental): an API server
/// with only the standard CRDs rejects such an HTTPRoute. Leave corsPolicy unset there.
namespace serin::meshes {

/// The HTTPRoute S for `routes` (pure). `version` is "v1" or "v1beta1" (v1beta1: no timeouts,
/// no CORS filter, no primary session cookie).
///
/// Rules: one weighted rule (service matches, filters, timeouts, backends S-primary and S-canary
/// with their weights), with the B/G mirror filter when `routes.mirrored` and
/// analysis.iterations > 0; A/B (analysis.match): the weighted rule on the merged matches, then
/// the service matches to the primary alone; session affinity (analysis.sessionAffinity, cookies
/// from context.canary.status): sticky cookie rules before the weighted rule (§4.5).
///
/// Errors: kInvalid naming the field for what Gateway API cannot express (no gatewayRefs; a match
/// other than uri exact/prefix/regex, method exact, headers and queryParams exact/regex; a
/// rewrite type other than ReplaceFullPath/ReplacePrefixMatch; a mirror percent or fraction,
/// which the standard channel lacks; a timeout that is not a Gateway API duration; a bad
/// corsPolicy.maxAge).
Result<nlohmann::json> build_http_route(const RouteContext& context, const analysis::Routes& routes,
                                        std::string_view version);

/// The routes a live HTTPRoute holds (pure): the weights of the rule routing to both S-primary
/// and S-canary (the one whose backendRefs carry filters, when sticky rules route to both too);
/// mirrored when that rule mirrors to S-canary beyond the service's own mirrors. Reads back
/// exactly what build_http_route wrote. Errors: kInvalid when no rule routes to both services or
/// both weights are 0.
Result<analysis::Routes> http_route_routes(const RouteContext& context,
                                           const nlohmann::json& route);

/// Whether every parent of a live v1 HTTPRoute that reports a status has accepted the route's
/// current generation (pure). Parents without a status entry are not judged.
/// Errors: kInvalid "HTTPRoute S.ns parent <name> is not ready: ..." for the first parent whose
/// Accepted condition is not True or was observed for an older generation.
Result<void> http_route_parents_ready(const nlohmann::json& route);

/// The router for HTTPRoute `version` ("v1" or "v1beta1"). get_routes of v1 also fails while a
/// parent has not accepted the route (http_route_parents_ready), which halts the tick.
std::unique_ptr<MeshRouter> make_gatewayapi_router(RouterDeps deps, std::string version);

}  // namespace serin::meshes
