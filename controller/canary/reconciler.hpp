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
#include "controller/canary/webhook.hpp"
#include "controller/telemetry/telemetry.hpp"
#include "controller/workload/workload.hpp"
#include "meshes/router.hpp"
#include "metrics/metric_checker.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/event_recorder.hpp"
#include "platform/kube/kube_client.hpp"
#include "platform/kube/object_store.hpp"

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
};

struct ReconcilerDeps {
    boost::asio::any_io_executor executor;  ///< where event webhooks are posted in the background
    kube::KubeClient& client;
    kube::ObjectStore& store;
    Clock& clock;
    kube::EventRecorder& recorder;
    WebhookClient& webhooks;
    meshes::RouterRegistry& routers;
    metrics::MetricChecker& metrics;
    AlertDispatcher* alerts = nullptr;  ///< null: alerts are only logged
    /// Where webhooks and metric checks are made, so no worker waits on them.
    BackgroundCalls& calls;
    /// The Secrets a canary uses, fetched on demand; the store serves them once fetched.
    kube::FetchedObjects& secrets;
    telemetry::Telemetry* telemetry = nullptr;  ///< null: no metrics kept
};

/// What the work queue should do with the key next.
struct ReconcileResult {
    std::optional<Duration> requeue_after;
};

/// Reconciles one Canary: validates it, keeps the objects it owns in shape (primary workload,
/// Services, config copies, primary HPA, routing objects), gathers Observations from the caches,
/// runs analysis::advance, carries out its actions and writes the status when it changed.
///
/// All release state is in the Canary's status; the only memory kept here is when each canary
/// last took a paced step (so a watch event does not advance an analysis early) and which
/// invalid-spec message was last reported. Reads come from the ObjectStore, never the API server.
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
        std::optional<SteadyTime> last_step;
        std::string reported_invalid;
        /// For the summary of the release's last alert: the metric checks of this release so
        /// far and the outcome of the last one (lost on restart).
        int metric_steps = 0;
        std::string last_metrics;
    };
    struct Context;  // one reconcile's canary, target and names

    // The private steps take the Context by reference: each is awaited at once by its caller,
    // whose frame outlives it.
    boost::asio::awaitable<Result<ReconcileResult>> reconcile_key(std::string key);
    /// Flagger's series for what this reconcile observed and decided.
    void record_telemetry(const Context& ctx, const analysis::Observations& obs,
                          const analysis::Decision& decision, const api::CanaryStatus& before,
                          SteadyTime started);
    boost::asio::awaitable<Result<ReconcileResult>> reconcile_canary(std::string key,
                                                                     kube::ObjectPtr raw);
    boost::asio::awaitable<Result<ReconcileResult>> finalize(Context& ctx);
    /// Reports bad input on the canary (condition and Warning event, once per message).
    boost::asio::awaitable<Result<void>> report_invalid(kube::ObjectPtr raw, std::string message);
    /// report_invalid, then what the queue should do.
    boost::asio::awaitable<Result<ReconcileResult>> reject(
        kube::ObjectPtr raw, std::string message,
        std::optional<Duration> requeue_after = std::nullopt);
    /// Adds or removes the finalizer as spec.revertOnDeletion says; updates ctx.raw.
    boost::asio::awaitable<Result<void>> sync_finalizer(Context& ctx);

    Result<std::optional<api::StringMap>> tracked_configs(const Context& ctx) const;
    /// Fetches the Secrets the canary uses (tracked configs and their primary copies, its
    /// MetricTemplates' and AlertProviders' credentials), so the store can serve them.
    boost::asio::awaitable<Result<void>> fetch_secrets(const Context& ctx);
    boost::asio::awaitable<Result<void>> copy_configs(const Context& ctx);
    boost::asio::awaitable<Result<void>> ensure_services(const Context& ctx);
    boost::asio::awaitable<Result<kube::ObjectPtr>> ensure_primary(const Context& ctx);
    boost::asio::awaitable<Result<void>> ensure_primary_hpa(const Context& ctx, bool update);
    boost::asio::awaitable<Result<void>> promote(const Context& ctx);
    boost::asio::awaitable<Result<void>> scale(const Context& ctx, bool up);
    /// Writes the status subresource; updates ctx.raw.
    boost::asio::awaitable<Result<void>> write_status(Context& ctx, const api::CanaryStatus& status);
    /// Writes a decision's status when it differs from the canary's, stamping
    /// lastTransitionTime with `now` when the decision left it as it was.
    boost::asio::awaitable<Result<void>> write_decided_status(Context& ctx,
                                                              api::CanaryStatus& status,
                                                              const std::string& now);
    boost::asio::awaitable<void> emit(const Context& ctx, const analysis::RecordEvent& event);
    /// Runs the post-rollout hooks and records their outcome (a copy of the context: it runs in
    /// the background).
    boost::asio::awaitable<void> run_post_rollout(Context ctx, std::string phase);
    /// The answers to advance()'s question for this reconcile, from BackgroundCalls (nullopt:
    /// being worked out; the canary is woken when it is).
    boost::asio::awaitable<std::optional<analysis::HookRun>> hooks_answer(
        const Context& ctx, const analysis::HookRequest& request, const std::string& question);
    boost::asio::awaitable<std::optional<std::vector<analysis::MetricResult>>> metrics_answer(
        const Context& ctx, const std::string& question);
    void post_event_webhooks(const Context& ctx, const analysis::RecordEvent& event);
    /// What the queue does while an answer is being worked out in the background.
    ReconcileResult waiting() const;
    /// Sends an alert (with the analysis summary when it ends the release) and reports what
    /// went wrong as Warning Events.
    boost::asio::awaitable<void> send_alert(const Context& ctx, const analysis::Alert& alert,
                                            const api::CanaryStatus& before);

    analysis::Observations observe(const Context& ctx) const;
    analysis::Readiness readiness(const Context& ctx, const Json& workload, int threshold_percent,
                                  const std::string& prefix) const;
    PrimaryOptions primary_options(const Context& ctx) const;
    const kube::ResourceType& workload_type(const Context& ctx) const;
    /// Another canary in the namespace that releases the same target and came first.
    std::optional<std::string> competing_canary(const Context& ctx) const;

    ReconcilerDeps deps_;
    ReconcilerOptions options_;
    std::map<std::string, Memory> memory_;
    std::mt19937_64 random_{std::random_device{}()};  ///< session affinity cookie values
};

}  // namespace serin::canary
