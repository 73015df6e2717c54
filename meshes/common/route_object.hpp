#pragma once

#include <boost/asio/awaitable.hpp>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meshes/router.hpp"
#include "platform/core/result.hpp"

/// What every router does with its routing objects: the metadata they carry, which fields Serin
/// owns, and the create-or-update that writes only when an owned field differs.
namespace serin::meshes {

/// The Flux and Helm annotations that stop those tools from reverting what Serin writes.
inline constexpr std::string_view kFluxReconcileKey = "kustomize.toolkit.fluxcd.io/reconcile";
inline constexpr std::string_view kHelmDriftKey = "helm.toolkit.fluxcd.io/driftDetection";

/// `metadata` for a routing object called `name` in the canary's namespace: the labels and
/// annotations of `extra` (spec.service.apex for the apex objects, nullopt otherwise), the two
/// anti-drift annotations, and the owner reference to the canary.
/// The largest weight read back from a routing object; larger ones are read as this.
inline constexpr int kMaxReadWeight = 1'000'000;

/// A weight read back from a routing object, which anyone who may edit it controls: a number
/// clamped to [0, kMaxReadWeight] (a cast of a value out of int's range would be undefined), a
/// fraction truncated; nullopt when it is not a number.
std::optional<int> read_weight(const nlohmann::json& value);
/// The same for a whole number of thousandths (a Quantity such as "500m") or units.
int clamp_weight(long double value);

nlohmann::json route_metadata(const RouteContext& context, std::string_view name,
                              const std::optional<api::CustomMetadata>& extra);

/// A routing object: apiVersion and kind of `type`, `metadata`, `spec`.
nlohmann::json route_object(const kube::ResourceType& type, nlohmann::json metadata,
                            nlohmann::json spec);

/// What Serin owns in a routing object: the listed top-level `spec` keys (replaced whole, or
/// removed when the desired object lacks them) and the desired labels and annotations (set; other
/// keys are kept). Everything else (other spec keys, other metadata, status) belongs to whoever
/// wrote it and is kept.
using OwnedKeys = std::vector<std::string>;

/// The update to write so that `live` holds what Serin owns of `desired`, or nullopt when it
/// already does. Owner references are not touched: they are set on create only, so an object
/// Serin adopted is not garbage-collected with the canary.
std::optional<nlohmann::json> route_update(const nlohmann::json& live,
                                           const nlohmann::json& desired, const OwnedKeys& owned);

/// The live object from the informer cache, nullptr when it does not exist.
/// Errors: kInvalid when the API server does not serve `type` (no informer runs for it): the
/// message names the provider and the missing API.
Result<kube::ObjectPtr> live_route(const RouterDeps& deps, const RouteContext& context,
                                   const kube::ResourceType& type, std::string_view name);

/// live_route, but an absent object is kNotFound "<Kind> <name>.<ns> not found" (get_routes).
Result<kube::ObjectPtr> existing_route(const RouterDeps& deps, const RouteContext& context,
                                       const kube::ResourceType& type, std::string_view name);

/// Annotation holding the spec of an object Serin took over, for finalize (flagger-spec §4.1).
inline constexpr std::string_view kOriginalConfigKey = "flagger.kubernetes.io/original-configuration";
inline constexpr std::string_view kLastAppliedKey = "kubectl.kubernetes.io/last-applied-configuration";

struct ApplyOptions {
    /// On the first update of an object Serin did not create (no owner reference to the canary)
    /// that has neither kLastAppliedKey nor kOriginalConfigKey, keep its spec (JSON) in
    /// kOriginalConfigKey.
    bool remember_original = false;
};

/// Creates `desired` when absent, else updates what Serin owns when it differs (route_update);
/// the result is remembered in the store. Returns the object as now stored.
/// Errors: live_route's, the KubeClient's.
boost::asio::awaitable<Result<nlohmann::json>> apply_route(RouterDeps deps, RouteContext context,
                                                           kube::ResourceType type,
                                                           nlohmann::json desired, OwnedKeys owned,
                                                           ApplyOptions options = {});

/// The spec an adopted object had before Serin changed it (kLastAppliedKey's spec, else
/// kOriginalConfigKey), or nullopt when none is recorded.
std::optional<nlohmann::json> original_spec(const nlohmann::json& live);

/// Gives the object `name` of `type` that Serin took over its original spec back (finalize with
/// revertOnDeletion); nothing for one that is gone or that Serin created (no original recorded).
/// Errors: live_route's, the KubeClient's.
boost::asio::awaitable<Result<void>> restore_original_spec(RouterDeps deps, RouteContext context,
                                                           kube::ResourceType type,
                                                           std::string name);

/// The routes a routing object holds, or the default (100/0, no mirror) when it does not exist
/// yet or `parse` cannot read it. Reconcile builds the desired object with these, so that a
/// change elsewhere in the object does not reset an analysis in progress.
template <class Parse>
analysis::Routes current_routes_or_default(const kube::ObjectPtr& live, Parse&& parse) {
    if (live != nullptr) {
        if (auto routes = parse(*live)) {
            return *routes;
        }
    }
    return analysis::Routes{100, 0, false};
}

/// Whether Serin created `live` for this canary (its ownerReference names the canary's uid).
bool owned_by_canary(const nlohmann::json& live, const RouteContext& context);

}  // namespace serin::meshes
