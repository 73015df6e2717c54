#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "meshes/router.hpp"

/// Gateway API HTTPRoute routers (flagger-spec §4.4, session affinity §4.5): `gatewayapi:v1` and
/// `gatewayapi:v1beta1`. Linkerd's GAMMA set-up (§4.2) is the v1beta1 flavour with a Service as
/// the parent. For a gRPC service (spec.service.appProtocol grpc) `gatewayapi:v1` writes the
/// GRPCRoute S instead (build_grpc_route), with the same rules and the same rule ownership.
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

/// The GRPCRoute S (gateway.networking.k8s.io/v1) for `routes` (pure): the HTTPRoute's rules
/// (weights, A/B, blue/green mirror, session affinity cookies) with gRPC matches. A
/// spec.service.match or spec.analysis.match `uri` names a call's path: exact
/// /package.Service/Method is a method match, prefix /package.Service/ a service match, prefix /
/// every call; headers are gRPC header matches (exact, regex). Rules without matches (no
/// service match) take every call, so no default match is written.
/// Errors: kInvalid naming the field for what GRPCRoute (v1.2.1 standard) cannot express: a uri
/// regex or another shape, method, queryParams and other match keys, rewrite, corsPolicy,
/// timeout, backendTimeout, a mirror percent or fraction; no gatewayRefs.
Result<nlohmann::json> build_grpc_route(const RouteContext& context,
                                        const analysis::Routes& routes);

/// Whether spec.service asks for gRPC routing: appProtocol "grpc" (any case). With provider
/// gatewayapi:v1 Serin then writes the GRPCRoute S instead of the HTTPRoute S; v1beta1 keeps
/// the HTTPRoute (GRPCRoute has no v1beta1 in the standard channel).
bool grpc_service(const api::CanaryService& service);

/// Whether `rule` (of the HTTPRoute or GRPCRoute S) is Serin's: one of its backendRefs is the
/// Service S, S-primary or S-canary in the canary's namespace (group "", kind Service, as
/// absent fields default). Every other rule is the user's.
bool serin_rule(const RouteContext& context, const nlohmann::json& rule);

/// The rules to write (pure): the user's rules of `live_rules` (nullptr or not a list: none) in
/// their order, with `own` (Serin's rules) in the place of the first rule Serin owned there, or
/// after the user's rules when there is none (a route taken over that routes elsewhere only).
nlohmann::json merge_route_rules(const RouteContext& context, const nlohmann::json* live_rules,
                                 nlohmann::json own);

/// The rules to give back on finalize (pure): the live user rules with the rules of
/// `original_rules` that serin_rule claims (those Serin replaced on take-over) in the place of
/// Serin's.
nlohmann::json restored_route_rules(const RouteContext& context,
                                    const nlohmann::json* live_rules,
                                    const nlohmann::json* original_rules);

/// The routes a live HTTPRoute or GRPCRoute holds (pure): the weights of the rule routing to both S-primary
/// and S-canary (the one whose backendRefs carry filters, when sticky rules route to both too);
/// mirrored when that rule mirrors to S-canary beyond the service's own mirrors. Reads back
/// exactly what build_http_route wrote. Errors: kInvalid when no rule routes to both services or
/// both weights are 0.
Result<analysis::Routes> http_route_routes(const RouteContext& context,
                                           const nlohmann::json& route);

/// Whether every parent of a live v1 HTTPRoute or GRPCRoute that reports a status has accepted the route's
/// current generation (pure). Parents without a status entry are not judged.
/// Errors: kInvalid "HTTPRoute S.ns parent <name> is not ready: ..." for the first parent whose
/// Accepted condition is not True or was observed for an older generation.
Result<void> http_route_parents_ready(const nlohmann::json& route);

/// The router for HTTPRoute `version` ("v1" or "v1beta1"), and for GRPCRoute v1 when the
/// service is gRPC (grpc_service). get_routes of v1 also fails while a parent has not accepted
/// the route (http_route_parents_ready), which halts the tick.
///
/// Rule ownership: Serin owns parentRefs and hostnames, and of the rules only its own
/// (serin_rule); the user's other rules stay, in their order, on take-over and on every
/// reconcile (merge_route_rules). A route Serin did not create has its spec recorded on the
/// first write (flagger.kubernetes.io/original-configuration unless kubectl's last-applied
/// configuration is there); finalize (revertOnDeletion) gives it back (restored_route_rules).
std::unique_ptr<MeshRouter> make_gatewayapi_router(RouterDeps deps, std::string version);

}  // namespace serin::meshes
