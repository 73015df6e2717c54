#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/core/result.hpp"

namespace serin::http {

enum class Method { kGet, kHead, kPost, kPut, kPatch, kDelete };

std::string_view to_string(Method method);

using Headers = std::vector<std::pair<std::string, std::string>>;

/// A parsed absolute http or https URL.
struct Url {
    std::string scheme;  ///< "http" or "https"
    std::string host;    ///< a name or an IP literal, without brackets
    std::string port;    ///< always set: 80 and 443 are filled in
    std::string target;  ///< path and query, at least "/"

    /// Parses "https://host:port/path?query"; an error names the bad part.
    static Result<Url> parse(std::string_view url);
    std::string origin() const;  ///< "https://host:port"
    /// "host:port", with an IPv6 literal in brackets: a CONNECT target.
    std::string authority() const;
};

/// An HTTP proxy, "http://[user:password@]host:port". Requests to https URLs are tunnelled
/// through it with CONNECT, so TLS (and its verification) stays end to end; requests to http URLs
/// are sent to it in absolute form. A user and password go in a Proxy-Authorization header.
struct Proxy {
    Url url;
    std::string authorization;  ///< "Basic ..." when the URL carries a user, else empty

    /// Parses a proxy URL. Only http proxies are supported; an error names the URL with its
    /// user information left out, so a password never reaches a log.
    static Result<Proxy> parse(std::string_view proxy);
};

struct Request {
    Method method = Method::kGet;
    std::string url;
    Headers headers;
    std::string body;
    /// The whole exchange for send(); the longest silence between two reads for stream().
    std::chrono::milliseconds timeout{30'000};
    /// A proxy URL to go through (see Proxy). Empty: the client's ClientOptions::proxies decide,
    /// else a direct connection. Connections made through a proxy are pooled apart from direct
    /// ones.
    std::string proxy;
    /// The largest response body (for send()) or line (for stream()) to accept; 0: the client's
    /// ClientOptions::max_body_bytes. A larger one fails the request with kBadRequest.
    std::size_t max_body_bytes = 0;
};

struct Response {
    int status = 0;
    Headers headers;
    std::string body;

    /// The first header of that name, case-insensitively.
    std::optional<std::string_view> header(std::string_view name) const;
};

/// Called with each complete line of a streamed body (without the newline); return false to stop.
using LineHandler = std::function<bool(std::string_view line)>;

/// TLS settings for every https connection a client makes. Verification is always on unless
/// insecure_skip_verify says otherwise.
struct TlsOptions {
    std::string ca_pem;           ///< trusted CAs; empty means the system store
    std::string client_cert_pem;  ///< client certificate chain, for mutual TLS
    std::string client_key_pem;
    bool insecure_skip_verify = false;
};

class ProxyEnvironment;  // proxy_environment.hpp
class AddressPolicy;     // address_policy.hpp

struct ClientOptions {
    TlsOptions tls;
    /// Proxies from the environment for requests that name none; null, or none set: direct.
    std::shared_ptr<const ProxyEnvironment> proxies;
    /// Which hosts and addresses may be connected to (names before resolution, every resolved
    /// address at connect time, the proxy's too); null: any. A refusal is kForbidden.
    std::shared_ptr<const AddressPolicy> address_policy;
    std::size_t max_idle_per_origin = 16;  ///< kept-alive connections per scheme+host+port
    /// Kept-alive connections in all; past it the least recently used is closed. Canaries name
    /// their own metrics servers and webhooks, so the number of origins is not bounded by us.
    std::size_t max_idle_total = 64;
    /// The largest response body send() accepts, and the longest line stream() delivers, unless
    /// a Request says otherwise (Request::max_body_bytes).
    std::size_t max_body_bytes = 8 * 1024 * 1024;
    std::chrono::milliseconds connect_timeout{10'000};
    std::string user_agent = "serin/0.1";
};

/// Counters kept by a client since it was made, for tests and debugging.
struct ClientStats {
    std::size_t connections_opened = 0;  ///< connections established (TCP, and TLS if https)
    std::size_t connections_reused = 0;  ///< requests sent on a kept-alive idle connection
    /// TLS handshakes that resumed a session kept from an earlier connection to the origin.
    std::size_t tls_sessions_resumed = 0;
};

/// An HTTP/1.1 client with keep-alive connection reuse, TLS (a new connection resumes the TLS
/// session of the last one to its origin when the server agrees) and a deadline on every
/// operation.
/// What a server sends is bounded: headers by Beast's 8 KiB limit, a body or a streamed line by
/// max_body_bytes.
///
/// Errors: kTransient for resolve/connect/read/write failures and timeouts, kTls for handshake and
/// verification failures (the message says which), kInvalid for a malformed URL or a header value
/// with a line break, kBadRequest for a body or line over the limit. HTTP error statuses are not
/// errors here: the caller reads Response::status.
///
/// Thread safety: one client belongs to one io_context thread (or strand); all calls must be
/// made from it. Cancellation: the awaiting coroutine's cancellation slot aborts the operation
/// with kCancelled and the connection is discarded.
class HttpClient {
public:
    virtual ~HttpClient() = default;

    /// Sends one request and reads the whole response.
    virtual boost::asio::awaitable<Result<Response>> send(Request request) = 0;

    /// Sends one request and, for a 2xx answer, hands each line of the body to `on_line` as it
    /// arrives, until the server ends the body, `on_line` returns false, or nothing arrives for
    /// `request.timeout` (kTransient). A non-2xx answer comes back whole, with no line delivered.
    virtual boost::asio::awaitable<Result<Response>> stream(Request request,
                                                            LineHandler on_line) = 0;

    /// Counters since the client was made; an implementation that keeps none returns zeros.
    virtual ClientStats stats() const { return {}; }
};

using HttpClientPtr = std::unique_ptr<HttpClient>;

/// `in` with every byte but letters, digits and -_.~ percent-encoded (for query strings).
std::string url_encode(std::string_view in);

/// The Error for an answer with a status that is not a success: kTooManyRequests for 429,
/// kTransient for 5xx, else kBadRequest; http_status set and `message` as given.
Error status_error(int status, std::string message);

/// Worth another attempt after a pause: connection failures and timeouts (kTransient without a
/// status), 429, and 5xx except 501 (which will not change).
bool worth_retrying(const Error& error);

/// The Beast implementation. Fails with kInvalid when the TLS material does not load.
Result<HttpClientPtr> make_beast_client(boost::asio::any_io_executor executor,
                                        ClientOptions options);

}  // namespace serin::http
