// The Notifier against a loopback receiver: what is posted, retries, failures that name the
// destination but never its address, and posts that never block the caller.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <deque>

#include "controller/notify/notifier.hpp"
#include "tests/support/test_http_server.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using namespace std::chrono_literals;
using Json = nlohmann::json;
using serin::test::TestHttpServer;
using serin::test::TestRequest;
using serin::test::TestResponseWriter;

struct Fixture {
    asio::io_context io;
    SystemClock clock;
    std::deque<int> statuses;  ///< answers in order; 0 = never answer; empty = 200
    TestHttpServer server{io.get_executor(),
                          [this](const TestRequest&, TestResponseWriter& writer) -> asio::awaitable<void> {
                              const int status = statuses.empty() ? 200 : statuses.front();
                              if (!statuses.empty()) {
                                  statuses.pop_front();
                              }
                              if (status == 0) {
                                  co_await writer.hang();
                                  co_return;
                              }
                              co_await writer.respond(status, "ok");
                          }};
    http::HttpClientPtr http = make_client();
    std::vector<std::string> failures;

    http::HttpClientPtr make_client() {
        auto c = http::make_beast_client(io.get_executor(), {});
        REQUIRE(c);
        return std::move(*c);
    }

    notify::Notifier make(notify::NotifierOptions options = {}) {
        options.backoff = 10ms;
        return notify::Notifier(io.get_executor(), *http, clock, options);
    }

    notify::Destination destination(notify::Kind kind = notify::Kind::kSlack) {
        notify::Destination d;
        d.kind = kind;
        d.label = "AlertProvider on-call.test";
        d.address = server.base_url() + "/services/T0/B0/s3cr3t";
        d.token = "t0k3n";
        return d;
    }

    static notify::Message message() {
        return {"podinfo", "test", "Canary failed! podinfo.test", notify::Severity::kError, {}};
    }

    void post(notify::Notifier& n, notify::Destination d) {
        n.post(std::move(d), message(), [this](const std::string& why) { failures.push_back(why); });
    }

    /// Runs the io_context until `done` or 10 s.
    template <class Predicate>
    bool run_until(Predicate done) {
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            io.restart();
            io.run_for(20ms);
        }
        return done();
    }
};

}  // namespace

TEST_CASE("a notification is a JSON POST with the bearer token, to the provider's URL") {
    Fixture f;
    auto n = f.make();
    f.post(n, f.destination(notify::Kind::kDiscord));
    REQUIRE(f.run_until([&] { return n.stats().sent == 1; }));
    REQUIRE(f.server.requests().size() == 1);
    const TestRequest& r = f.server.requests()[0];
    CHECK(r.method == "POST");
    CHECK(r.target == "/services/T0/B0/s3cr3t/slack");  // discord's Slack-compatible endpoint
    CHECK(r.header("Content-Type") == "application/json");
    CHECK(r.header("Authorization") == "Bearer t0k3n");
    const Json body = Json::parse(r.body);
    CHECK(body["attachments"][0]["text"] == "Canary failed! podinfo.test");
    CHECK(body["attachments"][0]["color"] == "danger");
    CHECK(f.failures.empty());
}

TEST_CASE("a 5xx is retried with backoff, a 4xx fails at once") {
    Fixture f;
    auto n = f.make();
    f.statuses = {503, 500, 200};
    f.post(n, f.destination());
    REQUIRE(f.run_until([&] { return n.stats().sent == 1; }));
    CHECK(f.server.requests().size() == 3);
    CHECK(n.stats().retries == 2);

    f.statuses = {400};
    f.post(n, f.destination());
    REQUIRE(f.run_until([&] { return n.stats().failed == 1; }));
    CHECK(f.server.requests().size() == 4);  // no retry
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0] == "alert to AlertProvider on-call.test failed: status 400");
}

TEST_CASE("giving up after the last attempt reports the destination, never its address or token") {
    Fixture f;
    auto n = f.make({.timeout = 5'000ms, .attempts = 2});
    f.statuses = {500, 502};
    f.post(n, f.destination());
    REQUIRE(f.run_until([&] { return n.stats().failed == 1; }));
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0] ==
          "alert to AlertProvider on-call.test failed: status 502 (after 2 attempts)");

    // A connection refused names the host at most: the path (Slack's secret) is redacted.
    notify::Destination dead = f.destination();
    dead.address = "http://127.0.0.1:1/services/T0/B0/s3cr3t";
    f.post(n, dead);
    REQUIRE(f.run_until([&] { return n.stats().failed == 2; }));
    CHECK(f.failures[1].find("s3cr3t") == std::string::npos);
    CHECK(f.failures[1].find("t0k3n") == std::string::npos);
    CHECK(f.failures[1].rfind("alert to AlertProvider on-call.test failed: ", 0) == 0);
}

TEST_CASE("post() returns at once, a receiver that never answers times out in the background") {
    Fixture f;
    auto n = f.make({.timeout = 200ms, .attempts = 2, .max_in_flight = 1});
    f.statuses = {0, 0};
    f.post(n, f.destination());
    // Nothing has been sent yet: the post waits for the io_context, not the caller for it.
    CHECK(n.stats().in_flight == 1);
    CHECK(f.server.requests().empty());
    // A second one while the first is in flight exceeds max_in_flight: dropped, reported.
    f.post(n, f.destination());
    REQUIRE(f.failures.size() == 1);
    CHECK(f.failures[0] ==
          "alert to AlertProvider on-call.test dropped: 1 alerts are already being sent");

    REQUIRE(f.run_until([&] { return n.stats().failed == 2; }));
    CHECK(n.stats().in_flight == 0);
    CHECK(n.stats().retries == 1);
    CHECK(f.server.requests().size() == 2);  // both attempts reached the receiver and hung
    REQUIRE(f.failures.size() == 2);
    CHECK(f.failures[1].find("(after 2 attempts)") != std::string::npos);
}

TEST_CASE("an 8 MiB text that is not UTF-8 is posted short and valid, not whole") {
    Fixture f;
    auto n = f.make();
    notify::Message m = Fixture::message();
    m.text = "Halt advancement: webhook said " + std::string(8 * 1024 * 1024, '\xE9');
    m.fields.push_back({"Last metrics", std::string(100'000, 'x')});
    n.post(f.destination(), m, [&](const std::string& why) { f.failures.push_back(why); });
    REQUIRE(f.run_until([&] { return n.stats().sent == 1; }));
    const TestRequest& r = f.server.requests().at(0);
    CHECK(r.body.size() < 16 * 1024);
    const Json body = Json::parse(r.body);  // valid JSON, so valid UTF-8
    const std::string text = body["attachments"][0]["text"];
    CHECK(text.rfind("Halt advancement: webhook said \xEF\xBF\xBD", 0) == 0);
    CHECK(text.size() <= 2048);
}
