#include "platform/kube/work_queue.hpp"

#include "platform/core/assert.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cmath>

namespace serin::kube {

namespace asio = boost::asio;

// ---- WorkQueueCore ------------------------------------------------------------------------

bool WorkQueueCore::add(std::string key, Lane lane) {
    if (dirty_.contains(key)) {
        // Already waiting, or already due again after its processing. Moving up to the first
        // lane is the one change an add can still make.
        if (lane == Lane::kFirst && first_keys_.insert(key).second &&
            !processing_.contains(key)) {
            const auto waiting = std::find(queue_.begin(), queue_.end(), key);
            SERIN_ASSERT(waiting != queue_.end(), "a dirty key is in no lane: " + key);
            queue_.erase(waiting);
            first_.push_back(std::move(key));
        }
        return false;
    }
    ++stats_.adds;
    dirty_.insert(key);
    if (lane == Lane::kFirst) {
        first_keys_.insert(key);
    }
    if (processing_.contains(key)) {
        return false;  // done() re-queues it
    }
    enqueue(std::move(key));
    return true;
}

void WorkQueueCore::enqueue(std::string key) {
    if (first_keys_.contains(key)) {
        first_.push_back(std::move(key));
    } else {
        queue_.push_back(std::move(key));
    }
    stats_.max_depth = std::max(stats_.max_depth, depth());
}

bool WorkQueueCore::add_at(std::string key, SteadyTime deadline) {
    auto it = scheduled_.find(key);
    if (it != scheduled_.end()) {
        if (it->second.first <= deadline) {
            return false;  // the earlier deadline wins
        }
        by_deadline_.erase(it->second);
        scheduled_.erase(it);
    }
    Slot slot{deadline, next_sequence_++};
    by_deadline_.emplace(slot, key);
    scheduled_.emplace(std::move(key), slot);
    return true;
}

bool WorkQueueCore::unschedule(const std::string& key) {
    auto it = scheduled_.find(key);
    if (it == scheduled_.end()) {
        return false;
    }
    by_deadline_.erase(it->second);
    scheduled_.erase(it);
    return true;
}

Duration WorkQueueCore::next_backoff(const std::string& key) {
    int exponent = failures_[key]++;
    // base * 2^exponent in floating point, so that large exponents saturate instead of
    // overflowing; ldexp is exact for the powers of two that matter.
    double base = static_cast<double>(options_.base_delay.count());
    double max = static_cast<double>(options_.max_delay.count());
    double delay = std::ldexp(base, std::min(exponent, 1000));
    if (!(delay < max)) {
        return options_.max_delay;
    }
    return Duration{static_cast<Duration::rep>(delay)};
}

Duration WorkQueueCore::add_rate_limited(std::string key, SteadyTime now) {
    ++stats_.retries;
    Duration delay = next_backoff(key);
    add_at(std::move(key), now + delay);
    return delay;
}

int WorkQueueCore::failures(const std::string& key) const {
    auto it = failures_.find(key);
    return it == failures_.end() ? 0 : it->second;
}

std::size_t WorkQueueCore::run_due(SteadyTime now,
                                   const std::function<void(const std::string&)>& joined) {
    std::size_t ready = 0;
    while (!by_deadline_.empty() && by_deadline_.begin()->first.first <= now) {
        auto node = by_deadline_.extract(by_deadline_.begin());
        scheduled_.erase(node.mapped());
        if (add(node.mapped())) {
            ++ready;
            if (joined) {
                joined(node.mapped());
            }
        }
    }
    return ready;
}

std::optional<SteadyTime> WorkQueueCore::next_deadline() const {
    if (by_deadline_.empty()) {
        return std::nullopt;
    }
    return by_deadline_.begin()->first.first;
}

std::optional<std::string> WorkQueueCore::pop(Take take) {
    const bool normal = first_.empty() && take == Take::kAny;
    std::deque<std::string>& lane = normal ? queue_ : first_;
    if (lane.empty()) {
        return std::nullopt;
    }
    std::string key = std::move(lane.front());
    lane.pop_front();
    first_keys_.erase(key);
    dirty_.erase(key);
    // The queue's promise: a key is never handed out while it is being processed (a key added
    // meanwhile waits in dirty_ until done()). Two workers on one canary could write its status
    // from two different decisions.
    const bool first = processing_.insert(key).second;
    SERIN_ASSERT(first, "work queue handed out a key that is being processed: " + key);
    return key;
}

bool WorkQueueCore::done(const std::string& key) {
    if (processing_.erase(key) == 0) {
        return false;
    }
    if (!dirty_.contains(key)) {
        return false;
    }
    enqueue(key);
    return true;
}

void WorkQueueCore::clear() {
    for (const auto& key : queue_) {
        dirty_.erase(key);
    }
    for (const auto& key : first_) {
        dirty_.erase(key);
        first_keys_.erase(key);
    }
    queue_.clear();
    first_.clear();
    by_deadline_.clear();
    scheduled_.clear();
}

// ---- WorkQueue ----------------------------------------------------------------------------

struct WorkQueue::State {
    State(asio::any_io_executor ex, Clock& c, WorkQueueOptions options)
        : executor(ex),
          clock(c),
          core(options),
          ready(ex, SteadyTime::max()),
          ready_first(ex, SteadyTime::max()),
          wake(ex, SteadyTime::max()) {}

