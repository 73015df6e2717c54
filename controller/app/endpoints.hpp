#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "controller/canary/controller.hpp"
#include "controller/telemetry/telemetry.hpp"
#include "platform/core/clock.hpp"
#include "platform/core/result.hpp"
#include "platform/http/server.hpp"
#include "platform/kube/rest_client.hpp"

namespace serin::app {

/// What the controller's own endpoints read.
struct EndpointSources {
    telemetry::Telemetry& telemetry;
    /// The API client's counters (serin_api_requests_total, serin_api_throttled_total,
    /// serin_api_connections_*_total, serin_api_tls_sessions_resumed_total).
    const kube::RestClientStats& api;
    /// The controller while there is one, else null: it is built only once the API server has
    /// answered, and goes before the process ends.
    std::function<const canary::Controller*()> controller;
    /// Where the /metrics text is rendered: a thread of its own in serin, not the event loop.
    /// At 10,000 canaries Flagger's per-canary series take a tenth of a second of CPU to collect
    /// and serialize, which on the loop would hold back every reconcile and watch event behind
    /// each scrape. The telemetry's registry is safe to read from there while the loop updates
    /// it.
    boost::asio::any_io_executor render;
    /// Paces the heap gauge (serin_heap_bytes): glibc reads it by walking its free lists under
    /// each arena's lock, which stalls the loop's own allocations meanwhile, so the figures are
    /// read again only when the last reading is kHeapReadEvery old.
    const Clock& clock;
};

/// How old serin_heap_bytes may be when a scrape serves it.
inline constexpr auto kHeapReadEvery = std::chrono::seconds{60};

/// Answers GET and HEAD for /metrics (the telemetry, with the controller's queue and informer
/// figures read at each scrape on the loop, rendered on EndpointSources::render), /healthz (200
/// while no reconcile hangs) and /readyz (200 once the controller's informers have synced; a
/// standby under leader election, whose informers start only when it leads, is not ready).
/// Anything else: 405 for other methods, 404 for other paths. Runs on the server's loop, which
/// must be the controller's.
http::ServerAsyncHandler endpoint_handler(EndpointSources sources);

/// Serves endpoint_handler on 0.0.0.0:`port` (0: a free port, see HttpServer::port()).
/// Errors: as HttpServer::listen.
Result<std::unique_ptr<http::HttpServer>> serve_endpoints(boost::asio::any_io_executor executor,
                                                          std::uint16_t port,
                                                          EndpointSources sources);

}  // namespace serin::app
