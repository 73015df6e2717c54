#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "meshes/router.hpp"

/// The APISIX router (flagger-spec-providers §7): spec.routeRef names the user's ApisixRoute R
/// (apisix.apache.org/v2), which is read and never written. Serin writes the canary route
/// `<R>-<S>-canary`: a copy of R whose only http entry is R's entry for S at priority 10000
/// (so it shadows R) with the backends S-primary and S-canary weighted.
namespace serin::meshes {

/// `<routeRef.name>-<S>-canary`.
std::string apisix_canary_route_name(const RouteContext& context);

/// The canary route for `routes` from the user's route `user_route` (pure). Unlike Flagger's
/// reduced type, every field of R and of its entry is kept (ingressClassName, plugins, timeout,
/// websocket, ...), except the entry's `upstreams`, which would take a share the weights do not
/// control. Labels from R, annotations from R without kubectl's last-applied plus the two
/// anti-drift annotations, the owner reference.
/// Errors: kInvalid naming the field: no spec.routeRef, R with no http entry routing to S, that
/// entry with more than one backend, any spec.analysis.match (APISIX A/B is not Flagger's).
Result<nlohmann::json> build_apisix_canary_route(const RouteContext& context,
                                                 const nlohmann::json& user_route,
                                                 const analysis::Routes& routes);

/// The routes a live canary route holds: the weights of the S-primary and S-canary backends of
/// the http entry that has S-primary. Never mirrored. Errors: kInvalid when either is missing
/// or not a number, or both are 0.
Result<analysis::Routes> apisix_routes(const RouteContext& context, const nlohmann::json& route);

/// The router of provider "apisix".
std::unique_ptr<MeshRouter> make_apisix_router(RouterDeps deps);

}  // namespace serin::meshes
