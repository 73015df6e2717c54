#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "loadtester/loadtester.hpp"
#include "platform/core/result.hpp"

namespace serin::loadtester {

/// Answers one request; may take as long as its task (a blocking task type).
using AsyncHandler = std::function<boost::asio::awaitable<Response>(Request)>;

/// The load tester's HTTP/1.1 server. platform/http's HttpServer answers synchronously and drops
/// bodies; this one reads bodies (at most kMaxBodyBytes: 413 beyond) and awaits its handler.
/// Keep-alive; 30 s of silence closes a connection; headers at most 16 KiB; at most
/// kMaxConnections open (more are closed at once). Beast stays in the .cpp.
///
/// Thread safety: one io_context thread.
class Server {
public:
    static constexpr std::size_t kMaxConnections = 256;

    /// Errors: kInvalid for an address that is not an IP address, kTransient when it cannot bind.
    static Result<std::unique_ptr<Server>> listen(boost::asio::any_io_executor executor,
                                                  const std::string& address, std::uint16_t port,
                                                  AsyncHandler handler);
    ~Server();  ///< stop()s
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;
    /// Stops accepting; open connections are still answered.
    void stop_accepting();
    /// Stops accepting and closes every connection (answers being written are cut).
    void stop();

    struct State;

private:
    explicit Server(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
};

}  // namespace serin::loadtester
