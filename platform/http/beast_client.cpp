// The Beast implementation of HttpClient: keep-alive connection pool, TLS, deadlines, cancellation.
//
// Threading: a BeastClient and its connections belong to one io_context thread (or strand). The
// pool has no lock; every call, and every resumption of the coroutines below, runs on that thread.
//
// Deadlines: beast::tcp_stream carries the deadline of every connect, handshake, write and read
// (expires_at / expires_after); when it fires Beast closes the socket and the operation ends with
// beast::error::timeout. Name resolution has no such timer, so resolve() arms its own.
//
// Cancellation: Beast 1.81 forwards per-operation cancellation. tcp_stream's connect and transfer
// operations allow every cancellation type, http::async_read/async_write and Asio's SSL operations
// pass the coroutine's cancellation slot down to them (terminal cancellation, which is what
// `||` from awaitable_operators emits). The resolver ignores the slot, so resolve() installs its
// own handler, which cancels the resolver. Asio then throws from the next co_await once the
// coroutine's cancellation state is set, so the code below checks the state before every co_await
// and returns kCancelled instead: no exception leaves send() or stream().
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "platform/core/text.hpp"
#include "platform/http/address_policy.hpp"
#include "platform/http/http_client.hpp"
#include "platform/http/proxy_environment.hpp"

namespace serin::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using TlsStream = ssl::stream<beast::tcp_stream>;
using BeastRequest = bhttp::request<bhttp::string_body>;

constexpr auto kIo = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kStreamChunk = 16 * 1024;

/// Where an I/O error happened, for the message.
enum class Phase { kResolve, kConnect, kTunnel, kHandshake, kWrite, kRead };

std::string_view describe(Phase phase) {
    switch (phase) {
        case Phase::kResolve:
            return "resolving the host of";
        case Phase::kConnect:
            return "connecting to";
        case Phase::kTunnel:
            return "asking for a CONNECT tunnel through";
        case Phase::kHandshake:
            return "TLS handshake with";
        case Phase::kWrite:
            return "sending the request to";
        case Phase::kRead:
            return "reading the response from";
    }
    return "talking to";
}

bool is_cancelled(const asio::cancellation_state& state) {
    return state.cancelled() != asio::cancellation_type::none;
}

Error cancelled_error(std::string_view origin) {
    return fail(ErrorKind::kCancelled, "request to " + std::string{origin} + " was cancelled");
}

bool is_ip_literal(const std::string& host) {
    error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

/// Where a request goes: its URL, the proxy it goes through (if any), and the key of the pool
/// of kept-alive connections it may use: the origin, plus the proxy's when proxied.
struct Route {
    Url url;
    std::optional<Proxy> proxy;
    std::string pool_key;

    /// The host the TCP connection goes to: the proxy, or the URL's own.
    const Url& first_hop() const { return proxy ? proxy->url : url; }
};

Result<Route> route_for(const Request& request, const ProxyEnvironment* environment) {
    auto url = Url::parse(request.url);
    if (!url) {
        return url.error();
    }
    Route route;
    route.url = std::move(*url);
    route.pool_key = route.url.origin();
    if (!request.proxy.empty()) {
        auto proxy = Proxy::parse(request.proxy);
        if (!proxy) {
            return proxy.error();
        }
        route.proxy = std::move(*proxy);
    } else if (environment != nullptr) {
        if (const Proxy* proxy = environment->proxy_for(route.url)) {
            route.proxy = *proxy;
        }
    }
    if (route.proxy) {
        route.pool_key += " via " + route.proxy->url.origin();
    }
    return route;
}

/// One kept-alive connection, plain or TLS. The buffer holds bytes read past the last message.
struct Connection {
    std::string pool_key;  ///< the Route's: which idle pool it returns to
    Clock::time_point idle_since;  ///< when it last went back to the pool
    std::optional<beast::tcp_stream> plain;
    std::optional<TlsStream> tls;
    bool tls_session_kept = false;  ///< its TLS session is kept for new connections
    beast::flat_buffer buffer;

    beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }

    /// Calls f with the stream to talk HTTP over; both calls must return the same type.
    template <class F>
    auto visit(F&& f) {
        if (tls) {
            return f(*tls);
        }
        return f(*plain);
    }

    /// Whether a connection that sat idle in the pool can carry another request: nothing to read
    /// and no end of stream (a server that closed an idle keep-alive connection shows up here).
    bool looks_alive() {
        if (buffer.size() != 0) {
            return false;
        }
        auto& socket = tcp().socket();
        if (!socket.is_open()) {
            return false;
        }
        error_code ec;
        socket.non_blocking(true, ec);
        if (ec) {
            return false;
        }
        std::array<char, 1> byte{};
        socket.receive(asio::buffer(byte), tcp::socket::message_peek, ec);
        const bool alive = ec == asio::error::would_block || ec == asio::error::try_again;
        error_code ignored;
        socket.non_blocking(false, ignored);
        return alive;
    }
};

