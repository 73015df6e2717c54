#include "platform/kube/token_bucket.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <vector>

#include "platform/core/clock.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using serin::ManualClock;
using serin::kube::TokenBucket;

namespace {

/// Starts acquire() on `ioc`; the result lands in `out` when it completes.
void spawn_acquire(asio::io_context& ioc, TokenBucket& bucket, std::optional<bool>& out,
                   std::vector<int>* order = nullptr, int id = 0) {
    asio::co_spawn(
        ioc,
        [&bucket, &out, order, id]() -> asio::awaitable<void> {
            out = co_await bucket.acquire();
            if (order != nullptr) {
                order->push_back(id);
            }
        },
        asio::detached);
}

}  // namespace

TEST_CASE("token bucket: the burst is available at once, then qps") {
    ManualClock clock;
    TokenBucket bucket(clock, 10.0, 3.0);
    CHECK(bucket.try_acquire());
    CHECK(bucket.try_acquire());
    CHECK(bucket.try_acquire());
    CHECK_FALSE(bucket.try_acquire());
    CHECK(bucket.wait_time() == 100ms);
    clock.advance(99ms);
    CHECK_FALSE(bucket.try_acquire());
    clock.advance(1ms);
    CHECK(bucket.try_acquire());
    CHECK_FALSE(bucket.try_acquire());
}

TEST_CASE("token bucket: a long idle refills only up to the burst") {
    ManualClock clock;
    TokenBucket bucket(clock, 10.0, 2.0);
    CHECK(bucket.try_acquire());
    CHECK(bucket.try_acquire());
    clock.advance(1h);
    CHECK(bucket.try_acquire());
    CHECK(bucket.try_acquire());
    CHECK_FALSE(bucket.try_acquire());
}

TEST_CASE("token bucket: acquire waits on the clock, and reports that it waited") {
    asio::io_context ioc;
    ManualClock clock;
    TokenBucket bucket(clock, 10.0, 2.0);

    std::optional<bool> first;
    std::optional<bool> second;
    std::optional<bool> third;
    spawn_acquire(ioc, bucket, first);
    spawn_acquire(ioc, bucket, second);
    spawn_acquire(ioc, bucket, third);
    ioc.poll();
    CHECK(first == false);
    CHECK(second == false);
    CHECK_FALSE(third.has_value());

    clock.advance(99ms);
    ioc.poll();
    CHECK_FALSE(third.has_value());

    clock.advance(1ms);
    ioc.poll();
    CHECK(third == true);
}

TEST_CASE("token bucket: waiters are served first come, first served") {
    asio::io_context ioc;
    ManualClock clock;
    TokenBucket bucket(clock, 10.0, 1.0);
    REQUIRE(bucket.try_acquire());

    std::vector<int> order;
    std::optional<bool> results[4];
    for (int i = 0; i < 4; ++i) {
        spawn_acquire(ioc, bucket, results[i], &order, i);
    }
    ioc.poll();
    CHECK(order.empty());
    CHECK(clock.sleepers() == 4);

    // Nobody may jump the queue while others wait, not even when time has passed.
    clock.advance(50ms);
    ioc.poll();
    CHECK_FALSE(bucket.try_acquire());

    for (int i = 0; i < 4; ++i) {
        clock.advance(i == 0 ? 50ms : 100ms);
        ioc.poll();
        CHECK(order.size() == static_cast<std::size_t>(i + 1));
    }
    CHECK(order == std::vector<int>{0, 1, 2, 3});
    CHECK(clock.sleepers() == 0);
}

TEST_CASE("token bucket: a cancelled waiter gives its slot back") {
    asio::io_context ioc;
    ManualClock clock;
    TokenBucket bucket(clock, 10.0, 1.0);
    REQUIRE(bucket.try_acquire());

    asio::cancellation_signal signal;
    std::optional<bool> cancelled;
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { cancelled = co_await bucket.acquire(); },
        asio::bind_cancellation_slot(signal.slot(), asio::detached));
    ioc.poll();
    CHECK(bucket.wait_time() == 200ms);  // the waiter holds the slot at 100ms

    signal.emit(asio::cancellation_type::terminal);
    ioc.poll();
    CHECK(cancelled == true);
    CHECK(bucket.wait_time() == 100ms);  // back to one slot
}

TEST_CASE("token bucket: zero qps means unlimited") {
    asio::io_context ioc;
    ManualClock clock;
    TokenBucket bucket(clock, 0.0, 1.0);
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(bucket.try_acquire());
    }
    std::optional<bool> waited;
    spawn_acquire(ioc, bucket, waited);
    ioc.poll();
    CHECK(waited == false);
}
