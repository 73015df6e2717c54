// The Supervisor: leader gating, the drain on the first signal with its grace and deadline, the
// exit on a second signal, and the exit codes, on a ManualClock with a fake controller and a
// fake election.
#include "controller/app/supervisor.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <optional>
#include <stdexcept>
#include <string>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using serin::app::SupervisorOptions;

/// Waits until woken or cancelled, as a coroutine waits on a condition: a timer that never
/// expires by itself (Beast's idiom). Returns whether the wait was cancelled.
class Waker {
public:
    asio::awaitable<bool> wait() {
        asio::steady_timer timer(co_await asio::this_coro::executor,
                                 asio::steady_timer::time_point::max());
        timer_ = &timer;
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
        timer_ = nullptr;
        const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
        co_return state.cancelled() != asio::cancellation_type::none;
    }
    void wake() {
        if (timer_ != nullptr) {
            timer_->cancel();
        }
    }

private:
    asio::steady_timer* timer_ = nullptr;
};

/// The controller: run() works until cancelled, or, once drained, until the reconciles in
/// flight are done (finish_reconciles()).
class FakeController final : public serin::app::Supervised {
public:
    bool prepares = true;
    bool throws_in_prepare = false;
    /// A reconcile that does not end when cancelled (it would hang serin's shutdown).
    bool deaf_to_cancellation = false;
    std::size_t reconciles = 1;
    int runs = 0;
    bool running = false;
    bool cancelled = false;

    asio::awaitable<bool> prepare() override {
        if (throws_in_prepare) {
            throw std::runtime_error("out of luck");
        }
        co_return prepares;
    }

    asio::awaitable<void> run() override {
        ++runs;
        running = true;
        cancelled = co_await waker_.wait();
        if (cancelled && deaf_to_cancellation) {
            co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
            co_await waker_.wait();  // nothing wakes it
        }
        running = false;
    }
    void drain() override {
        draining_ = true;
        wake_when_drained();
    }
    bool draining() const override { return draining_; }
    std::size_t in_flight() const override { return reconciles; }

    void finish_reconciles() {
        reconciles = 0;
        wake_when_drained();
    }

private:
    void wake_when_drained() {
        if (draining_ && reconciles == 0) {
            waker_.wake();
        }
    }
    bool draining_ = false;
    Waker waker_;
};

/// The election: the test decides when it wins and loses. Like kube::LeaderElector, it calls
/// on_stopped_leading however leadership ends, and run() returns then.
class FakeElection final : public serin::app::Election {
public:
    int releases = 0;
    bool campaigning = false;

    asio::awaitable<void> run(serin::kube::LeaderCallbacks callbacks) override {
        callbacks_ = std::move(callbacks);
        campaigning = true;
        co_await waker_.wait();  // until lost or cancelled
        campaigning = false;
        if (leading_) {
            leading_ = false;
            callbacks_.on_stopped_leading();
        }
    }
    asio::awaitable<serin::Result<void>> release() override {
        ++releases;
        co_return serin::Result<void>{};
    }
    const std::string& identity() const override { return identity_; }

    void win() {
        leading_ = true;
        callbacks_.on_started_leading();
    }
    void lose() { waker_.wake(); }

private:
    serin::kube::LeaderCallbacks callbacks_;
    bool leading_ = false;
    std::string identity_ = "test-identity";
    Waker waker_;
};

/// A supervisor over the fakes. Everything the io_context's handlers touch is declared before
/// it, so that handlers still pending when a test ends are destroyed first.
struct Harness {
    explicit Harness(bool with_election) : with_election_(with_election) {}

    serin::ManualClock clock;
    FakeController controller;
    FakeElection election;
    bool with_election_;
    serin::app::Supervisor supervisor{clock, controller, with_election_ ? &election : nullptr,
                                      SupervisorOptions{30s, 5s}};
    std::optional<int> exit_code;
    asio::io_context io;

    void start() {
        supervisor.start(io.get_executor(), [this](int code) {
            CHECK_FALSE(exit_code.has_value());  // told once
            exit_code = code;
        });
        run_until_idle();
    }
    void run_until_idle() {
        while (io.poll() > 0) {
        }
        io.restart();
    }
    void advance(serin::Duration d) {
        clock.advance(d);
        run_until_idle();
    }
};

}  // namespace

TEST_CASE("without leader election the controller runs at once, and an error in prepare exits 1") {
    Harness h(false);
    h.start();
    CHECK(h.controller.runs == 1);
    CHECK(h.controller.running);
    CHECK_FALSE(h.exit_code.has_value());

    Harness failing(false);
    failing.controller.prepares = false;
    failing.start();
    CHECK(failing.controller.runs == 0);
    CHECK(failing.exit_code == 1);

    Harness throwing(false);
    throwing.controller.throws_in_prepare = true;
    throwing.start();
    CHECK(throwing.exit_code == 1);
}

