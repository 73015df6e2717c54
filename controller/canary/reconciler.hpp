#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "analysis/release.hpp"
#include "controller/canary/alerts.hpp"
#include "controller/canary/background_calls.hpp"
#include "controller/canary/context.hpp"
#include "controller/canary/history_store.hpp"
#include "controller/canary/owned_objects.hpp"
#include "controller/canary/reporter.hpp"
#include "controller/canary/target_kind.hpp"
#include "controller/canary/webhook.hpp"
#include "controller/telemetry/telemetry.hpp"
#include "meshes/router.hpp"
#include "metrics/metric_checker.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/cached_client.hpp"
#include "platform/kube/event_recorder.hpp"

namespace serin::canary {

/// The Canary's finalizer when spec.revertOnDeletion is set (flagger-spec §2.13).
inline constexpr std::string_view kFinalizer = "finalizer.flagger.app";
/// The condition Serin adds beside Promoted: whether the spec could be acted on.
inline constexpr std::string_view kAcceptedCondition = "Accepted";

struct ReconcilerOptions {
    std::string mesh_provider = "istio";  ///< -mesh-provider: when spec.provider is empty
    std::vector<std::string> selector_labels{"app", "name", "app.kubernetes.io/name"};
    std::vector<std::string> include_label_prefixes;
    bool config_tracking = true;
    std::string event_webhook;  ///< -event-webhook: the global event sink
    bool no_cross_namespace_refs = false;  ///< -no-cross-namespace-refs (flagger-spec §2.14)
    kube::ResourceType hpa_type = kube::types::horizontal_pod_autoscalers();
    /// Whether CanaryRequests are read (the server serves them and an informer runs).
    bool requests = false;
};

struct ReconcilerDeps {
    boost::asio::any_io_executor executor;  ///< where event webhooks are posted in the background
    /// Reads from the informer caches, writes through the API (read-your-writes kept by it).
    kube::CachedClient& kube;
    Clock& clock;
    kube::EventRecorder& recorder;
    WebhookClient& webhooks;
    meshes::RouterRegistry& routers;
    metrics::MetricChecker& metrics;
    AlertDispatcher* alerts = nullptr;  ///< null: alerts are only logged
    /// Where webhooks and metric checks are made, so no worker waits on them.
    BackgroundCalls& calls;
    /// The Secrets a canary uses, fetched on demand; the caches serve them once fetched.
    kube::FetchedObjects& secrets;
    telemetry::Telemetry* telemetry = nullptr;  ///< null: no metrics kept
    /// Records each release in its CanaryHistory after the status write, in the background;
    /// null: none recorded.
    HistoryStore* history = nullptr;
};

/// What the work queue should do with the key next.
struct ReconcileResult {
    std::optional<Duration> requeue_after;
};

/// Reconciles one Canary: validates it, keeps the objects it owns in shape (OwnedObjects and the
/// router), gathers Observations from the caches, decides with analysis::decide (its questions
/// answered in the background), carries out the actions, writes the status when it changed, and
/// has the Reporter tell the world.
///
/// All release state is in the Canary's status, including when the last paced step was taken
/// (status.lastStepTime); the only memory kept here is this process's own record of that time
/// (for paced steps that wrote no status, so a watch event does not repeat them early) and
/// which invalid-spec message was last reported. Reads come from the caches, never the API server.
///
/// Errors: transient API failures (the key should be retried with backoff). Bad input is not an
/// error: it is reported on the Canary (condition Accepted=False and a Warning Event).
/// Thread safety: one io_context thread; the work queue never hands one key out twice at once.
class Reconciler {
public:
    Reconciler(ReconcilerDeps deps, ReconcilerOptions options);

    boost::asio::awaitable<Result<ReconcileResult>> reconcile(std::string key);
    /// Drops what is remembered about a canary that no longer exists.
    void forget(const std::string& key);

    const ReconcilerOptions& options() const { return options_; }

private:
    struct Memory {
        /// When this process last took a paced step (wall clock, as status.lastStepTime).
        std::optional<SystemTime> last_step;
        std::string reported_invalid;
    };
    /// When a decision was made, on both clocks.
    struct Instant {
        SteadyTime steady;
        SystemTime system;
    };

