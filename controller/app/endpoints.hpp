#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>

#include "controller/canary/controller.hpp"
#include "controller/telemetry/telemetry.hpp"
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
};

/// Answers GET and HEAD for /metrics (the telemetry, with the controller's queue and informer
/// figures read at each scrape), /healthz (200 while no reconcile hangs) and /readyz (200 once
/// the controller's informers have synced; a standby under leader election, whose informers
/// start only when it leads, is not ready). Anything else: 405 for other methods, 404 for other
/// paths.
http::ServerHandler endpoint_handler(EndpointSources sources);

/// Serves endpoint_handler on 0.0.0.0:`port` (0: a free port, see HttpServer::port()).
/// Errors: as HttpServer::listen.
Result<std::unique_ptr<http::HttpServer>> serve_endpoints(boost::asio::any_io_executor executor,
                                                          std::uint16_t port,
                                                          EndpointSources sources);

}  // namespace serin::app
