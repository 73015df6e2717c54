#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "platform/core/clock.hpp"

namespace serin::kube {

struct WorkQueueOptions {
    /// add_rate_limited() waits base_delay * 2^failures, at most max_delay.
    Duration base_delay = std::chrono::milliseconds{5};
    Duration max_delay = std::chrono::seconds{1000};
};

/// Which lane of the FIFO a key joins. Keys in the first lane are handed out before any in the
/// normal lane (each lane first in, first out): a canary whose target got a new revision starts
/// its release ahead of the wake-ups (rollout progress, echoes of serin's own writes) queued
/// before it.
enum class Lane { kNormal, kFirst };

/// Which keys a consumer takes: any (the first lane, else the normal one), or only the first
/// lane's. A controller runs consumers of the first lane beside its usual ones, so that releases
/// starting at once do not wait behind each other while the usual consumers (and the memory their
/// work holds at once) stay as few as the steady state needs.
enum class Take { kAny, kFirstLane };

/// Counters for the controller's metrics.
struct WorkQueueStats {
    std::uint64_t adds = 0;     ///< keys that became due for processing (duplicates not counted)
    std::uint64_t retries = 0;  ///< add_rate_limited() calls
    std::size_t max_depth = 0;  ///< the most keys ever ready at once
};

/// The scheduling rules of a work queue, without time or coroutines: tests drive it with
/// explicit time points and WorkQueue wraps it.
///
/// A key is *dirty* when it needs processing, *ready* when it waits in the FIFO, *processing*
/// between pop() and done(), and *scheduled* while it waits for a deadline. A key is never in
/// the FIFO twice and never processed twice at once: adding a key that is being processed only
/// marks it dirty, and done() puts it back at the end of the FIFO.
///
/// Thread safety: none; one owner.
class WorkQueueCore {
public:
    explicit WorkQueueCore(WorkQueueOptions options = {}) : options_(options) {}

    /// Marks `key` dirty. Returns true when it joined the FIFO (a waiting consumer can run).
    /// kFirst moves a key that waits in the normal lane to the end of the first lane; a key
    /// being processed rejoins in the first lane after done().
    bool add(std::string key, Lane lane = Lane::kNormal);
    /// Schedules `key` to be added at `deadline`; a key already scheduled keeps the earlier of
    /// the two deadlines. Independent of whether the key is ready or processing now. Returns
    /// true when the key's deadline changed.
    bool add_at(std::string key, SteadyTime deadline);
    /// Counts a failure of `key` and schedules it at `now` + its backoff; returns the backoff.
    Duration add_rate_limited(std::string key, SteadyTime now);
    /// The backoff for the next failure of `key`, counting that failure.
    Duration next_backoff(const std::string& key);
    /// Forgets the failures of `key` (after a success); a scheduled add stays.
    void forget(const std::string& key) { failures_.erase(key); }
    /// Drops the scheduled add of `key`, if any; returns whether there was one.
    bool unschedule(const std::string& key);
    /// Consecutive failures of `key` since the last forget().
    int failures(const std::string& key) const;

    /// Adds every key whose deadline is at or before `now`, earliest first; returns how many
    /// joined the FIFO, each of which is passed to `joined` when it is set.
    std::size_t run_due(SteadyTime now,
                        const std::function<void(const std::string&)>& joined = nullptr);
    /// The earliest scheduled deadline, if any key is scheduled.
    std::optional<SteadyTime> next_deadline() const;

    /// Takes the front of the first lane, else (Take::kAny) of the normal lane, and marks it
    /// processing.
    std::optional<std::string> pop(Take take = Take::kAny);
    /// Ends the processing of `key`; if it was added meanwhile it rejoins the FIFO and done()
    /// returns true. A key that is not processing is ignored.
    bool done(const std::string& key);

    std::size_t depth() const { return queue_.size() + first_.size(); }  ///< keys ready
    /// Whether `key` waits in the first lane (ready, not processing).
    bool waits_first(const std::string& key) const {
        return first_keys_.contains(key) && !processing_.contains(key);
    }
    std::size_t scheduled() const { return scheduled_.size(); }  ///< keys waiting for a deadline
    std::size_t processing() const { return processing_.size(); }
    bool is_processing(const std::string& key) const { return processing_.contains(key); }
    const WorkQueueStats& stats() const { return stats_; }

