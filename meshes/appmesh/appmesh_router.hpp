#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "meshes/router.hpp"

/// The AWS App Mesh router (flagger-spec-providers §8), provider "appmesh:v1beta2"
/// (appmesh.k8s.aws/v1beta2): VirtualNodes S-primary and S-canary, VirtualRouters S (the split)
/// and S-canary (all to the canary), VirtualServices S and S-canary in front of them. The mesh
/// comes from the App Mesh controller's namespace selector: spec.meshRef and spec.awsName are
/// the controller's and never written. Legacy "appmesh" (v1beta1) is not registered, so the
/// registry refuses it (Accepted=False naming spec.provider and listing appmesh:v1beta2).
namespace serin::meshes {

/// The App Mesh objects of a canary (pure), each with its metadata and owner reference: the
/// VirtualNodes get the apex metadata, the routers and services the anti-drift annotations only
/// (the apex VirtualService also the gateway annotations when service.hosts is set).
///  - VirtualNode S-primary / S-canary: one listener on C (service.targetPort when a number > 0,
///    else port; protocol grpc when service.portName contains "grpc", else http; a per-request
///    timeout of service.timeout), DNS discovery S-x.<ns>.svc.cluster.local., pods <L>: X-primary
///    / <L>: X (X = targetRef.name, as Flagger), backends from service.backends (arn:aws... as
///    ARNs), access log to /dev/stdout with the canary annotation appmesh.flagger.app/accesslog:
///    enabled;
///  - VirtualRouter S: route S on prefix P (service.match[0].uri.prefix, else "/") with timeout
///    and retry policy, weighted targets [S-canary w, S-primary p]; in an A/B release one route
///    per analysis match entry (S-a, then S-a-2, ...; priorities from 10) with its header matches
///    (exact, prefix, regex, suffix), weighted (p, w), then S-b on P alone to the primary;
///  - VirtualRouter S-canary: route S-canary, all to S-canary;
///  - VirtualService S / S-canary: provider virtualRouter S / S-canary.
/// Errors: kInvalid naming the field: an analysis match App Mesh cannot express (anything but
/// headers, a header without exactly one of exact/prefix/regex/suffix), a retryOn event App
/// Mesh does not know (it knows server-error, gateway-error, client-error, stream-error and
/// connection-error), a timeout that is not a duration.
struct AppMeshObjects {
    nlohmann::json primary_node;
    nlohmann::json canary_node;
    nlohmann::json apex_router;
    nlohmann::json canary_router;
    nlohmann::json apex_service;
    nlohmann::json canary_service;
};
Result<AppMeshObjects> build_appmesh_objects(const RouteContext& context,
                                             const analysis::Routes& routes);

/// The routes a live VirtualRouter S holds: the weights of S-primary and S-canary in its first
/// route, which must have exactly these two targets. Never mirrored. Errors: kInvalid
/// "VirtualRouter routes S not found" otherwise, or when both weights are 0.
Result<analysis::Routes> virtual_router_routes(const RouteContext& context,
                                               const nlohmann::json& router);

/// The router of provider "appmesh:v1beta2": reconcile creates or adopts the six objects
/// (VirtualNodes and VirtualRouters keep the live awsName and meshRef; VirtualServices are kept
/// in shape too, unlike Flagger's which are never updated), keeping the weights the router holds;
/// set_routes writes the weights; finalize gives adopted objects their spec back.
std::unique_ptr<MeshRouter> make_appmesh_router(RouterDeps deps);

}  // namespace serin::meshes
