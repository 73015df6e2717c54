#include "controller/app/endpoints.hpp"

#include <malloc.h>

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace serin::app {

namespace {

/// A reconcile running this long hangs: each API call in it is bounded by its timeout and
/// retries, and webhooks and metric checks run outside it. /healthz then fails.
constexpr auto kStuckReconcile = std::chrono::minutes{10};

http::ServerResponse metrics(const EndpointSources& sources) {
    telemetry::Telemetry::Totals totals;
    totals.api_requests = sources.api.by_verb_and_code;
    totals.kube_requests = sources.api.by_verb_resource_code;
    totals.api_throttled = sources.api.throttled;
    totals.api_connections_opened = sources.api.connections_opened;
    totals.api_connections_reused = sources.api.connections_reused;
    totals.api_tls_resumed = sources.api.tls_sessions_resumed;
    if (const canary::Controller* live = sources.controller()) {
        sources.telemetry.set_queue_depth(live->queue_depth());
        sources.telemetry.set_canary_totals(live->canaries_per_namespace());
        const auto informers = live->informer_stats();
        totals.watch_failures = informers.watch_failures;
        totals.relists = informers.relists_after_gone;
        std::map<std::string, telemetry::Telemetry::CacheSize> caches;
        for (const auto& [resource, size] : live->cache_sizes()) {
            caches[resource] = {size.objects, size.encoded_bytes};
        }
        sources.telemetry.set_cache_sizes(caches);
    }
    sources.telemetry.set_totals(totals);
#ifdef __GLIBC__
    // glibc's counters (ASan's allocator reports zeros): in use, mapped chunks included, and
    // the free space the heap holds.
    const struct mallinfo2 heap = ::mallinfo2();
    sources.telemetry.set_heap(heap.uordblks + heap.hblkhd, heap.fordblks);
#endif
    return {200, "text/plain; version=0.0.4; charset=utf-8", sources.telemetry.scrape()};
}

http::ServerResponse health(const EndpointSources& sources) {
    // The loop that answers this is the one that reconciles, so an answer at all says it
    // runs; a reconcile far past every timeout says a worker hangs.
    if (const canary::Controller* live = sources.controller()) {
        if (auto problem = live->unhealthy(kStuckReconcile)) {
            return {500, "text/plain; charset=utf-8", *problem + "\n"};
        }
    }
    return {200, "text/plain; charset=utf-8", "OK"};
}

http::ServerResponse readiness(const EndpointSources& sources) {
    const canary::Controller* live = sources.controller();
    const bool ready = live != nullptr && live->synced();
    return {ready ? 200 : 503, "text/plain; charset=utf-8", ready ? "OK" : "informers not synced"};
}

}  // namespace

http::ServerHandler endpoint_handler(EndpointSources sources) {
    return [sources = std::move(sources)](std::string_view method,
                                          std::string_view target) -> http::ServerResponse {
        const std::string_view path = target.substr(0, target.find('?'));
        if (method != "GET" && method != "HEAD") {
            return {405, "text/plain; charset=utf-8", "method not allowed\n"};
        }
        if (path == "/metrics") {
            return metrics(sources);
        }
        if (path == "/healthz") {
            return health(sources);
        }
        if (path == "/readyz") {
            return readiness(sources);
        }
        return {404, "text/plain; charset=utf-8", "not found\n"};
    };
}

Result<std::unique_ptr<http::HttpServer>> serve_endpoints(boost::asio::any_io_executor executor,
                                                          std::uint16_t port,
                                                          EndpointSources sources) {
    return http::HttpServer::listen(std::move(executor), "0.0.0.0", port,
                                    endpoint_handler(std::move(sources)));
}

}  // namespace serin::app
