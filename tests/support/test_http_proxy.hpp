#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace serin::test {

/// A loopback HTTP forward proxy on a kernel-chosen port, for tests of clients that post through
/// one. It serves CONNECT (a tunnel to the host and port named, bytes relayed untouched, so TLS
/// stays end to end) and requests in absolute form ("GET http://host:port/path"), which it
/// rewrites to origin form, without Proxy-Authorization, for the host named. After the first
/// request on a connection the bytes are relayed as they come, to the same upstream: one
/// upstream per client connection, which is all a client that pools by proxy and origin needs.
///
/// Thread safety: use from the thread that runs the executor's io_context.
class TestHttpProxy {
public:
    /// What a client asked the proxy for, as the first request on one connection.
    struct Ask {
        std::string method;  ///< "CONNECT", "POST", ...
        std::string target;  ///< "host:port" for CONNECT, else the absolute URL
        std::optional<std::string> proxy_authorization;
    };

    /// With `refuse_status` set, every request is answered with that status (e.g. 407) and the
    /// connection closed.
    explicit TestHttpProxy(boost::asio::any_io_executor executor, int refuse_status = 0);
    ~TestHttpProxy();  ///< closes the listener and every connection
    TestHttpProxy(const TestHttpProxy&) = delete;
    TestHttpProxy& operator=(const TestHttpProxy&) = delete;

    std::uint16_t port() const;
    /// "http://127.0.0.1:PORT".
    std::string url() const;
    /// Connects to `address` when asked for `host` (as curl's --resolve does), so a test can
    /// name an upstream that is not loopback, which clients never proxy.
    void alias(std::string host, std::string address);
    /// Every first request, in the order they were read.
    const std::vector<Ask>& asks() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace serin::test
