#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "platform/core/result.hpp"

namespace serin::http {

/// One request as a ServerAsyncHandler sees it: the whole body, read within
/// ServerOptions::max_body_bytes.
struct ServerRequest {
    std::string method;  ///< "GET", "POST", ...
    std::string target;  ///< path and query
    std::string body;
    /// Header fields in the order received (names as sent), within ServerOptions::max_header_bytes.
    std::vector<std::pair<std::string, std::string>> headers;

    /// The first header field named `name` (ASCII case-insensitive), if any.
    std::optional<std::string_view> header(std::string_view name) const;
};

/// The open connection of a streamed answer (ServerResponse::stream).
class ResponseStream {
public:
    virtual ~ResponseStream() = default;
    /// Sends `data` as one chunk, within ServerOptions::idle_timeout. False once the peer has
    /// gone, the write timed out or the server stopped: the writer should return then.
    virtual boost::asio::awaitable<bool> write(std::string data) = 0;
    /// False once the server has stopped.
    virtual bool open() const = 0;
};

/// Writes a streamed answer's body (server-sent events, say) until it returns; the connection
/// is closed after it. Runs on the server's io_context thread.
using StreamWriter = std::function<boost::asio::awaitable<void>(ResponseStream&)>;

/// What a handler answers.
struct ServerResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    /// More header fields (Set-Cookie, Cache-Control, ...); names and values must not hold
    /// line breaks.
    std::vector<std::pair<std::string, std::string>> headers = {};
    /// When set, `body` is ignored: the header goes out with chunked transfer encoding, then
    /// `stream` writes the body piece by piece (awaited handlers only).
    StreamWriter stream = nullptr;
};

/// Answers one request from its method ("GET", ...) and target (path and query). Runs on the
/// server's io_context thread, so it must not block. The request's body is read and dropped.
using ServerHandler = std::function<ServerResponse(std::string_view method, std::string_view target)>;

/// Answers one request, taking as long as it needs (the connection waits with no deadline; other
/// connections are served meanwhile). Runs on the server's io_context thread.
using ServerAsyncHandler = std::function<boost::asio::awaitable<ServerResponse>(ServerRequest)>;

/// The limits of one server. The defaults are those of the controller's own endpoints.
struct ServerOptions {
    /// Larger request bodies are answered 413 and the connection is closed.
    std::size_t max_body_bytes = 64 * 1024;
    /// The request line and header fields together; larger requests close the connection.
    std::uint32_t max_header_bytes = 8 * 1024;
    /// Connections accepted beyond this many open ones are closed at once.
    std::size_t max_connections = 128;
    /// Silence that closes a connection: waiting for a request, reading it, writing an answer.
    std::chrono::milliseconds idle_timeout = std::chrono::seconds{30};
    /// The Server header of every answer.
    std::string server_name = "serin";
};

/// A small HTTP/1.1 server: the controller's own endpoints (/metrics, /healthz, /readyz),
/// meshsim's front, serin-loadtester's API. Keep-alive, one request at a time per connection,
/// the limits of ServerOptions. Beast stays in the .cpp.
///
/// Thread safety: one io_context thread.
class HttpServer {
public:
    /// Listens on `address`:`port` (port 0: one the kernel picks) with the default options and a
    /// synchronous handler. Errors: kInvalid for an address that does not parse, kTransient when
    /// the port cannot be bound.
    static Result<std::unique_ptr<HttpServer>> listen(boost::asio::any_io_executor executor,
                                                      const std::string& address,
                                                      std::uint16_t port, ServerHandler handler);
    /// The same with `options` and a handler that is awaited and gets the request's body.
    static Result<std::unique_ptr<HttpServer>> listen(boost::asio::any_io_executor executor,
                                                      const std::string& address,
                                                      std::uint16_t port, ServerOptions options,
                                                      ServerAsyncHandler handler);
    ~HttpServer();  ///< stop()s
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    /// The port listened on; 0 once accepting has stopped.
    std::uint16_t port() const;
    /// Accepts that failed (say, out of file descriptors) since the server started. After a
    /// failure the server waits before it accepts again, 50 ms doubling to 1 s, instead of
    /// spinning.
    std::uint64_t accept_failures() const;
    /// The default ServerOptions::max_connections.
    static constexpr std::size_t kMaxConnections = 128;
    /// Stops accepting; open connections are still answered (a graceful shutdown).
    void stop_accepting();
    /// Stops accepting and closes every open connection (answers being written are cut).
    void stop();

    struct State;  ///< shared with the server's coroutines, defined in the .cpp

private:
    explicit HttpServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
};

}  // namespace serin::http