    /// Lets `count` waiting consumers of any lane run.
    void notify(std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) {
            if (ready.cancel_one() == 0) {
                break;
            }
        }
    }

    /// Wakes one consumer for `key`, which has just joined the FIFO: a consumer of the first
    /// lane when the key waits there and one such consumer waits, else one of any lane.
    void wake_for(const std::string& key) {
        joined(key);
        if (core.waits_first(key) && ready_first.cancel_one() > 0) {
            return;
        }
        ready.cancel_one();
    }

    /// Records that `key` joined the FIFO now, for the wait observer.
    void joined(const std::string& key) {
        if (on_wait) {
            ready_since[key] = clock.steady_now();
        }
    }

    asio::any_io_executor executor;
    Clock& clock;
    WorkQueueCore core;
    std::function<void(Duration)> on_wait;
    std::unordered_map<std::string, SteadyTime> ready_since;  ///< keys in the FIFO, when on_wait
    /// Never expires: consumers wait on it, cancel_one() wakes the longest waiting one.
    asio::steady_timer ready;
    /// Never expires: consumers of the first lane only (Take::kFirstLane) wait on it.
    asio::steady_timer ready_first;
    /// Never expires: the driver waits on it beside the clock, to be woken for an earlier
    /// deadline or the shutdown.
    asio::steady_timer wake;
    bool driver_running = false;
    std::optional<SteadyTime> driver_target;  ///< what the driver sleeps until
    bool shut_down = false;
};

WorkQueue::WorkQueue(asio::any_io_executor executor, Clock& clock, WorkQueueOptions options)
    : state_(std::make_shared<State>(std::move(executor), clock, options)) {}

WorkQueue::~WorkQueue() { shut_down(); }

void WorkQueue::add(std::string key, Lane lane) {
    if (state_->shut_down) {
        return;
    }
    const bool waited_first = state_->core.waits_first(key);
    if (state_->core.add(key, lane)) {
        state_->wake_for(key);
    } else if (!waited_first && state_->core.waits_first(key)) {
        // Moved up from the normal lane, whose consumers were woken for it when it joined: a
        // consumer of the first lane may take it now.
        state_->ready_first.cancel_one();
    }
}

void WorkQueue::add_after(std::string key, Duration delay) {
    if (delay <= Duration::zero()) {
        add(std::move(key));
        return;
    }
    if (state_->shut_down) {
        return;
    }
    SteadyTime deadline = state_->clock.steady_now() + delay;
    state_->core.add_at(std::move(key), deadline);
    scheduled_at(deadline);
}

