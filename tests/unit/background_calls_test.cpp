// BackgroundCalls: webhooks and metric checks worked out off the workers, each within a budget,
// one question per canary, a bounded number at once.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "controller/canary/background_calls.hpp"
#include "controller/canary/controller.hpp"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using serin::analysis::HookCall;
using serin::analysis::HookRun;
using serin::canary::Answer;
using serin::canary::BackgroundCallOptions;
using serin::canary::BackgroundCalls;

/// A hook run that answers `name` ok after `delay` on `clock` (or not at all when cancelled).
asio::awaitable<Answer> hook_after(serin::Clock& clock, serin::Duration delay, std::string name,
                                   int* finished) {
    const bool slept = co_await clock.sleep_for(delay);
    if (slept) {
        ++*finished;
    }
    co_return Answer{HookRun{HookCall{std::move(name), slept, slept ? "" : "cancelled"}}};
}

Answer expired() { return Answer{HookRun{HookCall{"budget", false, "no answer"}}}; }

struct Fixture {
    serin::ManualClock clock;  // outlives io, whose destructor ends the coroutines still asleep
    asio::io_context io;
    std::vector<std::string> woken;
    int finished = 0;
    BackgroundCalls calls;

    explicit Fixture(BackgroundCallOptions options = {})
        : calls(io.get_executor(), clock, options,
                [this](const std::string& key) { woken.push_back(key); }) {}

    std::optional<Answer> ask(const std::string& key, const std::string& question,
                              serin::Duration delay) {
        return calls.ask(
            key, question,
            [this, delay, question] { return hook_after(clock, delay, question, &finished); },
            expired);
    }
    void settle() {
        io.restart();
        io.poll();
    }
    void advance(serin::Duration d) {
        clock.advance(d);
        settle();
    }
};

std::string name_of(const std::optional<Answer>& answer) {
    REQUIRE(answer.has_value());
    return std::get<HookRun>(*answer).at(0).name;
}

}  // namespace

TEST_CASE("a question is worked out in the background and the canary woken when it is answered") {
    Fixture f;
    CHECK_FALSE(f.ask("ns/a", "q1", 5s).has_value());
    f.settle();
    CHECK(f.calls.questions_in_flight() == 1);
    CHECK(f.calls.in_flight("ns/a"));
    CHECK_FALSE(f.ask("ns/a", "q1", 5s).has_value());  // still running: not started twice
    f.advance(5s);
    CHECK(f.woken == std::vector<std::string>{"ns/a"});
    CHECK(name_of(f.ask("ns/a", "q1", 5s)) == "q1");
    CHECK(f.finished == 1);
    CHECK(f.calls.questions_in_flight() == 0);
    f.calls.forget("ns/a");
    CHECK_FALSE(f.ask("ns/a", "q1", 5s).has_value());  // spent: asked anew
}

TEST_CASE("a call past the budget is cancelled and answered by `expired`") {
    BackgroundCallOptions options;
    options.budget = 60s;
    Fixture f(options);
    CHECK_FALSE(f.ask("ns/a", "slow", 1h).has_value());
    f.settle();
    f.advance(59s);
    CHECK(f.woken.empty());
    f.advance(1s);
    CHECK(f.woken == std::vector<std::string>{"ns/a"});
    CHECK(name_of(f.ask("ns/a", "slow", 1h)) == "budget");
    CHECK(f.finished == 0);
    CHECK(f.clock.sleepers() == 0);  // nothing left running
}

TEST_CASE("a canary asking another question cancels the one its status has moved on from") {
    Fixture f;
    CHECK_FALSE(f.ask("ns/a", "old", 10s).has_value());
    f.settle();
    CHECK_FALSE(f.ask("ns/a", "new", 1s).has_value());
    f.settle();
    CHECK(f.calls.questions_in_flight() == 1);
    f.advance(1s);
    CHECK(name_of(f.ask("ns/a", "new", 1s)) == "new");
    f.advance(10s);
    CHECK(f.finished == 1);  // the old one never finished
    CHECK(f.woken == std::vector<std::string>{"ns/a"});
}

TEST_CASE("questions past max_questions wait, and other canaries are not held up by a slow one") {
    BackgroundCallOptions options;
    options.max_questions = 2;
    Fixture f(options);
    CHECK_FALSE(f.ask("ns/slow", "q", 1h).has_value());
    CHECK_FALSE(f.ask("ns/b", "q", 1s).has_value());
    CHECK_FALSE(f.ask("ns/c", "q", 1s).has_value());  // not started: two run already
    f.settle();
    CHECK(f.calls.saturated());
    CHECK_FALSE(f.calls.in_flight("ns/c"));
    f.advance(1s);
    CHECK(f.woken == std::vector<std::string>{"ns/b"});
    CHECK_FALSE(f.calls.saturated());
    CHECK_FALSE(f.ask("ns/c", "q", 1s).has_value());  // now it starts
    f.settle();
    f.advance(1s);
    CHECK(name_of(f.ask("ns/c", "q", 1s)) == "q");
}

TEST_CASE("stop_asking lets running questions finish and starts no new one") {
    Fixture f;
    CHECK_FALSE(f.ask("ns/a", "q", 1s).has_value());
    f.settle();
    f.calls.stop_asking();
    CHECK(f.calls.keys_in_flight() == std::set<std::string>{"ns/a"});
    CHECK_FALSE(f.ask("ns/b", "q", 1s).has_value());
    f.settle();
    CHECK_FALSE(f.calls.in_flight("ns/b"));
    f.advance(1s);
    CHECK(name_of(f.ask("ns/a", "q", 1s)) == "q");
}

TEST_CASE("background posts are bounded and each ends within the budget") {
    BackgroundCallOptions options;
    options.max_posts = 1;
    options.budget = 10s;
    Fixture f(options);
    int done = 0;
    auto post = [&](serin::Duration delay) {
        return f.calls.post("ns/a", [](serin::Clock& clock, serin::Duration d,
                                       int* count) -> asio::awaitable<void> {
            if (co_await clock.sleep_for(d)) {
                ++*count;
            }
        }(f.clock, delay, &done));
    };
    CHECK(post(1h));
    f.settle();
    CHECK_FALSE(post(1s));  // one runs already: dropped, not queued without bound
    f.advance(10s);         // the budget: the hour-long post is cancelled
    CHECK(f.calls.posts_in_flight() == 0);
    CHECK(done == 0);
    CHECK(post(1s));
    f.settle();
    f.advance(1s);
    CHECK(done == 1);
}

TEST_CASE("a reconcile far past every timeout makes the controller unhealthy, naming it") {
    using serin::canary::stuck_reconcile;
    const serin::SteadyTime now{std::chrono::hours{1}};
    std::map<std::string, serin::SteadyTime> running{{"ns/a", now - 30s}};
    CHECK_FALSE(stuck_reconcile(running, now, 10min).has_value());
    running["ns/b"] = now - 11min;
    CHECK(stuck_reconcile(running, now, 10min) == "the reconcile of ns/b has run for 660 s");
    CHECK_FALSE(stuck_reconcile({}, now, 10min).has_value());
}
