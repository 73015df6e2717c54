// The controller's small HTTP server against the Beast client: routing by the handler,
// keep-alive, and stop().
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>

#include "platform/http/http_client.hpp"
#include "platform/http/server.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;

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