TEST_CASE("a first signal drains and exits 0 when the drain finishes") {
    Harness h(false);
    h.start();
    h.supervisor.signal(SIGTERM);
    h.run_until_idle();
    // Draining: the reconcile in flight may finish, nothing is cancelled, serin waits.
    CHECK(h.controller.draining());
    CHECK(h.controller.running);
    h.advance(29s);
    CHECK_FALSE(h.exit_code.has_value());

    h.controller.finish_reconciles();
    h.run_until_idle();
    CHECK_FALSE(h.controller.running);
    CHECK_FALSE(h.controller.cancelled);
    CHECK(h.exit_code == 0);
    // The grace and the deadline are off once serin is done.
    h.advance(1h);
    CHECK(h.exit_code == 0);
}

TEST_CASE("the drain is cut at the grace: the reconciles are cancelled and serin exits 0") {
    Harness h(false);
    h.start();
    h.supervisor.signal(SIGTERM);
    h.run_until_idle();
    h.advance(30s - 1ms);
    CHECK(h.controller.running);
    CHECK_FALSE(h.exit_code.has_value());
    h.advance(1ms);
    CHECK(h.controller.cancelled);
    CHECK_FALSE(h.controller.running);
    CHECK(h.exit_code == 0);
}

TEST_CASE("a shutdown still going 5 s after the grace is given up with exit 1") {
    Harness h(false);
    h.controller.deaf_to_cancellation = true;
    h.start();
    h.supervisor.signal(SIGINT);
    h.run_until_idle();
    h.advance(30s);
    CHECK(h.controller.cancelled);  // cancelled at the grace, but it goes on
    CHECK_FALSE(h.exit_code.has_value());
    h.advance(5s - 1ms);
    CHECK_FALSE(h.exit_code.has_value());
    h.advance(1ms);
    CHECK(h.exit_code == 1);
}

TEST_CASE("a second signal exits 1 at once, without waiting for the drain") {
    Harness h(false);
    h.start();
    h.supervisor.signal(SIGTERM);
    h.run_until_idle();
    CHECK_FALSE(h.exit_code.has_value());
    h.supervisor.signal(SIGTERM);
    CHECK(h.exit_code == 1);  // before the io_context runs again
}

TEST_CASE("not leading: the controller does not run, and a signal stops serin with exit 0") {
    Harness h(true);
    h.start();
    CHECK(h.election.campaigning);
    h.advance(1h);
    CHECK(h.controller.runs == 0);
    CHECK_FALSE(h.exit_code.has_value());

    h.supervisor.signal(SIGTERM);
    h.run_until_idle();
    CHECK_FALSE(h.controller.draining());  // nothing to drain
    CHECK_FALSE(h.election.campaigning);
    CHECK(h.exit_code == 0);
}

TEST_CASE("leading: the controller runs, and a lost lease stops it and exits 1") {
    Harness h(true);
    h.start();
    h.election.win();
    h.run_until_idle();
    CHECK(h.controller.runs == 1);
    CHECK(h.controller.running);

    h.election.lose();
    h.run_until_idle();
    CHECK(h.controller.cancelled);
    CHECK_FALSE(h.controller.running);
    CHECK(h.election.releases == 0);  // lost, not held: nothing to hand over
    CHECK(h.exit_code == 1);
}

TEST_CASE("leading: a signal drains the controller, then hands the lease over and exits 0") {
    Harness h(true);
    h.start();
    h.election.win();
    h.run_until_idle();
    h.supervisor.signal(SIGTERM);
    h.run_until_idle();
    CHECK(h.controller.draining());
    CHECK(h.election.campaigning);  // still leading while the drain goes on
    CHECK(h.election.releases == 0);

    h.controller.finish_reconciles();
    h.run_until_idle();
    CHECK_FALSE(h.controller.cancelled);
    CHECK_FALSE(h.election.campaigning);
    CHECK(h.election.releases == 1);
    CHECK(h.exit_code == 0);
}

TEST_CASE("leading: a drain cut at the grace still hands the lease over and exits 0") {
    Harness h(true);
    h.start();
    h.election.win();
    h.run_until_idle();
    h.supervisor.signal(SIGTERM);
    h.run_until_idle();
    h.advance(30s);
    CHECK(h.controller.cancelled);
    CHECK(h.election.releases == 1);
    CHECK(h.exit_code == 0);
}