using ConnectionPtr = std::unique_ptr<Connection>;

struct SslSessionFree {
    void operator()(SSL_SESSION* session) const { SSL_SESSION_free(session); }
};
using SslSessionPtr = std::unique_ptr<SSL_SESSION, SslSessionFree>;

/// The error of an answer (a body, a streamed line) over the request's limit. Not worth a retry:
/// the server would send the same again.
Error too_large(std::string_view origin, std::size_t limit) {
    return fail(ErrorKind::kBadRequest, "the answer of " + std::string{origin} +
                                            " is larger than the limit of " +
                                            std::to_string(limit) + " bytes");
}

/// The single place where an I/O error code becomes a serin::Error.
Error to_error(const error_code& ec, Phase phase, std::string_view origin, Connection* conn,
               std::size_t limit) {
    const std::string where = std::string{describe(phase)} + " " + std::string{origin};
    if (ec == bhttp::error::body_limit ||
        (ec.category() == boost::system::generic_category() && ec.value() == EMSGSIZE)) {
        return too_large(origin, limit);
    }
    if (ec == bhttp::error::header_limit) {
        return fail(ErrorKind::kBadRequest,
                    "the headers of the answer of " + std::string{origin} + " are too large");
    }
    if (ec == beast::error::timeout) {
        return fail(ErrorKind::kTransient, where + " timed out");
    }
    if (ec == asio::error::operation_aborted) {
        return cancelled_error(origin);
    }
    if (ec.category() == asio::error::get_ssl_category()) {
        const auto reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
        if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            long verify_result = X509_V_OK;
            if (conn != nullptr && conn->tls) {
                verify_result = SSL_get_verify_result(conn->tls->native_handle());
            }
            const std::string detail = verify_result != X509_V_OK
                                           ? X509_verify_cert_error_string(verify_result)
                                           : "rejected by the verify callback";
            return fail(ErrorKind::kTls, "the TLS certificate of " + std::string{origin} +
                                             " could not be verified: certificate verify failed (" +
                                             detail +
                                             "); check the CA certificate the client trusts");
        }
        // An alert from the server (e.g. it rejected our client certificate) or a protocol error.
        return fail(ErrorKind::kTls, where + " failed: " + ec.message());
    }
    if (ec == ssl::error::stream_truncated) {
        return fail(ErrorKind::kTransient, where + " failed: connection closed without TLS close");
    }
    if (phase == Phase::kHandshake) {
        return fail(ErrorKind::kTls, where + " failed: " + ec.message());
    }
    return fail(ErrorKind::kTransient, where + " failed: " + ec.message());
}

bool is_success(int status) { return status >= 200 && status < 300; }

/// Asks the proxy at the other end of `stream` for a tunnel to `route.url` (before the deadline
/// the stream carries). Any 2xx answer opens it; anything else is an error naming the proxy.
asio::awaitable<Result<void>> open_tunnel(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                          const Route& route, const std::string& user_agent) {
    const std::string proxy = route.proxy->url.origin();
    const std::string target = route.url.authority();
    bhttp::request<bhttp::empty_body> connect{bhttp::verb::connect, target, 11};
    connect.set(bhttp::field::host, target);
    connect.set(bhttp::field::user_agent, user_agent);
    if (!route.proxy->authorization.empty()) {
        connect.set(bhttp::field::proxy_authorization, route.proxy->authorization);
    }
    auto state = co_await asio::this_coro::cancellation_state;
    auto [write_ec, written] = co_await bhttp::async_write(stream, connect, kIo);
    if (write_ec) {
        co_return to_error(write_ec, Phase::kTunnel, proxy, nullptr, 0);
    }
    if (is_cancelled(state)) {
        co_return cancelled_error(route.url.origin());
    }
    bhttp::response_parser<bhttp::empty_body> parser;
    parser.skip(true);  // an answer to CONNECT has no body; the tunnel follows the header
    auto [read_ec, read] = co_await bhttp::async_read_header(stream, buffer, parser, kIo);
    if (read_ec) {
        co_return to_error(read_ec, Phase::kTunnel, proxy, nullptr, 0);
    }
    const auto status = static_cast<int>(parser.get().result_int());
    if (!is_success(status)) {
        co_return status_error(status, "the proxy " + proxy + " refused a tunnel to " + target +
                                           ": " + std::to_string(status) + " " +
                                           std::string{parser.get().reason()});
    }
    if (buffer.size() != 0) {
        // TLS starts with the client's hello: bytes already here cannot be the server's.
        co_return fail(ErrorKind::kTransient, "the proxy " + proxy + " sent " +
                                                  std::to_string(buffer.size()) +
                                                  " unexpected bytes after opening a tunnel to " +
                                                  target);
    }
    co_return Result<void>{};
}

