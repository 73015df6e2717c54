#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "platform/core/clock.hpp"
#include "platform/http/http_client.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::kube {

struct RestClientOptions {
    std::chrono::milliseconds request_timeout{30'000};  ///< deadline of every non-watch call
    /// A watch silent this long is taken for dead and reconnected. A watch that asks the server
    /// to end it (timeoutSeconds) waits at least that long plus watch_stall_margin: kube-apiserver
    /// 1.20 sends nothing on a quiet watch until a bookmark shortly before it ends it.
    std::chrono::milliseconds watch_idle_timeout{90'000};
    std::chrono::milliseconds watch_stall_margin{30'000};
    double write_qps = 50.0;   ///< token bucket on create/update/patch/delete
    double write_burst = 100.0;
    int max_retries = 5;       ///< for 429 and for transient failures of reads
    std::string user_agent = "serin/0.1";
    /// Proxies from the environment (see http::ProxyEnvironment); null: direct.
    std::shared_ptr<const http::ProxyEnvironment> proxies;
    /// The largest answer (a whole body, or one line of a watch) accepted from the API server.
    std::size_t max_response_bytes = 128 * 1024 * 1024;
};

/// Client-side statistics, for tests and the controller's own metrics.
struct RestClientStats {
    std::uint64_t requests = 0;  ///< HTTP requests sent, retries included
    std::uint64_t reads = 0;   ///< GET and LIST
    std::uint64_t writes = 0;  ///< POST, PUT, PATCH, DELETE
    std::uint64_t watches = 0;
    std::uint64_t throttled = 0;  ///< writes that waited for a token
    /// Connections to the API server established (TCP, TLS), requests sent on a kept-alive one
    /// and handshakes that resumed a TLS session, as the HttpClient counts them.
    std::uint64_t connections_opened = 0;
    std::uint64_t connections_reused = 0;
    std::uint64_t tls_sessions_resumed = 0;  ///< connections whose TLS handshake resumed
    /// HTTP requests sent, retries included, by verb (the method, or WATCH) and code (the
    /// answer's status, or "error" when none came: a connection failure or a timeout).
    std::map<std::pair<std::string, std::string>, std::uint64_t> by_verb_and_code;
    /// The same requests by Kubernetes verb (get, list, watch, create, update, patch, delete),
    /// resource ("deployments", or "canaries/status" for a subresource) and code: the names the
    /// API server's audit log gives them.
    std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t>
        by_verb_resource_code;
};

/// The Kubernetes verb and resource of a request to the API server: `method` is the HTTP method
/// (or "WATCH"), `path` the URL's path with or without its query. A GET of a collection is
/// "list", of one object "get"; a DELETE of a collection "deletecollection". Paths outside
/// /api and /apis (/version, /healthz) keep the lower-cased method and have the resource "".
std::pair<std::string, std::string> kube_verb_and_resource(std::string_view method,
                                                           std::string_view path);

/// The KubeClient that speaks REST to a real API server over an HttpClient.
class RestKubeClient : public KubeClient {
public:
    virtual const RestClientStats& stats() const = 0;
};

/// One line of a watch stream: the event, or the error it stands for (an ERROR frame becomes the
/// error its Status carries; a frame that is not JSON, has no object or an unknown type is
/// kTransient).
Result<WatchEvent> decode_watch_frame(std::string_view line);

/// Builds a RestKubeClient that owns its own Beast HttpClient made from `config`.
Result<std::unique_ptr<RestKubeClient>> make_rest_client(boost::asio::any_io_executor executor,
                                                         ClusterConfig config, Clock& clock,
                                                         RestClientOptions options = {});

/// The same over a given HttpClient (tests put a fault-injecting one in between).
std::unique_ptr<RestKubeClient> make_rest_client(http::HttpClientPtr http, ClusterConfig config,
                                                 Clock& clock, RestClientOptions options = {});

}  // namespace serin::kube
