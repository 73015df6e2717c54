#include "meshes/gatewayapi/gatewayapi_router.hpp"
#include "meshes/istio/istio_router.hpp"
#include "meshes/kubernetes/kubernetes_router.hpp"
#include "meshes/router.hpp"
#include "meshes/smi/smi_router.hpp"

namespace serin::meshes {

void register_builtin_routers(RouterRegistry& registry) {
    registry.add("kubernetes", [](RouterDeps deps) { return make_kubernetes_router(deps); });
    registry.add("istio", [](RouterDeps deps) { return make_istio_router(deps); });
    // linkerd writes SMI v1alpha1 TrafficSplits (linkerd-smi), osm v1alpha2 (flagger-spec §4).
    const std::pair<const char*, const char*> smi[] = {{"linkerd", "v1alpha1"},
                                                        {"osm", "v1alpha2"},
                                                        {"smi:v1alpha1", "v1alpha1"},
                                                        {"smi:v1alpha2", "v1alpha2"},
                                                        {"smi:v1alpha3", "v1alpha3"}};
    for (const auto& [provider, version] : smi) {
        const std::string v = version;
        registry.add(provider, [v](RouterDeps deps) { return make_smi_router(deps, v); });
    }
    // Gateway API HTTPRoute (flagger-spec §4.4); plain "gatewayapi" names no version and stays
    // unsupported, so the registry reports it with the supported list.
    for (const char* version : {"v1", "v1beta1"}) {
        const std::string v = version;
        registry.add("gatewayapi:" + v,
                     [v](RouterDeps deps) { return make_gatewayapi_router(deps, v); });
    }
}

}  // namespace serin::meshes
