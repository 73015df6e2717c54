#include "controller/http/proxy_environment.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>
#include <cctype>
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

/// `address` inside the CIDR block `cidr` ("10.0.0.0/8", "fd00::/8"); false when `cidr` is not one.
bool in_block(const ip::address& address, const std::string& cidr) {
    boost::system::error_code ec;
    if (address.is_v4()) {
        const auto block = ip::make_network_v4(cidr, ec);
        return !ec && ip::network_v4(address.to_v4(), block.prefix_length()).canonical() ==
                          block.canonical();
    }
    const auto block = ip::make_network_v6(cidr, ec);
    return !ec &&
           ip::network_v6(address.to_v6(), block.prefix_length()).canonical() == block.canonical();
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
        Exclusion exclusion;
        std::string host = lower(item);
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
        if (host.rfind("*.", 0) == 0) {
            host.erase(0, 1);
        }
        if (!host.empty() && host.front() == '.') {
            exclusion.subdomains_only = true;
            host.erase(0, 1);
        }
        exclusion.host = std::move(host);
        out.no_proxy_.push_back(std::move(exclusion));
    }
    return out;
}

bool ProxyEnvironment::excluded(const Url& url) const {
    const std::string host = lower(url.host);
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
        if (address) {
            // An address matches an entry for the same address or a block holding it.
            if (const auto other = as_address(entry.host); other && *other == *address) {
                return true;
            }
            if (entry.host.find('/') != std::string::npos && in_block(*address, entry.host)) {
                return true;
            }
            continue;
        }
        if (!entry.subdomains_only && host == entry.host) {
            return true;
        }
        if (host.size() > entry.host.size() &&
            host.compare(host.size() - entry.host.size(), entry.host.size(), entry.host) == 0 &&
            host[host.size() - entry.host.size() - 1] == '.') {
            return true;
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
        return "none";
    }
    if (no_proxy_all_) {
        out += ", but NO_PROXY is *";
    } else if (!no_proxy_.empty()) {
        out += ", except " + std::to_string(no_proxy_.size()) + " NO_PROXY entries";
    }
    return out;
}

}  // namespace serin::http
