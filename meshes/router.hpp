#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/routes.hpp"
#include "crds/api/canary.hpp"
#include "platform/core/result.hpp"
#include "platform/kube/cached_client.hpp"

/// Traffic routers (flagger-spec §4): one per provider, behind one interface.
namespace serin::meshes {

/// What a router needs to know about the canary it routes for. Passed by value into coroutines.
struct RouteContext {
    api::Canary canary;  ///< its status is the one being written (session affinity cookies)
    std::string provider;            ///< as chosen: spec.provider or -mesh-provider
    nlohmann::json owner_reference;  ///< to put on the objects a router creates
    std::string apex;                ///< Service names: S, S-primary, S-canary
    std::string primary;
    std::string canary_service;
    std::string label_key;  ///< the selector label L and its value V (flagger-spec §3.1)
    std::string label_value;

    const std::string& ns() const { return canary.metadata.ns; }
};

/// Shifts traffic between the primary and the canary.
///
/// Reads come from the ObjectStore (informer caches); writes go through the KubeClient and are
/// made only when the live object differs from what the router wants.
/// Errors: kInvalid for a spec the router cannot serve (named field), the KubeClient's errors
/// otherwise. Thread safety: one io_context thread. Cancellation: as the KubeClient's.
class MeshRouter {
public:
    virtual ~MeshRouter() = default;

    /// Creates or adopts the routing objects (every reconcile), keeping the current weights.
    virtual boost::asio::awaitable<Result<void>> reconcile(RouteContext context) = 0;
    /// The weights (and mirroring) the routing objects hold now.
    virtual boost::asio::awaitable<Result<analysis::Routes>> get_routes(RouteContext context) = 0;
    virtual boost::asio::awaitable<Result<void>> set_routes(RouteContext context,
                                                            analysis::Routes routes) = 0;
    /// Reverts what the router changed, when the canary is deleted with revertOnDeletion.
    virtual boost::asio::awaitable<Result<void>> finalize(RouteContext context) = 0;
    /// Whether set_routes moves the apex Service's selector, so the Service reconcile must keep
    /// it once the canary is initialized.
    virtual bool owns_apex_selector() const { return false; }
    /// Whether set_routes can mirror traffic to the canary (Routes::mirrored) in a blue/green
    /// release (`blue_green`) or a weighted one. The release engine ignores analysis.mirror
    /// where it cannot.
    virtual bool can_mirror(bool blue_green) const {
        (void)blue_green;
        return false;
    }
    /// Whether set_routes routes by the session affinity cookies of the canary's status; the
    /// reconciler then makes and retires them (update_session_cookies) before each set_routes.
    virtual bool supports_session_affinity() const { return false; }
    /// Whether the router writes objects garbage collection cannot remove with the canary (a
    /// cluster-scoped object cannot name a namespaced owner). The canary then carries the
    /// finalizer whatever revertOnDeletion says; on deletion finalize runs with
    /// revertOnDeletion, `release` without.
    virtual bool needs_finalizer() const { return false; }
    /// Deletes the objects the router created that garbage collection cannot remove, when the
    /// canary is deleted without revertOnDeletion (only called when needs_finalizer()).
    virtual boost::asio::awaitable<Result<void>> release(RouteContext context) {
        (void)context;
        co_return Result<void>{};
    }
    /// Whether reconcile must run before the primary workload is created (App Mesh: its pods
    /// get their Envoy sidecar only when a VirtualNode selects them as they start).
    virtual bool routes_before_workload() const { return false; }
};

/// What routers are built from.
struct RouterDeps {
    /// Reads from the informer caches, writes through the API (read-your-writes kept by it).
    kube::CachedClient& kube;
};

using RouterFactory = std::function<std::unique_ptr<MeshRouter>(RouterDeps deps)>;

/// Routers by provider name, built in main (no static registration). A provider is looked up
/// by its full name and then by ever shorter prefixes ending before a ':', as Flagger's SMI
/// provider strings carry a mesh suffix: "smi:v1alpha3:linkerd" finds "smi:v1alpha3".
class RouterRegistry {
public:
    explicit RouterRegistry(RouterDeps deps) : deps_(deps) {}

    void add(std::string provider, RouterFactory factory);
    /// Adds `prefix` as add() does, and makes it the router of every provider string that
    /// starts with it and names no other (Flagger's "gloo" takes any string starting "gloo").
    void add_prefix(std::string prefix, RouterFactory factory);
    /// The router for `provider`, built on first use. Errors: kInvalid naming spec.provider and
    /// the providers this build supports.
    Result<MeshRouter*> find(std::string_view provider);
    std::string supported() const;

private:
    RouterDeps deps_;
    std::map<std::string, RouterFactory, std::less<>> factories_;
    std::vector<std::string> prefixes_;
    std::map<std::string, std::unique_ptr<MeshRouter>, std::less<>> routers_;
};

/// What routers read from serin's flags.
struct RouterSettings {
    std::string ingress_annotations_prefix = "nginx.ingress.kubernetes.io";  ///< nginx
    std::string ingress_class;  ///< contour: spec.ingressClassName of the HTTPProxy when set
};

/// Adds the routers of this build with the flags' defaults: kubernetes, istio, linkerd, smi
/// (v1alpha1-3), osm, gatewayapi (v1, v1beta1), nginx, contour, gloo (and gloo*), traefik,
/// knative, kuma and apisix.
void register_builtin_routers(RouterRegistry& registry);
/// What adds the same routers with `settings` (a ControllerOptions::register_routers).
std::function<void(RouterRegistry&)> builtin_routers(RouterSettings settings);

}  // namespace serin::meshes
