#include "platform/kube/work_queue.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "platform/core/clock.hpp"

namespace asio = boost::asio;
using namespace std::chrono_literals;
using serin::Duration;
using serin::ManualClock;
using serin::SteadyTime;
using serin::SystemClock;
using serin::kube::Lane;
using serin::kube::Take;
using serin::kube::WorkQueue;
using serin::kube::WorkQueueCore;
using serin::kube::WorkQueueOptions;

namespace {

const SteadyTime t0{};

std::vector<std::string> drain(WorkQueueCore& core) {
    std::vector<std::string> keys;
    while (auto key = core.pop()) {
        keys.push_back(*key);
    }
    return keys;
}

using Keys = std::vector<std::string>;

/// A consumer that takes keys until the queue shuts down, recording each one; it calls done()
/// at once unless `hold` is set, in which case the test calls done() itself. `take`: which
/// lanes it takes from.
struct Consumer {
    Keys seen;
    bool finished = false;
    bool hold = false;
    Take take = Take::kAny;

    void start(asio::io_context& ioc, WorkQueue& queue) {
        asio::co_spawn(
            ioc,
            [this, &queue]() -> asio::awaitable<void> {
                while (auto key = co_await queue.get(take)) {
                    seen.push_back(*key);
                    if (!hold) {
                        queue.done(*key);
                    }
                }
                finished = true;
            },
            asio::detached);
    }
};

/// A consumer that reconciles one key at a time: it takes a key, then stays busy with it until
/// the test calls finish(), which ends that key with done() and lets it take the next.
struct Worker {
    Keys seen;
    bool finished = false;
    Take take = Take::kAny;
    std::optional<asio::steady_timer> busy;

    void start(asio::io_context& ioc, WorkQueue& queue) {
        busy.emplace(ioc, asio::steady_timer::time_point::max());
        asio::co_spawn(
            ioc,
            [this, &queue]() -> asio::awaitable<void> {
                while (auto key = co_await queue.get(take)) {
                    seen.push_back(*key);
                    co_await busy->async_wait(asio::as_tuple(asio::use_awaitable));
                    queue.done(*key);
                }
                finished = true;
            },
            asio::detached);
    }
    void finish() { busy->cancel(); }
};

}  // namespace

// ---- the clock-free core ------------------------------------------------------------------

TEST_CASE("core: a key waiting in the queue is not added twice") {
    WorkQueueCore core;
    CHECK(core.add("a"));
    CHECK_FALSE(core.add("a"));
    CHECK(core.add("b"));
    CHECK_FALSE(core.add("a"));
    CHECK(core.depth() == 2);
    CHECK(drain(core) == Keys{"a", "b"});
    CHECK(core.stats().adds == 2);
    CHECK(core.stats().max_depth == 2);
}

TEST_CASE("core: a key added while processing is handed out again after done, once") {
    WorkQueueCore core;
    core.add("a");
    REQUIRE(core.pop() == "a");
    CHECK(core.is_processing("a"));

    CHECK_FALSE(core.add("a"));  // marked dirty, not queued: never processed twice at once
    CHECK_FALSE(core.add("a"));
    CHECK(core.depth() == 0);
    CHECK_FALSE(core.pop().has_value());

    CHECK(core.done("a"));
    CHECK(core.depth() == 1);
    REQUIRE(core.pop() == "a");
    CHECK_FALSE(core.done("a"));  // not dirty this time
    CHECK(core.depth() == 0);
    CHECK(core.processing() == 0);
    CHECK_FALSE(core.done("never-popped"));
}

TEST_CASE("core: keys of the first lane are handed out before the normal lane, each in order") {
    WorkQueueCore core;
    core.add("a");
    core.add("b");
    CHECK(core.add("new-1", Lane::kFirst));
    core.add("c");
    CHECK(core.add("new-2", Lane::kFirst));
    CHECK(core.depth() == 5);
    CHECK(drain(core) == Keys{"new-1", "new-2", "a", "b", "c"});
    CHECK(core.stats().adds == 5);
}

