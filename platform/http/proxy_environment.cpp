#include "platform/http/proxy_environment.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <cctype>
#include <tuple>
#include <utility>

namespace serin::http {
namespace {

namespace ip = boost::asio::ip;

std::string lower(std::string_view in) {
    std::string out{in};
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string_view trim(std::string_view in) {
    while (!in.empty() && std::isspace(static_cast<unsigned char>(in.front())) != 0) {
        in.remove_prefix(1);
    }
    while (!in.empty() && std::isspace(static_cast<unsigned char>(in.back())) != 0) {
        in.remove_suffix(1);
    }
    return in;
}

std::optional<ip::address> as_address(std::string_view host) {
    boost::system::error_code ec;
    auto address = ip::make_address(std::string{host}, ec);
    if (ec) {
        return std::nullopt;
    }
    return address;
}

/// The network address of `address`'s block of `prefix` bits.
ip::address network_of(const ip::address& address, unsigned short prefix) {
    if (address.is_v4()) {
        return ip::network_v4(address.to_v4(), prefix).canonical().address();
    }
    return ip::network_v6(address.to_v6(), prefix).canonical().address();
}

/// A CIDR block ("10.0.0.0/8", "fd00::/8") as its network address and prefix length.
std::optional<std::pair<ip::address, unsigned short>> as_block(const std::string& text) {
    boost::system::error_code ec;
    if (const auto v4 = ip::make_network_v4(text, ec); !ec) {
        return std::pair{ip::address{v4.canonical().address()}, v4.prefix_length()};
    }
    if (const auto v6 = ip::make_network_v6(text, ec); !ec) {
        return std::pair{ip::address{v6.canonical().address()}, v6.prefix_length()};
    }
    return std::nullopt;
}

/// A proxy variable's value as a Proxy; a value without a scheme is an http:// proxy.
Result<std::optional<Proxy>> proxy_from(std::string_view variable, std::string_view value) {
    value = trim(value);
    if (value.empty()) {
        return std::optional<Proxy>{};
    }
    std::string url{value};
    if (url.find("://") == std::string::npos) {
        url = "http://" + url;
    }
    auto proxy = Proxy::parse(url);
    if (!proxy) {
        return fail(ErrorKind::kInvalid, std::string{variable} + ": " + proxy.error().message);
    }
    return std::optional<Proxy>{std::move(*proxy)};
}

}  // namespace

Result<ProxyEnvironment> ProxyEnvironment::from(const Lookup& lookup) {
    // As in Go, the upper-case name wins unless it is unset or empty.
    const auto read = [&](std::string_view upper, std::string_view lower_name) {
        if (auto value = lookup(upper); value && !value->empty()) {
            return *value;
        }
        return lookup(lower_name).value_or("");
    };
    return parse(read("HTTPS_PROXY", "https_proxy"), read("HTTP_PROXY", "http_proxy"),
                 read("NO_PROXY", "no_proxy"));
}

Result<ProxyEnvironment> ProxyEnvironment::parse(std::string_view https_proxy,
                                                 std::string_view http_proxy,
                                                 std::string_view no_proxy) {
    ProxyEnvironment out;
    auto https = proxy_from("HTTPS_PROXY", https_proxy);
    if (!https) {
        return https.error();
    }
    auto http = proxy_from("HTTP_PROXY", http_proxy);
    if (!http) {
        return http.error();
    }
    out.https_ = std::move(*https);
    out.http_ = std::move(*http);
    std::string_view rest = no_proxy;
    while (!rest.empty()) {
        const auto comma = rest.find(',');
        const std::string_view item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        if (item == "*") {
            out.no_proxy_all_ = true;
            continue;
        }
        out.no_proxy_.push_back(exclusion_from(lower(item)));
    }
    return out;
}

ProxyEnvironment::Exclusion ProxyEnvironment::exclusion_from(std::string host) {
    Exclusion exclusion;
    // A port comes last: "host:port", "[v6]:port"; a bare IPv6 literal has colons too.
    if (host.front() == '[') {
        const auto close = host.find(']');
        if (close != std::string::npos) {
            if (close + 1 < host.size() && host[close + 1] == ':') {
                exclusion.port = host.substr(close + 2);
            }
            host = host.substr(1, close - 1);
        }
    } else if (const auto colon = host.rfind(':');
               colon != std::string::npos && host.find(':') == colon) {
        exclusion.port = host.substr(colon + 1);
        host.erase(colon);
    }
    if (auto address = as_address(host)) {
        exclusion.kind = Exclusion::Kind::kAddress;
        exclusion.address = *address;
        return exclusion;
    }
    if (auto block = as_block(host)) {
        exclusion.kind = Exclusion::Kind::kBlock;
        std::tie(exclusion.address, exclusion.prefix) = *block;
        return exclusion;
    }
    if (host.rfind("*.", 0) == 0) {
        host.erase(0, 1);
    }
    if (!host.empty() && host.front() == '.') {
        exclusion.subdomains_only = true;
        host.erase(0, 1);
    }
    exclusion.domain = std::move(host);
    return exclusion;
}

bool ProxyEnvironment::excluded(const Url& url) const {
    // Url::parse has lower-cased the host.
    const std::string& host = url.host;
    const auto address = as_address(host);
    if (host == "localhost" || (address && address->is_loopback())) {
        return true;
    }
    if (no_proxy_all_) {
        return true;
    }
    for (const auto& entry : no_proxy_) {
        if (!entry.port.empty() && entry.port != url.port) {
            continue;
        }
        switch (entry.kind) {
            case Exclusion::Kind::kAddress:
                if (address && *address == entry.address) {
                    return true;
                }
                break;
            case Exclusion::Kind::kBlock:
                if (address && address->is_v4() == entry.address.is_v4() &&
                    network_of(*address, entry.prefix) == entry.address) {
                    return true;
                }
                break;
            case Exclusion::Kind::kDomain: {
                if (address) {
                    break;  // a domain never matches an IP literal
                }
                const std::string& domain = entry.domain;
                if (!entry.subdomains_only && host == domain) {
                    return true;
                }
                if (host.size() > domain.size() &&
                    host.compare(host.size() - domain.size(), domain.size(), domain) == 0 &&
                    host[host.size() - domain.size() - 1] == '.') {
                    return true;
                }
                break;
            }
        }
    }
    return false;
}

const Proxy* ProxyEnvironment::proxy_for(const Url& url) const {
    const auto& proxy = url.scheme == "https" ? https_ : http_;
    if (!proxy || excluded(url)) {
        return nullptr;
    }
    return &*proxy;
}

std::string ProxyEnvironment::describe() const {
    std::string out;
    const auto add = [&](std::string_view name, const std::optional<Proxy>& proxy) {
        if (proxy) {
            out += (out.empty() ? "" : ", ") + std::string{name} + " " + proxy->url.origin();
        }
    };
    add("https via", https_);
    add("http via", http_);
    if (out.empty()) {
        return out;
    }
    if (no_proxy_all_) {
        out += ", but NO_PROXY is *";
    } else if (!no_proxy_.empty()) {
        out += ", except " + std::to_string(no_proxy_.size()) + " NO_PROXY entries";
    }
    return out;
}

}  // namespace serin::http