void WorkQueue::add_rate_limited(std::string key) {
    if (state_->shut_down) {
        return;
    }
    SteadyTime now = state_->clock.steady_now();
    Duration delay = state_->core.add_rate_limited(std::move(key), now);
    scheduled_at(now + delay);
}

void WorkQueue::scheduled_at(SteadyTime deadline) {
    State& s = *state_;
    if (!s.driver_running) {
        s.driver_running = true;
        asio::co_spawn(s.executor, drive(state_), asio::detached);
    } else if (s.driver_target && deadline < *s.driver_target) {
        s.wake.cancel();  // the driver sleeps too long: make it look again
    }
}

asio::awaitable<void> WorkQueue::drive(std::shared_ptr<State> state) {
    using namespace asio::experimental::awaitable_operators;
    State& s = *state;
    while (!s.shut_down) {
        auto next = s.core.next_deadline();
        if (!next) {
            break;  // nothing scheduled: the next schedule() starts a new driver
        }
        SteadyTime now = s.clock.steady_now();
        if (*next > now) {
            s.driver_target = *next;
            // Whichever comes first: the deadline, or a wake-up for an earlier one. The other
            // wait is cancelled. Both are re-checked by the loop, so a spurious wake-up is fine.
            co_await (s.clock.sleep_until(*next) ||
                      s.wake.async_wait(asio::as_tuple(asio::use_awaitable)));
            s.driver_target.reset();
            continue;
        }
        s.core.run_due(now, [&s](const std::string& key) { s.wake_for(key); });
    }
    s.driver_running = false;
}

void WorkQueue::forget(const std::string& key) { state_->core.forget(key); }

void WorkQueue::unschedule(const std::string& key) {
    // The driver may still wake for the dropped deadline: it then finds nothing due.
    state_->core.unschedule(key);
}

void WorkQueue::set_wait_observer(std::function<void(Duration waited)> observer) {
    state_->on_wait = std::move(observer);
}

int WorkQueue::failures(const std::string& key) const { return state_->core.failures(key); }

asio::awaitable<std::optional<std::string>> WorkQueue::get(Take take) {
    std::shared_ptr<State> state = state_;  // keeps the timer alive if the queue goes away
    for (;;) {
        if (state->shut_down) {
            co_return std::nullopt;
        }
        asio::cancellation_state cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) {
            // Cancelled before or while waiting. This consumer may have been the one woken for
            // a key: pass the wake-up on.
            state->notify(state->core.depth());
            co_return std::nullopt;
        }
        if (auto key = state->core.pop(take)) {
            if (auto since = state->ready_since.find(*key); since != state->ready_since.end()) {
                const Duration waited = state->clock.steady_now() - since->second;
                state->ready_since.erase(since);
                state->on_wait(waited);
            }
            co_return key;
        }
        if (take == Take::kFirstLane && state->core.depth() > 0) {
            // Nothing for it, but normal keys wait: it may have been woken for a first-lane key
            // that a consumer of any lane took instead, maybe one woken for such a normal key.
            // Pass that wake-up on.
            state->notify(1);
        }
        asio::steady_timer& ready = take == Take::kFirstLane ? state->ready_first : state->ready;
        co_await ready.async_wait(asio::as_tuple(asio::use_awaitable));
    }
}

void WorkQueue::done(const std::string& key) {
    if (!state_->core.done(key)) {
        return;
    }
    if (state_->shut_down) {
        state_->core.clear();
        state_->ready_since.clear();
    } else {
        state_->wake_for(key);
    }
}

std::size_t WorkQueue::depth() const { return state_->core.depth(); }

std::size_t WorkQueue::scheduled() const { return state_->core.scheduled(); }

const WorkQueueStats& WorkQueue::stats() const { return state_->core.stats(); }

void WorkQueue::shut_down() {
    State& s = *state_;
    if (s.shut_down) {
        return;
    }
    s.shut_down = true;
    s.core.clear();
    s.ready_since.clear();
    s.ready.cancel();
    s.ready_first.cancel();
    s.wake.cancel();
}

bool WorkQueue::shutting_down() const { return state_->shut_down; }

}  // namespace serin::kube