    /// Drops every ready and scheduled key (processing keys stay until done()).
    void clear();

private:
    using Slot = std::pair<SteadyTime, std::uint64_t>;  // deadline, then order of scheduling

    /// Puts a dirty key that is not processing into its lane.
    void enqueue(std::string key);

    WorkQueueOptions options_;
    std::deque<std::string> queue_;  ///< the normal lane
    std::deque<std::string> first_;  ///< the first lane
    /// Dirty keys of the first lane (waiting in first_, or processing and added meanwhile).
    std::unordered_set<std::string> first_keys_;
    std::unordered_set<std::string> dirty_;
    std::unordered_set<std::string> processing_;
    std::map<Slot, std::string> by_deadline_;
    std::unordered_map<std::string, Slot> scheduled_;
    std::uint64_t next_sequence_ = 0;
    std::unordered_map<std::string, int> failures_;
    WorkQueueStats stats_;
};

/// A client-go style work queue of object keys for controllers: de-duplicating, never handing
/// out a key that is still being processed, with delayed and rate-limited (exponential
/// per-key backoff) re-queueing. Consumers loop on `get()`, reconcile, then call `done()`.
///
/// Delayed keys are promoted by one internal coroutine that sleeps on the Clock until the
/// earliest deadline (and is woken when an earlier one arrives), so it scales to many keys and
/// runs deterministically on a ManualClock.
///
/// Thread safety: one queue belongs to one io_context thread; every call must come from it.
/// The Clock must outlive the queue, and the queue must be destroyed before its io_context.
/// Destroying the queue shuts it down.
class WorkQueue {
public:
    WorkQueue(boost::asio::any_io_executor executor, Clock& clock, WorkQueueOptions options = {});
    ~WorkQueue();
    WorkQueue(const WorkQueue&) = delete;
    WorkQueue& operator=(const WorkQueue&) = delete;

    /// Queues `key` unless it is already waiting; if it is being processed it is handed out
    /// again after done(). Ignored after shut_down(). Lane::kFirst: ahead of the normal lane
    /// (a key already waiting there moves up).
    void add(std::string key, Lane lane = Lane::kNormal);
    /// Adds `key` once `delay` has passed (at once when it is not positive). Adding a key that
    /// is already delayed keeps the earlier deadline.
    void add_after(std::string key, Duration delay);
    /// Adds `key` after its backoff: base_delay doubled for each failure since forget().
    void add_rate_limited(std::string key);
    /// Resets the failure count of `key`.
    void forget(const std::string& key);
    /// Drops the delayed add of `key`, if any (a retry after a failure, or an earlier
    /// add_after). A controller calls it when a reconcile has succeeded: the new result says
    /// when to look again, and a retry scheduled by an older failure would only reconcile a
    /// canary with nothing to do.
    void unschedule(const std::string& key);
    /// Called by get() with how long the key it hands out waited, ready, in the FIFO: from
    /// add(), its deadline being reached, or done() re-queueing it. For the controller's metrics.
    void set_wait_observer(std::function<void(Duration waited)> observer);
    /// Failures of `key` since the last forget().
    int failures(const std::string& key) const;

    /// The next key, first in first out (the first lane before the normal one; with
    /// Take::kFirstLane only the first lane's), waiting until there is one. A key joining the
    /// first lane wakes a first-lane consumer when one waits, else any consumer. Returns nullopt
    /// once the queue is shut down (keys still waiting are dropped) or when the awaiting
    /// coroutine is cancelled. The caller must call done(key) when it has processed the key.
    boost::asio::awaitable<std::optional<std::string>> get(Take take = Take::kAny);
    /// Ends the processing of `key`.
    void done(const std::string& key);

    /// Keys ready to be handed out (not counting delayed ones).
    std::size_t depth() const;
    /// Keys waiting for a deadline.
    std::size_t scheduled() const;
    const WorkQueueStats& stats() const;

    /// Stops the queue: pending and future get() calls return nullopt, delayed keys are dropped.
    void shut_down();
    bool shutting_down() const;

private:
    struct State;
    static boost::asio::awaitable<void> drive(std::shared_ptr<State> state);
    /// Starts the driver, or wakes it when `deadline` is earlier than what it sleeps until.
    void scheduled_at(SteadyTime deadline);

    std::shared_ptr<State> state_;  // shared with the coroutines, which may outlive a call
};

}  // namespace serin::kube
