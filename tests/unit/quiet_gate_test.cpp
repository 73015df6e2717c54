// QuietGate on a ManualClock: a waiter goes ahead at once when nothing runs, waits while work
// runs and for quiet_for after it ended, and goes ahead at max_wait when work never pauses.
#include "platform/core/quiet_gate.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct Fixture {
    serin::ManualClock clock;  // outlives io, whose destructor ends the coroutines still asleep
    asio::io_context io;
    serin::QuietGate gate{clock, serin::QuietGateOptions{250ms, 5s}};
    bool through = false;

    void wait() {
        asio::co_spawn(
            io,
            [](serin::QuietGate& g, bool& done) -> asio::awaitable<void> {
                co_await g.quiet();
                done = true;
            }(gate, through),
            asio::detached);
        io.restart();
        io.poll();
    }
    void advance(std::chrono::milliseconds by) {
        clock.advance(by);
        io.restart();
        io.poll();
    }
};

}  // namespace

TEST_CASE("QuietGate: nothing ever ran, so a waiter goes ahead at once") {
    Fixture f;
    f.wait();
    CHECK(f.through);
    CHECK(f.gate.held() == 0);
}

TEST_CASE("QuietGate: a waiter waits while work runs and quiet_for after it ended") {
    Fixture f;
    f.gate.begin();
    f.wait();
    CHECK_FALSE(f.through);
    f.advance(1000ms);
    CHECK_FALSE(f.through);  // still running
    f.gate.end();
    f.advance(200ms);
    CHECK_FALSE(f.through);  // ended 200 ms ago
    f.gate.begin();
    f.gate.end();  // more work: quiet_for counts from here
    f.advance(200ms);
    CHECK_FALSE(f.through);
    f.advance(50ms);
    CHECK(f.through);
    CHECK(f.gate.held() == 1);
    CHECK(f.gate.gave_up() == 0);
}

TEST_CASE("QuietGate: work that never pauses holds a waiter max_wait and no longer") {
    Fixture f;
    f.gate.begin();
    f.wait();
    for (int i = 0; i < 19; ++i) {
        f.advance(250ms);
    }
    CHECK_FALSE(f.through);  // 4.75 s
    f.advance(250ms);
    CHECK(f.through);  // 5 s
    CHECK(f.gate.gave_up() == 1);
    f.gate.end();
}

TEST_CASE("QuietGate: a waiter that comes after the pause goes ahead at once") {
    Fixture f;
    f.gate.begin();
    f.gate.end();
    f.advance(250ms);
    f.wait();
    CHECK(f.through);
    CHECK(f.gate.held() == 0);
}
