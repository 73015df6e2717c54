// Clock::sleep_until and cancellation: a cancellation that landed while the coroutine awaited
// something else still ends the next sleep.
#include "platform/core/clock.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

/// Emits `signal` while the coroutine is between operations (as when a SIGTERM arrives during
/// an HTTP request that is answered anyway), then sleeps on `clock`; the sleep's result lands in
/// `slept`.
asio::awaitable<void> cancelled_between_operations(serin::Clock& clock,
                                                   asio::cancellation_signal& signal,
                                                   std::optional<bool>& slept) {
    // As in the leader elector and the informer: a cancelled coroutine is told by results, not
    // by an exception thrown from its next co_await.
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    signal.emit(asio::cancellation_type::terminal);  // no operation pending: reaches no timer
    slept = co_await clock.sleep_for(1h);
}

asio::awaitable<void> sleep_10s(serin::Clock& clock, std::optional<bool>& slept) {
    slept = co_await clock.sleep_for(10s);
}

}  // namespace

TEST_CASE("ManualClock: a sleep begun after the coroutine was cancelled returns false at once") {
    asio::io_context io;
    serin::ManualClock clock;
    asio::cancellation_signal signal;
    std::optional<bool> slept;
    bool ended = false;
    asio::co_spawn(io, cancelled_between_operations(clock, signal, slept),
                   asio::bind_cancellation_slot(signal.slot(),
                                                [&](std::exception_ptr) { ended = true; }));
    io.run_for(1s);
    REQUIRE(slept.has_value());
    CHECK_FALSE(*slept);
    CHECK(ended);
    CHECK(clock.sleepers() == 0);
}

TEST_CASE("SystemClock: a sleep begun after the coroutine was cancelled returns false at once") {
    asio::io_context io;
    serin::SystemClock clock;
    asio::cancellation_signal signal;
    std::optional<bool> slept;
    asio::co_spawn(io, cancelled_between_operations(clock, signal, slept),
                   asio::bind_cancellation_slot(signal.slot(), [](std::exception_ptr) {}));
    const auto started = std::chrono::steady_clock::now();
    io.run_for(10s);
    REQUIRE(slept.has_value());
    CHECK_FALSE(*slept);
    CHECK(std::chrono::steady_clock::now() - started < 5s);
}

TEST_CASE("ManualClock: an uncancelled sleep waits for advance(), a cancelled one ends early") {
    asio::io_context io;
    serin::ManualClock clock;
    std::optional<bool> first;
    std::optional<bool> second;
    asio::cancellation_signal signal;
    asio::co_spawn(io, sleep_10s(clock, first), [](std::exception_ptr) {});
    asio::co_spawn(io, sleep_10s(clock, second),
                   asio::bind_cancellation_slot(signal.slot(), [](std::exception_ptr) {}));
    io.run_for(50ms);
    CHECK(clock.sleepers() == 2);
    signal.emit(asio::cancellation_type::terminal);
    io.restart();
    io.run_for(50ms);
    REQUIRE(second.has_value());
    CHECK_FALSE(*second);
    CHECK_FALSE(first.has_value());
    clock.advance(10s);
    io.restart();
    io.run_for(50ms);
    REQUIRE(first.has_value());
    CHECK(*first);
}