TEST_CASE("core: a key waiting in the normal lane moves to the first lane, once") {
    WorkQueueCore core;
    core.add("a");
    core.add("b");
    core.add("c");
    CHECK_FALSE(core.add("c", Lane::kFirst));  // already waiting: no new add, but it moves up
    CHECK_FALSE(core.add("c", Lane::kFirst));
    CHECK_FALSE(core.add("c"));  // a normal add does not move it back
    CHECK(core.depth() == 3);
    CHECK(drain(core) == Keys{"c", "a", "b"});
    CHECK(core.stats().adds == 3);
}

TEST_CASE("core: a key added to the first lane while processing rejoins there after done") {
    WorkQueueCore core;
    core.add("busy");
    REQUIRE(core.pop() == "busy");
    core.add("a");
    CHECK_FALSE(core.add("busy", Lane::kFirst));
    CHECK(core.depth() == 1);
    CHECK(core.done("busy"));
    CHECK(drain(core) == Keys{"busy", "a"});
    CHECK_FALSE(core.done("busy"));
    CHECK_FALSE(core.done("a"));
    // Handed out once: the lane is not remembered past it.
    core.add("busy");
    core.add("z", Lane::kFirst);
    CHECK(drain(core) == Keys{"z", "busy"});
}

TEST_CASE("core: a first-lane pop takes only keys of the first lane") {
    WorkQueueCore core;
    core.add("a");
    CHECK_FALSE(core.pop(Take::kFirstLane).has_value());
    CHECK(core.depth() == 1);
    core.add("new", Lane::kFirst);
    CHECK(core.waits_first("new"));
    CHECK(core.pop(Take::kFirstLane) == "new");
    CHECK(core.is_processing("new"));
    CHECK_FALSE(core.pop(Take::kFirstLane).has_value());
    CHECK(core.pop() == "a");
}

TEST_CASE("core: clear drops the keys of both lanes") {
    WorkQueueCore core;
    core.add("a");
    core.add("b", Lane::kFirst);
    core.clear();
    CHECK(core.depth() == 0);
    CHECK_FALSE(core.pop().has_value());
    CHECK(core.add("b"));  // not dirty any more, and not in the first lane
    core.add("c", Lane::kFirst);
    CHECK(drain(core) == Keys{"c", "b"});
}

TEST_CASE("core: delayed keys become ready at their deadline, earliest first") {
    WorkQueueCore core;
    core.add_at("late", t0 + 10s);
    core.add_at("early", t0 + 5s);
    core.add_at("also-early", t0 + 5s);
    CHECK(core.scheduled() == 3);
    CHECK(core.next_deadline() == t0 + 5s);

    CHECK(core.run_due(t0 + 4999ms) == 0);
    CHECK(core.depth() == 0);
    CHECK(core.run_due(t0 + 5s) == 2);
    CHECK(drain(core) == Keys{"early", "also-early"});
    CHECK(core.next_deadline() == t0 + 10s);
    CHECK(core.run_due(t0 + 11s) == 1);
    CHECK(drain(core) == Keys{"late"});
    CHECK_FALSE(core.next_deadline().has_value());
}

TEST_CASE("core: the earlier deadline wins when a key is delayed twice") {
    WorkQueueCore core;
    CHECK(core.add_at("a", t0 + 10s));
    CHECK(core.add_at("a", t0 + 3s));
    CHECK_FALSE(core.add_at("a", t0 + 20s));
    CHECK(core.scheduled() == 1);
    CHECK(core.next_deadline() == t0 + 3s);
    CHECK(core.run_due(t0 + 3s) == 1);
    CHECK(drain(core) == Keys{"a"});
    CHECK(core.scheduled() == 0);
    CHECK(core.run_due(t0 + 1h) == 0);  // the replaced deadline left nothing behind
}

