#include "platform/kube/token_bucket.hpp"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <cmath>

namespace serin::kube {

namespace {

/// No single token takes longer than this to refill (guards the conversion of tiny qps).
constexpr double kMaxIntervalSeconds = 24.0 * 3600.0;
/// Bounds any duration computed here well inside the range of a nanosecond count.
constexpr double kMaxSeconds = 1e9;

Duration seconds_to_duration(double seconds) {
    seconds = std::clamp(seconds, 0.0, kMaxSeconds);
    return std::chrono::round<Duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

TokenBucket::TokenBucket(Clock& clock, double qps, double burst)
    : clock_(clock),
      unlimited_(!(qps > 0.0)),
      interval_(unlimited_ ? Duration::zero()
                           : seconds_to_duration(std::min(1.0 / qps, kMaxIntervalSeconds))),
      tolerance_(seconds_to_duration(std::chrono::duration<double>(interval_).count() *
                                     (std::max(burst, 1.0) - 1.0))),
      tat_(clock.steady_now()) {}

SteadyTime TokenBucket::next_slot(SteadyTime now) const {
    // The bucket holds a token when the caller would be no more than `tolerance_` ahead of the
    // steady rate; otherwise its slot is when that becomes true.
    return std::max(tat_, now) - tolerance_;
}

bool TokenBucket::try_acquire() {
    if (unlimited_) {
        return true;
    }
    SteadyTime now = clock_.steady_now();
    if (next_slot(now) > now) {
        return false;
    }
    tat_ = std::max(tat_, now) + interval_;
    return true;
}

Duration TokenBucket::wait_time() const {
    if (unlimited_) {
        return Duration::zero();
    }
    SteadyTime now = clock_.steady_now();
    return std::max(Duration::zero(), next_slot(now) - now);
}

boost::asio::awaitable<bool> TokenBucket::acquire() {
    if (try_acquire()) {
        co_return false;
    }
    // Reserve the next slot now, so later callers line up behind this one.
    SteadyTime now = clock_.steady_now();
    SteadyTime slot = next_slot(now);
    tat_ = std::max(tat_, now) + interval_;
    bool reached = co_await clock_.sleep_until(slot);
    if (!reached && tat_ == slot + tolerance_ + interval_) {
        // Cancelled and still the last reservation: give the slot back.
        tat_ -= interval_;
    }
    co_return true;
}

}  // namespace serin::kube
