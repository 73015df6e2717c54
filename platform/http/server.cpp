#include "platform/http/server.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <exception>
#include <list>

namespace serin::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

std::optional<std::string_view> ServerRequest::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (beast::iequals(key, name)) {
            return std::string_view(value);
        }
    }
    return std::nullopt;
}

/// One of `sync` and `async` is set.
struct HttpServer::State {
    State(asio::any_io_executor ex, ServerOptions o) : acceptor(ex), options(std::move(o)) {}
    tcp::acceptor acceptor;
    ServerOptions options;
    ServerHandler sync;
    ServerAsyncHandler async;
    std::list<beast::tcp_stream*> open;  ///< connections to close on stop()
    bool stopped = false;
    std::uint64_t accept_failures = 0;
};

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

/// Keeps a connection in State::open while it lives, however its coroutine ends.
class OpenEntry {
public:
    OpenEntry(HttpServer::State& state, beast::tcp_stream& stream) : state_(state) {
        state_.open.push_back(&stream);
        self_ = std::prev(state_.open.end());
    }
    ~OpenEntry() { state_.open.erase(self_); }
    OpenEntry(const OpenEntry&) = delete;
    OpenEntry& operator=(const OpenEntry&) = delete;

private:
    HttpServer::State& state_;
    std::list<beast::tcp_stream*>::iterator self_;
};

ServerResponse too_large(std::size_t limit) {
    ServerResponse r;
    r.status = 413;
    r.body = "request body larger than " + std::to_string(limit) + " bytes\n";
    return r;
}