    // The private steps take the context by reference: each is awaited at once by its caller,
    // whose frame outlives it.
    boost::asio::awaitable<Result<ReconcileResult>> reconcile_key(std::string key);
    boost::asio::awaitable<Result<ReconcileResult>> reconcile_canary(std::string key,
                                                                     kube::ObjectPtr raw);
    /// Why the canary cannot be acted on (bad spec, missing target, ...), or nullopt; fills in
    /// the context's router, kind, target and label.
    std::optional<std::string> admit(CanaryContext& ctx) const;
    /// Whether every MetricTemplate the canary's metrics name (read from the cache) has a
    /// provider type the metric checker has; kInvalid naming the metric and the types otherwise.
    Result<void> metric_providers_supported(const CanaryContext& ctx) const;
    /// The owned objects and the routing objects, in shape.
    boost::asio::awaitable<Result<void>> ensure_owned(CanaryContext& ctx);
    /// What the caches and the router show now.
    boost::asio::awaitable<analysis::Observations> observe(const CanaryContext& ctx);
    /// A kind without a primary workload: the readiness of its revision `revision` standing for
    /// `role` ("primary" or "canary"); not ready (retriable) while there is none or it is not
    /// cached.
    analysis::Readiness revision_readiness(const CanaryContext& ctx, const std::string& revision,
                                           std::string_view role) const;
    /// Carries out a decision: actions, status (a rollback's first), then the reports.
    boost::asio::awaitable<Result<ReconcileResult>> act(CanaryContext& ctx,
                                                        const analysis::Observations& obs,
                                                        analysis::Decision& decision,
                                                        Instant decided);
    /// One routing, scaling or promoting action.
    boost::asio::awaitable<Result<void>> perform(CanaryContext& ctx, api::CanaryStatus& status,
                                                 const analysis::Action& action);
    boost::asio::awaitable<Result<ReconcileResult>> finalize(CanaryContext& ctx);
    /// Reports bad input on the canary (condition and Warning event, once per message).
    boost::asio::awaitable<Result<void>> report_invalid(kube::ObjectPtr raw, std::string message);
    /// report_invalid, then what the queue should do.
    boost::asio::awaitable<Result<ReconcileResult>> reject(
        kube::ObjectPtr raw, std::string message,
        std::optional<Duration> requeue_after = std::nullopt);
    /// Adds or removes the finalizer as spec.revertOnDeletion says; updates ctx.raw.
    boost::asio::awaitable<Result<void>> sync_finalizer(CanaryContext& ctx);
    /// Writes the status subresource; updates ctx.raw.
    boost::asio::awaitable<Result<void>> write_status(CanaryContext& ctx,
                                                      const api::CanaryStatus& status);
    /// Writes a decision's status when it differs from the canary's, stamping
    /// lastTransitionTime with `now` when the decision left it as it was.
    boost::asio::awaitable<Result<void>> write_decided_status(CanaryContext& ctx,
                                                              api::CanaryStatus& status,
                                                              const std::string& now);
    // ---- runtime requests (requests.cpp) ----
    /// The pending CanaryRequests (status.phase empty) in the cache that name `canary`.
    std::vector<kube::ObjectPtr> pending_request_objects(const std::string& ns,
                                                         const std::string& canary) const;
    /// The canary's pending requests for advance(), oldest first; those already recorded in
    /// its status.requests are completed from the record instead, undecodable ones refused.
    boost::asio::awaitable<std::vector<api::CanaryRequest>> pending_requests(CanaryContext& ctx);
    /// Writes a handled request's status (after the canary's, which holds the record), then
    /// records its Event. `status`: the canary's status as written.
    boost::asio::awaitable<void> finish_request(CanaryContext& ctx,
                                                const analysis::RequestOutcome& outcome,
                                                const api::CanaryStatus& status);
    /// The status subresource of a request; false (logged) when it could not be written.
    boost::asio::awaitable<bool> write_request_status(const std::string& ns, kube::ObjectPtr raw,
                                                      std::string phase, std::string message,
                                                      std::string revision);
    /// Refuses the pending requests of a canary that cannot be acted on (`why`: its refusal).
    boost::asio::awaitable<void> refuse_requests_of_rejected(const std::string& ns,
                                                             const std::string& name,
                                                             const std::string& why);
    /// Refuses the pending requests naming a canary that does not exist.
    boost::asio::awaitable<Result<ReconcileResult>> refuse_orphan_requests(const std::string& ns,
                                                                           const std::string& name);
    /// What the queue does while an answer is being worked out in the background.
    ReconcileResult waiting() const;
    /// Another canary in the namespace that releases the same target and came first.
    std::optional<std::string> competing_canary(const CanaryContext& ctx) const;

    ReconcilerDeps deps_;
    ReconcilerOptions options_;
    TargetKinds kinds_;
    OwnedObjects owned_;
    Reporter reporter_;
    std::map<std::string, Memory> memory_;
    std::mt19937_64 random_{std::random_device{}()};  ///< session affinity cookie values
};

}  // namespace serin::canary