TEST_CASE("core: unschedule drops a key's pending add and leaves the others") {
    WorkQueueCore core;
    core.add_rate_limited("a", t0);  // a retry 5 ms on
    core.add_at("b", t0 + 1s);
    CHECK(core.unschedule("a"));
    CHECK_FALSE(core.unschedule("a"));
    CHECK_FALSE(core.unschedule("never"));
    CHECK(core.scheduled() == 1);
    CHECK(core.next_deadline() == t0 + 1s);
    CHECK(core.run_due(t0 + 1h) == 1);
    CHECK(drain(core) == Keys{"b"});
    // Unscheduled, a key can be scheduled again.
    CHECK(core.add_at("a", t0 + 2s));
    CHECK(core.run_due(t0 + 2s) == 1);
    CHECK(drain(core) == Keys{"a"});
}

TEST_CASE("core: a due key that is already queued or processing is not duplicated") {
    WorkQueueCore core;
    core.add("a");
    core.add_at("a", t0 + 1s);
    CHECK(core.run_due(t0 + 1s) == 0);
    CHECK(drain(core) == Keys{"a"});

    core.add_at("a", t0 + 2s);
    CHECK(core.run_due(t0 + 2s) == 0);  // "a" is processing: it becomes dirty
    CHECK(core.done("a"));
    CHECK(drain(core) == Keys{"a"});
}

TEST_CASE("core: rate-limited backoff doubles per failure and forget resets it") {
    WorkQueueCore core;  // 5ms base, 1000s max
    CHECK(core.failures("a") == 0);
    CHECK(core.add_rate_limited("a", t0) == 5ms);
    CHECK(core.next_deadline() == t0 + 5ms);
    CHECK(core.add_rate_limited("a", t0) == 10ms);
    CHECK(core.add_rate_limited("a", t0) == 20ms);
    CHECK(core.add_rate_limited("a", t0) == 40ms);
    CHECK(core.failures("a") == 4);
    CHECK(core.failures("b") == 0);
    CHECK(core.next_deadline() == t0 + 5ms);  // the earliest retry stands
    CHECK(core.stats().retries == 4);

    core.forget("a");
    CHECK(core.failures("a") == 0);
    CHECK(core.add_rate_limited("a", t0) == 5ms);
}

TEST_CASE("core: backoff is capped at max_delay and never overflows") {
    WorkQueueOptions options;
    options.base_delay = 1s;
    options.max_delay = 3s;
    WorkQueueCore core(options);
    CHECK(core.next_backoff("a") == 1s);
    CHECK(core.next_backoff("a") == 2s);
    CHECK(core.next_backoff("a") == 3s);
    CHECK(core.next_backoff("a") == 3s);

    WorkQueueCore defaults;
    Duration last{};
    for (int i = 0; i < 5000; ++i) {
        last = defaults.next_backoff("k");
    }
    CHECK(last == 1000s);
}

TEST_CASE("core: ten thousand delayed keys come out in deadline order") {
    WorkQueueCore core;
    constexpr int kKeys = 10'000;
    for (int i = 0; i < kKeys; ++i) {
        // Deadlines out of order: key i is due at (i * 7919 mod kKeys) ms.
        core.add_at("k" + std::to_string(i), t0 + std::chrono::milliseconds{(i * 7919) % kKeys});
    }
    CHECK(core.scheduled() == kKeys);
    CHECK(core.run_due(t0 + 4999ms) == 5000);
    CHECK(core.run_due(t0 + 10s) == 5000);
    auto keys = drain(core);
    REQUIRE(keys.size() == kKeys);
    int previous = -1;
    bool ordered = true;
    for (const auto& key : keys) {
        int due = (std::stoi(key.substr(1)) * 7919) % kKeys;
        ordered = ordered && due > previous;
        previous = due;
    }
    CHECK(ordered);
}

// ---- the asynchronous queue ---------------------------------------------------------------

