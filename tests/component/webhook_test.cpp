// Webhook calls against a loopback receiver: Flagger's payload, success rule, retry rule.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <deque>

#include "controller/canary/webhook.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/test_certs.hpp"
#include "tests/support/test_http_server.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using namespace std::chrono_literals;
using serin::test::TestHttpServer;
using serin::test::TestRequest;
using serin::test::TestResponseWriter;

struct Answer {
    int status;
    std::string body;
    bool hang = false;
};

struct Fixture {
    asio::io_context io;
    ManualClock clock;
    std::deque<Answer> answers;
    TestHttpServer::Handler handler = [this](const TestRequest&,
                                             TestResponseWriter& writer) -> asio::awaitable<void> {
        Answer next{200, "", false};
        if (!answers.empty()) {
            next = answers.front();
            answers.pop_front();
        }
        if (next.hang) {
            co_await writer.hang();
            co_return;
        }
        co_await writer.respond(next.status, next.body);
    };
    TestHttpServer server{io.get_executor(), handler};
    http::HttpClientPtr verified = make(false);
    http::HttpClientPtr insecure = make(true);
    canary::WebhookClient client{*verified, *insecure, clock};

    http::HttpClientPtr make(bool insecure_skip_verify) {
        http::ClientOptions options;
        options.tls.insecure_skip_verify = insecure_skip_verify;
        auto c = http::make_beast_client(io.get_executor(), options);
        REQUIRE(c);
        return std::move(*c);
    }

    canary::WebhookTarget target(const std::string& path, int retries = 0) {
        canary::WebhookTarget t;
        t.name = "gate";
        t.url = server.base_url() + path;
        t.retries = retries;
        t.timeout = 2s;
        return t;
    }

    static canary::WebhookPayload payload() {
        return {"podinfo", "test", "Progressing", "abc123", {}};
    }

    /// Starts the call; the result lands in `out`.
    void start(canary::WebhookTarget t, canary::WebhookPayload p,
               std::optional<Result<void>>& out) {
        asio::co_spawn(io, client.call(std::move(t), std::move(p)),
                       [&out](std::exception_ptr e, Result<void> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out.emplace(std::move(r));
                       });
    }

    void run_until(const std::function<bool()>& done) {
        for (int i = 0; i < 100000 && !done(); ++i) {
            io.run_one_for(10ms);
        }
        REQUIRE(done());
    }

    Result<void> call(canary::WebhookTarget t, canary::WebhookPayload p = payload()) {
        std::optional<Result<void>> out;
        start(std::move(t), std::move(p), out);
        run_until([&] { return out.has_value(); });
        return std::move(*out);
    }
};

}  // namespace

TEST_CASE("the webhook gets Flagger's JSON payload in a POST, metadata only when set") {
    Fixture f;
    REQUIRE(f.call(f.target("/gate/check")));
    auto p = Fixture::payload();
    p.metadata = {{"cmd", "hey -z 1m"}};
    REQUIRE(f.call(f.target("/load"), p));

    REQUIRE(f.server.requests().size() == 2);
    const auto& first = f.server.requests()[0];
    CHECK(first.method == "POST");
    CHECK(first.target == "/gate/check");
    CHECK(first.header("Content-Type") == std::optional<std::string_view>("application/json"));
    auto body = nlohmann::json::parse(first.body);
    CHECK(body == nlohmann::json{{"name", "podinfo"}, {"namespace", "test"},
                                 {"phase", "Progressing"}, {"checksum", "abc123"}});
    auto second = nlohmann::json::parse(f.server.requests()[1].body);
    CHECK(second.at("metadata") == nlohmann::json{{"cmd", "hey -z 1m"}});
}

TEST_CASE("200 201 and 202 pass, 204 and a 403 fail with the body as the reason") {
    Fixture f;
    f.answers = {{200, ""}, {201, ""}, {202, ""}, {204, ""}, {403, "gate closed"}};
    CHECK(f.call(f.target("/a")));
    CHECK(f.call(f.target("/a")));
    CHECK(f.call(f.target("/a")));
    auto no_content = f.call(f.target("/a", 3));
    REQUIRE_FALSE(no_content);
    CHECK(no_content.error().http_status == 204);
    auto halted = f.call(f.target("/a", 3));  // 4xx is not retried, whatever `retries` says
    REQUIRE_FALSE(halted);
    CHECK(halted.error().message == "gate closed");
    CHECK(halted.error().http_status == 403);
    CHECK(f.server.requests().size() == 5);
}

