#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>

#include "platform/core/clock.hpp"
#include "platform/core/result.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/kube_client.hpp"
#include "platform/kube/resource.hpp"

/// `kubectl serin dashboard`: the web view of docs/runtime-control.md, served on 127.0.0.1 with
/// the user's own credentials.
namespace serin::dashboard {

/// What `kubectl-serin dashboard` passes: how to reach the cluster and what to serve.
struct DashboardOptions {
    kube::ClusterConfig cluster;  ///< the user's kubeconfig, as loaded by the plugin
    std::string ns;               ///< "" = canaries of every namespace
    std::uint16_t port = 0;       ///< 0: one the kernel picks
    std::string requested_by;     ///< CanaryRequest.spec.requestedBy (the plugin: who the kubeconfig says)
    std::ostream* out = nullptr;  ///< where the URL goes (null: stdout)
    std::ostream* err = nullptr;  ///< where errors go (null: stderr)
};

/// Serves the dashboard until SIGINT or SIGTERM. Prints the URL (with its token) first. Returns
/// the process exit code: 0 after a signal, 1 when it cannot start.
int run(const DashboardOptions& options);

/// How one Dashboard serves.
struct DashboardConfig {
    std::string ns;                    ///< "" = all namespaces
    std::string address = "127.0.0.1";
    std::uint16_t port = 0;
    std::string token;                 ///< "" = 32 random bytes, hex
    std::string requested_by;
    std::size_t max_body_bytes = 16 * 1024;  ///< a request's body (POSTs are tiny)
    std::size_t max_streams = 32;            ///< open live streams (server-sent events)
    std::size_t max_queued_events = 512;     ///< per stream; a reader that lags more is cut
    std::chrono::milliseconds heartbeat = std::chrono::seconds{15};
    std::size_t max_events = 50;             ///< Events shown on a canary's page
};

/// The dashboard's HTTP server, its canary informer and its live streams.
///
/// Routes (every one needs the token: header X-Serin-Token or cookie serin_token_PORT, except the
/// first page load GET /?token=T, which sets the cookie and redirects to /; the Host header must
/// be 127.0.0.1:PORT or localhost:PORT; a POST needs the header, not only the cookie):
///   GET  /, /app.js, /style.css, /vendor/...      the page (embedded assets)
///   GET  /api/canaries                            {namespace, synced, canaries: [summary]}
///   GET  /api/stream                              server-sent events: snapshot, then canary
///   GET  /api/canaries/NS/NAME                    {summary, canary, history, events, errors}
///   POST /api/canaries/NS/NAME/requests           {action, full, reason} -> a CanaryRequest
///
/// Thread safety: one io_context thread. `client` and `clock` must outlive the Dashboard and
/// every coroutine it started (run the io_context until it is idle after stop()).
class Dashboard {
public:
    static Result<std::unique_ptr<Dashboard>> start(boost::asio::any_io_executor executor,
                                                    kube::KubeClient& client, Clock& clock,
                                                    DashboardConfig config);
    ~Dashboard();  ///< stop()s
    Dashboard(const Dashboard&) = delete;
    Dashboard& operator=(const Dashboard&) = delete;

    std::uint16_t port() const;
    const std::string& token() const;
    /// http://127.0.0.1:PORT/?token=TOKEN
    std::string url() const;
    /// Live streams open now.
    std::size_t open_streams() const;
    /// Whether the canary cache has listed once.
    bool synced() const;
    /// Stops serving: closes the server and the streams, stops the informer.
    void stop();

    struct Impl;  ///< shared with the server's handlers, defined in the .cpp

private:
    explicit Dashboard(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<Impl> impl_;
};

}  // namespace serin::dashboard
