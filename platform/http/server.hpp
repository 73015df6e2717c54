#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "platform/core/result.hpp"

namespace serin::http {

/// What a ServerHandler answers.
struct ServerResponse {
    int status = 200;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
};

/// Answers one request from its method ("GET", ...) and target (path and query). Runs on the
/// server's io_context thread, so it must not block.
using ServerHandler = std::function<ServerResponse(std::string_view method, std::string_view target)>;

/// A small HTTP/1.1 server for the controller's own endpoints (/metrics, /healthz, /readyz):
/// keep-alive, one request at a time per connection, 30 s of silence closes a connection, bodies
/// of requests are read and ignored (at most 64 KiB). Beast stays in the .cpp.
///
/// Thread safety: one io_context thread.
class HttpServer {
public:
    /// Listens on `address`:`port` (port 0: one the kernel picks). Errors: kInvalid for an
    /// address that does not parse, kTransient when the port cannot be bound.
    static Result<std::unique_ptr<HttpServer>> listen(boost::asio::any_io_executor executor,
                                                      const std::string& address,
                                                      std::uint16_t port, ServerHandler handler);
    ~HttpServer();  ///< stop()s
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    std::uint16_t port() const;
    /// Accepts that failed (say, out of file descriptors) since the server started. After a
    /// failure the server waits before it accepts again, 50 ms doubling to 1 s, instead of
    /// spinning; connections beyond kMaxConnections are closed at once.
    std::uint64_t accept_failures() const;
    static constexpr std::size_t kMaxConnections = 128;
    /// Stops accepting and closes every open connection.
    void stop();

    struct State;  ///< shared with the server's coroutines, defined in the .cpp

private:
    explicit HttpServer(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
};

}  // namespace serin::http
