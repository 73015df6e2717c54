#include "platform/core/clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <vector>

namespace serin {

namespace asio = boost::asio;

asio::awaitable<bool> Clock::sleep_until(SteadyTime deadline) {
    // A cancellation that lands while the coroutine awaits something that then completes anyway
    // (an HTTP request already answered) reaches no timer, and is not raised again: without this
    // check a loop of "work, then sleep" would go on.
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) {
        co_return false;
    }
    const bool reached = co_await wait_until(deadline);
    co_return reached;
}

asio::awaitable<bool> SystemClock::wait_until(SteadyTime deadline) {
    asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return !ec;
}

asio::awaitable<bool> ManualClock::wait_until(SteadyTime deadline) {
    if (deadline <= now_) {
        co_return true;
    }
    // The timer never expires on its own: advance() cancels it when the deadline comes, the way
    // Beast uses a timer at time_point::max() as a condition variable.
    asio::steady_timer timer(co_await asio::this_coro::executor, SteadyTime::max());
    auto it = waiters_.insert(waiters_.end(), Waiter{deadline, &timer, false});
    // Erase the entry however this frame ends, also when it is destroyed without resuming
    // (an io_context torn down with the coroutine still asleep).
    struct Erase {
        std::list<Waiter>& list;
        std::list<Waiter>::iterator it;
        ~Erase() { list.erase(it); }
    } erase{waiters_, it};
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    co_return it->fired;
}

void ManualClock::advance(Duration d) {
    now_ += d;
    // Wake due sleepers in deadline order; equal deadlines wake in the order they went to sleep.
    std::vector<Waiter*> due;
    for (auto& w : waiters_) {
        if (!w.fired && w.deadline <= now_) {
            due.push_back(&w);
        }
    }
    std::stable_sort(due.begin(), due.end(),
                     [](const Waiter* a, const Waiter* b) { return a->deadline < b->deadline; });
    for (auto* w : due) {
        w->fired = true;
        w->timer->cancel();
    }
}

}  // namespace serin
