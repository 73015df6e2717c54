#include "tests/support/test_http_proxy.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <cctype>
#include <list>
#include <map>
#include <sstream>
#include <string_view>
#include <utility>

#include "tests/support/copy_bytes.hpp"

namespace serin::test {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kIo = asio::as_tuple(asio::use_awaitable);

/// The request line and headers of a request head ("...\r\n\r\n"), parsed just enough.
struct Head {
    std::string method;
    std::string target;
    std::string version;
    std::vector<std::pair<std::string, std::string>> headers;
};

Head parse_head(std::string_view text) {
    Head head;
    std::istringstream in{std::string{text}};
    std::string line;
    std::getline(in, line);
    std::istringstream request_line{line};
    request_line >> head.method >> head.target >> head.version;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') {
            line.pop_back();
        }
        if (line.empty()) {
            break;
        }
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        std::string value = line.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        head.headers.emplace_back(line.substr(0, colon), value);
    }
    return head;
}

/// Splits "host:port" (the port is required here).
std::pair<std::string, std::string> split_authority(std::string_view authority) {
    const auto colon = authority.rfind(':');
    return {std::string{authority.substr(0, colon)}, std::string{authority.substr(colon + 1)}};
}

}  // namespace

struct TestHttpProxy::Impl {
    struct Link {
        explicit Link(tcp::socket c) : client(std::move(c)), upstream(client.get_executor()) {}
        tcp::socket client;
        tcp::socket upstream;
        void close() {
            boost::system::error_code ignored;
            client.close(ignored);
            upstream.close(ignored);
        }
    };

    Impl(asio::any_io_executor ex, int refuse)
        : executor(std::move(ex)),
          acceptor(executor, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          refuse_status(refuse) {}

    /// Takes its owner by value: the frame holds the Impl from co_spawn on, even when the proxy
    /// is destroyed before the io_context first runs the loop.
    static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
        for (;;) {
            auto [ec, socket] = co_await self->acceptor.async_accept(kIo);
            if (ec) {
                co_return;
            }
            auto link = std::make_shared<Link>(std::move(socket));
            self->links.push_back(link);
            asio::co_spawn(self->executor, serve(self, link), asio::detached);
        }
    }

    static asio::awaitable<void> serve(std::shared_ptr<Impl> self, std::shared_ptr<Link> link) {
        std::string data;
        auto [read_ec, head_size] = co_await asio::async_read_until(
            link->client, asio::dynamic_buffer(data), "\r\n\r\n", kIo);
        if (read_ec) {
            link->close();
            co_return;
        }
        Head head = parse_head(std::string_view{data}.substr(0, head_size));
        Ask ask{head.method, head.target, std::nullopt};
        for (const auto& [name, value] : head.headers) {
            if (boost::beast::iequals(name, "Proxy-Authorization")) {
                ask.proxy_authorization = value;
            }
        }
        self->asks.push_back(ask);
        std::string rest = data.substr(head_size);

        if (self->refuse_status != 0) {
            co_await answer(*link, std::to_string(self->refuse_status) + " Refused");
            co_return;
        }
        std::string authority;
        std::string forwarded;  // what goes upstream first
        if (head.method == "CONNECT") {
            authority = head.target;
        } else {
            std::string_view target = head.target;
            constexpr std::string_view kScheme = "http://";
            if (target.substr(0, kScheme.size()) != kScheme) {
                co_await answer(*link, "400 Bad Request");
                co_return;
            }
            target.remove_prefix(kScheme.size());
            const auto slash = target.find('/');
            authority = std::string{target.substr(0, slash)};
            const std::string path =
                slash == std::string_view::npos ? "/" : std::string{target.substr(slash)};
            forwarded = head.method + " " + path + " " + head.version + "\r\n";
            for (const auto& [name, value] : head.headers) {
                if (!boost::beast::iequals(name, "Proxy-Authorization")) {
                    forwarded += name + ": " + value + "\r\n";
                }
            }
            forwarded += "\r\n";
        }
        forwarded += rest;

        auto [host, port] = split_authority(authority);
        if (const auto alias = self->aliases.find(host); alias != self->aliases.end()) {
            host = alias->second;
        }
        tcp::resolver resolver{self->executor};
        auto [resolve_ec, endpoints] = co_await resolver.async_resolve(host, port, kIo);
        if (resolve_ec) {
            co_await answer(*link, "502 Bad Gateway");
            co_return;
        }
        auto [connect_ec, endpoint] = co_await asio::async_connect(link->upstream, endpoints, kIo);
        if (connect_ec) {
            co_await answer(*link, "502 Bad Gateway");
            co_return;
        }
        if (head.method == "CONNECT") {
            std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
            auto [ec, n] = co_await asio::async_write(link->client, asio::buffer(established), kIo);
            if (ec) {
                link->close();
                co_return;
            }
        }
        if (!forwarded.empty()) {
            auto [ec, n] = co_await asio::async_write(link->upstream, asio::buffer(forwarded), kIo);
            if (ec) {
                link->close();
                co_return;
            }
        }
        asio::co_spawn(self->executor, pump(link, &link->client, &link->upstream), asio::detached);
        asio::co_spawn(self->executor, pump(link, &link->upstream, &link->client), asio::detached);
    }

    /// A status line and an empty body, then the connection closes.
    static asio::awaitable<void> answer(Link& link, const std::string& status) {
        const std::string text =
            "HTTP/1.1 " + status + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        co_await asio::async_write(link.client, asio::buffer(text), kIo);
        link.close();
    }

    /// Copies one direction until either side fails or closes, then closes both.
    static asio::awaitable<void> pump(std::shared_ptr<Link> link, tcp::socket* from,
                                      tcp::socket* to) {
        co_await copy_bytes(*from, *to);
        link->close();
    }

    asio::any_io_executor executor;
    tcp::acceptor acceptor;
    int refuse_status = 0;
    std::vector<Ask> asks;
    std::map<std::string, std::string> aliases;
    std::list<std::weak_ptr<Link>> links;
};

TestHttpProxy::TestHttpProxy(asio::any_io_executor executor, int refuse_status)
    : impl_(std::make_shared<Impl>(std::move(executor), refuse_status)) {
    asio::co_spawn(impl_->executor, Impl::accept_loop(impl_), asio::detached);
}

TestHttpProxy::~TestHttpProxy() {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
    for (const auto& weak : impl_->links) {
        if (auto link = weak.lock()) {
            link->close();
        }
    }
}

std::uint16_t TestHttpProxy::port() const { return impl_->acceptor.local_endpoint().port(); }

std::string TestHttpProxy::url() const { return "http://127.0.0.1:" + std::to_string(port()); }

void TestHttpProxy::alias(std::string host, std::string address) {
    impl_->aliases[std::move(host)] = std::move(address);
}

const std::vector<TestHttpProxy::Ask>& TestHttpProxy::asks() const { return impl_->asks; }

}  // namespace serin::test
