#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "platform/core/clock.hpp"
#include "platform/core/time.hpp"

namespace serin {

struct QuietGateOptions {
    /// The work that matters counts as quiet once none of it has run for this long.
    Duration quiet_for = std::chrono::milliseconds{250};
    /// A waiter goes ahead this long after it began to wait, quiet or not: held-back work is
    /// late, never starved.
    Duration max_wait = std::chrono::seconds{5};
};

/// Holds best-effort work back while the work that matters runs.
///
/// The controller's reconciles are the work that matters: each begin()s and end()s here. The
/// writers of what only reports on them (Events, CanaryHistory records) await quiet() before
/// each write, so that when 100 releases start at once their writes do not compete with the
/// releases' own on an API server short of CPU; they follow once the reconciles pause, or
/// max_wait later.
///
/// Thread safety: one io_context thread (the clock's).
class QuietGate {
public:
    explicit QuietGate(Clock& clock, QuietGateOptions options = {})
        : clock_(clock), options_(options) {}
    QuietGate(const QuietGate&) = delete;
    QuietGate& operator=(const QuietGate&) = delete;

    /// A piece of the work that matters starts.
    void begin() { ++active_; }
    /// It ended.
    void end();

    /// Returns once no work has run for quiet_for (at once when none has), or max_wait after
    /// the call, or when the awaiting coroutine is cancelled.
    boost::asio::awaitable<void> quiet();

    /// Work running now.
    std::size_t active() const { return active_; }
    /// Calls of quiet() that waited at all, and those that went ahead at max_wait.
    std::uint64_t held() const { return held_; }
    std::uint64_t gave_up() const { return gave_up_; }

private:
    Clock& clock_;
    QuietGateOptions options_;
    std::size_t active_ = 0;
    std::optional<SteadyTime> last_end_;
    std::uint64_t held_ = 0;
    std::uint64_t gave_up_ = 0;
};

}  // namespace serin
