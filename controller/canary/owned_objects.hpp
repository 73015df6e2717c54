#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "controller/canary/context.hpp"
#include "platform/core/result.hpp"
#include "platform/kube/cached_client.hpp"
#include "platform/kube/fetched_objects.hpp"

namespace serin::canary {

struct OwnedObjectsOptions {
    std::vector<std::string> selector_labels{"app", "name", "app.kubernetes.io/name"};
    std::vector<std::string> include_label_prefixes;
    bool config_tracking = true;
    kube::ResourceType hpa_type = kube::types::horizontal_pod_autoscalers();
};

/// Keeps the objects a Canary owns in shape (flagger-spec §3): the primary workload, the three
/// Services, the primary copies of tracked ConfigMaps and Secrets and the primary HPA; scales
/// and promotes the workloads and gives the target back on deletion. Reads from the caches and
/// writes only what differs, through the CachedClient. The kind-specific part is the context's
/// TargetKind.
///
/// Errors: the API server's (the caller retries); kNotFound for a referenced object that is
/// missing. Thread safety: one io_context thread.
class OwnedObjects {
public:
    OwnedObjects(kube::CachedClient& kube, kube::FetchedObjects& secrets,
                 OwnedObjectsOptions options)
        : kube_(kube), secrets_(secrets), options_(std::move(options)) {}

    /// Fetches the Secrets the canary uses (tracked configs and their primary copies, its
    /// MetricTemplates' and AlertProviders' credentials), so the caches can serve them.
    boost::asio::awaitable<Result<void>> fetch_secrets(const CanaryContext& ctx);
    /// The checksums of the configs the target's pod template uses ("configmap/<name>" -> hash),
    /// nullopt when tracking is off or there are none. kNotFound names a missing config.
    Result<std::optional<api::StringMap>> tracked_configs(const CanaryContext& ctx) const;

    boost::asio::awaitable<Result<void>> ensure_services(const CanaryContext& ctx);
    /// The primary, created (with its config copies) when missing.
    boost::asio::awaitable<Result<kube::ObjectPtr>> ensure_primary(const CanaryContext& ctx);
    /// Creates the primary HPA when missing; with `update`, also brings it up to date.
    boost::asio::awaitable<Result<void>> ensure_primary_hpa(const CanaryContext& ctx, bool update);

    /// A kind without a primary workload (Knative), while the canary is Initializing: the target
    /// patched into its initial state (TargetKind::initialize_patch); nothing otherwise.
    boost::asio::awaitable<Result<void>> initialize_in_place(const CanaryContext& ctx);
    /// Copies the target's template (and configs) into the primary, then its HPA (§3.7); a kind
    /// without a primary workload patches the target instead (TargetKind::promote_patch).
    boost::asio::awaitable<Result<void>> promote(const CanaryContext& ctx);
    /// Scales the target up for analysis, or to zero.
    boost::asio::awaitable<Result<void>> scale(const CanaryContext& ctx, bool up);

    /// On deletion (revertOnDeletion): the target sized to serve alone (ctx.target updated).
    boost::asio::awaitable<Result<void>> revert_target(CanaryContext& ctx);
    /// On deletion: the apex Service selects the target's pods again, unless the canary owns it
    /// (then it goes with the canary).
    boost::asio::awaitable<Result<void>> revert_apex(const CanaryContext& ctx,
                                                     const SelectorLabel& label);

    const OwnedObjectsOptions& options() const { return options_; }

private:
    boost::asio::awaitable<Result<void>> copy_configs(const CanaryContext& ctx);
    /// Applies a merge patch to the target, when there is one.
    boost::asio::awaitable<Result<void>> patch_target(const CanaryContext& ctx,
                                                      std::optional<std::string> patch);
    PrimaryOptions primary_options(const CanaryContext& ctx) const;

    kube::CachedClient& kube_;
    kube::FetchedObjects& secrets_;
    OwnedObjectsOptions options_;
};

}  // namespace serin::canary
