#pragma once

#include <memory>

#include "meshes/router.hpp"

namespace serin::meshes {

/// The `kubernetes` provider: blue/green without a mesh, by switching the apex Service.
///
/// The apex Service S selects the primary pods ({L: V-primary}) until set_routes gives the canary
/// all the traffic, then the canary pods ({L: V}); weights in between cannot be expressed, so any
/// canary weight below 100 selects the primary. get_routes reads the selector back. (Flagger's
/// kubernetes router does nothing; its blue/green never sends production traffic to the new
/// version before the primary is updated.)
std::unique_ptr<MeshRouter> make_kubernetes_router(RouterDeps deps);

/// The apex selector for `routes` (pure; for tests).
nlohmann::json kubernetes_apex_selector(const RouteContext& context, const analysis::Routes& routes);

}  // namespace serin::meshes
