// platform/http's HttpServer against the Beast client: routing by the handler, keep-alive,
// stop(), the accept backoff; and with an awaited handler: bodies and headers, 413 over the cap,
// a slow handler beside other connections, max_connections, and stop_accepting().
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>

#include "platform/http/http_client.hpp"
#include "platform/http/server.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using namespace std::chrono_literals;

struct Fixture {
    asio::io_context io;
    std::vector<std::string> seen;
    std::unique_ptr<http::HttpServer> server = start();
    http::HttpClientPtr client = make_client();

    std::unique_ptr<http::HttpServer> start() {
        auto s = http::HttpServer::listen(
            io.get_executor(), "127.0.0.1", 0,
            [this](std::string_view method, std::string_view target) -> http::ServerResponse {
                seen.push_back(std::string(method) + " " + std::string(target));
                if (target == "/metrics") {
                    return {200, "text/plain; version=0.0.4", "up 1\n"};
                }
                return {404, "text/plain", "not found\n"};
            });
        REQUIRE(s.has_value());
        return std::move(*s);
    }

    http::HttpClientPtr make_client() {
        auto c = http::make_beast_client(io.get_executor(), {});
        REQUIRE(c.has_value());
        return std::move(*c);
    }

    Result<http::Response> get(const std::string& path) { return get(server->port(), path); }

    Result<http::Response> get(std::uint16_t port, const std::string& path) {
        http::Request request;
        request.url = "http://127.0.0.1:" + std::to_string(port) + path;
        request.timeout = std::chrono::seconds{5};
        std::optional<Result<http::Response>> out;
        asio::co_spawn(io, client->send(std::move(request)),
                       [&out](std::exception_ptr e, Result<http::Response> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out.emplace(std::move(r));
                       });
        io.restart();
        while (!out && io.run_one_for(std::chrono::seconds{5}) > 0) {
        }
        REQUIRE(out.has_value());
        return std::move(*out);
    }
};

/// A server with an awaited handler: "/slow" waits until release(), anything else echoes what
/// it got. Each request goes through a client of its own, so over a connection of its own.
struct AsyncFixture {
    asio::io_context io;
    asio::steady_timer gate{io, asio::steady_timer::time_point::max()};
    std::vector<http::ServerRequest> seen;
    int slow_started = 0;
    std::vector<http::HttpClientPtr> clients;
    std::unique_ptr<http::HttpServer> server;
    std::uint16_t port = 0;  ///< kept: port() is 0 once the server stops accepting

    explicit AsyncFixture(http::ServerOptions options = small_limits()) {
        auto s = http::HttpServer::listen(
            io.get_executor(), "127.0.0.1", 0, std::move(options),
            [this](http::ServerRequest request) { return handle(std::move(request)); });
        REQUIRE(s.has_value());
        server = std::move(*s);
        port = server->port();
    }
    ~AsyncFixture() {
        server->stop();
        release();
        io.restart();
        io.poll();
    }
    AsyncFixture(const AsyncFixture&) = delete;
    AsyncFixture& operator=(const AsyncFixture&) = delete;

    static http::ServerOptions small_limits() {
        http::ServerOptions options;
        options.max_body_bytes = 1000;
        options.server_name = "serin-test";
        return options;
    }

    asio::awaitable<http::ServerResponse> handle(http::ServerRequest request) {
        seen.push_back(request);
        if (request.target == "/slow") {
            ++slow_started;
            auto [ec] = co_await gate.async_wait(asio::as_tuple(asio::use_awaitable));
            (void)ec;  // cancelled by release()
        }
        if (request.target == "/stream") {
            http::ServerResponse streamed;
            streamed.content_type = "text/event-stream";
            streamed.headers.emplace_back("X-Extra", "1");
            streamed.stream = [](http::ResponseStream& out) -> asio::awaitable<void> {
                for (const char* piece : {"one ", "", "two ", "three"}) {
                    const bool ok = co_await out.write(piece);
                    if (!ok) {
                        co_return;
                    }
                }
            };
            co_return streamed;
        }
        http::ServerResponse answer;
        answer.status = 201;
        answer.headers.emplace_back("Set-Cookie", "a=1");
        answer.headers.emplace_back("Set-Cookie", "b=2");
        answer.content_type = "application/octet-stream";
        answer.body = request.method + " " + request.target + " " +
                      std::to_string(request.body.size()) + " " +
                      std::string(request.header("x-probe").value_or("-"));
        co_return answer;
    }