ServerRequest to_request(bhttp::request<bhttp::string_body>& request) {
    ServerRequest in;
    in.method = std::string(request.method_string());
    in.target = std::string(request.target());
    for (const auto& field : request) {
        in.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    in.body = std::move(request.body());
    return in;
}

/// The chunks of one streamed answer, each written within the idle timeout.
class ChunkStream final : public ResponseStream {
public:
    ChunkStream(HttpServer::State& state, beast::tcp_stream& stream)
        : state_(state), stream_(stream) {}

    asio::awaitable<bool> write(std::string data) override {
        if (failed_ || state_.stopped) {
            co_return false;
        }
        if (data.empty()) {
            co_return true;  // an empty chunk would end the body
        }
        stream_.expires_after(state_.options.idle_timeout);
        auto [error, written] =
            co_await asio::async_write(stream_, bhttp::make_chunk(asio::buffer(data)), kUse);
        stream_.expires_never();
        if (error || state_.stopped) {
            failed_ = true;
        }
        co_return !failed_;
    }
    bool open() const override { return !failed_ && !state_.stopped; }
    bool failed() const { return failed_; }

private:
    HttpServer::State& state_;
    beast::tcp_stream& stream_;
    bool failed_ = false;
};

/// Writes the header of a streamed answer, runs its writer and ends the body.
asio::awaitable<void> write_streamed(HttpServer::State& state, beast::tcp_stream& stream,
                                     bhttp::response<bhttp::empty_body>& response,
                                     const StreamWriter& writer) {
    response.chunked(true);
    response.keep_alive(false);
    bhttp::response_serializer<bhttp::empty_body> serializer(response);
    stream.expires_after(state.options.idle_timeout);
    auto [header_error, header_written] =
        co_await bhttp::async_write_header(stream, serializer, kUse);
    if (header_error || state.stopped) {
        co_return;
    }
    stream.expires_never();
    ChunkStream chunks(state, stream);
    co_await writer(chunks);
    if (chunks.failed() || state.stopped) {
        co_return;
    }
    stream.expires_after(state.options.idle_timeout);
    [[maybe_unused]] auto [last_error, last_written] =
        co_await asio::async_write(stream, bhttp::make_chunk_last(), kUse);
}

asio::awaitable<void> serve(std::shared_ptr<HttpServer::State> state, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    const OpenEntry entry(*state, stream);
    const ServerOptions& options = state->options;
    beast::flat_buffer buffer;
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(options.max_body_bytes);
        parser.header_limit(options.max_header_bytes);
        stream.expires_after(options.idle_timeout);
        auto [read_error, read] = co_await bhttp::async_read(stream, buffer, parser, kUse);
        if (state->stopped) {
            break;
        }
        ServerResponse answer;
        bool keep_alive = false;
        unsigned version = 11;
        if (read_error == bhttp::error::body_limit) {
            // The rest of the body is still unread: answer, then close.
            answer = too_large(options.max_body_bytes);
        } else if (read_error) {
            break;
        } else {
            auto& request = parser.get();
            keep_alive = request.keep_alive();
            version = request.version();
            if (state->async) {
                // No deadline while the handler runs: a blocking task may take minutes.
                stream.expires_never();
                answer = co_await state->async(to_request(request));
                if (state->stopped) {
                    break;
                }
            } else {
                answer = state->sync(
                    std::string_view(request.method_string().data(),
                                     request.method_string().size()),
                    std::string_view(request.target().data(), request.target().size()));
            }
        }
        if (answer.stream) {
            bhttp::response<bhttp::empty_body> head{static_cast<bhttp::status>(answer.status),
                                                   version};
            head.set(bhttp::field::server, options.server_name);
            head.set(bhttp::field::content_type, answer.content_type);
            for (const auto& [name, value] : answer.headers) {
                head.insert(name, value);
            }
            co_await write_streamed(*state, stream, head, answer.stream);
            break;
        }
        bhttp::response<bhttp::string_body> response{static_cast<bhttp::status>(answer.status),
                                                     version};
        response.set(bhttp::field::server, options.server_name);
        response.set(bhttp::field::content_type, answer.content_type);
        for (const auto& [name, value] : answer.headers) {
            response.insert(name, value);
        }
        response.keep_alive(keep_alive);
        response.body() = std::move(answer.body);
        response.prepare_payload();
        stream.expires_after(options.idle_timeout);
        auto [write_error, written] = co_await bhttp::async_write(stream, response, kUse);
        if (write_error || !keep_alive || state->stopped) {
            break;
        }
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

asio::awaitable<void> accept_loop(std::shared_ptr<HttpServer::State> state) {
    auto pause = std::chrono::milliseconds{50};
    while (!state->stopped) {
        auto [error, socket] = co_await state->acceptor.async_accept(kUse);
        if (error) {
            if (state->stopped || error == asio::error::operation_aborted ||
                !state->acceptor.is_open()) {
                co_return;
            }
            // Too many open files, say: the error would come back at once, so wait a while
            // instead of spinning on it.
            ++state->accept_failures;
            asio::steady_timer timer(state->acceptor.get_executor(), pause);
            co_await timer.async_wait(kUse);
            pause = std::min(pause * 2, std::chrono::milliseconds{1000});
            continue;
        }
        pause = std::chrono::milliseconds{50};
        if (state->open.size() >= state->options.max_connections) {
            beast::error_code ignored;
            socket.close(ignored);
            continue;
        }
        // A handler that throws ends its connection only.
        asio::co_spawn(state->acceptor.get_executor(), serve(state, std::move(socket)),
                       [](const std::exception_ptr&) {});
    }
}

/// Binds and starts accepting. Errors: as HttpServer::listen.
Result<std::shared_ptr<HttpServer::State>> start(const asio::any_io_executor& executor,
                                                 const std::string& address, std::uint16_t port,
                                                 std::shared_ptr<HttpServer::State> state) {
    beast::error_code ec;
    const auto ip = asio::ip::make_address(address, ec);
    if (ec) {
        return fail(ErrorKind::kInvalid, "listen address \"" + address + "\" is not an IP address");
    }
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
    asio::co_spawn(executor, accept_loop(state), [](const std::exception_ptr&) {});
    return state;
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::listen(asio::any_io_executor executor,
                                                       const std::string& address,
                                                       std::uint16_t port, ServerHandler handler) {
    auto state = std::make_shared<State>(executor, ServerOptions{});
    state->sync = std::move(handler);
    auto started = start(executor, address, port, std::move(state));
    if (!started) {
        return started.error();
    }
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(*started)));
}

Result<std::unique_ptr<HttpServer>> HttpServer::listen(asio::any_io_executor executor,
                                                       const std::string& address,
                                                       std::uint16_t port, ServerOptions options,
                                                       ServerAsyncHandler handler) {
    auto state = std::make_shared<State>(executor, std::move(options));
    state->async = std::move(handler);
    auto started = start(executor, address, port, std::move(state));
    if (!started) {
        return started.error();
    }
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(*started)));
}

HttpServer::~HttpServer() { stop(); }

std::uint64_t HttpServer::accept_failures() const { return state_->accept_failures; }

std::uint16_t HttpServer::port() const {
    beast::error_code ec;
    const auto endpoint = state_->acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
}

void HttpServer::stop_accepting() {
    beast::error_code ignored;
    state_->acceptor.close(ignored);
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
