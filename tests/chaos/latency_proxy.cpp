#include "tests/chaos/latency_proxy.hpp"

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace serin::chaos {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct LatencyProxy::State {
    explicit State(asio::io_context& context, std::uint16_t target)
        : io(context), acceptor(context, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
          target_port(target) {}
    asio::io_context& io;
    tcp::acceptor acceptor;
    std::uint16_t target_port;
    std::uint16_t port = 0;
    std::atomic<std::int64_t> latency_ms{0};
    std::atomic<std::uint64_t> accepted{0};
};

namespace {

constexpr std::size_t kChunk = 16 * 1024;

/// Copies `from` to `to` chunk by chunk, each delayed by the current latency; closes both at
/// the end of either direction.
asio::awaitable<void> pump(std::shared_ptr<LatencyProxy::State> state,
                           std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    std::array<char, kChunk> buffer{};
    asio::steady_timer delay(state->io);
    for (;;) {
        boost::system::error_code ec;
        const std::size_t n =
            co_await from->async_read_some(asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            break;
        }
        const std::int64_t latency = state->latency_ms.load();
        if (latency > 0) {
            delay.expires_after(std::chrono::milliseconds{latency});
            co_await delay.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
        co_await asio::async_write(*to, asio::buffer(buffer.data(), n),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            break;
        }
    }
    boost::system::error_code ignored;
    from->close(ignored);
    to->close(ignored);
}

asio::awaitable<void> connect_and_pump(std::shared_ptr<LatencyProxy::State> state,
                                       std::shared_ptr<tcp::socket> client) {
    auto upstream = std::make_shared<tcp::socket>(state->io);
    boost::system::error_code ec;
    const tcp::endpoint target(asio::ip::address_v4::loopback(), state->target_port);
    co_await upstream->async_connect(target, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        client->close(ec);
        co_return;
    }
    asio::co_spawn(state->io, pump(state, client, upstream), asio::detached);
    asio::co_spawn(state->io, pump(state, upstream, client), asio::detached);
}

asio::awaitable<void> accept_loop(std::shared_ptr<LatencyProxy::State> state) {
    for (;;) {
        auto client = std::make_shared<tcp::socket>(state->io);
        boost::system::error_code ec;
        co_await state->acceptor.async_accept(*client, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (!state->acceptor.is_open()) {
                co_return;
            }
            continue;
        }
        state->accepted.fetch_add(1);
        asio::co_spawn(state->io, connect_and_pump(state, client), asio::detached);
    }
}

}  // namespace

LatencyProxy::LatencyProxy(asio::io_context& io, std::uint16_t target_port)
    : state_(std::make_shared<State>(io, target_port)) {
    state_->port = state_->acceptor.local_endpoint().port();
    asio::co_spawn(io, accept_loop(state_), asio::detached);
}

LatencyProxy::~LatencyProxy() {
    boost::system::error_code ignored;
    state_->acceptor.close(ignored);
}

std::uint16_t LatencyProxy::port() const { return state_->port; }

void LatencyProxy::set_latency(std::chrono::milliseconds latency) {
    state_->latency_ms.store(latency.count());
}

std::chrono::milliseconds LatencyProxy::latency() const {
    return std::chrono::milliseconds{state_->latency_ms.load()};
}

std::uint64_t LatencyProxy::connections() const { return state_->accepted.load(); }

}  // namespace serin::chaos