    void release() { gate.cancel(); }

    using Pending = std::shared_ptr<std::optional<Result<http::Response>>>;

    /// Starts `method` `path` on a new client; the answer lands in the result when io runs.
    Pending start(http::Method method, const std::string& path, std::string body = {},
                  http::Headers headers = {}) {
        auto c = http::make_beast_client(io.get_executor(), {});
        REQUIRE(c.has_value());
        clients.push_back(std::move(*c));
        return start_on(*clients.back(), method, path, std::move(body), std::move(headers));
    }

    /// The same on `client` (kept-alive connections are reused).
    Pending start_on(http::HttpClient& client, http::Method method, const std::string& path,
                     std::string body = {}, http::Headers headers = {}) {
        http::Request request;
        request.method = method;
        request.url = "http://127.0.0.1:" + std::to_string(port) + path;
        request.body = std::move(body);
        request.headers = std::move(headers);
        request.timeout = 5s;
        auto out = std::make_shared<std::optional<Result<http::Response>>>();
        asio::co_spawn(io, client.send(std::move(request)),
                       [out](std::exception_ptr e, Result<http::Response> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out->emplace(std::move(r));
                       });
        return out;
    }

    /// Runs the io_context until `condition` holds; fails after `timeout`.
    void wait_for(const std::function<bool()>& condition, const std::string& what,
                  std::chrono::milliseconds timeout = 5s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        io.restart();
        while (!condition()) {
            if (std::chrono::steady_clock::now() >= deadline) {
                FAIL("timed out waiting for " << what);
            }
            io.run_one_for(20ms);
        }
    }

    Result<http::Response> await(const Pending& pending) {
        wait_for([&] { return pending->has_value(); }, "an answer");
        return std::move(**pending);
    }

    Result<http::Response> send(http::Method method, const std::string& path,
                                std::string body = {}, http::Headers headers = {}) {
        return await(start(method, path, std::move(body), std::move(headers)));
    }
};

}  // namespace

TEST_CASE("the server answers what its handler says, over one kept-alive connection") {
    Fixture f;
    REQUIRE(f.server->port() != 0);
    auto metrics = f.get("/metrics");
    REQUIRE(metrics.has_value());
    CHECK(metrics->status == 200);
    CHECK(metrics->body == "up 1\n");
    CHECK(metrics->header("Content-Type") == "text/plain; version=0.0.4");
    auto missing = f.get("/nothing?x=1");
    REQUIRE(missing.has_value());
    CHECK(missing->status == 404);
    CHECK(f.seen == std::vector<std::string>{"GET /metrics", "GET /nothing?x=1"});
    CHECK(f.client->stats().connections_opened == 1);  // the second request reused it
}

TEST_CASE("a port in use is an error naming it, and stop() refuses new connections") {
    Fixture f;
    auto again = http::HttpServer::listen(f.io.get_executor(), "127.0.0.1", f.server->port(),
                                          [](std::string_view, std::string_view) {
                                              return http::ServerResponse{};
                                          });
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().message.rfind("listening on 127.0.0.1:" +
                                          std::to_string(f.server->port()),
                                      0) == 0);
    auto bad = http::HttpServer::listen(f.io.get_executor(), "localhost:80", 0,
                                        [](std::string_view, std::string_view) {
                                            return http::ServerResponse{};
                                        });
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == ErrorKind::kInvalid);

    const std::uint16_t port = f.server->port();
    REQUIRE(f.get(port, "/metrics").has_value());
    f.server->stop();
    auto after = f.get(port, "/metrics");
    REQUIRE_FALSE(after.has_value());
    CHECK(after.error().kind == ErrorKind::kTransient);
}

