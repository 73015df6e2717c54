// The controller's own endpoints, before there is a controller (serin still starting, or a
// standby under leader election): alive, not ready, and /metrics serves the API counters.
#include <catch2/catch.hpp>
#include <string>

#include "controller/app/endpoints.hpp"

namespace {

struct Endpoints {
    serin::telemetry::Telemetry telemetry{"1.2.3", "istio"};
    serin::kube::RestClientStats api;
    serin::http::ServerHandler handler = serin::app::endpoint_handler(
        serin::app::EndpointSources{telemetry, api, [] { return nullptr; }});
};

}  // namespace

TEST_CASE("without a controller: /healthz 200, /readyz 503, /metrics with the API counters") {
    Endpoints e;
    e.api.by_verb_and_code[{"GET", "200"}] = 7;
    e.api.throttled = 2;
    e.api.connections_opened = 5;
    e.api.connections_reused = 11;
    e.api.tls_sessions_resumed = 4;

    const auto health = e.handler("GET", "/healthz");
    CHECK(health.status == 200);
    CHECK(health.body == "OK");

    const auto ready = e.handler("GET", "/readyz?verbose");
    CHECK(ready.status == 503);
    CHECK(ready.body == "informers not synced");

    const auto metrics = e.handler("HEAD", "/metrics");
    CHECK(metrics.status == 200);
    CHECK(metrics.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK_THAT(metrics.body,
               Catch::Contains("serin_api_requests_total{code=\"200\",verb=\"GET\"} 7"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_throttled_total 2"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_connections_opened_total 5"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_connections_reused_total 11"));
    CHECK_THAT(metrics.body, Catch::Contains("serin_api_tls_sessions_resumed_total 4"));
}

TEST_CASE("other methods get 405 and other paths 404") {
    Endpoints e;
    CHECK(e.handler("POST", "/metrics").status == 405);
    CHECK(e.handler("GET", "/").status == 404);
    CHECK(e.handler("GET", "/healthz/extra").status == 404);
}
