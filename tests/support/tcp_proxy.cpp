#include "tests/support/tcp_proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <list>

#include "tests/support/copy_bytes.hpp"

namespace serin::test {

namespace asio = boost::asio;
using asio::ip::tcp;

struct TcpProxy::Impl {
    struct Pair {
        tcp::socket client;
        tcp::socket server;
        int pumps = 2;  // the pair is erased when both directions have finished
    };

    Impl(asio::any_io_executor ex, std::string host, std::uint16_t port)
        : executor(std::move(ex)),
          acceptor(executor, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          target(asio::ip::make_address(host), port) {}

    // Takes its owner by value: the frame holds the Impl from co_spawn on, even when the proxy
    // is destroyed before the io_context first runs the loop.
    static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
        while (!self->closed) {
            auto [ec, socket] =
                co_await self->acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
            if (ec) {
                co_return;
            }
            ++self->accepted;
            if (self->blocked) {
                boost::system::error_code ignored;
                socket.close(ignored);
                continue;
            }
            tcp::socket upstream(self->executor);
            auto [cec] =
                co_await upstream.async_connect(self->target, asio::as_tuple(asio::use_awaitable));
            if (cec) {
                continue;
            }
            auto it =
                self->pairs.insert(self->pairs.end(), Pair{std::move(socket), std::move(upstream)});
            asio::co_spawn(self->executor, pump(self, it, &it->client, &it->server),
                           asio::detached);
            asio::co_spawn(self->executor, pump(self, it, &it->server, &it->client),
                           asio::detached);
        }
    }

    // Copies one direction until either side fails, then closes both.
    static asio::awaitable<void> pump(std::shared_ptr<Impl> self, std::list<Pair>::iterator pair,
                                      tcp::socket* from, tcp::socket* to) {
        co_await copy_bytes(*from, *to);
        boost::system::error_code ignored;
        from->close(ignored);
        to->close(ignored);
        if (--pair->pumps == 0) {
            self->pairs.erase(pair);
        }
    }

    void cut() {
        boost::system::error_code ignored;
        for (auto& p : pairs) {
            p.client.close(ignored);
            p.server.close(ignored);
        }
    }

    asio::any_io_executor executor;
    tcp::acceptor acceptor;
    tcp::endpoint target;
    std::list<Pair> pairs;
    bool blocked = false;
    bool closed = false;
    std::uint64_t accepted = 0;
};

TcpProxy::TcpProxy(asio::any_io_executor executor, std::string target_host,
                   std::uint16_t target_port)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(target_host), target_port)) {
    asio::co_spawn(impl_->executor, Impl::accept_loop(impl_), asio::detached);
}

TcpProxy::~TcpProxy() {
    impl_->closed = true;
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->cut();
}

std::uint16_t TcpProxy::port() const { return impl_->acceptor.local_endpoint().port(); }
void TcpProxy::cut() { impl_->cut(); }
void TcpProxy::set_blocked(bool blocked) { impl_->blocked = blocked; }
std::uint64_t TcpProxy::accepted() const { return impl_->accepted; }

}  // namespace serin::test