/// The result of one request/response exchange on one connection.
struct Outcome {
    Response response;
    error_code ec;
    Phase phase = Phase::kWrite;
    bool got_response_bytes = false;  ///< false: the server may have closed an idle connection
    bool reusable = false;            ///< the connection can go back to the pool
};

void copy_headers(const bhttp::fields& fields, Headers& out) {
    for (const auto& field : fields) {
        out.emplace_back(std::string{field.name_string()}, std::string{field.value()});
    }
}

/// Splits a body into lines across reads. Returns false once the handler asks to stop or a line
/// grows past the limit (then too_long() says so).
class LineSplitter {
public:
    LineSplitter(const LineHandler& on_line, std::size_t max_line)
        : on_line_(on_line), max_line_(max_line) {}

    bool feed(std::string_view data) {
        while (!data.empty()) {
            const auto newline = data.find('\n');
            const std::size_t part = newline == std::string_view::npos ? data.size() : newline;
            if (pending_.size() + part > max_line_) {
                too_long_ = true;
                return false;
            }
            if (newline == std::string_view::npos) {
                pending_.append(data);
                return true;
            }
            std::string_view line = data.substr(0, newline);
            if (!pending_.empty()) {
                pending_.append(line);
                line = pending_;
            }
            data.remove_prefix(newline + 1);
            if (!deliver(line)) {
                return false;
            }
        }
        return true;
    }

    /// The body ended: a last line without a newline is still a line.
    bool finish() { return pending_.empty() || deliver(pending_); }

    /// Whether feed() stopped because a line grew past the limit.
    bool too_long() const { return too_long_; }

private:
    bool deliver(std::string_view line) {
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        const bool more = on_line_(line);
        pending_.clear();
        return more;
    }

    const LineHandler& on_line_;
    std::size_t max_line_;
    std::string pending_;
    bool too_long_ = false;
};

