#include "meshes/apisix/apisix_router.hpp"
#include "meshes/appmesh/appmesh_router.hpp"
#include "meshes/contour/contour_router.hpp"
#include "meshes/gatewayapi/gatewayapi_router.hpp"
#include "meshes/gloo/gloo_router.hpp"
#include "meshes/istio/istio_router.hpp"
#include "meshes/knative/knative_router.hpp"
#include "meshes/kubernetes/kubernetes_router.hpp"
#include "meshes/kuma/kuma_router.hpp"
#include "meshes/nginx/nginx_router.hpp"
#include "meshes/router.hpp"
#include "meshes/skipper/skipper_router.hpp"
#include "meshes/smi/smi_router.hpp"
#include "meshes/traefik/traefik_router.hpp"

namespace serin::meshes {

namespace {

void register_with(RouterRegistry& registry, const RouterSettings& settings) {
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
    const std::string prefix = settings.ingress_annotations_prefix;
    registry.add("nginx", [prefix](RouterDeps deps) { return make_nginx_router(deps, prefix); });
    const std::string ingress_class = settings.ingress_class;
    registry.add("contour", [ingress_class](RouterDeps deps) {
        return make_contour_router(deps, ingress_class);
    });
    registry.add_prefix("gloo", [](RouterDeps deps) { return make_gloo_router(deps); });
    registry.add("traefik", [](RouterDeps deps) { return make_traefik_router(deps); });
    registry.add("knative", [](RouterDeps deps) { return make_knative_router(deps); });
    registry.add("kuma", [](RouterDeps deps) { return make_kuma_router(deps); });
    registry.add("apisix", [](RouterDeps deps) { return make_apisix_router(deps); });
    registry.add("appmesh:v1beta2", [](RouterDeps deps) { return make_appmesh_router(deps); });
    // Legacy "appmesh" (v1beta1) is not registered: the registry refuses it naming spec.provider
    // and listing appmesh:v1beta2.
    registry.add("skipper", [](RouterDeps deps) { return make_skipper_router(deps); });
}

}  // namespace

void register_builtin_routers(RouterRegistry& registry) {
    const RouterSettings defaults;
    register_with(registry, defaults);
}

std::function<void(RouterRegistry&)> builtin_routers(RouterSettings settings) {
    return [settings = std::move(settings)](RouterRegistry& registry) {
        register_with(registry, settings);
    };
}

}  // namespace serin::meshes
