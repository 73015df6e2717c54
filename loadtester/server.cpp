#include "loadtester/server.hpp"

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

#include "loadtester/payload.hpp"

namespace serin::loadtester {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

struct Server::State {
    State(asio::any_io_executor ex, AsyncHandler h) : acceptor(ex), handler(std::move(h)) {}
    tcp::acceptor acceptor;
    AsyncHandler handler;
    std::list<beast::tcp_stream*> open;  ///< connections to close on stop()
    bool stopped = false;
};

namespace {

constexpr auto kIdleTimeout = std::chrono::seconds{30};
constexpr std::uint32_t kHeaderLimit = 16 * 1024;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

Response too_large() {
    Response r;
    r.status = 413;
    r.body = "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes\n";
    return r;
}

asio::awaitable<void> serve(std::shared_ptr<Server::State> state, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    state->open.push_back(&stream);
    const auto self = std::prev(state->open.end());
    beast::flat_buffer buffer;
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(kMaxBodyBytes);
        parser.header_limit(kHeaderLimit);
        stream.expires_after(kIdleTimeout);
        auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, kUse);
        if (state->stopped) {
            break;
        }
        Response answer;
        bool keep_alive = false;
        unsigned version = 11;
        if (read_error == bhttp::error::body_limit) {
            answer = too_large();
        } else if (read_error) {
            break;
        } else {
            auto& request = parser.get();
            keep_alive = request.keep_alive();
            version = request.version();
            Request in;
            in.method = std::string(request.method_string());
            in.target = std::string(request.target());
            in.body = std::move(request.body());
            // No deadline while the handler runs: a blocking task may take up to -timeout.
            stream.expires_never();
            answer = co_await state->handler(std::move(in));
            if (state->stopped) {
                break;
            }
        }
        bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(answer.status),
                                                     version};
        response.set(bhttp::field::server, "serin-loadtester");
        response.set(bhttp::field::content_type, answer.content_type);
        response.keep_alive(keep_alive);
        response.body() = std::move(answer.body);
        response.prepare_payload();
        stream.expires_after(kIdleTimeout);
        auto [write_error, written] = co_await bhttp::async_write(stream, response, kUse);
        if (write_error || !keep_alive || state->stopped) {
            break;
        }
    }
    state->open.erase(self);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> accept_loop(std::shared_ptr<Server::State> state) {
    auto pause = std::chrono::milliseconds{50};
    while (!state->stopped) {
        auto [error, socket] = co_await state->acceptor.async_accept(kUse);
        if (error) {
            if (state->stopped || error == asio::error::operation_aborted) {
                co_return;
            }
            // Out of file descriptors, say: wait instead of spinning on the same error.
            asio::steady_timer timer(state->acceptor.get_executor(), pause);
            co_await timer.async_wait(kUse);
            pause = std::min(pause * 2, std::chrono::milliseconds{1000});
            continue;
        }
        pause = std::chrono::milliseconds{50};
        if (state->open.size() >= Server::kMaxConnections) {
            beast::error_code ignored;
            socket.close(ignored);
            continue;
        }
        asio::co_spawn(state->acceptor.get_executor(), serve(state, std::move(socket)),
                       [](const std::exception_ptr&) {});
    }
}

}  // namespace

Result<std::unique_ptr<Server>> Server::listen(asio::any_io_executor executor,
                                               const std::string& address, std::uint16_t port,
                                               AsyncHandler handler) {
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
        return fail(ErrorKind::kTransient,
                    "listening on " + address + ":" + std::to_string(port) + ": " + ec.message());
    }
    asio::co_spawn(executor, accept_loop(state), asio::detached);
    return std::unique_ptr<Server>(new Server(std::move(state)));
}

Server::~Server() { stop(); }

std::uint16_t Server::port() const {
    beast::error_code ec;
    const auto endpoint = state_->acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
}

void Server::stop_accepting() {
    beast::error_code ignored;
    state_->acceptor.close(ignored);
}

void Server::stop() {
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

}  // namespace serin::loadtester
