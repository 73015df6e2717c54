#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "meshes/router.hpp"

/// The Contour router (flagger-spec-providers §3): the HTTPProxy S (projectcontour.io/v1) whose
/// route splits S between S-primary and S-canary. It has no virtualhost of its own: users include
/// it from their root HTTPProxy (spec.includes), or Serin takes over an HTTPProxy S they wrote,
/// owning only its `routes` and `ingressClassName`.
namespace serin::meshes {

/// The HTTPProxy S for `routes` (pure), with the apex metadata and the owner reference.
/// spec.ingressClassName = `ingress_class` (the -ingress-class flag) when not empty. Each route
/// matches prefix P (service.match[0].uri.prefix, else "/"), carries timeoutPolicy {response:
/// service.timeout, idle: 5m} when service.timeout is set and retryPolicy {count, perTryTimeout,
/// retryOn} from service.retries, and sends to S-primary and S-canary on `port` with their weights
/// (0 written) and the l5d-dst-override request header that makes Linkerd honour the split.
///  - canary / blue-green: one route;
///  - A/B (analysis.match set): one route per match entry, conditions P and that entry's headers
///    (exact or regex), weighted (p, w); then a route on P
///    alone to the primary (100/0 whatever `routes` says).
/// Errors: kInvalid naming the field for an analysis match Contour cannot express (anything but
/// headers; a header matched by prefix or suffix).
Result<nlohmann::json> build_http_proxy(const RouteContext& context, const analysis::Routes& routes,
                                        const std::string& ingress_class);

/// The routes a live HTTPProxy holds: the weights of S-primary and S-canary in its first route
/// (an absent weight is 0). Never mirrored. Errors: kInvalid when there is no route, the first
/// one lacks either service, or both weights are 0.
Result<analysis::Routes> http_proxy_routes(const RouteContext& context, const nlohmann::json& proxy);

/// The router of provider "contour": reconcile writes the HTTPProxy built with the weights it
/// holds (an HTTPProxy S that Serin did not create is taken over: its spec kept in
/// flagger.kubernetes.io/original-configuration and given back by finalize); set_routes writes
/// the weights.
std::unique_ptr<MeshRouter> make_contour_router(RouterDeps deps, std::string ingress_class);

}  // namespace serin::meshes
