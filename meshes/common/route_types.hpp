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
/// networking.k8s.io/v1 Ingress (the nginx router's canary Ingress and the user's it copies).
const kube::ResourceType& ingresses();
/// projectcontour.io/v1 HTTPProxy (the contour router).
const kube::ResourceType& contour_http_proxies();
/// appmesh.k8s.aws/v1beta2 VirtualNode, VirtualRouter and VirtualService (the appmesh router).
const kube::ResourceType& appmesh_virtual_nodes();
const kube::ResourceType& appmesh_virtual_routers();
const kube::ResourceType& appmesh_virtual_services();

/// Every routing type a router of this build may write.
std::vector<kube::ResourceType> all();

}  // namespace serin::meshes::route_types
