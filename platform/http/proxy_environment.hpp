#pragma once

#include <boost/asio/ip/address.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/core/result.hpp"
#include "platform/http/http_client.hpp"

namespace serin::http {

/// The proxies a process is told about by its environment, chosen per request as Go's net/http
/// does, so a Flagger Deployment's HTTPS_PROXY, HTTP_PROXY and NO_PROXY mean the same to Serin:
///
/// - https URLs go through HTTPS_PROXY, http URLs through HTTP_PROXY (the upper-case name wins
///   over the lower-case one); a value without a scheme is an http:// proxy;
/// - never for "localhost" or a loopback address;
/// - never for a host NO_PROXY names. NO_PROXY is a comma-separated list of "*" (every host),
///   IP addresses, CIDR blocks ("10.0.0.0/8"), and domains: "example.com" matches that host and
///   its subdomains, ".example.com" and "*.example.com" only the subdomains. Any entry may end
///   in ":port" to match that port only.
///
/// A proxy named on a request (an AlertProvider's spec.proxy, -slack-proxy-url) wins over these.
class ProxyEnvironment {
public:
    /// Looks a variable up; nullopt when unset.
    using Lookup = std::function<std::optional<std::string>(std::string_view name)>;

    ProxyEnvironment() = default;  ///< no proxies: every request goes direct

    /// Reads HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or their lower-case names) through `lookup`.
    /// An unusable proxy URL is kInvalid, naming the variable (never a password).
    static Result<ProxyEnvironment> from(const Lookup& lookup);

    /// The same from the values themselves (empty: unset).
    static Result<ProxyEnvironment> parse(std::string_view https_proxy, std::string_view http_proxy,
                                          std::string_view no_proxy);

    /// The proxy for a request to `url`, or nullptr to go direct.
    const Proxy* proxy_for(const Url& url) const;

    /// What is configured, without user information, for a startup log line; empty when no
    /// proxy is set.
    std::string describe() const;

private:
    /// One NO_PROXY entry, classified once when it is read.
    struct Exclusion {
        enum class Kind { kDomain, kAddress, kBlock };
        Kind kind = Kind::kDomain;
        std::string domain;                ///< kDomain: lower-case, without a leading "." or "*."
        bool subdomains_only = false;      ///< kDomain: ".example.com" or "*.example.com"
        boost::asio::ip::address address;  ///< kAddress; kBlock: the block's network address
        unsigned short prefix = 0;         ///< kBlock: its prefix length
        std::string port;                  ///< empty: any port
    };

    static Exclusion exclusion_from(std::string entry);

    bool excluded(const Url& url) const;

    std::optional<Proxy> https_;
    std::optional<Proxy> http_;
    std::vector<Exclusion> no_proxy_;
    bool no_proxy_all_ = false;
};

}  // namespace serin::http
