#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <memory>
#include <string>

namespace serin::test {

/// A loopback TCP proxy that can cut its connections, for faults the real API server won't
/// produce on demand (a watch stream dropped mid-chunk, a server that is unreachable for a while).
/// Bytes pass through untouched, so TLS works end to end.
///
/// Thread safety: use from the thread that runs the executor's io_context.
class TcpProxy {
public:
    TcpProxy(boost::asio::any_io_executor executor, std::string target_host,
             std::uint16_t target_port);
    ~TcpProxy();
    TcpProxy(const TcpProxy&) = delete;
    TcpProxy& operator=(const TcpProxy&) = delete;

    std::uint16_t port() const;
    /// Closes every open connection now.
    void cut();
    /// While blocked, new connections are closed as soon as they are accepted.
    void set_blocked(bool blocked);
    /// Connections accepted so far (blocked ones included).
    std::uint64_t accepted() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace serin::test
