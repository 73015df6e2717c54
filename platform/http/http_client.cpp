// The transport-independent parts of the HTTP client interface: URLs, methods, response headers.
#include "platform/http/http_client.hpp"

#include <algorithm>
#include <boost/asio/ip/address_v6.hpp>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "platform/core/base64.hpp"

namespace serin::http {
namespace {

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

std::string lowercase(std::string_view text) {
    std::string out{text};
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

Error invalid(std::string_view url, std::string_view what) {
    return fail(ErrorKind::kInvalid,
                "invalid URL \"" + std::string{url} + "\": " + std::string{what});
}

bool valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5) {
        return false;
    }
    unsigned value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') {
            return false;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value >= 1 && value <= 65535;
}

bool valid_host_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_';
}

}  // namespace

std::string url_encode(std::string_view in) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(in.size());
    for (unsigned char c : in) {
        if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4U]);
            out.push_back(kHex[c & 0xFU]);
        }
    }
    return out;
}

Error status_error(int status, std::string message) {
    Error error;
    error.kind = status == 429 ? ErrorKind::kTooManyRequests
                 : status >= 500 ? ErrorKind::kTransient
                                 : ErrorKind::kBadRequest;
    error.http_status = status;
    error.message = std::move(message);
    return error;
}

bool worth_retrying(const Error& error) {
    if (error.http_status == 0) {
        return error.kind == ErrorKind::kTransient;
    }
    return error.http_status == 429 || (error.http_status >= 500 && error.http_status != 501);
}

std::string_view to_string(Method method) {
    switch (method) {
        case Method::kGet:
            return "GET";
        case Method::kHead:
            return "HEAD";
        case Method::kPost:
            return "POST";
        case Method::kPut:
            return "PUT";
        case Method::kPatch:
            return "PATCH";
        case Method::kDelete:
            return "DELETE";
    }
    return "GET";
}

Result<Url> Url::parse(std::string_view url) {
    for (char c : url) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) {
            return invalid(url, "contains a space or a control character");
        }
    }
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) {
        return invalid(url, "missing scheme (expected http:// or https://)");
    }
    Url out;
    out.scheme = lowercase(url.substr(0, scheme_end));
    if (out.scheme != "http" && out.scheme != "https") {
        return invalid(url, "unsupported scheme \"" + out.scheme + "\" (expected http or https)");
    }
    std::string_view rest = url.substr(scheme_end + 3);
    const auto authority_end = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, authority_end);
    std::string_view target =
        authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
    if (authority.find('@') != std::string_view::npos) {
        return invalid(url, "user information in the host part is not supported");
    }

    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return invalid(url, "unterminated IPv6 address (missing ']')");
        }
        const std::string_view literal = authority.substr(1, close - 1);
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(std::string{literal}, ec);
        if (ec || literal.find('%') != std::string_view::npos) {
            return invalid(url, "invalid IPv6 address \"" + std::string{literal} + "\"");
        }
        out.host = lowercase(literal);
        const std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                return invalid(url, "unexpected \"" + std::string{after} + "\" after the host");
            }
            port = after.substr(1);
            if (!valid_port(port)) {
                return invalid(url, "invalid port \"" + std::string{port} + "\"");
            }
        }
    } else {
        const auto colon = authority.find(':');
        const std::string_view host = authority.substr(0, colon);
        if (host.empty()) {
            return invalid(url, "missing host");
        }
        if (!std::all_of(host.begin(), host.end(), valid_host_char)) {
            return invalid(url, "invalid host \"" + std::string{host} + "\"");
        }
        out.host = lowercase(host);
        if (colon != std::string_view::npos) {
            port = authority.substr(colon + 1);
            if (!valid_port(port)) {
                return invalid(url, "invalid port \"" + std::string{port} + "\"");
            }
        }
    }
    if (port.empty()) {
        out.port = out.scheme == "https" ? "443" : "80";
    } else {
        // Drop leading zeros so that equal ports give equal origins.
        out.port = std::to_string(std::stoul(std::string{port}));
    }

    target = target.substr(0, target.find('#'));
    if (target.empty()) {
        out.target = "/";
    } else if (target.front() == '?') {
        out.target = "/" + std::string{target};
    } else {
        out.target = std::string{target};
    }
    return out;
}

std::string Url::origin() const { return scheme + "://" + authority(); }

std::string Url::authority() const {
    const bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + port;
}

namespace {

/// RFC 3986 percent-decoding; nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size() || std::isxdigit(static_cast<unsigned char>(in[i + 1])) == 0 ||
            std::isxdigit(static_cast<unsigned char>(in[i + 2])) == 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(std::stoi(std::string{in.substr(i + 1, 2)}, nullptr, 16)));
        i += 2;
    }
    return out;
}

}  // namespace

Result<Proxy> Proxy::parse(std::string_view proxy) {
    // The user information, if any, comes out first so that no error repeats it.
    std::string without_user{proxy};
    std::string userinfo;
    const auto scheme_end = proxy.find("://");
    if (scheme_end != std::string_view::npos) {
        // Everything up to the last '@' is user information, even where a '/', '?' or '#' in an
        // unencoded password would end the authority by RFC 3986: a password must never be
        // mistaken for a host or a path and end up in a message.
        const std::string_view rest = proxy.substr(scheme_end + 3);
        if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
            userinfo = std::string{rest.substr(0, at)};
            without_user = std::string{proxy.substr(0, scheme_end + 3)} +
                           std::string{rest.substr(at + 1)};
        }
    }
    const std::string hidden = userinfo.empty() ? "" : " (user information hidden)";
    const std::string shown = hidden + " " + without_user;
    auto url = Url::parse(without_user);
    if (!url) {
        // Url::parse says `invalid URL "<url>": <why>`, of the URL without the user.
        constexpr std::string_view kPrefix = "invalid URL";
        std::string why = url.error().message;
        if (why.rfind(kPrefix, 0) == 0) {
            why.erase(0, kPrefix.size());
        }
        return fail(ErrorKind::kInvalid, "invalid proxy URL" + hidden + why);
    }
    if (url->scheme != "http") {
        return fail(ErrorKind::kInvalid, "invalid proxy URL" + shown +
                                             ": only http:// proxies are supported (an https "
                                             "destination is still tunnelled with TLS end to end)");
    }
    Proxy out;
    out.url = std::move(*url);
    if (!userinfo.empty()) {
        const auto colon = userinfo.find(':');
        auto user = percent_decode(std::string_view{userinfo}.substr(0, colon));
        auto password = colon == std::string::npos
                            ? std::optional<std::string>{std::string{}}
                            : percent_decode(std::string_view{userinfo}.substr(colon + 1));
        if (!user || !password) {
            return fail(ErrorKind::kInvalid, "invalid proxy URL" + shown +
                                                 ": bad percent-encoding in the user information");
        }
        out.authorization = "Basic " + encode_base64(*user + ":" + *password);
    }
    return out;
}

std::optional<std::string_view> Response::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (iequals(key, name)) {
            return std::string_view{value};
        }
    }
    return std::nullopt;
}

}  // namespace serin::http
