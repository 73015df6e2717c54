// serin's /metrics renders off the event loop: a scrape waits for the render executor while the
// same server, on the loop, answers /healthz; once the render thread runs, the scrape completes
// with the telemetry's series. Over real sockets, with the Beast client.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <thread>

#include "controller/app/endpoints.hpp"
#include "platform/http/http_client.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;

struct Scrape {
    http::HttpClientPtr client;
    std::optional<Result<http::Response>> out;
};

void send(asio::io_context& io, Scrape& scrape, std::uint16_t port, const std::string& path) {
    http::Request request;
    request.url = "http://127.0.0.1:" + std::to_string(port) + path;
    request.timeout = std::chrono::seconds{10};
    asio::co_spawn(io, scrape.client->send(std::move(request)),
                   [&scrape](std::exception_ptr e, Result<http::Response> r) {
                       if (e) {
                           std::rethrow_exception(e);
                       }
                       scrape.out.emplace(std::move(r));
                   });
}

/// Runs `io` until `done` or 10 s have passed.
template <typename Done>
void run_until(asio::io_context& io, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    io.restart();
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        io.run_one_for(std::chrono::milliseconds{100});
    }
}

}  // namespace

TEST_CASE("a scrape of /metrics renders off the loop, which answers /healthz meanwhile") {
    asio::io_context io;
    asio::io_context render;  // not run until the test says so: the scrape must wait for it
    SystemClock clock;
    telemetry::Telemetry telemetry{"1.2.3", "istio"};
    kube::RestClientStats api;
    api.throttled = 3;
    bool gathered = false;  // the scrape read the controller's figures, on the loop
    auto server = app::serve_endpoints(
        io.get_executor(), 0,
        app::EndpointSources{telemetry, api,
                             [&gathered]() -> const canary::Controller* {
                                 gathered = true;
                                 return nullptr;
                             },
                             render.get_executor(), clock});
    REQUIRE(server.has_value());
    const std::uint16_t port = (*server)->port();

    auto client = [&io] {
        auto made = http::make_beast_client(io.get_executor(), {});
        REQUIRE(made.has_value());
        return std::move(*made);
    };
    Scrape metrics{client(), std::nullopt};
    Scrape health{client(), std::nullopt};
    send(io, metrics, port, "/metrics");
    run_until(io, [&] { return gathered; });
    REQUIRE(gathered);
    send(io, health, port, "/healthz");
    run_until(io, [&] { return health.out.has_value(); });
    REQUIRE(health.out.has_value());
    REQUIRE(health.out->has_value());
    CHECK((*health.out)->status == 200);
    // The scrape is still waiting for its render executor, which nothing runs yet.
    CHECK_FALSE(metrics.out.has_value());

    std::size_t rendered = 0;  // handlers the render executor ran
    std::thread render_thread([&render, &rendered] { rendered = render.run(); });
    run_until(io, [&] { return metrics.out.has_value(); });
    render_thread.join();
    CHECK(rendered > 0);
    REQUIRE(metrics.out.has_value());
    REQUIRE(metrics.out->has_value());
    CHECK((*metrics.out)->status == 200);
    CHECK_THAT((*metrics.out)->body,
               Catch::Contains("flagger_info{mesh_provider=\"istio\",version=\"1.2.3\"} 1"));
    CHECK_THAT((*metrics.out)->body, Catch::Contains("serin_api_throttled_total 3"));
}
