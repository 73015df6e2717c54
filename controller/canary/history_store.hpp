#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "analysis/history.hpp"
#include "analysis/release.hpp"
#include "crds/api/canary.hpp"
#include "crds/api/canary_history.hpp"
#include "platform/core/clock.hpp"
#include "platform/core/quiet_gate.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::canary {

/// What the store did since it was built.
struct HistoryStats {
    std::uint64_t writes = 0;     ///< creates and updates that succeeded
    /// Reads and writes that failed (the record waits or is lost), and records dropped.
    std::uint64_t failures = 0;
    std::uint64_t conflicts = 0;  ///< writes that found the object changed and read it again
    std::uint64_t dropped = 0;    ///< records not queued: max_queued were waiting already
};

struct HistoryStoreOptions {
    /// Canaries whose records are written at once; past it a canary's records wait their turn
    /// (first queued, first written). Few, as the Events have one writer: a record is best
    /// effort and must not crowd out the releases' own writes on a busy API server (100
    /// releases starting at once queue 200 requests here). Steps that come faster than the
    /// writers write them wait in memory, a record each.
    std::size_t max_writers = 2;
    /// Records queued, over all canaries; past it a new record is dropped (logged and counted
    /// as a failure), as the Events' queue drops past 1,000: an API server that answers
    /// slowly must not grow serin's memory without bound.
    std::size_t max_queued = 1000;
    /// When set, a writer awaits its quiet() before each record, so records wait while the
    /// controller's reconciles run (each keeps the time it was made). Must outlive the store.
    QuietGate* hold_back = nullptr;
};

/// Keeps each canary's CanaryHistory object up to date with its releases (analysis/history).
///
/// The Reconciler calls record() after it has written a decision's status and before the
/// Reporter. record() only queues: the reads and writes run in the background, one writer per
/// canary (its records in the order they were made, each stamped when it was made) and at most
/// `max_writers` canaries at once, so no reconcile waits on the API server for a record of what
/// is already in the status. With 100 releases starting at once, the two round trips of each
/// release's first record (the GET, then the create) held a worker each after `Progressing`.
///
/// The store reads the history of a canary once, when a release first needs it after a start
/// (so history survives restarts), and keeps it in memory while the release runs; a release
/// that has ended leaves memory after its last write, and the next one reads the object again.
/// It is never in an informer cache. Writes carry the resourceVersion; a Conflict reads the
/// object again and applies the same update to it. The object is created with an
/// ownerReference to the Canary, so it is deleted with it.
///
/// Best effort: nothing here fails a reconcile. A failed write is logged and counted, and its
/// record is kept in memory and written with the next change; a controller stopped in between
/// (or before its queued records were written: the Controller waits for them only when it
/// drains) loses it. When the API server does not serve CanaryHistory (its CRD is not
/// installed), or forbids it, the store logs once and records nothing; it looks again after
/// five minutes.
///
/// Thread safety: one io_context thread. Lifetime: the writers use the store; it must outlive
/// the io_context's runs, or have nothing pending() when it is destroyed (as EventRecorder).
class HistoryStore {
public:
    HistoryStore(kube::KubeClient& api, Clock& clock, boost::asio::any_io_executor executor,
                 HistoryStoreOptions options = {});

    /// Queues the record of one decision about `canary` (as it was before it), made on
    /// `observations`, whose target is `target` (for its image; may be null), and returns.
    void record(const api::Canary& canary, const kube::ObjectPtr& target,
                const analysis::Observations& observations, const analysis::Decision& decision);
    /// Drops what is kept and queued about a canary that no longer exists (a write under way
    /// finishes).
    void forget(const std::string& key);

    const HistoryStats& stats() const { return stats_; }
    /// How many canaries' histories are kept in memory now.
    std::size_t kept() const { return entries_.size(); }
    /// Records queued or being written.
    std::size_t pending() const { return pending_; }

private:
    struct Entry {
        kube::Json metadata;  ///< of the stored object; null when there is none yet
        api::CanaryHistory history;
        bool pending = false;  ///< holds a change whose write failed
    };
    /// One decision to record, with copies of what it was made on (the reconcile moves on).
    struct Record {
        api::Canary canary;
        analysis::Decision decision;
        analysis::Observations observations;
        std::string image;
        SystemTime at{};
    };
    using Update = std::function<bool(api::CanaryHistory&)>;

    /// Starts writers for waiting canaries while fewer than max_writers run.
    void start_writers();
    /// Writes the records queued for `key`, in order, until none is left.
    boost::asio::awaitable<void> write_queued(std::string key);
    boost::asio::awaitable<void> apply(const api::Canary& canary, Update update);
    /// Whether CanaryHistory is served (discovery, cached for five minutes when it is not).
    boost::asio::awaitable<bool> served();
    /// Reads the object into entries_; false when the read failed.
    boost::asio::awaitable<bool> load(const api::Canary& canary, const std::string& key);
    boost::asio::awaitable<Result<kube::Json>> write(const api::Canary& canary, const Entry& entry,
                                                     const api::CanaryHistory& next);
    /// Stops recording for a while after a Forbidden answer.
    void not_allowed(const Error& error);

    kube::KubeClient& api_;
    Clock& clock_;
    boost::asio::any_io_executor executor_;
    HistoryStoreOptions options_;
    std::map<std::string, Entry> entries_;
    /// Records not yet written, per canary, oldest first; a canary is here while it has any or
    /// its writer runs.
    std::map<std::string, std::deque<Record>> queued_;
    std::deque<std::string> waiting_;  ///< canaries with records and no writer, oldest first
    std::set<std::string> writing_;    ///< canaries whose writer runs
    std::set<std::string> forgotten_;  ///< forgotten while their writer ran
    std::size_t pending_ = 0;
    std::optional<bool> served_;
    SteadyTime look_again_{};
    HistoryStats stats_;
};

}  // namespace serin::canary
