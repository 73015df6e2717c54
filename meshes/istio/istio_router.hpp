#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "meshes/router.hpp"

/// The Istio router (flagger-spec §4.1, §4.5): DestinationRules S-canary and S-primary and a
/// VirtualService S (networking.istio.io/v1beta1) whose weighted route splits S between
/// S-primary and S-canary.
namespace serin::meshes {

/// Whether spec.service.appProtocol asks for TCP routing ("tcp", any case).
bool istio_tcp(const api::CanaryService& service);

/// The VirtualService S for `routes` (pure).
///
/// HTTP mode: hosts = service.hosts plus S (unless S or "*" is there already), gateways =
/// service.gateways or ["mesh"] (both [] with delegation); every HTTP route carries service.match
/// (where the shape allows), rewrite {uri, authority}, timeout, retries, corsPolicy and headers
/// when set. Destinations are the short Service names, with port {number: service.port} only when
/// portDiscovery is on and S is served by a gateway other than "mesh" or delegated to.
///  - canary / blue-green: one route [primary, canary], plus mirror {host: S-canary} (and
///    mirrorPercentage when analysis.mirrorWeight > 0) when routes.mirrored;
///  - A/B (analysis.match set): route 0 matches merge_matches(analysis.match, service.match) and
///    splits p/c; route 1 matches service.match and sends everything to the primary with weight
///    100 whatever `routes` says (Flagger writes the primary weight; Istio reads a single
///    destination as 100% either way, and a constant keeps that route out of every weight
///    change);
///  - session affinity (analysis.sessionAffinity, cookies from context.canary.status): with
///    canary traffic and a canary cookie, [sticky canary (0/100), sticky primary (100/0, when a
///    primary cookie is set), weighted route whose destinations set their cookies]; at canary
///    weight 0 with a previous cookie, [a rule expiring that cookie and routing to the primary,
///    weighted route]; otherwise as canary.
/// TCP mode (istio_tcp): hosts and gateways as above and one TCP route
/// {match: [{port}...] from service.match's ports, route: [primary, canary]}; no A/B, mirror or
/// session affinity.
/// Errors: kInvalid naming spec.service.delegation when hosts or gateways are also set.
Result<nlohmann::json> build_virtual_service(const RouteContext& context,
                                             const analysis::Routes& routes);

/// The DestinationRules S-canary and S-primary (in that order): host = their own name,
/// trafficPolicy = service.trafficPolicy when set.
std::vector<nlohmann::json> build_destination_rules(const RouteContext& context);

/// The routes a live VirtualService holds: the weights of the route with the S-canary destination
/// (its `tcp` routes in TCP mode, else its `http` routes; the other list when that has none).
/// Among several such routes, the one whose destinations carry headers (the weighted route of
/// session affinity), else the last one (the weighted route comes after the sticky rules; A/B
/// keeps the canary in route 0 only). A destination without a weight has 100 when it is the
/// route's only destination, else 0; a missing primary destination has 0. mirrored = that route
/// has mirror.host. Reads back every shape build_virtual_service writes.
/// Errors: kInvalid when no route has the canary destination or both weights are 0.
Result<analysis::Routes> virtual_service_routes(const RouteContext& context,
                                                const nlohmann::json& virtual_service);

/// The router of provider "istio": reconcile writes the two
/// DestinationRules and the VirtualService built with the routes the live VirtualService holds;
/// set_routes writes the VirtualService for the given routes; finalize restores the spec an
/// adopted VirtualService had before Serin took it over. Supports session affinity.
std::unique_ptr<MeshRouter> make_istio_router(RouterDeps deps);

}  // namespace serin::meshes
