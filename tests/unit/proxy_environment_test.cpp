// ProxyEnvironment: which requests go through HTTPS_PROXY/HTTP_PROXY and which NO_PROXY sends
// direct, as Go's net/http decides it.
#include "platform/http/proxy_environment.hpp"

#include <catch2/catch.hpp>
#include <map>
#include <optional>
#include <string>

using serin::ErrorKind;
using serin::http::ProxyEnvironment;
using serin::http::Url;

namespace {

ProxyEnvironment with_no_proxy(std::string_view no_proxy) {
    auto environment =
        ProxyEnvironment::parse("http://secure-proxy:3128", "http://plain-proxy:3128", no_proxy);
    REQUIRE(environment.has_value());
    return std::move(*environment);
}

/// The proxy's host for `url`, or "direct".
std::string route(const ProxyEnvironment& environment, std::string_view url) {
    auto parsed = Url::parse(url);
    REQUIRE(parsed.has_value());
    const auto* proxy = environment.proxy_for(*parsed);
    return proxy == nullptr ? "direct" : proxy->url.host;
}

}  // namespace

TEST_CASE("https URLs take HTTPS_PROXY and http URLs HTTP_PROXY", "[proxy]") {
    const auto environment = with_no_proxy("");
    CHECK(route(environment, "https://hooks.slack.com/services/x") == "secure-proxy");
    CHECK(route(environment, "http://prometheus.monitoring:9090/") == "plain-proxy");
}

TEST_CASE("only the scheme's own variable counts", "[proxy]") {
    auto only_https = ProxyEnvironment::parse("http://secure-proxy:3128", "", "");
    REQUIRE(only_https.has_value());
    CHECK(route(*only_https, "https://hooks.slack.com/") == "secure-proxy");
    CHECK(route(*only_https, "http://prometheus:9090/") == "direct");
    CHECK(route(ProxyEnvironment{}, "https://hooks.slack.com/") == "direct");
}

TEST_CASE("localhost and loopback addresses never go through a proxy", "[proxy]") {
    const auto environment = with_no_proxy("");
    CHECK(route(environment, "https://localhost:6443/") == "direct");
    CHECK(route(environment, "http://LOCALHOST/") == "direct");
    CHECK(route(environment, "https://127.0.0.1:6443/") == "direct");
    CHECK(route(environment, "http://127.8.9.10/") == "direct");
    CHECK(route(environment, "https://[::1]:8443/") == "direct");
    CHECK(route(environment, "https://10.96.0.1/") == "secure-proxy");
}

TEST_CASE("a NO_PROXY domain matches the host and its subdomains, case-insensitively", "[proxy]") {
    const auto environment = with_no_proxy("Cluster.Local, example.com");
    CHECK(route(environment, "http://prometheus.monitoring.svc.cluster.local:9090/") == "direct");
    CHECK(route(environment, "https://example.com/") == "direct");
    CHECK(route(environment, "https://API.EXAMPLE.COM/") == "direct");
    // A suffix that is not a whole label does not match.
    CHECK(route(environment, "https://notexample.com/") == "secure-proxy");
    CHECK(route(environment, "https://example.com.evil.test/") == "secure-proxy");
}

TEST_CASE("a NO_PROXY entry with a leading dot or *. matches subdomains only", "[proxy]") {
    for (const char* entry : {".example.com", "*.example.com"}) {
        INFO(entry);
        const auto environment = with_no_proxy(entry);
        CHECK(route(environment, "https://api.example.com/") == "direct");
        CHECK(route(environment, "https://example.com/") == "secure-proxy");
    }
}

TEST_CASE("a NO_PROXY entry with a port matches that port only", "[proxy]") {
    const auto environment = with_no_proxy("prometheus:9090,[fd00::5]:8080");
    CHECK(route(environment, "http://prometheus:9090/") == "direct");
    CHECK(route(environment, "http://prometheus:9091/") == "plain-proxy");
    CHECK(route(environment, "http://[fd00::5]:8080/") == "direct");
    CHECK(route(environment, "http://[fd00::5]:80/") == "plain-proxy");
}