TEST_CASE("queue: get waits for a key and hands keys out first in, first out") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Consumer consumer;
    consumer.start(ioc, queue);
    ioc.poll();
    CHECK(consumer.seen.empty());

    queue.add("a");
    queue.add("b");
    queue.add("a");
    ioc.poll();
    CHECK(consumer.seen == Keys{"a", "b"});
    CHECK(queue.stats().adds == 2);
    queue.shut_down();
    ioc.poll();
    CHECK(consumer.finished);
}

TEST_CASE("queue: a key added during processing is re-delivered after done, exactly once") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Consumer first;
    Consumer second;
    first.hold = true;
    second.hold = true;
    first.start(ioc, queue);
    second.start(ioc, queue);

    auto total = [&] { return first.seen.size() + second.seen.size(); };
    ioc.poll();  // both consumers wait, first the longest
    queue.add("a");
    ioc.poll();
    CHECK(first.seen == Keys{"a"});
    CHECK(total() == 1);

    // While "a" is processed, no consumer may get it again, however often it is added.
    queue.add("a");
    queue.add("a");
    ioc.poll();
    CHECK(total() == 1);
    CHECK(queue.depth() == 0);

    // done() hands it out again, once, to the consumer that has waited longest.
    queue.done("a");
    ioc.poll();
    CHECK(total() == 2);
    CHECK(second.seen == Keys{"a"});
    queue.done("a");
    ioc.poll();
    CHECK(total() == 2);
    queue.shut_down();
    ioc.poll();
    CHECK(first.finished);
    CHECK(second.finished);
}

TEST_CASE("queue: a first-lane consumer sleeps through normal keys and takes the first lane's") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Worker usual;
    Worker starts;
    starts.take = Take::kFirstLane;
    usual.start(ioc, queue);
    starts.start(ioc, queue);
    ioc.poll();

    queue.add("a");
    queue.add("b");
    ioc.poll();
    CHECK(usual.seen == Keys{"a"});  // busy: "b" waits for it, not for the first-lane consumer
    CHECK(starts.seen.empty());
    CHECK(queue.depth() == 1);

    // A release starts while the usual consumer is busy: the first-lane consumer takes it.
    queue.add("new", Lane::kFirst);
    ioc.poll();
    CHECK(starts.seen == Keys{"new"});
    // A key moved up from the normal lane wakes it too, once it is free.
    starts.finish();
    ioc.poll();
    queue.add("b", Lane::kFirst);
    ioc.poll();
    CHECK(starts.seen == Keys{"new", "b"});
    CHECK(usual.seen == Keys{"a"});
    // Normal keys still go to the usual consumer alone.
    queue.add("c");
    starts.finish();
    ioc.poll();
    CHECK(starts.seen == Keys{"new", "b"});
    usual.finish();
    ioc.poll();
    CHECK(usual.seen == Keys{"a", "c"});
    queue.shut_down();
    usual.finish();
    ioc.poll();
    CHECK(usual.finished);
    CHECK(starts.finished);
}

TEST_CASE("queue: a normal key is not stranded when its consumer takes a first-lane key") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Worker usual_1;
    Worker starts;
    Worker usual_2;
    starts.take = Take::kFirstLane;
    usual_1.start(ioc, queue);
    starts.start(ioc, queue);
    usual_2.start(ioc, queue);
    ioc.poll();

    // "a" wakes usual_1, "new" wakes the first-lane consumer; usual_1 runs first and takes
    // "new" (the first lane comes first). The first-lane consumer, finding nothing for it,
    // must pass its wake-up on, or "a" waits although usual_2 is idle.
    queue.add("a");
    queue.add("new", Lane::kFirst);
    ioc.poll();
    CHECK(usual_1.seen == Keys{"new"});
    CHECK(starts.seen.empty());
    CHECK(usual_2.seen == Keys{"a"});
    CHECK(queue.depth() == 0);
    queue.shut_down();
    usual_1.finish();
    usual_2.finish();
    ioc.poll();
    CHECK(usual_1.finished);
    CHECK(usual_2.finished);
    CHECK(starts.finished);
}