TEST_CASE("a 503 is retried after a second of backoff, a 501 is not") {
    Fixture f;
    f.answers = {{503, "busy"}, {200, "ok"}};
    std::optional<Result<void>> out;
    f.start(f.target("/hook", 2), Fixture::payload(), out);
    f.run_until([&] { return f.clock.sleepers() == 1; });
    CHECK(f.server.requests().size() == 1);
    f.clock.advance(999ms);
    for (int i = 0; i < 10; ++i) {
        f.io.run_one_for(5ms);
    }
    CHECK(f.server.requests().size() == 1);
    f.clock.advance(1ms);
    f.run_until([&] { return out.has_value(); });
    CHECK(*out);
    CHECK(f.server.requests().size() == 2);

    f.answers = {{501, "not implemented"}};
    auto r = f.call(f.target("/hook", 2));
    REQUIRE_FALSE(r);
    CHECK(f.server.requests().size() == 3);
}

TEST_CASE("retries run out: the last failure is returned after retries+1 attempts") {
    Fixture f;
    f.answers = {{500, "a"}, {500, "b"}, {500, "c"}};
    std::optional<Result<void>> out;
    f.start(f.target("/hook", 2), Fixture::payload(), out);
    for (int attempt = 1; attempt <= 2; ++attempt) {
        f.run_until([&] { return f.clock.sleepers() == 1; });
        f.clock.advance(30s);
    }
    f.run_until([&] { return out.has_value(); });
    REQUIRE_FALSE(*out);
    CHECK(out->error().message == "c");
    CHECK(f.server.requests().size() == 3);
}

TEST_CASE("a hook that never answers fails at its timeout") {
    Fixture f;
    f.answers = {{0, "", true}};
    auto t = f.target("/slow");
    t.timeout = 200ms;
    auto started = std::chrono::steady_clock::now();
    auto r = f.call(t);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::kTransient);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK_THAT(r.error().message, Catch::Contains("gate"));
}

TEST_CASE("event payloads carry the event and never let hook metadata override it") {
    auto p = canary::event_payload(Fixture::payload(),
                                   {{"eventType", "spoofed"}, {"team", "web"}},
                                   "Promotion completed! podinfo.test", true,
                                   SystemTime{std::chrono::milliseconds{1'700'000'000'123}});
    CHECK(p.metadata.at("eventMessage") == "Promotion completed! podinfo.test");
    CHECK(p.metadata.at("eventType") == "Warning");
    CHECK(p.metadata.at("timestamp") == "1700000000123");
    CHECK(p.metadata.at("team") == "web");
}

TEST_CASE("disableTLS skips certificate verification, without it an unknown CA fails") {
    asio::io_context io;
    ManualClock clock;
    const auto& pki = serin::test::test_pki();
    TestHttpServer server(
        io.get_executor(),
        [](const TestRequest&, TestResponseWriter& writer) -> asio::awaitable<void> {
            co_await writer.respond(200, "ok");
        },
        serin::test::TestServerTls{pki.server.cert_pem, pki.server.key_pem, ""});
    http::ClientOptions strict;
    http::ClientOptions lax;
    lax.tls.insecure_skip_verify = true;
    auto verified = http::make_beast_client(io.get_executor(), strict);
    auto insecure = http::make_beast_client(io.get_executor(), lax);
    REQUIRE(verified);
    REQUIRE(insecure);
    canary::WebhookClient client(**verified, **insecure, clock);
    canary::WebhookTarget t;
    t.name = "tls";
    t.url = "https://127.0.0.1:" + std::to_string(server.port()) + "/";
    t.timeout = 2s;

    auto call = [&](canary::WebhookTarget target) {
        std::optional<Result<void>> out;
        asio::co_spawn(io, client.call(std::move(target), Fixture::payload()),
                       [&out](std::exception_ptr, Result<void> r) { out.emplace(std::move(r)); });
        for (int i = 0; i < 100000 && !out; ++i) {
            io.run_one_for(10ms);
        }
        REQUIRE(out);
        return std::move(*out);
    };
    auto strict_result = call(t);
    REQUIRE_FALSE(strict_result);
    CHECK(strict_result.error().kind == ErrorKind::kTls);
    t.disable_tls = true;
    CHECK(call(t));
}
