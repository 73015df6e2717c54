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

const kube::ResourceType& gateway_grpc_routes() {
    static const kube::ResourceType type{"gateway.networking.k8s.io", "v1", "grpcroutes",
                                         "GRPCRoute"};
    return type;
}

const kube::ResourceType& ingresses() {
    static const kube::ResourceType type{"networking.k8s.io", "v1", "ingresses", "Ingress"};
    return type;
}

const kube::ResourceType& contour_http_proxies() {
    static const kube::ResourceType type{"projectcontour.io", "v1", "httpproxies", "HTTPProxy"};
    return type;
}

const kube::ResourceType& gloo_upstreams() {
    static const kube::ResourceType type{"gloo.solo.io", "v1", "upstreams", "Upstream"};
    return type;
}

const kube::ResourceType& gloo_route_tables() {
    static const kube::ResourceType type{"gateway.solo.io", "v1", "routetables", "RouteTable"};
    return type;
}

const kube::ResourceType& traefik_services() {
    static const kube::ResourceType type{"traefik.io", "v1alpha1", "traefikservices",
                                         "TraefikService"};
    return type;
}

const kube::ResourceType& knative_services() {
    static const kube::ResourceType type{"serving.knative.dev", "v1", "services", "Service"};
    return type;
}

const kube::ResourceType& knative_revisions() {
    static const kube::ResourceType type{"serving.knative.dev", "v1", "revisions", "Revision"};
    return type;
}

const kube::ResourceType& kuma_traffic_routes() {
    static const kube::ResourceType type{"kuma.io", "v1alpha1", "trafficroutes", "TrafficRoute",
                                         false};
    return type;
}

const kube::ResourceType& apisix_routes() {
    static const kube::ResourceType type{"apisix.apache.org", "v2", "apisixroutes", "ApisixRoute"};
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
    std::vector<kube::ResourceType> types{istio_virtual_services(),         istio_destination_rules(),
            smi_traffic_splits("v1alpha1"),   smi_traffic_splits("v1alpha2"),
            smi_traffic_splits("v1alpha3"),   gateway_http_routes("v1"),
            gateway_http_routes("v1beta1"),  ingresses(),
            contour_http_proxies(),
            gateway_grpc_routes(),
            gloo_upstreams(),
            gloo_route_tables(),
            traefik_services(),
            knative_services(),
            knative_revisions()};
    types.push_back(kuma_traffic_routes());
    types.push_back(apisix_routes());
    types.push_back(appmesh_virtual_nodes());
    types.push_back(appmesh_virtual_routers());
    types.push_back(appmesh_virtual_services());
    return types;
}

}  // namespace serin::meshes::route_types
