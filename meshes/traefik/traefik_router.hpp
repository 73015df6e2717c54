#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "meshes/router.hpp"

/// The Traefik router (flagger-spec-providers §5): the TraefikService S (traefik.io/v1alpha1)
/// whose weighted services split S between S-primary and S-canary. The user's IngressRoute
/// sends to it (`services: [{name: S, kind: TraefikService}]`).
namespace serin::meshes {

/// The TraefikService S for `routes` (pure), with the apex metadata and the owner reference:
/// spec.weighted.services holds S-primary and S-canary on `port` with their weights, each only
/// while its weight is above 0 (Traefik gives an entry without a weight the weight 1, so Flagger's
/// omitted 0 would still send the primary a share at 0/100).
/// Errors: kInvalid naming the first field of spec.analysis.match: a TraefikService splits by
/// weight only, so A/B testing is refused (Flagger sends everyone to the canary instead).
Result<nlohmann::json> build_traefik_service(const RouteContext& context, const analysis::Routes& routes);

/// The routes a live TraefikService holds: the weights of S-primary and S-canary in
/// spec.weighted.services (an absent entry is 0; an entry without a weight is 1, as Traefik
/// reads it), as percentages of their sum. Never mirrored. Errors: kInvalid when neither has
/// a weight.
Result<analysis::Routes> traefik_service_routes(const RouteContext& context,
                                                const nlohmann::json& service);

/// The router of provider "traefik": reconcile writes the TraefikService built with the weights
/// it holds (one Serin did not create is taken over: its spec kept in
/// flagger.kubernetes.io/original-configuration and given back by finalize; its
/// weighted.sticky is kept); set_routes writes the weights.
std::unique_ptr<MeshRouter> make_traefik_router(RouterDeps deps);

}  // namespace serin::meshes
