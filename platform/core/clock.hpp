#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <list>

#include "platform/core/time.hpp"

namespace serin {

/// The only source of time in Serin's logic, so tests can move it by hand.
///
/// Thread safety: SystemClock is safe from any thread. ManualClock must be used from the thread
/// that runs its io_context.
/// Cancellation: sleep_until completes early, returning false, when the awaiting coroutine's
/// cancellation slot is triggered, and returns false at once when the coroutine was cancelled
/// before it began (during an operation that completed regardless), so that a loop of "work,
/// then sleep" always ends once cancelled.
class Clock {
public:
    virtual ~Clock() = default;
    virtual SteadyTime steady_now() const = 0;
    virtual SystemTime system_now() const = 0;
    /// Waits until `deadline`; true when it was reached, false when cancelled.
    boost::asio::awaitable<bool> sleep_until(SteadyTime deadline);

    boost::asio::awaitable<bool> sleep_for(Duration d) {
        return sleep_until(steady_now() + d);
    }

private:
    /// The wait itself, once sleep_until has found the coroutine not yet cancelled.
    virtual boost::asio::awaitable<bool> wait_until(SteadyTime deadline) = 0;
};

class SystemClock final : public Clock {
public:
    SteadyTime steady_now() const override { return std::chrono::steady_clock::now(); }
    SystemTime system_now() const override { return std::chrono::system_clock::now(); }

private:
    boost::asio::awaitable<bool> wait_until(SteadyTime deadline) override;
};

/// A clock that moves only when advance() is called; due sleepers wake in deadline order.
class ManualClock final : public Clock {
public:
    explicit ManualClock(SystemTime start = SystemTime{std::chrono::seconds{1'700'000'000}})
        : system_start_(start) {}

    SteadyTime steady_now() const override { return now_; }
    SystemTime system_now() const override {
        return system_start_ + std::chrono::duration_cast<SystemTime::duration>(
                                   now_.time_since_epoch());
    }
    /// Moves time forward and wakes every sleeper whose deadline has come.
    void advance(Duration d);
    /// How many coroutines are sleeping on this clock and not yet woken by advance().
    std::size_t sleepers() const {
        std::size_t n = 0;
        for (const auto& w : waiters_) {
            n += w.fired ? 0 : 1;
        }
        return n;
    }

private:
    boost::asio::awaitable<bool> wait_until(SteadyTime deadline) override;

    struct Waiter {
        SteadyTime deadline;
        boost::asio::steady_timer* timer;
        bool fired = false;
    };
    SystemTime system_start_;
    SteadyTime now_{};
    std::list<Waiter> waiters_;
};

}  // namespace serin
