#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "meshes/router.hpp"

/// The Kuma router (flagger-spec-providers §6): the cluster-scoped TrafficRoute S (kuma.io/v1alpha1)
/// that splits the Kuma service S_<ns>_svc_<port> between S-primary and S-canary.
///
/// Where Flagger is weak, Serin does better: a cluster-scoped object cannot carry an owner
/// reference to a namespaced Canary, so the TrafficRoute names its canary in the annotation
/// kKumaCanaryKey; a TrafficRoute S that another namespace's existing canary claims (or whose
/// destination is another namespace's Service) is refused with Accepted=False rather than fought
/// over; and the canary carries the finalizer, so that on deletion the TrafficRoute is deleted
/// (created by Serin) or given back (taken over), with or without revertOnDeletion.
namespace serin::meshes {

/// The annotation naming the canary (`<namespace>/<name>`) that a TrafficRoute routes for.
inline constexpr std::string_view kKumaCanaryKey = "serin.dev/canary";
/// The canary annotation naming the Kuma mesh (the TrafficRoute's top-level `mesh`).
inline constexpr std::string_view kKumaMeshAnnotation = "kuma.io/mesh";

/// The Kuma service name of Service `name` in the canary's namespace: <name>_<ns>_svc_<port>.
std::string kuma_service(const RouteContext& context, std::string_view name);

/// The TrafficRoute S for `routes` (pure): mesh from the canary annotation kuma.io/mesh (default
/// "default"); the apex metadata plus kKumaCanaryKey; no namespace and no owner reference; spec
/// sources `kuma.io/service: "*"`, destination S_<ns>_svc_<port>, conf.split S-primary (p) and
/// S-canary (w), 0 written.
/// Errors: kInvalid naming spec.analysis.match (a TrafficRoute matches no header or cookie).
Result<nlohmann::json> build_traffic_route(const RouteContext& context, const analysis::Routes& routes);

/// The routes a live TrafficRoute holds: the weights of the splits to S-primary and S-canary (the
/// part of kuma.io/service before its first '_'). Never mirrored. Errors: kInvalid when either
/// split is missing or not a number, or both weights are 0.
Result<analysis::Routes> traffic_route_routes(const RouteContext& context, const nlohmann::json& route);

/// Why a live TrafficRoute S cannot be this canary's, or nullopt when it can (it is already, or
/// it is claimed by no canary that still exists and routes a Service of this namespace).
/// `canary_exists(ns, name)` tells whether a canary exists.
std::optional<std::string> traffic_route_conflict(
    const RouteContext& context, const nlohmann::json& live,
    const std::function<bool(const std::string& ns, const std::string& name)>& canary_exists);

/// The router of provider "kuma".
std::unique_ptr<MeshRouter> make_kuma_router(RouterDeps deps);

}  // namespace serin::meshes