TEST_CASE("queue: delayed keys are delivered at their deadline, not before") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Consumer consumer;
    consumer.start(ioc, queue);

    queue.add_after("late", 10s);
    queue.add_after("early", 5s);
    queue.add_after("now", 0s);
    ioc.poll();
    CHECK(consumer.seen == Keys{"now"});
    CHECK(queue.scheduled() == 2);

    clock.advance(4999ms);
    ioc.poll();
    CHECK(consumer.seen == Keys{"now"});
    clock.advance(1ms);
    ioc.poll();
    CHECK(consumer.seen == Keys{"now", "early"});
    clock.advance(4999ms);
    ioc.poll();
    CHECK(consumer.seen == Keys{"now", "early"});
    clock.advance(1ms);
    ioc.poll();
    CHECK(consumer.seen == Keys{"now", "early", "late"});
    CHECK(queue.scheduled() == 0);
    CHECK(clock.sleepers() == 0);  // the driver stops when nothing is scheduled

    // A new delay starts the driver again.
    queue.add_after("again", 1s);
    clock.advance(1s);
    ioc.poll();
    CHECK(consumer.seen.back() == "again");
    queue.shut_down();
    ioc.poll();
}

TEST_CASE("queue: a retry dropped by unschedule is never delivered") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Consumer consumer;
    consumer.start(ioc, queue);

    // Failures left retries behind (5, 10, 20 ms: the earliest stands); the reconcile that then
    // succeeded drops them.
    queue.add_rate_limited("a");
    queue.add_rate_limited("a");
    queue.add_after("b", 50ms);
    queue.unschedule("a");
    clock.advance(1s);
    ioc.poll();
    CHECK(consumer.seen == Keys{"b"});
    CHECK(queue.scheduled() == 0);
    queue.shut_down();
    ioc.poll();
}

TEST_CASE("queue: an earlier deadline wakes the sleeping driver") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Consumer consumer;
    consumer.start(ioc, queue);

    queue.add_after("slow", 1h);
    ioc.poll();
    CHECK(clock.sleepers() == 1);  // one driver for all delayed keys

    queue.add_after("fast", 2s);
    queue.add_after("slow", 3s);  // the same key sooner: the earlier deadline wins
    queue.add_after("fast", 1h);  // a later deadline for a delayed key changes nothing
    ioc.poll();
    CHECK(clock.sleepers() == 1);

    clock.advance(2s);
    ioc.poll();
    CHECK(consumer.seen == Keys{"fast"});
    clock.advance(1s);
    ioc.poll();
    CHECK(consumer.seen == Keys{"fast", "slow"});
    clock.advance(2h);
    ioc.poll();
    CHECK(consumer.seen == Keys{"fast", "slow"});
    queue.shut_down();
    ioc.poll();
}

TEST_CASE("queue: rate-limited retries back off exponentially until forgotten") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Consumer consumer;
    consumer.start(ioc, queue);

    auto retry_and_measure = [&](Duration expected) {
        std::size_t before = consumer.seen.size();
        queue.add_rate_limited("a");
        ioc.poll();
        clock.advance(expected - 1ms);
        ioc.poll();
        CHECK(consumer.seen.size() == before);
        clock.advance(1ms);
        ioc.poll();
        CHECK(consumer.seen.size() == before + 1);
    };
    retry_and_measure(5ms);
    retry_and_measure(10ms);
    retry_and_measure(20ms);
    CHECK(queue.failures("a") == 3);
    queue.forget("a");
    CHECK(queue.failures("a") == 0);
    retry_and_measure(5ms);
    CHECK(queue.stats().retries == 4);
    queue.shut_down();
    ioc.poll();
}

