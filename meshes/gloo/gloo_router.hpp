#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "meshes/router.hpp"

/// The Gloo Edge router (flagger-spec-providers §4), for provider "gloo" and every provider
/// string starting with "gloo": two Upstreams (gloo.solo.io/v1) that point Gloo at S-primary and
/// S-canary, and the RouteTable S (gateway.solo.io/v1) that splits between them. The user's Gloo
/// VirtualService delegates to the RouteTable and supplies the path it inherits.
namespace serin::meshes {

/// `<ns>-<S>-primaryupstream-<port>` or `<ns>-<S>-canaryupstream-<port>`.
std::string gloo_upstream_name(const RouteContext& context, bool canary);

/// The Upstream of S-primary or S-canary (pure): spec.kube {serviceName, serviceNamespace,
/// servicePort, selector = `selector`} and, when `reference` (the spec of the Upstream named by
/// spec.upstreamRef) is an object, its sslConfig, circuitBreakers, connectionConfig,
/// loadBalancerConfig, useHttp2, initialStreamWindowSize, initialConnectionWindowSize and
/// httpProxyHostname. No labels; the anti-drift annotations and the owner reference.
nlohmann::json build_gloo_upstream(const RouteContext& context, bool canary,
                                   const nlohmann::json& reference, const nlohmann::json& selector);

/// The spec keys of an Upstream that Serin writes (kube and the copied fields): an upstreamRef
/// edit reaches the Upstreams whole, where Flagger only follows loadBalancerConfig.
const std::vector<std::string>& gloo_upstream_owned_keys();

/// The RouteTable S for `routes` (pure), with the apex metadata and the owner reference. Its
/// routes inherit the path of the VirtualService that delegates to it (inheritablePathMatchers)
/// and send to the two Upstreams with their weights (0 written):
///  - canary / blue-green: one route;
///  - A/B (analysis.match set): a route whose matchers are one per match entry (Gloo ORs them):
///    the entry's headers (exact, or regex) and method, weighted (p, w); then a route without
///    matchers to the primary (100/0 whatever `routes` says), so that requests that match no
///    entry are still served (Flagger writes only the matched route, leaving them unrouted).
/// Errors: kInvalid naming the field for a match Gloo cannot express.
Result<nlohmann::json> build_route_table(const RouteContext& context, const analysis::Routes& routes);

/// The routes a live RouteTable holds: the weights of the two Upstreams in its first route (an
/// absent weight is 0). Never mirrored. Errors: kInvalid when the first route lacks either
/// destination, or both weights are 0.
Result<analysis::Routes> route_table_routes(const RouteContext& context, const nlohmann::json& table);

/// The router of provider "gloo": reconcile writes both Upstreams, then the RouteTable built with
/// the weights it holds (a RouteTable S that Serin did not create is taken over: its spec kept
/// in flagger.kubernetes.io/original-configuration and given back by finalize); set_routes
/// writes the weights. The Upstreams carry the owner reference and go with the canary.
std::unique_ptr<MeshRouter> make_gloo_router(RouterDeps deps);

}  // namespace serin::meshes
