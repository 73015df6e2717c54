#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <string>

#include "platform/core/clock.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::kube {

struct LeaderElectionOptions {
    std::string lease_namespace;
    std::string lease_name;
    std::string identity;  ///< unique per process, e.g. hostname + pid
    /// How long others wait after the last renewal they saw before taking the lease.
    std::chrono::milliseconds lease_duration{15'000};
    /// The leader gives up if it could not renew for this long (must be < lease_duration).
    std::chrono::milliseconds renew_deadline{10'000};
    /// Pause between attempts to acquire or renew.
    std::chrono::milliseconds retry_period{2'000};
};

struct LeaderCallbacks {
    std::function<void()> on_started_leading;
    /// Called once when leadership ends, however it ends (lost, cancelled, released).
    std::function<void()> on_stopped_leading;
    /// Called when the observed holder changes (including to this identity).
    std::function<void(const std::string& identity)> on_new_leader;
};

/// Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: a candidate
/// takes the lease when its holder has not renewed it for lease_duration, measured on the
/// candidate's own clock from when it last saw the lease change (so clock skew between machines
/// does not matter); the leader renews every retry_period and steps down when renew_deadline
/// passes without a successful renewal. Every write carries the resourceVersion it read, so two
/// candidates can never both win.
///
/// Thread safety: one io_context thread. Cancellation: cancelling run() ends it; a leader then
/// calls on_stopped_leading but does not release the lease (call release() for a clean hand-over).
class LeaderElector {
public:
    LeaderElector(KubeClient& client, Clock& clock, LeaderElectionOptions options,
                  LeaderCallbacks callbacks);

    /// Campaigns until it leads, then renews until it loses the lease or is cancelled.
    /// Returns when leadership ends (or, cancelled, before it began).
    boost::asio::awaitable<void> run();

    /// Gives the lease up at once (holder cleared) if this elector holds it, so another
    /// candidate can take it without waiting for lease_duration. Call after run() ended.
    boost::asio::awaitable<Result<void>> release();

    bool is_leader() const { return leading_; }
    const std::string& observed_holder() const { return observed_holder_; }

private:
    boost::asio::awaitable<void> campaign_and_lead();
    /// One attempt: true when this elector holds the lease afterwards.
    boost::asio::awaitable<bool> try_acquire_or_renew();
    void observe(const Json& lease);
    void stop_leading();

    KubeClient& client_;
    Clock& clock_;
    LeaderElectionOptions options_;
    LeaderCallbacks callbacks_;
    bool leading_ = false;
    std::string observed_holder_;
    std::string observed_record_;  ///< the spec as last seen, to notice any change
    SteadyTime observed_at_{};
};

/// RFC 3339 with microseconds in UTC, as Kubernetes' MicroTime: "2026-11-22T04:27:49.123456Z".
std::string format_micro_time(SystemTime t);

}  // namespace serin::kube
