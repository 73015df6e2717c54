// The controller's own endpoints, before there is a controller (serin still starting, or a
// standby under leader election): alive, not ready, and /metrics serves the API counters. The
// handler is awaited on one io_context, which also renders /metrics here.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "controller/app/endpoints.hpp"

namespace {

namespace asio = boost::asio;

struct Endpoints {
    serin::ManualClock clock;
    asio::io_context io;
    serin::telemetry::Telemetry telemetry{"1.2.3", "istio"};
    serin::kube::RestClientStats api;
    serin::http::ServerAsyncHandler handler = serin::app::endpoint_handler(serin::app::EndpointSources{
        telemetry, api, [] { return nullptr; }, io.get_executor(), clock});

    serin::http::ServerResponse call(std::string method, std::string target) {
        serin::http::ServerRequest request;
        request.method = std::move(method);
        request.target = std::move(target);
        std::optional<serin::http::ServerResponse> out;
        asio::co_spawn(io, handler(std::move(request)),
                       [&out](std::exception_ptr e, serin::http::ServerResponse r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out.emplace(std::move(r));
                       });
        io.restart();
        io.run();
        REQUIRE(out.has_value());
        return std::move(*out);
    }
};

}  // namespace

TEST_CASE("without a controller: /healthz 200, /readyz 503, /metrics with the API counters") {
    Endpoints e;
    e.api.by_verb_and_code[{"GET", "200"}] = 7;
    e.api.throttled = 2;
    e.api.connections_opened = 5;
    e.api.connections_reused = 11;
    e.api.tls_sessions_resumed = 4;

    const auto health = e.call("GET", "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == "OK");

    const auto ready = e.call("GET", "/readyz?verbose");
    CHECK(ready.status == 503);
    CHECK(ready.body == "informers not synced");

    const auto metrics = e.call("HEAD", "/metrics");
    CHECK(metrics.status == 200);
    CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK_THAT(metrics.body,
               Catch::Contains("serin_api_requests_total{code=\"200\",verb=\"GET\"} 7"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_throttled_total 2"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_connections_opened_total 5"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_connections_reused_total 11"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_tls_sessions_resumed_total 4"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_heap_bytes{state=\"in_use\"}"));
}

TEST_CASE("other methods get 405 and other paths 404") {
    Endpoints e;
    CHECK(e.call("POST", "/metrics").status == 405);
    CHECK(e.call("GET", "/").status == 404);
    CHECK(e.call("GET", "/healthz/extra").status == 404);
}

namespace {

/// The value of serin_heap_bytes{state="in_use"} in a scrape.
double heap_in_use(const std::string& text) {
    const std::string series = "serin_heap_bytes{state=\"in_use\"} ";
    const auto at = text.find(series);
    REQUIRE(at != std::string::npos);
    return std::stod(text.substr(at + series.size(), text.find('\n', at) - at - series.size()));
}

}  // namespace

TEST_CASE("serin_heap_bytes is read again only once a minute has passed") {
    Endpoints e;
    const double first = heap_in_use(e.call("GET", "/metrics").body);
    // 64 MiB more in use (glibc maps it apart and counts it in use), touched so it is real.
    std::vector<char> held(64u << 20, 'x');
    e.clock.advance(std::chrono::seconds{59});
    CHECK(heap_in_use(e.call("GET", "/metrics").body) == first);
    e.clock.advance(std::chrono::seconds{1});
    const double later = heap_in_use(e.call("GET", "/metrics").body);
#if defined(__SANITIZE_ADDRESS__)
    // ASan's allocator answers mallinfo2 with zeros: only the pacing is seen.
    CHECK(later == first);
#else
    CHECK(later >= first + static_cast<double>(held.size()));
#endif
    CHECK(held.back() == 'x');
}
