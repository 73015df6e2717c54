// A loopback HTTP/1.1 server for tests, on Beast. Responses are written as raw bytes so that a
// test decides exactly what goes on the wire and when.
#include "tests/support/test_http_server.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <exception>
#include <map>
#include <string>

namespace serin::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr auto kIo = asio::as_tuple(asio::use_awaitable);

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

std::string status_line(int status) {
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string{reason} + "\r\n";
}

std::string header_lines(const TestHeaders& headers) {
    std::string out;
    for (const auto& [name, value] : headers) {
        out += name + ": " + value + "\r\n";
    }
    return out;
}

/// Rethrows a server coroutine's exception out of io_context::run(), so a test sees it.
void rethrow(const std::exception_ptr& error) {
    if (error) {
        std::rethrow_exception(error);
    }
}

}  // namespace

std::optional<std::string_view> TestRequest::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) {
            return std::string_view{value};
        }
    }
    return std::nullopt;
}

// ---- TestEvent ---------------------------------------------------------------------------------

struct TestEvent::Impl {
    explicit Impl(asio::any_io_executor executor) : timer(std::move(executor)) {
        timer.expires_at(asio::steady_timer::time_point::max());
    }
    asio::steady_timer timer;
    bool set = false;
};

TestEvent::TestEvent(asio::any_io_executor executor)
    : impl_(std::make_unique<Impl>(std::move(executor))) {}

TestEvent::~TestEvent() = default;

void TestEvent::set() {
    impl_->set = true;
    impl_->timer.cancel();
}

bool TestEvent::is_set() const { return impl_->set; }

asio::awaitable<void> TestEvent::wait() {
    while (!impl_->set) {
        co_await impl_->timer.async_wait(kIo);
    }
}

// ---- TestResponseWriter ------------------------------------------------------------------------

struct TestResponseWriter::Backend {
    virtual ~Backend() = default;
    /// False once the connection failed.
    virtual asio::awaitable<bool> write(std::string data) = 0;
    virtual asio::awaitable<void> hang() = 0;
};

asio::awaitable<void> TestResponseWriter::write_raw(std::string data) {
    if (failed_) {
        co_return;
    }
    const bool written = co_await backend_.write(std::move(data));
    failed_ = !written;
}

asio::awaitable<void> TestResponseWriter::respond(int status, std::string body,
                                                  TestHeaders headers) {
    std::string out = status_line(status);
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += header_lines(headers);
    out += "\r\n";
    if (!head_) {
        out += body;
    }
    co_await write_raw(std::move(out));
}

asio::awaitable<void> TestResponseWriter::start_chunked(int status, TestHeaders headers) {
    std::string out = status_line(status);
    out += "Transfer-Encoding: chunked\r\n";
    out += header_lines(headers);
    out += "\r\n";
    co_await write_raw(std::move(out));
}

asio::awaitable<void> TestResponseWriter::write_chunk(std::string_view data) {
    if (data.empty()) {
        co_return;  // an empty chunk would end the body
    }
    char size[32];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out{size, static_cast<std::size_t>(n)};
    out += data;
    out += "\r\n";
    co_await write_raw(std::move(out));
}

asio::awaitable<void> TestResponseWriter::end_chunked() { co_await write_raw("0\r\n\r\n"); }

asio::awaitable<void> TestResponseWriter::hang() { co_await backend_.hang(); }

// ---- TestHttpServer ----------------------------------------------------------------------------

struct detail::ServerState {
    ServerState(asio::any_io_executor ex, TestHttpServer::Handler h)
        : executor(ex), handler(std::move(h)), acceptor(ex), stop_timer(ex) {
        stop_timer.expires_at(asio::steady_timer::time_point::max());
        const tcp::endpoint endpoint{asio::ip::make_address_v4("127.0.0.1"), 0};
        acceptor.open(endpoint.protocol());
        acceptor.bind(endpoint);
        acceptor.listen();
        port = acceptor.local_endpoint().port();
    }

    asio::any_io_executor executor;
    TestHttpServer::Handler handler;
    tcp::acceptor acceptor;
    std::unique_ptr<ssl::context> tls;
    asio::steady_timer stop_timer;
    std::uint16_t port = 0;
    bool stopped = false;
    std::size_t accepted = 0;
    std::vector<TestRequest> requests;
    std::map<std::size_t, tcp::socket*> open_sockets;  ///< by connection index, for stop()
};