TEST_CASE("out of file descriptors, the server waits before accepting again instead of spinning") {
    Fixture f;
    // One request first, so the event loop's machinery has run once: UBSan checks a virtual call
    // the first time it sees it, and that check needs a pipe, which there will be no room for.
    REQUIRE(f.get("/metrics").has_value());
    // Connections the kernel completes into the listen backlog, before the limit is lowered.
    std::vector<std::unique_ptr<asio::ip::tcp::socket>> clients;
    for (int i = 0; i < 4; ++i) {
        auto socket = std::make_unique<asio::ip::tcp::socket>(f.io);
        socket->connect({asio::ip::make_address("127.0.0.1"), f.server->port()});
        clients.push_back(std::move(socket));
    }
    rlimit original{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
    // No descriptor left: a new one is the lowest free number, so a limit at it makes every
    // accept fail with EMFILE.
    int lowest_free = 0;
    while (::fcntl(lowest_free, F_GETFD) != -1) {
        ++lowest_free;
    }
    rlimit tight = original;
    tight.rlim_cur = static_cast<rlim_t>(lowest_free);
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
    f.io.restart();
    f.io.run_for(std::chrono::milliseconds{400});
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &original) == 0);
    // 50 + 100 + 200 ms of pauses fit in 400 ms; a spinning loop fails thousands of times.
    CHECK(f.server->accept_failures() >= 1);
    CHECK(f.server->accept_failures() <= 6);
    // With descriptors back, it serves again.
    auto answer = f.get("/metrics");
    REQUIRE(answer.has_value());
    CHECK(answer->status == 200);
}

TEST_CASE("an awaited handler gets the method, target, body and headers of a request") {
    AsyncFixture f;
    auto answer = f.send(http::Method::kPost, "/run?x=1", std::string(1000, 'b'),
                         {{"X-Probe", "42"}, {"Content-Type", "application/json"}});
    REQUIRE(answer.has_value());
    CHECK(answer->status == 201);
    CHECK(answer->body == "POST /run?x=1 1000 42");
    CHECK(answer->header("Content-Type") == "application/octet-stream");
    CHECK(answer->header("Server") == "serin-test");
    REQUIRE(f.seen.size() == 1);
    CHECK(f.seen[0].body == std::string(1000, 'b'));
    CHECK(f.seen[0].header("content-type") == "application/json");
    CHECK_FALSE(f.seen[0].header("X-Absent").has_value());
}

TEST_CASE("a body over max_body_bytes is answered 413 without calling the handler") {
    AsyncFixture f;
    auto over = f.send(http::Method::kPost, "/run", std::string(1001, 'b'));
    REQUIRE(over.has_value());
    CHECK(over->status == 413);
    CHECK(over->body == "request body larger than 1000 bytes\n");
    CHECK(over->header("Connection") == "close");
    CHECK(f.seen.empty());

    // The synchronous API reads bodies within the default 64 KiB and answers 413 beyond.
    Fixture sync;
    http::Request request;
    request.method = http::Method::kPost;
    request.url = "http://127.0.0.1:" + std::to_string(sync.server->port()) + "/metrics";
    request.body = std::string(64 * 1024, 'b');
    std::optional<Result<http::Response>> out;
    auto post = [&](std::string body) {
        request.body = std::move(body);
        out.reset();
        asio::co_spawn(sync.io, sync.client->send(request),
                       [&out](std::exception_ptr e, Result<http::Response> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out.emplace(std::move(r));
                       });
        sync.io.restart();
        while (!out && sync.io.run_one_for(5s) > 0) {
        }
        REQUIRE(out.has_value());
        REQUIRE(out->has_value());
        return (*out)->status;
    };
    CHECK(post(std::string(64 * 1024, 'b')) == 200);
    CHECK(post(std::string(64 * 1024 + 1, 'b')) == 413);
}

