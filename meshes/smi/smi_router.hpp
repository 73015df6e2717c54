#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "meshes/router.hpp"

/// SMI TrafficSplit routers (flagger-spec §4.2, §4.3): `smi:v1alpha1|2|3[:<mesh>]`, `linkerd`
/// (v1alpha1, as Flagger's linkerd provider uses linkerd-smi) and `osm` (v1alpha2).
namespace serin::meshes {

/// The TrafficSplit version and target mesh a provider string asks for.
struct SmiFlavour {
    std::string version;  ///< v1alpha1, v1alpha2 or v1alpha3
    std::string mesh;     ///< the part after "smi:<version>:", or the provider (linkerd, osm)
};

/// Errors: kInvalid naming spec.provider when it is not an SMI provider.
Result<SmiFlavour> smi_flavour(std::string_view provider);

/// The TrafficSplit S for `routes` (pure): spec.service = hosts[0] or S; backends S-canary and
/// S-primary with their weights (v1alpha1: Quantity strings, later versions: integers); the apex
/// metadata; with mesh "istio" and service.gateways set, the gateways annotation Istio's SMI
/// adapter reads.
nlohmann::json build_traffic_split(const RouteContext& context, const analysis::Routes& routes,
                                   const SmiFlavour& flavour);

/// The weights of a live TrafficSplit. Errors: kInvalid when a backend is missing or both
/// weights are 0. Never mirrored.
Result<analysis::Routes> traffic_split_routes(const RouteContext& context, const nlohmann::json& split);

std::unique_ptr<MeshRouter> make_smi_router(RouterDeps deps, std::string version);

}  // namespace serin::meshes