namespace {

using Impl = detail::ServerState;

/// Keeps a session's socket in the registry stop() closes, for exactly the session's lifetime
/// (the destructor also runs when an io_context destroys a suspended coroutine).
class Registration {
public:
    Registration(std::shared_ptr<Impl> impl, std::size_t index, tcp::socket& socket)
        : impl_(std::move(impl)), index_(index) {
        impl_->open_sockets[index_] = &socket;
    }
    ~Registration() { impl_->open_sockets.erase(index_); }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;

private:
    std::shared_ptr<Impl> impl_;
    std::size_t index_;
};

template <class Stream>
class StreamBackend final : public TestResponseWriter::Backend {
public:
    StreamBackend(Stream& stream, std::shared_ptr<Impl> impl)
        : stream_(stream), impl_(std::move(impl)) {}

    asio::awaitable<bool> write(std::string data) override {
        auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(data), kIo);
        co_return !ec;
    }

    asio::awaitable<void> hang() override {
        while (!impl_->stopped) {
            co_await impl_->stop_timer.async_wait(kIo);
        }
    }

private:
    Stream& stream_;
    std::shared_ptr<Impl> impl_;
};

template <class Stream>
asio::awaitable<void> serve(std::shared_ptr<Impl> impl, Stream& stream, std::size_t index) {
    beast::flat_buffer buffer;
    StreamBackend<Stream> backend{stream, impl};
    for (std::size_t n = 0;; ++n) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(boost::none);
        auto [ec, read] = co_await bhttp::async_read(stream, buffer, parser, kIo);
        if (ec || impl->stopped) {
            co_return;
        }
        const auto& msg = parser.get();
        TestRequest request;
        request.method = std::string{msg.method_string()};
        request.target = std::string{msg.target()};
        for (const auto& field : msg) {
            request.headers.emplace_back(std::string{field.name_string()},
                                         std::string{field.value()});
        }
        request.body = msg.body();
        request.connection = index;
        request.request_on_connection = n;
        impl->requests.push_back(request);

        TestResponseWriter writer{backend, msg.method() == bhttp::verb::head};
        co_await impl->handler(request, writer);
        if (writer.closing() || !msg.keep_alive() || impl->stopped) {
            co_return;
        }
    }
}

asio::awaitable<void> session(std::shared_ptr<Impl> impl, tcp::socket socket, std::size_t index) {
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    if (impl->tls) {
        ssl::stream<tcp::socket> stream{std::move(socket), *impl->tls};
        Registration registration{impl, index, stream.next_layer()};
        auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, kIo);
        if (!ec) {
            co_await serve(impl, stream, index);
        }
        stream.next_layer().close(ignored);
    } else {
        Registration registration{impl, index, socket};
        co_await serve(impl, socket, index);
        socket.close(ignored);
    }
}

asio::awaitable<void> accept_loop(std::shared_ptr<Impl> impl) {
    for (;;) {
        auto [ec, socket] = co_await impl->acceptor.async_accept(kIo);
        if (ec || impl->stopped) {
            co_return;
        }
        const std::size_t index = impl->accepted++;
        asio::co_spawn(impl->executor, session(impl, std::move(socket), index), rethrow);
    }
}

}  // namespace

TestHttpServer::TestHttpServer(asio::any_io_executor executor, Handler handler)
    : impl_(std::make_shared<Impl>(executor, std::move(handler))) {
    asio::co_spawn(executor, accept_loop(impl_), rethrow);
}

TestHttpServer::TestHttpServer(asio::any_io_executor executor, Handler handler, TestServerTls tls)
    : impl_(std::make_shared<Impl>(executor, std::move(handler))) {
    impl_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
    impl_->tls->use_certificate_chain(asio::buffer(tls.cert_pem));
    impl_->tls->use_private_key(asio::buffer(tls.key_pem), ssl::context::pem);
    if (!tls.client_ca_pem.empty()) {
        impl_->tls->add_certificate_authority(asio::buffer(tls.client_ca_pem));
        impl_->tls->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    }
    asio::co_spawn(executor, accept_loop(impl_), rethrow);
}

TestHttpServer::~TestHttpServer() { stop(); }

std::uint16_t TestHttpServer::port() const { return impl_->port; }

std::string TestHttpServer::base_url() const {
    return std::string{impl_->tls ? "https" : "http"} + "://127.0.0.1:" + std::to_string(port());
}

std::size_t TestHttpServer::connections_accepted() const { return impl_->accepted; }

const std::vector<TestRequest>& TestHttpServer::requests() const { return impl_->requests; }

void TestHttpServer::stop() {
    if (impl_->stopped) {
        return;
    }
    impl_->stopped = true;
    error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->stop_timer.cancel();
    for (auto& [index, socket] : impl_->open_sockets) {
        socket->close(ignored);
    }
}

}  // namespace serin::test
