#include "meshes/common/route_types.hpp"

#include <string>

namespace serin::meshes::route_types {

const kube::ResourceType& istio_virtual_services() {
    static const kube::ResourceType type{"networking.istio.io", "v1beta1", "virtualservices",
                                         "VirtualService"};
    return type;
}

const kube::ResourceType& istio_destination_rules() {
    static const kube::ResourceType type{"networking.istio.io", "v1beta1", "destinationrules",
                                         "DestinationRule"};
    return type;
}

kube::ResourceType smi_traffic_splits(std::string_view version) {
    return kube::ResourceType{"split.smi-spec.io", std::string(version), "trafficsplits",
                              "TrafficSplit"};
}

kube::ResourceType gateway_http_routes(std::string_view version) {
    return kube::ResourceType{"gateway.networking.k8s.io", std::string(version), "httproutes",
                              "HTTPRoute"};
}

const kube::ResourceType& ingresses() {
    static const kube::ResourceType type{"networking.k8s.io", "v1", "ingresses", "Ingress"};
    return type;
}

const kube::ResourceType& contour_http_proxies() {
    static const kube::ResourceType type{"projectcontour.io", "v1", "httpproxies", "HTTPProxy"};
    return type;
}

const kube::ResourceType& appmesh_virtual_nodes() {
    static const kube::ResourceType type{"appmesh.k8s.aws", "v1beta2", "virtualnodes", "VirtualNode"};
    return type;
}

const kube::ResourceType& appmesh_virtual_routers() {
    static const kube::ResourceType type{"appmesh.k8s.aws", "v1beta2", "virtualrouters",
                                         "VirtualRouter"};
    return type;
}

const kube::ResourceType& appmesh_virtual_services() {
    static const kube::ResourceType type{"appmesh.k8s.aws", "v1beta2", "virtualservices",
                                         "VirtualService"};
    return type;
}

std::vector<kube::ResourceType> all() {
    return {istio_virtual_services(),         istio_destination_rules(),
            smi_traffic_splits("v1alpha1"),   smi_traffic_splits("v1alpha2"),
            smi_traffic_splits("v1alpha3"),   gateway_http_routes("v1"),
            gateway_http_routes("v1beta1"),  ingresses(),
            contour_http_proxies(),
            appmesh_virtual_nodes(),
            appmesh_virtual_routers(),
            appmesh_virtual_services()};
}

}  // namespace serin::meshes::route_types