/// Writes the request and reads the whole response before `deadline` (set by the caller).
template <class Stream>
asio::awaitable<Outcome> exchange_whole(Stream& stream, Connection& conn, const BeastRequest& msg,
                                        std::size_t max_body) {
    Outcome out;
    auto state = co_await asio::this_coro::cancellation_state;
    auto [write_ec, written] = co_await bhttp::async_write(stream, msg, kIo);
    if (write_ec) {
        out.ec = write_ec;
        out.phase = Phase::kWrite;
        co_return out;
    }
    if (is_cancelled(state)) {
        out.ec = asio::error::operation_aborted;
        co_return out;
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(max_body);
    if (msg.method() == bhttp::verb::head) {
        parser.skip(true);
    }
    auto [read_ec, read] = co_await bhttp::async_read(stream, conn.buffer, parser, kIo);
    out.got_response_bytes = parser.got_some();
    if (read_ec) {
        out.ec = read_ec;
        out.phase = Phase::kRead;
        co_return out;
    }
    auto message = parser.release();
    out.response.status = static_cast<int>(message.result_int());
    copy_headers(message.base(), out.response.headers);
    out.response.body = std::move(message.body());
    out.reusable = message.keep_alive() && msg.keep_alive();
    co_return out;
}

/// Writes the request and streams a 2xx body line by line; `timeout` bounds each silence.
template <class Stream>
asio::awaitable<Outcome> exchange_stream(Stream& stream, Connection& conn, const BeastRequest& msg,
                                         std::chrono::milliseconds timeout,
                                         const LineHandler& on_line, std::size_t max_line) {
    Outcome out;
    auto state = co_await asio::this_coro::cancellation_state;
    conn.tcp().expires_after(timeout);
    auto [write_ec, written] = co_await bhttp::async_write(stream, msg, kIo);
    if (write_ec) {
        out.ec = write_ec;
        out.phase = Phase::kWrite;
        co_return out;
    }
    out.phase = Phase::kRead;
    if (is_cancelled(state)) {
        out.ec = asio::error::operation_aborted;
        co_return out;
    }
    bhttp::response_parser<bhttp::buffer_body> parser;
    parser.body_limit(boost::none);  // a watch never ends; each line is bounded below
    if (msg.method() == bhttp::verb::head) {
        parser.skip(true);
    }
    conn.tcp().expires_after(timeout);
    auto [header_ec, header_read] =
        co_await bhttp::async_read_header(stream, conn.buffer, parser, kIo);
    out.got_response_bytes = parser.got_some();
    if (header_ec) {
        out.ec = header_ec;
        co_return out;
    }
    out.response.status = static_cast<int>(parser.get().result_int());
    copy_headers(parser.get().base(), out.response.headers);

    if (!is_success(out.response.status)) {
        // An error answer comes back whole: switch to a string body for the rest.
        bhttp::response_parser<bhttp::string_body> whole{std::move(parser)};
        whole.body_limit(max_line);
        if (!whole.is_done()) {
            if (is_cancelled(state)) {
                out.ec = asio::error::operation_aborted;
                co_return out;
            }
            conn.tcp().expires_after(timeout);
            auto [body_ec, body_read] = co_await bhttp::async_read(stream, conn.buffer, whole, kIo);
            if (body_ec) {
                out.ec = body_ec;
                co_return out;
            }
        }
        out.response.body = std::move(whole.get().body());
        out.reusable = whole.keep_alive() && msg.keep_alive();
        co_return out;
    }

    LineSplitter splitter{on_line, max_line};
    std::vector<char> chunk(kStreamChunk);
    while (!parser.is_done()) {
        if (is_cancelled(state)) {
            out.ec = asio::error::operation_aborted;
            co_return out;
        }
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        conn.tcp().expires_after(timeout);
        auto [ec, n] = co_await bhttp::async_read_some(stream, conn.buffer, parser, kIo);
        if (ec && ec != bhttp::error::need_buffer) {
            out.ec = ec;
            co_return out;
        }
        const std::size_t got = chunk.size() - parser.get().body().size;
        if (!splitter.feed(std::string_view{chunk.data(), got})) {
            if (splitter.too_long()) {
                out.ec = error_code{EMSGSIZE, boost::system::generic_category()};
            }
            co_return out;  // the handler stopped: the rest of the body is unread, not reusable
        }
    }
    if (!splitter.finish()) {
        co_return out;
    }
    out.reusable = parser.keep_alive() && msg.keep_alive();
    co_return out;
}

class BeastClient final : public HttpClient {
public:
    BeastClient(asio::any_io_executor executor, ClientOptions options,
                std::unique_ptr<ssl::context> tls_context)
        : executor_(std::move(executor)),
          options_(std::move(options)),
          tls_context_(std::move(tls_context)) {}

    asio::awaitable<Result<Response>> send(Request request) override {
        auto route = route_for(request, options_.proxies.get());
        if (!route) {
            co_return route.error();
        }
        const auto deadline = Clock::now() + request.timeout;
        auto msg = build(request, *route);
        if (!msg) {
            co_return msg.error();
        }
        const std::size_t limit = limit_of(request);
        co_return co_await on_connection(*route, deadline, limit, [&](Connection& conn) {
            conn.tcp().expires_at(deadline);
            return conn.visit(
                [&](auto& stream) { return exchange_whole(stream, conn, *msg, limit); });
        });
    }

    asio::awaitable<Result<Response>> stream(Request request, LineHandler on_line) override {
        auto route = route_for(request, options_.proxies.get());
        if (!route) {
            co_return route.error();
        }
        auto msg = build(request, *route);
        if (!msg) {
            co_return msg.error();
        }
        const std::size_t limit = limit_of(request);
        co_return co_await on_connection(
            *route, Clock::now() + request.timeout, limit, [&](Connection& conn) {
                return conn.visit([&](auto& stream) {
                    return exchange_stream(stream, conn, *msg, request.timeout, on_line, limit);
                });
            });
    }

    ClientStats stats() const override { return stats_; }

private:
    std::size_t limit_of(const Request& request) const {
        return request.max_body_bytes != 0 ? request.max_body_bytes : options_.max_body_bytes;
    }

    /// Takes an idle connection for the route or opens one (by `open_deadline`), runs
    /// `exchange(Connection&) -> awaitable<Outcome>` on it and pools it again when the exchange
    /// leaves it reusable. A reused connection that the server had already closed is retried once
    /// on a fresh one; a retry never takes another idle connection, as those may be stale too.
    template <class Exchange>
    asio::awaitable<Result<Response>> on_connection(const Route& route,
                                                    Clock::time_point open_deadline,
                                                    std::size_t limit, Exchange exchange) {
        auto state = co_await asio::this_coro::cancellation_state;
        const auto origin = route.url.origin();
        for (int attempt = 0;; ++attempt) {
            ConnectionPtr conn = attempt == 0 ? take_idle(route.pool_key) : nullptr;
            const bool reused = conn != nullptr;
            if (is_cancelled(state)) {
                co_return cancelled_error(origin);
            }
            if (!reused) {
                auto opened = co_await open(route, open_deadline);
                if (!opened) {
                    co_return opened.error();
                }
                conn = std::move(*opened);
            } else {
                ++stats_.connections_reused;
            }
            if (is_cancelled(state)) {
                co_return cancelled_error(origin);
            }
            Outcome out = co_await exchange(*conn);
            if (out.ec) {
                if (should_retry(out, reused, attempt)) {
                    continue;
                }
                co_return to_error(out.ec, out.phase, origin, conn.get(), limit);
            }
            keep_tls_session(origin, *conn);
            if (out.reusable) {
                put_idle(std::move(conn));
            }
            co_return std::move(out.response);
        }
    }

    /// A kept-alive connection the server closed before answering: the request never reached
    /// it (or it dropped it unanswered), so it is sent once more on a fresh connection.
    static bool should_retry(const Outcome& out, bool reused, int attempt) {
        return reused && attempt == 0 && !out.got_response_bytes &&
               out.ec != beast::error::timeout && out.ec != asio::error::operation_aborted;
    }

    Result<BeastRequest> build(const Request& request, const Route& route) const {
        const Url& url = route.url;
        BeastRequest msg;
        msg.method(to_verb(request.method));
        if (route.proxy && url.scheme == "http") {
            // To a proxy, in absolute form (RFC 9112 §3.2.2); https goes through a tunnel.
            msg.target(url.origin() + url.target);
            if (!route.proxy->authorization.empty()) {
                msg.set(bhttp::field::proxy_authorization, route.proxy->authorization);
            }
        } else {
            msg.target(url.target);
        }
        msg.version(11);
        bool has_host = false;
        bool has_user_agent = false;
        for (const auto& [name, value] : request.headers) {
            // A line break would end the header early and let the rest pass as headers of its
            // own (header values come from Secrets and MetricTemplates, which users write).
            if (text::has_line_break(value) || text::has_line_break(name) || name.empty()) {
                return fail(ErrorKind::kInvalid,
                            "the header \"" + text::clip(name, 64) +
                                "\" has a line break or NUL in its name or value");
            }
            has_host = has_host || beast::iequals(name, "host");
            has_user_agent = has_user_agent || beast::iequals(name, "user-agent");
            msg.insert(name, value);
        }
        if (!has_host) {
            const bool ipv6 = url.host.find(':') != std::string::npos;
            std::string host = ipv6 ? "[" + url.host + "]" : url.host;
            const bool default_port = (url.scheme == "http" && url.port == "80") ||
                                      (url.scheme == "https" && url.port == "443");
            if (!default_port) {
                host += ":" + url.port;
            }
            msg.set(bhttp::field::host, host);
        }
        if (!has_user_agent) {
            msg.set(bhttp::field::user_agent, options_.user_agent);
        }
        msg.body() = request.body;
        msg.keep_alive(true);
        msg.prepare_payload();
        return msg;
    }

    static bhttp::verb to_verb(Method method) {
        switch (method) {
            case Method::kGet:
                return bhttp::verb::get;
            case Method::kHead:
                return bhttp::verb::head;
            case Method::kPost:
                return bhttp::verb::post;
            case Method::kPut:
                return bhttp::verb::put;
            case Method::kPatch:
                return bhttp::verb::patch;
            case Method::kDelete:
                return bhttp::verb::delete_;
        }
        return bhttp::verb::get;
    }

    ConnectionPtr take_idle(const std::string& pool_key) {
        auto it = idle_.find(pool_key);
        if (it == idle_.end()) {
            return nullptr;
        }
        auto& queue = it->second;
        ConnectionPtr found;
        while (!queue.empty() && !found) {
            ConnectionPtr conn = std::move(queue.back());  // the most recently used first
            queue.pop_back();
            --idle_total_;
            if (conn->looks_alive()) {
                found = std::move(conn);
            }
        }
        if (queue.empty()) {
            idle_.erase(it);  // an origin with nothing idle keeps no entry
        }
        return found;
    }

    void put_idle(ConnectionPtr conn) {
        if (options_.max_idle_per_origin == 0 || options_.max_idle_total == 0 ||
            conn->buffer.size() != 0) {
            return;
        }
        conn->tcp().expires_never();
        conn->idle_since = Clock::now();
        auto& queue = idle_[conn->pool_key];
        queue.push_back(std::move(conn));
        ++idle_total_;
        if (queue.size() > options_.max_idle_per_origin) {
            queue.pop_front();  // the oldest goes
            --idle_total_;
        }
        while (idle_total_ > options_.max_idle_total) {
            drop_oldest_idle();
        }
    }

    /// Closes the connection that has been idle longest, whatever its origin.
    void drop_oldest_idle() {
        auto oldest = idle_.end();
        for (auto it = idle_.begin(); it != idle_.end(); ++it) {
            if (oldest == idle_.end() ||
                it->second.front()->idle_since < oldest->second.front()->idle_since) {
                oldest = it;
            }
        }
        if (oldest == idle_.end()) {
            idle_total_ = 0;
            return;
        }
        oldest->second.pop_front();
        --idle_total_;
        if (oldest->second.empty()) {
            idle_.erase(oldest);
        }
    }

    /// Resolves a host name before `deadline`; the resolver knows neither deadlines nor
    /// cancellation slots, so a timer and a slot handler cancel it.
    asio::awaitable<Result<std::vector<tcp::endpoint>>> resolve(const Url& url,
                                                                Clock::time_point deadline) {
        struct Shared {
            explicit Shared(const asio::any_io_executor& ex) : resolver(ex) {}
            tcp::resolver resolver;
            bool timed_out = false;
        };
        auto state = co_await asio::this_coro::cancellation_state;
        const auto origin = url.origin();
        auto shared = std::make_shared<Shared>(executor_);
        asio::steady_timer timer{executor_};
        timer.expires_at(deadline);
        timer.async_wait([weak = std::weak_ptr<Shared>(shared)](const error_code& ec) {
            if (auto s = weak.lock(); s && !ec) {
                s->timed_out = true;
                s->resolver.cancel();
            }
        });
        if (auto slot = state.slot(); slot.is_connected()) {
            // Cleared by the awaitable machinery when async_resolve completes.
            slot.assign([weak = std::weak_ptr<Shared>(shared)](asio::cancellation_type) {
                if (auto s = weak.lock()) {
                    s->resolver.cancel();
                }
            });
        }
        auto [ec, results] = co_await shared->resolver.async_resolve(url.host, url.port, kIo);
        timer.cancel();
        if (is_cancelled(state)) {
            co_return cancelled_error(origin);
        }
        if (shared->timed_out) {
            co_return fail(ErrorKind::kTransient, "resolving the host of " + origin + " timed out");
        }
        if (ec) {
            co_return to_error(ec, Phase::kResolve, origin, nullptr, 0);
        }
        std::vector<tcp::endpoint> endpoints;
        for (const auto& entry : results) {
            endpoints.push_back(entry.endpoint());
        }
        co_return endpoints;
    }

    /// The address policy on the names (or literals) of the URL and the proxy, before any
    /// resolution.
    Result<void> check_hosts(const Route& route) const {
        if (!options_.address_policy) {
            return {};
        }
        if (auto allowed = options_.address_policy->check_host(route.url.host); !allowed) {
            return allowed;
        }
        if (route.proxy) {
            return options_.address_policy->check_host(route.proxy->url.host);
        }
        return {};
    }

    /// Drops the endpoints the address policy refuses; refused when none is left.
    Result<void> keep_allowed(std::vector<tcp::endpoint>& endpoints, const std::string& host) const {
        if (!options_.address_policy) {
            return {};
        }
        std::optional<Error> first_refusal;
        std::erase_if(endpoints, [&](const tcp::endpoint& endpoint) {
            auto allowed = options_.address_policy->check_address(endpoint.address().to_string(), host);
            if (!allowed && !first_refusal) {
                first_refusal = allowed.error();
            }
            return !allowed;
        });
        if (endpoints.empty() && first_refusal) {
            return *first_refusal;
        }
        return {};
    }

    /// Connects a fresh connection before `deadline`: to the URL's host, or to the proxy (with a
    /// CONNECT tunnel for https); then, for https, the TLS handshake with the URL's host.
    asio::awaitable<Result<ConnectionPtr>> open(const Route& route, Clock::time_point deadline) {
        auto state = co_await asio::this_coro::cancellation_state;
        const Url& url = route.url;
        const Url& hop = route.first_hop();
        const auto origin = url.origin();
        const auto connect_deadline = std::min(deadline, Clock::now() + options_.connect_timeout);
        if (auto allowed = check_hosts(route); !allowed) {
            co_return allowed.error();
        }
        std::vector<tcp::endpoint> endpoints;
        error_code ec;
        const auto address = asio::ip::make_address(hop.host, ec);
        if (!ec) {
            endpoints.emplace_back(address, static_cast<unsigned short>(std::stoul(hop.port)));
        } else {
            auto resolved = co_await resolve(hop, connect_deadline);
            if (!resolved) {
                co_return resolved.error();
            }
            endpoints = std::move(*resolved);
            if (is_cancelled(state)) {
                co_return cancelled_error(origin);
            }
        }

        if (auto allowed = keep_allowed(endpoints, hop.host); !allowed) {
            co_return allowed.error();
        }

        auto conn = std::make_unique<Connection>();
        conn->pool_key = route.pool_key;
        beast::tcp_stream tcp_stream{executor_};
        tcp_stream.expires_at(connect_deadline);
        auto [connect_ec, endpoint] = co_await tcp_stream.async_connect(endpoints, kIo);
        if (connect_ec) {
            const std::string where = route.proxy ? "the proxy " + hop.origin() : origin;
            co_return to_error(connect_ec, Phase::kConnect, where, nullptr, 0);
        }
        ++stats_.connections_opened;
        tcp_stream.socket().set_option(tcp::no_delay(true), ec);
        if (route.proxy && url.scheme == "https") {
            if (is_cancelled(state)) {
                co_return cancelled_error(origin);
            }
            auto tunnel = co_await open_tunnel(tcp_stream, conn->buffer, route, options_.user_agent);
            if (!tunnel) {
                co_return tunnel.error();
            }
        }
        if (url.scheme == "http") {
            conn->plain.emplace(std::move(tcp_stream));
            co_return conn;
        }

        if (auto roots = load_system_roots(); !roots) {
            co_return roots.error();
        }
        auto& tls = conn->tls.emplace(std::move(tcp_stream), *tls_context_);
        if (!is_ip_literal(url.host)) {
            // SNI; IP literals are not allowed in server_name (RFC 6066).
            // SSL_set_tlsext_host_name without the macro's C-style cast.
            SSL_ctrl(tls.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(url.host.c_str()));
        }
        if (!options_.tls.insecure_skip_verify) {
            tls.set_verify_callback(
                [check = ssl::host_name_verification(url.host), ip = is_ip_literal(url.host)](
                    bool preverified, ssl::verify_context& ctx) {
                    const bool ok = check(preverified, ctx);
                    if (preverified && !ok) {
                        // Say why in SSL_get_verify_result (Asio leaves X509_V_OK).
                        X509_STORE_CTX_set_error(
                            ctx.native_handle(),
                            ip ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH);
                    }
                    return ok;
                });
        }
        if (is_cancelled(state)) {
            co_return cancelled_error(origin);
        }
        const auto kept = tls_sessions_.find(origin);
        if (kept != tls_sessions_.end()) {
            SSL_set_session(tls.native_handle(), kept->second.get());  // it may be declined
        }
        tls.next_layer().expires_at(connect_deadline);
        auto [handshake_ec] = co_await tls.async_handshake(ssl::stream_base::client, kIo);
        if (handshake_ec) {
            tls_sessions_.erase(origin);
            co_return to_error(handshake_ec, Phase::kHandshake, origin, conn.get(), 0);
        }
        if (SSL_session_reused(tls.native_handle()) == 1) {
            ++stats_.tls_sessions_resumed;
        }
        co_return conn;
    }

    /// Keeps the TLS session of a connection that carried an exchange, so the next connection to
    /// the same origin resumes it: no certificate sent, parsed and verified, no signature made by
    /// the server (a burst of release starts opens tens of connections to the API server at
    /// once). TLS 1.3 tickets arrive after the handshake, so the session is taken after an
    /// answer was read, once per connection (at the first answer that finds it resumable). Only
    /// a session this client verified for this very origin is offered again.
    void keep_tls_session(const std::string& origin, Connection& conn) {
        if (!conn.tls || conn.tls_session_kept) {
            return;  // once per connection, not on every request it carries
        }
        const SslSessionPtr session{SSL_get1_session(conn.tls->native_handle())};
        if (session == nullptr || SSL_SESSION_is_resumable(session.get()) != 1) {
            return;
        }
        // A copy: OpenSSL marks a session unresumable when its connection is freed without a
        // close_notify, as a pooled connection the server dropped is.
        SslSessionPtr copy{SSL_SESSION_dup(session.get())};
        if (copy == nullptr) {
            return;
        }
        conn.tls_session_kept = true;
        if (!tls_sessions_.contains(origin) &&
            tls_sessions_.size() >= std::max<std::size_t>(1, options_.max_idle_total)) {
            tls_sessions_.erase(tls_sessions_.begin());  // origins are not ours to bound
        }
        tls_sessions_[origin] = std::move(copy);
    }

    /// The system's CA store, loaded at the first TLS connection that verifies against it
    /// (~0.7 MB parsed: serin makes five clients, and most never speak TLS).
    Result<void> load_system_roots() {
        if (system_roots_loaded_ || options_.tls.insecure_skip_verify ||
            !options_.tls.ca_pem.empty()) {
            return Result<void>{};
        }
        error_code ec;
        tls_context_->set_default_verify_paths(ec);
        if (ec) {
            return fail(ErrorKind::kInvalid, "cannot load the system CA store: " + ec.message());
        }
        system_roots_loaded_ = true;
        return Result<void>{};
    }

    asio::any_io_executor executor_;
    ClientOptions options_;
    std::unique_ptr<ssl::context> tls_context_;
    bool system_roots_loaded_ = false;
    /// Idle connections per pool key; a key with none has no entry.
    std::unordered_map<std::string, std::deque<ConnectionPtr>> idle_;
    std::size_t idle_total_ = 0;
    /// The resumable TLS session of the last connection opened per origin (a copy), at most
    /// max_idle_total of them (at least one).
    std::unordered_map<std::string, SslSessionPtr> tls_sessions_;
    ClientStats stats_;
};

Result<std::unique_ptr<ssl::context>> make_tls_context(const TlsOptions& tls) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
    error_code ec;
    context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                             ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                             ssl::context::no_tlsv1_1,
                         ec);
    if (ec) {
        return fail(ErrorKind::kInvalid, "TLS options: " + ec.message());
    }
    if (tls.insecure_skip_verify) {
        context->set_verify_mode(ssl::verify_none, ec);
    } else {
        context->set_verify_mode(ssl::verify_peer, ec);
    }
    if (ec) {
        return fail(ErrorKind::kInvalid, "TLS verify mode: " + ec.message());
    }
    if (!tls.ca_pem.empty()) {
        context->add_certificate_authority(asio::buffer(tls.ca_pem), ec);
        if (ec) {
            return fail(ErrorKind::kInvalid, "cannot load the CA certificate: " + ec.message());
        }
    }  // else the system's store, when first needed (BeastClient::load_system_roots)
    if (tls.client_cert_pem.empty() != tls.client_key_pem.empty()) {
        return fail(ErrorKind::kInvalid,
                    "a client certificate needs both the certificate and the key");
    }
    if (!tls.client_cert_pem.empty()) {
        context->use_certificate_chain(asio::buffer(tls.client_cert_pem), ec);
        if (ec) {
            return fail(ErrorKind::kInvalid, "cannot load the client certificate: " + ec.message());
        }
        context->use_private_key(asio::buffer(tls.client_key_pem), ssl::context::pem, ec);
        if (ec) {
            return fail(ErrorKind::kInvalid, "cannot load the client key: " + ec.message());
        }
        if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
            ERR_clear_error();
            return fail(ErrorKind::kInvalid,
                        "the client key does not match the client certificate");
        }
    }
    return context;
}

}  // namespace

Result<HttpClientPtr> make_beast_client(boost::asio::any_io_executor executor,
                                        ClientOptions options) {
    auto context = make_tls_context(options.tls);
    if (!context) {
        return context.error();
    }
    return HttpClientPtr{std::make_unique<BeastClient>(std::move(executor), std::move(options),
                                                       std::move(*context))};
}

}  // namespace serin::http
