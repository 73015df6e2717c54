#pragma once

#include <string_view>
#include <vector>

#include "platform/kube/resource.hpp"

/// The routing objects' API types (flagger-spec §4). The controller runs an informer for each
/// one the API server serves; a router whose type is not served fails with a clear error.
namespace serin::meshes::route_types {

const kube::ResourceType& istio_virtual_services();  ///< networking.istio.io/v1beta1
const kube::ResourceType& istio_destination_rules();
/// split.smi-spec.io TrafficSplit of `version` (v1alpha1, v1alpha2 or v1alpha3).
kube::ResourceType smi_traffic_splits(std::string_view version);
/// gateway.networking.k8s.io HTTPRoute of `version` (v1 or v1beta1).
kube::ResourceType gateway_http_routes(std::string_view version);
/// gateway.networking.k8s.io/v1 GRPCRoute (gatewayapi:v1 with spec.service.appProtocol grpc).
const kube::ResourceType& gateway_grpc_routes();
/// networking.k8s.io/v1 Ingress (the nginx router's canary Ingress and the user's it copies).
const kube::ResourceType& ingresses();
/// projectcontour.io/v1 HTTPProxy (the contour router).
const kube::ResourceType& contour_http_proxies();
/// gloo.solo.io/v1 Upstream and gateway.solo.io/v1 RouteTable (the gloo router).
const kube::ResourceType& gloo_upstreams();
const kube::ResourceType& gloo_route_tables();
/// traefik.io/v1alpha1 TraefikService (the traefik router).
const kube::ResourceType& traefik_services();

/// serving.knative.dev/v1 Service (the knative router's target and routing object) and
/// Revision (whose Ready condition stands for the primary's and the canary's readiness).
const kube::ResourceType& knative_services();
const kube::ResourceType& knative_revisions();
/// kuma.io/v1alpha1 TrafficRoute, cluster-scoped (the kuma router).
const kube::ResourceType& kuma_traffic_routes();
/// apisix.apache.org/v2 ApisixRoute (the apisix router's canary route and the user's it copies).
const kube::ResourceType& apisix_routes();
/// appmesh.k8s.aws/v1beta2 VirtualNode, VirtualRouter and VirtualService (the appmesh router).
const kube::ResourceType& appmesh_virtual_nodes();
const kube::ResourceType& appmesh_virtual_routers();
const kube::ResourceType& appmesh_virtual_services();

/// Every routing type a router of this build may write.
std::vector<kube::ResourceType> all();

}  // namespace serin::meshes::route_types