TEST_CASE("headers over max_header_bytes close the connection unanswered") {
    http::ServerOptions options = AsyncFixture::small_limits();
    options.max_header_bytes = 1024;
    AsyncFixture f(options);
    auto ok = f.send(http::Method::kGet, "/", {}, {{"X-Probe", std::string(500, 'h')}});
    REQUIRE(ok.has_value());
    CHECK(ok->status == 201);
    auto big = f.send(http::Method::kGet, "/", {}, {{"X-Probe", std::string(2000, 'h')}});
    REQUIRE_FALSE(big.has_value());
    CHECK(f.seen.size() == 1);
}

TEST_CASE("a slow awaited handler does not hold up requests on other connections") {
    AsyncFixture f;
    auto slow = f.start(http::Method::kPost, "/slow", "task");
    f.wait_for([&] { return f.slow_started == 1; }, "the slow handler to start");
    auto fast = f.send(http::Method::kGet, "/fast");
    REQUIRE(fast.has_value());
    CHECK(fast->body == "GET /fast 0 -");
    CHECK_FALSE(slow->has_value());  // still waiting on its handler
    f.release();
    auto slow_answer = f.await(slow);
    REQUIRE(slow_answer.has_value());
    CHECK(slow_answer->body == "POST /slow 4 -");
}

TEST_CASE("connections beyond max_connections are closed at once") {
    http::ServerOptions options = AsyncFixture::small_limits();
    options.max_connections = 1;
    AsyncFixture f(options);
    auto slow = f.start(http::Method::kGet, "/slow");
    f.wait_for([&] { return f.slow_started == 1; }, "the slow handler to start");
    auto refused = f.send(http::Method::kGet, "/fast");
    REQUIRE_FALSE(refused.has_value());
    f.release();
    auto slow_answer = f.await(slow);
    REQUIRE(slow_answer.has_value());
    CHECK(slow_answer->status == 201);
    // Once the one connection closes, a new one is served.
    f.clients.clear();
    f.wait_for([&] { return f.send(http::Method::kGet, "/again").has_value(); },
               "a connection after the first closed");
}

TEST_CASE("stop_accepting() refuses new connections and still answers open ones") {
    AsyncFixture f;
    // A kept-alive connection, and one whose request is in its handler.
    auto kept_client = http::make_beast_client(f.io.get_executor(), {});
    REQUIRE(kept_client.has_value());
    auto first = f.await(f.start_on(**kept_client, http::Method::kGet, "/first"));
    REQUIRE(first.has_value());
    auto slow = f.start(http::Method::kGet, "/slow");
    f.wait_for([&] { return f.slow_started == 1; }, "the slow handler to start");

    f.server->stop_accepting();
    CHECK(f.server->port() == 0);
    auto refused = f.await(f.start(http::Method::kGet, "/new"));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == ErrorKind::kTransient);

    auto again = f.await(f.start_on(**kept_client, http::Method::kGet, "/second"));
    REQUIRE(again.has_value());
    CHECK(again->body == "GET /second 0 -");
    CHECK((*kept_client)->stats().connections_opened == 1);
    f.release();
    auto slow_answer = f.await(slow);
    REQUIRE(slow_answer.has_value());
    CHECK(slow_answer->body == "GET /slow 0 -");
}

TEST_CASE("an awaited handler may add header fields and stream its body in chunks") {
    AsyncFixture f;
    auto plain = f.send(http::Method::kGet, "/x");
    REQUIRE(plain.has_value());
    CHECK(plain->status == 201);
    CHECK(plain->header("Set-Cookie").has_value());

    auto streamed = f.send(http::Method::kGet, "/stream");
    REQUIRE(streamed.has_value());
    CHECK(streamed->status == 200);
    CHECK(streamed->header("Transfer-Encoding") == "chunked");
    CHECK(streamed->header("Content-Type") == "text/event-stream");
    CHECK(streamed->header("X-Extra") == "1");
    CHECK(streamed->header("Connection") == "close");
    // An empty write is skipped rather than ending the body early.
    CHECK(streamed->body == "one two three");
}
