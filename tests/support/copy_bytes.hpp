#pragma once
// The byte relay both loopback proxies (TcpProxy, TestHttpProxy) run in each direction.

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace serin::test {

/// Copies what arrives on `from` to `to` until a read or a write fails (a close included). The
/// caller closes what it must afterwards.
inline boost::asio::awaitable<void> copy_bytes(boost::asio::ip::tcp::socket& from,
                                               boost::asio::ip::tcp::socket& to) {
    namespace asio = boost::asio;
    constexpr auto kIo = asio::as_tuple(asio::use_awaitable);
    std::array<char, 16384> buffer{};
    for (;;) {
        auto [read_ec, n] = co_await from.async_read_some(asio::buffer(buffer), kIo);
        if (read_ec) {
            co_return;
        }
        auto [write_ec, written] = co_await asio::async_write(to, asio::buffer(buffer.data(), n), kIo);
        if (write_ec) {
            co_return;
        }
    }
}

}  // namespace serin::test