TEST_CASE("NO_PROXY addresses and CIDR blocks match IP hosts", "[proxy]") {
    const auto environment = with_no_proxy("10.0.0.0/8, 192.168.1.7, fd00::/8, 2001:db8::1");
    CHECK(route(environment, "https://10.96.0.1/") == "direct");
    CHECK(route(environment, "https://11.0.0.1/") == "secure-proxy");
    CHECK(route(environment, "http://192.168.1.7:8080/") == "direct");
    CHECK(route(environment, "http://192.168.1.8/") == "plain-proxy");
    CHECK(route(environment, "https://[fd12:3456::1]/") == "direct");
    CHECK(route(environment, "https://[2001:db8::1]/") == "direct");
    CHECK(route(environment, "https://[2001:db8::2]/") == "secure-proxy");
    // A block is for addresses, not names.
    CHECK(route(environment, "https://ten.example/") == "secure-proxy");
}

TEST_CASE("NO_PROXY=* sends everything direct", "[proxy]") {
    const auto environment = with_no_proxy("internal.test, *");
    CHECK(route(environment, "https://hooks.slack.com/") == "direct");
    CHECK(route(environment, "http://prometheus:9090/") == "direct");
}

TEST_CASE("a proxy without a scheme is an http proxy, with its credentials", "[proxy]") {
    auto environment = ProxyEnvironment::parse("bot:secret@proxy.corp:8080", "", "");
    REQUIRE(environment.has_value());
    auto url = Url::parse("https://hooks.slack.com/");
    REQUIRE(url.has_value());
    const auto* proxy = environment->proxy_for(*url);
    REQUIRE(proxy != nullptr);
    CHECK(proxy->url.origin() == "http://proxy.corp:8080");
    CHECK(proxy->authorization == "Basic Ym90OnNlY3JldA==");
    CHECK(environment->describe() == "https via http://proxy.corp:8080");
}

TEST_CASE("an unusable proxy names its variable and hides the password", "[proxy]") {
    auto https = ProxyEnvironment::parse("socks5://bot:secret@proxy.corp:1080", "", "");
    REQUIRE_FALSE(https.has_value());
    CHECK(https.error().kind == ErrorKind::kInvalid);
    CHECK_THAT(https.error().message, Catch::StartsWith("HTTPS_PROXY: "));
    CHECK_THAT(https.error().message, Catch::Contains("unsupported scheme \"socks5\""));
    CHECK_THAT(https.error().message, !Catch::Contains("secret"));

    auto http = ProxyEnvironment::parse("", "http://proxy.corp:notaport", "");
    REQUIRE_FALSE(http.has_value());
    CHECK_THAT(http.error().message, Catch::StartsWith("HTTP_PROXY: "));
}

TEST_CASE("from() prefers the upper-case name unless it is empty", "[proxy]") {
    std::map<std::string, std::string> variables = {
        {"HTTPS_PROXY", "http://upper:1"},
        {"https_proxy", "http://lower:1"},
        {"HTTP_PROXY", ""},
        {"http_proxy", "http://lower-plain:1"},
        {"no_proxy", "example.com"},
    };
    const auto lookup = [&](std::string_view name) -> std::optional<std::string> {
        if (auto it = variables.find(std::string{name}); it != variables.end()) {
            return it->second;
        }
        return std::nullopt;
    };
    auto environment = ProxyEnvironment::from(lookup);
    REQUIRE(environment.has_value());
    CHECK(route(*environment, "https://hooks.slack.com/") == "upper");
    CHECK(route(*environment, "http://prometheus:9090/") == "lower-plain");
    CHECK(route(*environment, "https://api.example.com/") == "direct");
}
