#include "platform/core/quiet_gate.hpp"

#include <algorithm>

#include "platform/core/assert.hpp"

namespace serin {

void QuietGate::end() {
    SERIN_ASSERT(active_ > 0, "QuietGate::end() without begin()");
    --active_;
    last_end_ = clock_.steady_now();
}

boost::asio::awaitable<void> QuietGate::quiet() {
    const SteadyTime give_up = clock_.steady_now() + options_.max_wait;
    bool waited = false;
    for (;;) {
        const SteadyTime now = clock_.steady_now();
        const bool idle = active_ == 0 && (!last_end_ || now - *last_end_ >= options_.quiet_for);
        if (idle) {
            break;
        }
        if (now >= give_up) {
            ++gave_up_;
            break;
        }
        waited = true;
        // Work running: look again in quiet_for; none since last_end_: when that is quiet_for old.
        const SteadyTime next = active_ > 0 ? now + options_.quiet_for
                                            : *last_end_ + options_.quiet_for;
        const bool slept = co_await clock_.sleep_until(std::min(next, give_up));
        if (!slept) {
            break;  // cancelled: the writer decides what to do
        }
    }
    if (waited) {
        ++held_;
    }
}

}  // namespace serin