TEST_CASE("queue: shut_down wakes waiting consumers with nullopt and drops pending keys") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Consumer a;
    Consumer b;
    a.start(ioc, queue);
    b.start(ioc, queue);
    queue.add_after("delayed", 1s);
    ioc.poll();
    CHECK_FALSE(a.finished);

    queue.shut_down();
    ioc.poll();
    CHECK(a.finished);
    CHECK(b.finished);
    CHECK(a.seen.empty());
    CHECK(b.seen.empty());
    CHECK(queue.shutting_down());
    CHECK(clock.sleepers() == 0);

    queue.add("ignored");
    queue.add_after("ignored", 1s);
    CHECK(queue.depth() == 0);
    CHECK(queue.scheduled() == 0);
    CHECK(ioc.poll() == 0);
    CHECK(ioc.stopped());  // nothing left running: ioc.run() would return
}

TEST_CASE("queue: destroying the queue ends its consumers and its driver") {
    asio::io_context ioc;
    ManualClock clock;
    Consumer consumer;
    {
        WorkQueue queue(ioc.get_executor(), clock);
        consumer.start(ioc, queue);
        queue.add_after("x", 1s);
        ioc.poll();
        CHECK(clock.sleepers() == 1);
    }
    ioc.poll();
    CHECK(consumer.finished);
    CHECK(consumer.seen.empty());
    CHECK(clock.sleepers() == 0);
    CHECK(ioc.stopped());
}

TEST_CASE("queue: a cancelled get returns nullopt and leaves keys to others") {
    asio::io_context ioc;
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);

    asio::cancellation_signal signal;
    bool returned = false;
    std::optional<std::string> got{"unset"};
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            got = co_await queue.get();
            returned = true;
        },
        asio::bind_cancellation_slot(signal.slot(), asio::detached));
    ioc.poll();
    CHECK_FALSE(returned);
    signal.emit(asio::cancellation_type::terminal);
    ioc.poll();
    CHECK(returned);
    CHECK_FALSE(got.has_value());

    ioc.restart();  // poll() stopped the io_context when it ran out of work
    queue.add("a");
    Consumer consumer;
    consumer.start(ioc, queue);
    ioc.poll();
    CHECK(consumer.seen == Keys{"a"});
    queue.shut_down();
    ioc.poll();
}

TEST_CASE("queue: on the system clock an earlier deadline is not held up by a later one") {
    asio::io_context ioc;
    SystemClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    Keys seen;
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
            auto key = co_await queue.get();
            seen.push_back(key.value_or("<none>"));
            queue.shut_down();  // lets ioc.run() return: the 1h timer is cancelled too
        },
        asio::detached);
    queue.add_after("hour", 1h);
    ioc.poll();
    queue.add_after("soon", 1ms);
    ioc.run();
    CHECK(seen == Keys{"soon"});
}

TEST_CASE("queue: the wait observer is told how long each key waited ready in the FIFO") {
    asio::io_context ioc;
    // Keys wait before any consumer runs, so the context would otherwise run out of work and stop.
    auto work = asio::make_work_guard(ioc);
    ManualClock clock;
    WorkQueue queue(ioc.get_executor(), clock);
    std::vector<serin::Duration> waits;
    queue.set_wait_observer([&](serin::Duration waited) { waits.push_back(waited); });
    Consumer consumer;
    consumer.hold = true;

    queue.add("a");                 // ready now
    queue.add_after("b", 1s);       // ready once its deadline comes
    clock.advance(1s);
    ioc.poll();
    clock.advance(2s);
    consumer.start(ioc, queue);
    ioc.poll();
    REQUIRE(consumer.seen == Keys{"a", "b"});
    CHECK(waits == std::vector<serin::Duration>{3s, 2s});

    // Added while processing, it joins the FIFO when done() is called, and waits from then.
    queue.add("a");
    clock.advance(5s);
    queue.done("a");
    clock.advance(250ms);
    ioc.poll();
    REQUIRE(consumer.seen == Keys{"a", "b", "a"});
    CHECK(waits.back() == 250ms);
    queue.shut_down();
    ioc.poll();
}
