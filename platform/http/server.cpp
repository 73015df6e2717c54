#include "platform/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>

namespace serin::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::State {
    State(asio::any_io_executor ex, ServerHandler h) : acceptor(ex), handler(std::move(h)) {}
    tcp::acceptor acceptor;
    ServerHandler handler;
    std::list<beast::tcp_stream*> open;  ///< connections to close on stop()
    bool stopped = false;
    std::uint64_t accept_failures = 0;
};

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds{30};
constexpr std::size_t kBodyLimit = 64 * 1024;

asio::awaitable<void> serve(std::shared_ptr<HttpServer::State> state, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    state->open.push_back(&stream);
    const auto self = std::prev(state->open.end());
    beast::flat_buffer buffer;
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(kBodyLimit);
        stream.expires_after(kIdleTimeout);
        auto [read_error, read] =
            co_await bhttp::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
        if (read_error || state->stopped) {
            break;
        }
        const auto& request = parser.get();
        const ServerResponse answer =
            state->handler(std::string_view(request.method_string().data(),
                                            request.method_string().size()),
                           std::string_view(request.target().data(), request.target().size()));
        bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(answer.status),
                                                     request.version()};
        response.set(bhttp::field::server, "serin");
        response.set(bhttp::field::content_type, answer.content_type);
        response.keep_alive(request.keep_alive());
        response.body() = answer.body;
        response.prepare_payload();
        stream.expires_after(kIdleTimeout);
        auto [write_error, written] =
            co_await bhttp::async_write(stream, response, asio::as_tuple(asio::use_awaitable));
        if (write_error || !response.keep_alive() || state->stopped) {
            break;
        }
    }
    state->open.erase(self);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpServer::State> state) {
    auto pause = std::chrono::milliseconds{50};
    while (!state->stopped) {
        auto [error, socket] =
            co_await state->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (error) {
            if (state->stopped || error == asio::error::operation_aborted) {
                co_return;
            }
            // Too many open files, say: the error would come back at once, so wait a while
            // instead of spinning on it.
            ++state->accept_failures;
            asio::steady_timer timer(state->acceptor.get_executor(), pause);
            co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
            pause = std::min(pause * 2, std::chrono::milliseconds{1000});
            continue;
        }
        pause = std::chrono::milliseconds{50};
        if (state->open.size() >= HttpServer::kMaxConnections) {
            beast::error_code ignored;
            socket.close(ignored);  // a probe or a scrape needs no more than a few
            continue;
        }
        asio::co_spawn(state->acceptor.get_executor(), serve(state, std::move(socket)),
                       asio::detached);
    }
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::listen(asio::any_io_executor executor,
                                                       const std::string& address,
                                                       std::uint16_t port, ServerHandler handler) {
    beast::error_code ec;
    const auto ip = asio::ip::make_address(address, ec);
    if (ec) {
        return fail(ErrorKind::kInvalid, "listen address \"" + address + "\" is not an IP address");
    }
    auto state = std::make_shared<State>(executor, std::move(handler));
    const tcp::endpoint endpoint(ip, port);
    state->acceptor.open(endpoint.protocol(), ec);
    if (!ec) {
        state->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    }
    if (!ec) {
        state->acceptor.bind(endpoint, ec);
    }
    if (!ec) {
        state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        return fail(ErrorKind::kTransient, "listening on " + address + ":" + std::to_string(port) +
                                               ": " + ec.message());
    }
    asio::co_spawn(executor, accept_loop(state), asio::detached);
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(state)));
}

HttpServer::~HttpServer() { stop(); }

std::uint64_t HttpServer::accept_failures() const { return state_->accept_failures; }

std::uint16_t HttpServer::port() const {
    beast::error_code ec;
    const auto endpoint = state_->acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
}

void HttpServer::stop() {
    if (state_->stopped) {
        return;
    }
    state_->stopped = true;
    beast::error_code ignored;
    state_->acceptor.close(ignored);
    for (beast::tcp_stream* stream : state_->open) {
        stream->socket().close(ignored);
    }
}

}  // namespace serin::http
