#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controller/canary/alerts.hpp"
#include "controller/canary/caches.hpp"
#include "controller/canary/history_store.hpp"
#include "controller/canary/reconciler.hpp"
#include "platform/core/quiet_gate.hpp"
#include "platform/kube/work_queue.hpp"

namespace serin::canary {

struct ControllerOptions {
    int workers = 2;  ///< -threadiness: canaries reconciled at once (coroutines on one thread)
    /// -release-start-workers: more workers, beside `workers`, that take only canaries whose
    /// target got a new pod template (the work queue's first lane), so that releases started at
    /// once do not queue behind each other; the steady state keeps `workers` (and their memory).
    int release_start_workers = 0;
    ReconcilerOptions reconciler;
    /// Adds the routers of this build to the registry (main passes register_builtin_routers).
    std::function<void(meshes::RouterRegistry&)> register_routers;
    /// -cluster-name and the global notifier.
    AlertOptions alerts;
    /// Bounds on the webhooks and metric checks made in the background.
    BackgroundCallOptions background;
};

struct ControllerDeps {
    boost::asio::any_io_executor executor;
    /// The informer caches and the client on top (built by the composition root). A router
    /// whose routing type has no informer there refuses its canaries with a clear error. The
    /// controller adds its indexes and handlers, and starts and stops the informers in run().
    Caches& caches;
    Clock& clock;
    kube::EventRecorder& recorder;
    WebhookClient& webhooks;
    metrics::MetricChecker& metrics;
    /// Posts alerts; null: alerts are only logged.
    notify::Notifier* notifier = nullptr;
    /// Keeps Flagger's series and Serin's; null: none.
    telemetry::Telemetry* telemetry = nullptr;
    /// Each reconcile begin()s and end()s here, and the release history's writers wait on it
    /// (as the Events' writer does, when the recorder was given it); null: nothing waits.
    QuietGate* quiet = nullptr;
};

/// Why a set of reconciles in progress (key -> start) means a hung worker: the first that has
/// run longer than `limit`, named with how long; nullopt when none has.
std::optional<std::string> stuck_reconcile(const std::map<std::string, SteadyTime>& running,
                                           SteadyTime now, Duration limit);

/// The canary controller: event handlers on the caches of Canaries and everything they touch,
/// one work queue keyed by canary, and workers that run the Reconciler.
///
/// Watch events enqueue the canaries they concern at once: a Canary's spec or metadata change;
/// a change of its target Deployment/DaemonSet (found by an index on spec.targetRef); of an
/// object it owns (primary workload, Services, config copies, primary HPA: found by owner
/// reference, including routing objects); of a ConfigMap or Secret it tracks (index on status.trackedConfigs); of its HPA.
/// Analysis ticks are delayed re-queues. Nothing polls the API server.
///
/// Thread safety: one io_context thread. run() until cancelled; the controller must outlive it.
class Controller {
public:
    Controller(ControllerDeps deps, ControllerOptions options);
    ~Controller();
    Controller(const Controller&) = delete;
    Controller& operator=(const Controller&) = delete;

    /// Starts the informers, waits until they have synced, then reconciles until cancelled or
    /// drained.
    boost::asio::awaitable<void> run();
    /// Stops taking work: each worker finishes the reconcile it is in and takes no other, and
    /// run() returns once none is left. Cancelling run() still cancels what is in flight.
    void drain();
    /// Whether drain() was called.
    bool draining() const { return draining_; }
    /// Steps in progress now: reconciles, and canaries whose webhooks or metric checks are
    /// being worked out in the background (a drain waits for both).
    std::size_t in_flight() const;
    /// Whether every informer has synced (for /readyz).
    bool synced() const;
    /// Why the controller is not healthy (for /healthz), or nullopt: a reconcile has run longer
    /// than `stuck_after` (every call in one is bounded, so it hangs).
    std::optional<std::string> unhealthy(Duration stuck_after) const;

    std::uint64_t reconciles() const { return reconciles_; }
    /// Keys ready to be reconciled now (serin_workqueue_depth).
    std::size_t queue_depth() const;
    /// The canaries in the cache, per namespace (flagger_canary_total, at each scrape).
    std::map<std::string, std::size_t> canaries_per_namespace() const;
    /// The informers' counters, summed.
    kube::InformerStats informer_stats() const;
    /// What each informer cache holds, by resource.
    std::map<std::string, kube::CacheSize> cache_sizes() const;

private:
    void watch(kube::Informer& informer, std::function<void(const kube::Json&)> enqueue_for);
    /// What else a change to a routing object of `type` reconciles, beyond its owner canary: the
    /// canaries whose ingressRef or routeRef names it (nginx, apisix), the canary a TrafficRoute
    /// names (kuma), the canary of a Knative Service or of a Revision's Service.
    std::function<void(const kube::Json&)> route_enqueue(const kube::ResourceType& type);
    /// The CanaryRequests' index and handlers, when the caches watch them.
    void watch_requests();
    void enqueue_canary(const kube::Json& canary);
    /// `status_only`: the object's change was to its status alone, which wakes only the owners
    /// that read it in their phase (reads_workload_status).
    void enqueue_owners(const kube::Json& object, bool status_only = false);
    /// The handlers of a Deployment or DaemonSet informer: its owners and the canaries that
    /// target it, except the canaries at rest for a status-only update.
    void watch_workloads(kube::Informer& informer, const std::string& kind);
    void enqueue_indexed(const std::string& index, const std::string& value);
    /// Takes keys from the queue (`take`: any, or only the first lane's) and reconciles each,
    /// until the queue shuts down or the worker is cancelled.
    boost::asio::awaitable<void> worker(kube::Take take);
    /// Once draining, shuts the queue when no step is left in flight.
    void finish_drain_if_done();

    ControllerDeps deps_;
    ControllerOptions options_;
    std::unique_ptr<kube::WorkQueue> queue_;
    std::unique_ptr<meshes::RouterRegistry> routers_;
    std::unique_ptr<AlertDispatcher> alerts_;
    std::unique_ptr<HistoryStore> history_;  ///< before the reconciler, which uses it
    std::unique_ptr<Reconciler> reconciler_;
    /// After the reconciler: destroyed first, cancelling what runs in the background.
    std::unique_ptr<BackgroundCalls> calls_;
    std::uint64_t reconciles_ = 0;
    std::size_t in_flight_ = 0;
    bool draining_ = false;
    /// While draining: canaries whose background answer is awaited, for one last reconcile.
    std::set<std::string> drain_wait_;
    /// The reconciles in progress and when each began.
    std::map<std::string, SteadyTime> running_;
};

}  // namespace serin::canary
