#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "platform/core/clock.hpp"
#include "platform/core/time_format.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/kube_client.hpp"

/// podsim: the kubelet stand-in of the devcluster. No kubelet or scheduler runs there, so pods
/// would stay Pending forever; podsim writes the status a kubelet would, so the real
/// controller-manager computes Deployment and ReplicaSet status from it.
///
/// Pod annotations (copied from the pod template) choose the behaviour:
///   sim.serin.dev/ready: "false"  Running, but the containers and the pod are not ready
///   sim.serin.dev/crash: "true"   containers crash-loop: waiting CrashLoopBackOff, last state
///                                 terminated (exit 1, Error), restartCount growing over time
/// Anything else: Running and Ready.
namespace serin::podsim {

inline constexpr std::string_view kReadyAnnotation = "sim.serin.dev/ready";
inline constexpr std::string_view kCrashAnnotation = "sim.serin.dev/crash";

enum class PodBehavior { kReady, kNotReady, kCrashLoop };

/// The behaviour the pod's annotations ask for (crash wins over not-ready).
PodBehavior pod_behavior(const kube::Json& pod);

struct SimSettings {
    /// A crash-looping container restarts once per interval, counted from the pod's startTime.
    std::chrono::seconds crash_restart_interval{2};
};

/// The status a kubelet would report for `pod` at `now`, or nullopt when podsim leaves the pod
/// alone (being deleted, already Succeeded/Failed, or not a pod object).
///
/// Pure and idempotent: fields podsim does not own (qosClass) are kept, and timestamps already
/// in the status (startTime, a condition's lastTransitionTime while its status is unchanged, a
/// running container's startedAt) are reused, so applying the result and asking again yields the
/// same status. For a crash-looping pod restartCount is 1 + the number of whole restart intervals
/// since startTime, and never less than the count already reported.
std::optional<kube::Json> desired_pod_status(const kube::Json& pod, SystemTime now,
                                             const SimSettings& settings = {});

/// Whether `current` already says everything `desired` says: every member of a desired object is
/// present and equal in the current one (a null matches an absent member), arrays match element
/// by element. Members only the server sets (qosClass, defaults) do not count.
bool status_satisfies(const kube::Json& current, const kube::Json& desired);

/// The status to write for `pod` now, or nullopt when it already has it or is left alone.
std::optional<kube::Json> status_update(const kube::Json& pod, SystemTime now,
                                        const SimSettings& settings = {});

/// Pod timestamps are metav1.Time.
using serin::format_time;
using serin::parse_time;

struct PodSimOptions {
    SimSettings sim;
    std::string ns;  ///< "" = all namespaces
    /// How often crash-looping pods are re-evaluated (their restartCount grows with time) and
    /// failed writes retried.
    std::chrono::milliseconds tick{1000};
    /// Every this many ticks, every pod is re-checked, whatever the watch said.
    int full_resync_ticks = 30;
    std::string field_manager = "serin-podsim";
};

struct PodSimStats {
    std::uint64_t status_writes = 0;
    std::uint64_t conflicts = 0;
    std::uint64_t failures = 0;
};

/// Watches pods (through an Informer) and writes each one's status subresource when it differs
/// from desired_pod_status(). A 409 is dropped: the newer object arrives through the watch and is
/// judged again. Other failures are retried on the next tick.
///
/// Thread safety: run() and everything else on one io_context thread.
/// Cancellation: cancelling run()'s coroutine ends it.
class PodSim {
public:
    PodSim(kube::KubeClient& client, Clock& clock, PodSimOptions options = {});
    PodSim(const PodSim&) = delete;
    PodSim& operator=(const PodSim&) = delete;

    /// Runs until cancelled.
    boost::asio::awaitable<void> run();

    const PodSimStats& stats() const { return stats_; }

private:
    boost::asio::awaitable<void> run_worker();
    boost::asio::awaitable<void> run_ticker();
    boost::asio::awaitable<void> write_status(std::string key);
    void enqueue(const std::string& key);
    /// Keeps known_ and crashing_ in step with the watch, then enqueues the pod.
    void on_seen(const kube::Json& pod);

    kube::KubeClient& client_;
    Clock& clock_;
    PodSimOptions options_;
    kube::Informer informer_;
    std::deque<std::string> queue_;
    std::unordered_set<std::string> queued_;
    std::unordered_set<std::string> retry_;
    /// Every pod in the cache, and the crash-looping ones among them, by key: what a tick looks
    /// at, so that it decodes no pod from the informer's compact cache (at 10,000 pods a tick
    /// that read every pod took ~0.4 s of CPU each second, beside the control plane).
    std::unordered_set<std::string> known_;
    std::unordered_set<std::string> crashing_;
    std::optional<boost::asio::steady_timer> wake_;
    PodSimStats stats_;
};

}  // namespace serin::podsim
