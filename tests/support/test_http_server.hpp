#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace serin::test {

namespace detail {
struct ServerState;  ///< the state of a TestHttpServer, shared with its coroutines
}  // namespace detail

using TestHeaders = std::vector<std::pair<std::string, std::string>>;

/// One request as the test server read it.
struct TestRequest {
    std::string method;  ///< "GET", "POST", ...
    std::string target;  ///< path and query
    TestHeaders headers;
    std::string body;
    std::size_t connection = 0;             ///< index of the connection, in accept order
    std::size_t request_on_connection = 0;  ///< 0 for the first request on its connection

    /// The first header of that name, case-insensitively.
    std::optional<std::string_view> header(std::string_view name) const;
};

/// A one-shot flag a server handler can wait on and a test can set (or the reverse). Belongs to
/// the io_context thread of the executor it is made with.
class TestEvent {
public:
    explicit TestEvent(boost::asio::any_io_executor executor);
    ~TestEvent();
    TestEvent(const TestEvent&) = delete;
    TestEvent& operator=(const TestEvent&) = delete;

    void set();
    bool is_set() const;
    /// Returns once set() was called (at once if it already was).
    boost::asio::awaitable<void> wait();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// How a handler answers. Every write goes out at once, so a test controls what the client sees
/// and when. Write errors (the client went away) are remembered and end the connection after
/// the handler returns; later writes do nothing.
class TestResponseWriter {
public:
    struct Backend;  ///< the connection behind the writer, defined in the .cpp
    TestResponseWriter(Backend& backend, bool head) : backend_(backend), head_(head) {}

    /// A whole response with Content-Length (and, for a HEAD request, without the body).
    boost::asio::awaitable<void> respond(int status, std::string body, TestHeaders headers = {});
    /// The status line and headers of a chunked response; then write_chunk() and end_chunked().
    boost::asio::awaitable<void> start_chunked(int status, TestHeaders headers = {});
    boost::asio::awaitable<void> write_chunk(std::string_view data);
    boost::asio::awaitable<void> end_chunked();
    /// Any bytes, as they are.
    boost::asio::awaitable<void> write_raw(std::string data);
    /// Closes the connection once the handler returns (after whatever it wrote).
    void close() { close_ = true; }
    /// Never answers: returns only when the server stops.
    boost::asio::awaitable<void> hang();

    bool closing() const { return close_ || failed_; }

private:
    Backend& backend_;
    bool head_ = false;
    bool close_ = false;
    bool failed_ = false;
};

/// TLS for the test server. With client_ca_pem set it requires a client certificate signed by it.
struct TestServerTls {
    std::string cert_pem;
    std::string key_pem;
    std::string client_ca_pem;
};

/// A real HTTP/1.1 server on 127.0.0.1 and a kernel-chosen port, for tests. It runs on the
/// executor it is given (one io_context thread) and serves keep-alive connections, one request
/// at a time per connection, by calling the handler; a handler that returns without writing
/// anything leaves the client waiting (use hang() to say so) unless it called close().
class TestHttpServer {
public:
    using Handler =
        std::function<boost::asio::awaitable<void>(const TestRequest&, TestResponseWriter&)>;

    TestHttpServer(boost::asio::any_io_executor executor, Handler handler);
    TestHttpServer(boost::asio::any_io_executor executor, Handler handler, TestServerTls tls);
    ~TestHttpServer();  ///< stop()s
    TestHttpServer(const TestHttpServer&) = delete;
    TestHttpServer& operator=(const TestHttpServer&) = delete;

    std::uint16_t port() const;
    /// "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
    std::string base_url() const;

    std::size_t connections_accepted() const;
    /// Every request read so far, in order.
    const std::vector<TestRequest>& requests() const;

    /// Stops accepting, closes every connection and wakes every hang().
    void stop();

private:
    std::shared_ptr<detail::ServerState> impl_;
};

}  // namespace serin::test
