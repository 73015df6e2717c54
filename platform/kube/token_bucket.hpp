#pragma once

#include <boost/asio/awaitable.hpp>

#include "platform/core/clock.hpp"

namespace serin::kube {

/// A token bucket for client-side rate limiting: `burst` tokens at most, refilled at `qps` per
/// second, full at construction. Implemented as a reservation scheduler (GCRA): every caller is
/// given the next free slot at once, so waiters are served strictly first come, first served
/// and nobody can jump the queue, not even try_acquire().
///
/// A qps of zero or less means no limit; a burst below one counts as one.
///
/// Thread safety: one bucket belongs to one io_context thread, like the Clock it runs on; the
/// Clock must outlive the bucket and every pending acquire().
class TokenBucket {
public:
    TokenBucket(Clock& clock, double qps, double burst);

    /// Takes a token, waiting on the clock until one is available. Returns true when it had to
    /// wait, false when a token was there. Cancellation: when the awaiting coroutine is
    /// cancelled while waiting, acquire() returns (true) at once and the slot is given back; the
    /// caller checks its own cancellation state.
    boost::asio::awaitable<bool> acquire();

    /// Takes a token if one is available now and nobody is waiting for one.
    bool try_acquire();

    /// How long an acquire() made now would wait (zero when a token is there).
    Duration wait_time() const;

private:
    /// The time at which a token taken now may be used, given the current reservations.
    SteadyTime next_slot(SteadyTime now) const;

    Clock& clock_;
    bool unlimited_;
    Duration interval_;   ///< time to refill one token
    Duration tolerance_;  ///< (burst - 1) intervals: how far ahead of schedule a caller may be
    SteadyTime tat_;      ///< theoretical arrival time: when the bucket would be empty
};

}  // namespace serin::kube
