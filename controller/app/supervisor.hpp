#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "platform/core/clock.hpp"
#include "platform/core/result.hpp"
#include "platform/kube/leader_election.hpp"

namespace serin::app {

/// What the Supervisor runs: the canary controller, seen through the few calls a supervisor
/// needs. The Supervisor calls prepare() once, then run() at most once.
class Supervised {
public:
    virtual ~Supervised() = default;
    /// Gets ready to run, failing fast when the work cannot be done at all (the API server
    /// cannot be reached, the CRDs are missing); false, with the reason logged, makes serin
    /// exit 1. Cancellation: cancelled by a signal that comes first.
    virtual boost::asio::awaitable<bool> prepare() = 0;
    /// Works until cancelled or, after drain(), until nothing is left in flight.
    virtual boost::asio::awaitable<void> run() = 0;
    /// Takes no new work; run() returns once what is in flight is done.
    virtual void drain() = 0;
    virtual bool draining() const = 0;
    /// Steps in progress (for the log line of a drain).
    virtual std::size_t in_flight() const = 0;
};

/// Leader election, as kube::LeaderElector runs it.
class Election {
public:
    virtual ~Election() = default;
    /// Campaigns until it leads, then leads until the lease is lost or run() is cancelled,
    /// calling `callbacks` as it goes (on_stopped_leading however leadership ends). Returns
    /// when leadership ends, or, cancelled, before it began.
    virtual boost::asio::awaitable<void> run(kube::LeaderCallbacks callbacks) = 0;
    /// Hands the lease over at once, if held (after run() ended).
    virtual boost::asio::awaitable<Result<void>> release() = 0;
    /// Who this process is in the lease.
    virtual const std::string& identity() const = 0;
};

struct SupervisorOptions {
    /// -shutdown-grace: after the first signal, how long the work in flight may take to
    /// finish before it is cancelled.
    std::chrono::milliseconds shutdown_grace{10'000};
    /// How long a shutdown may take beyond the grace before serin gives up on it and exits 1.
    std::chrono::milliseconds shutdown_deadline{5'000};
};

/// Runs the controller for the process's lifetime and decides how the process ends.
///
/// - Leader gating: with an Election, the work runs only while leading, and a lost lease
///   cancels it at once and ends serin with 1 (a standby restarted by Kubernetes campaigns
///   again). Without one, the work runs at once.
/// - The first signal drains the work: nothing new starts, and what is in flight has
///   shutdown_grace to finish before it is cancelled. Then the lease, if held, is handed over
///   and serin exits 0. Should that take shutdown_deadline beyond the grace, or a second
///   signal come, the Supervisor gives up waiting and exits 1 at once.
/// - prepare() failing, or an exception escaping the work, exits 1.
///
/// Exit codes: 0 after a clean stop, 1 otherwise; on_exit is called once with it, and nothing
/// the Supervisor started runs on afterwards unless the caller runs the io_context on (main
/// stops it).
///
/// Thread safety: one io_context thread; signal() must be called on it. Lifetime: the
/// Supervisor, the work, the election and the clock must outlive every handler the io_context
/// runs (main stops it before any of them goes; a test declares them before the io_context).
class Supervisor {
public:
    using OnExit = std::function<void(int exit_code)>;

    /// `election`: null runs the work without leader election.
    Supervisor(Clock& clock, Supervised& work, Election* election, SupervisorOptions options);
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    /// Starts supervising on `executor`; `on_exit` is told the exit code once serin should end.
    void start(boost::asio::any_io_executor executor, OnExit on_exit);
    /// A SIGINT or SIGTERM (`number`) arrived.
    void signal(int number);

    /// Whether on_exit was called.
    bool exited() const { return exited_; }

private:
    boost::asio::awaitable<void> supervise();
    boost::asio::awaitable<void> lead();
    /// Sleeps until `at`, then calls `ring` unless cancelled first.
    boost::asio::awaitable<void> alarm(SteadyTime at, void (Supervisor::*ring)());
    void set_alarm(boost::asio::cancellation_signal& cancel, Duration after,
                   void (Supervisor::*ring)());
    void started_leading();
    void grace_over();
    void deadline_passed();
    /// Cancels the supervised work, once: a second cancellation would cut the lease's
    /// hand-over short.
    void stop_all();
    void give_up(std::string_view why);
    void finish(int code);

    Clock& clock_;
    Supervised& work_;
    Election* election_;
    SupervisorOptions options_;
    boost::asio::any_io_executor executor_;
    OnExit on_exit_;
    int exit_code_ = 0;
    bool exited_ = false;
    bool signalled_ = false;
    bool stopped_ = false;
    bool leading_ = false;
    /// Whether the work's run() is in progress, for a drain on the first signal.
    bool running_ = false;
    boost::asio::cancellation_signal stop_;            ///< cancels supervise()
    boost::asio::cancellation_signal lost_;            ///< cancels the work when leading ends
    boost::asio::cancellation_signal grace_alarm_;     ///< cancels grace_over's alarm
    boost::asio::cancellation_signal deadline_alarm_;  ///< cancels deadline_passed's alarm
};

}  // namespace serin::app
