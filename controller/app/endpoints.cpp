#include "controller/app/endpoints.hpp"

#include <malloc.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace serin::app {

namespace {

namespace asio = boost::asio;

/// A reconcile running this long hangs: each API call in it is bounded by its timeout and
/// retries, and webhooks and metric checks run outside it. /healthz then fails.
constexpr auto kStuckReconcile = std::chrono::minutes{10};

/// What every request of one server shares: the sources, and when the heap was last read
/// (touched on the loop only).
struct Shared {
    EndpointSources sources;
    std::optional<SteadyTime> heap_read_at;
};

/// Copies the controller's figures into the telemetry. On the loop, which owns them; cheap
/// (counts and per-namespace totals, no object decoded). True when the heap gauge is due.
bool gather(Shared& shared) {
    const EndpointSources& sources = shared.sources;
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
    const SteadyTime now = sources.clock.steady_now();
    if (shared.heap_read_at && now - *shared.heap_read_at < kHeapReadEvery) {
        return false;
    }
    shared.heap_read_at = now;
    return true;
}

/// On the render executor: the heap gauge when due, then the text of every series.
asio::awaitable<std::string> render(std::shared_ptr<Shared> shared, bool read_heap) {
#ifdef __GLIBC__
    if (read_heap) {
        // glibc's counters (ASan's allocator reports zeros): in use, mapped chunks included,
        // and the free space the heap holds.
        const struct mallinfo2 heap = ::mallinfo2();
        shared->sources.telemetry.set_heap(heap.uordblks + heap.hblkhd, heap.fordblks);
    }
#else
    (void)read_heap;
#endif
    co_return shared->sources.telemetry.scrape();
}

asio::awaitable<http::ServerResponse> metrics(std::shared_ptr<Shared> shared) {
    const bool read_heap = gather(*shared);
    const asio::any_io_executor where = shared->sources.render;
    std::string text = co_await asio::co_spawn(where, render(std::move(shared), read_heap),
                                               asio::use_awaitable);
    co_return http::ServerResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                   std::move(text)};
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

asio::awaitable<http::ServerResponse> answer(std::shared_ptr<Shared> shared,
                                             http::ServerRequest request) {
    const std::string_view target = request.target;
    const std::string_view path = target.substr(0, target.find('?'));
    if (request.method != "GET" && request.method != "HEAD") {
        co_return http::ServerResponse{405, "text/plain; charset=utf-8", "method not allowed\n"};
    }
    if (path == "/metrics") {
        http::ServerResponse text = co_await metrics(std::move(shared));
        co_return text;
    }
    if (path == "/healthz") {
        co_return health(shared->sources);
    }
    if (path == "/readyz") {
        co_return readiness(shared->sources);
    }
    co_return http::ServerResponse{404, "text/plain; charset=utf-8", "not found\n"};
}

}  // namespace

http::ServerAsyncHandler endpoint_handler(EndpointSources sources) {
    auto shared = std::make_shared<Shared>(Shared{std::move(sources), std::nullopt});
    // The coroutine gets its own reference: the handler may go while an answer is awaited.
    return [shared](http::ServerRequest request) { return answer(shared, std::move(request)); };
}

Result<std::unique_ptr<http::HttpServer>> serve_endpoints(boost::asio::any_io_executor executor,
                                                          std::uint16_t port,
                                                          EndpointSources sources) {
    return http::HttpServer::listen(std::move(executor), "0.0.0.0", port, http::ServerOptions{},
                                    endpoint_handler(std::move(sources)));
}

}  // namespace serin::app
