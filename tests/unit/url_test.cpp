#include <catch2/catch.hpp>

#include "platform/core/base64.hpp"
#include "platform/http/http_client.hpp"

using serin::ErrorKind;
using serin::http::Method;
using serin::http::Proxy;
using serin::http::Response;
using serin::http::Url;

namespace {

/// The error message of a URL that must not parse.
std::string parse_error(std::string_view text) {
    auto url = Url::parse(text);
    REQUIRE_FALSE(url.has_value());
    CHECK(url.error().kind == ErrorKind::kInvalid);
    return url.error().message;
}

}  // namespace

TEST_CASE("Url::parse fills in default ports and the root target", "[http][url]") {
    auto https = Url::parse("https://example.com");
    REQUIRE(https.has_value());
    CHECK(https->scheme == "https");
    CHECK(https->host == "example.com");
    CHECK(https->port == "443");
    CHECK(https->target == "/");
    CHECK(https->origin() == "https://example.com:443");

    auto http = Url::parse("http://example.com");
    REQUIRE(http.has_value());
    CHECK(http->port == "80");
    CHECK(http->origin() == "http://example.com:80");
}

TEST_CASE("Url::parse keeps path and query, drops the fragment, lowercases scheme and host",
          "[http][url]") {
    auto url = Url::parse("HTTP://Kube.Example.COM:8080/api/v1/pods?watch=1&rv=5#part");
    REQUIRE(url.has_value());
    CHECK(url->scheme == "http");
    CHECK(url->host == "kube.example.com");
    CHECK(url->port == "8080");
    CHECK(url->target == "/api/v1/pods?watch=1&rv=5");

    auto query_only = Url::parse("https://h?x=1");
    REQUIRE(query_only.has_value());
    CHECK(query_only->target == "/?x=1");
}

TEST_CASE("Url::parse takes IPv4 and bracketed IPv6 literals", "[http][url]") {
    auto v4 = Url::parse("https://10.96.0.1:443/version");
    REQUIRE(v4.has_value());
    CHECK(v4->host == "10.96.0.1");
    CHECK(v4->target == "/version");

    auto v6 = Url::parse("https://[::1]:6443/version");
    REQUIRE(v6.has_value());
    CHECK(v6->host == "::1");
    CHECK(v6->port == "6443");
    CHECK(v6->origin() == "https://[::1]:6443");

    auto v6_default = Url::parse("http://[FE80::1]");
    REQUIRE(v6_default.has_value());
    CHECK(v6_default->host == "fe80::1");
    CHECK(v6_default->port == "80");
    CHECK(v6_default->target == "/");
}

TEST_CASE("Url::parse rejects bad URLs and names the bad part", "[http][url]") {
    CHECK_THAT(parse_error("ftp://example.com/"), Catch::Contains("scheme"));
    CHECK_THAT(parse_error("example.com/path"), Catch::Contains("scheme"));
    CHECK_THAT(parse_error("http:///path"), Catch::Contains("host"));
    CHECK_THAT(parse_error("http://:80/"), Catch::Contains("host"));
    CHECK_THAT(parse_error("http://ex ample.com/"), Catch::Contains("space"));
    CHECK_THAT(parse_error("http://h:0/"), Catch::Contains("port"));
    CHECK_THAT(parse_error("http://h:65536/"), Catch::Contains("port"));
    CHECK_THAT(parse_error("http://h:8o/"), Catch::Contains("port"));
    CHECK_THAT(parse_error("http://h:/"), Catch::Contains("port"));
    CHECK_THAT(parse_error("http://[::1/"), Catch::Contains("IPv6"));
    CHECK_THAT(parse_error("http://[not-an-ip]/"), Catch::Contains("IPv6"));
    CHECK_THAT(parse_error("http://[::1]x/"), Catch::Contains("after the host"));
    CHECK_THAT(parse_error("http://user:pw@h/"), Catch::Contains("user"));
    CHECK_THAT(parse_error("http://h%41/"), Catch::Contains("host"));
}

TEST_CASE("Method names and case-insensitive response headers", "[http]") {
    CHECK(to_string(Method::kGet) == "GET");
    CHECK(to_string(Method::kHead) == "HEAD");
    CHECK(to_string(Method::kPost) == "POST");
    CHECK(to_string(Method::kPut) == "PUT");
    CHECK(to_string(Method::kPatch) == "PATCH");
    CHECK(to_string(Method::kDelete) == "DELETE");

    Response response;
    response.headers = {{"Content-Type", "application/json"}, {"X-A", "1"}, {"x-a", "2"}};
    CHECK(response.header("content-type") == "application/json");
    CHECK(response.header("X-A") == "1");
    CHECK_FALSE(response.header("Retry-After"));
}

TEST_CASE("Url::authority is a CONNECT target, with IPv6 literals in brackets", "[http][url]") {
    CHECK(Url::parse("https://hooks.slack.com/services/x")->authority() == "hooks.slack.com:443");
    CHECK(Url::parse("http://[::1]:8080/")->authority() == "[::1]:8080");
}

TEST_CASE("Proxy::parse takes http proxies, with a percent-decoded user and password",
          "[http][url][proxy]") {
    auto plain = Proxy::parse("http://proxy.corp:3128");
    REQUIRE(plain.has_value());
    CHECK(plain->url.origin() == "http://proxy.corp:3128");
    CHECK(plain->authorization.empty());

    auto with_user = Proxy::parse("http://bot:s%3Acret%40x@10.0.0.1:8080/");
    REQUIRE(with_user.has_value());
    CHECK(with_user->url.origin() == "http://10.0.0.1:8080");
    CHECK(with_user->authorization == "Basic " + serin::encode_base64("bot:s:cret@x"));

    auto user_only = Proxy::parse("http://bot@proxy:80");
    REQUIRE(user_only.has_value());
    CHECK(user_only->authorization == "Basic " + serin::encode_base64("bot:"));
}

TEST_CASE("Proxy::parse refuses what it cannot use and never repeats the password",
          "[http][url][proxy]") {
    const auto error_of = [](std::string_view text) {
        auto proxy = Proxy::parse(text);
        REQUIRE_FALSE(proxy.has_value());
        CHECK(proxy.error().kind == ErrorKind::kInvalid);
        return proxy.error().message;
    };
    const std::string https = error_of("https://bot:hunter2@proxy:443");
    CHECK_THAT(https, Catch::Contains("only http:// proxies"));
    CHECK_THAT(https, Catch::Contains("https://proxy:443"));
    CHECK_THAT(https, !Catch::Contains("hunter2"));
    const std::string bad_port = error_of("http://bot:hunter2@proxy:99999");
    CHECK_THAT(bad_port, Catch::Contains("invalid port"));
    CHECK_THAT(bad_port, !Catch::Contains("hunter2"));
    CHECK_THAT(error_of("http://bot:%zz@proxy:80"), Catch::Contains("percent-encoding"));
    CHECK_THAT(error_of("socks5://proxy:1080"), Catch::Contains("unsupported scheme"));
}

TEST_CASE("a proxy password holding '/', '?', '#' or '@' never shows in an error",
          "[http][url][proxy]") {
    for (const char* text : {"http://user:pa/ss@proxy:3128", "http://user:pa?ss@proxy:3128",
                             "http://user:pa#ss@proxy:3128", "http://user:p@ss@proxy:99999",
                             "https://user:pa/ss@proxy:3128"}) {
        INFO(text);
        auto proxy = Proxy::parse(text);
        if (proxy) {
            // Unencoded, but what it is is clear: user "user", the rest the password.
            CHECK(proxy->url.host == "proxy");
            CHECK(proxy->authorization.rfind("Basic ", 0) == 0);
        } else {
            CHECK(proxy.error().message.find("pa") == std::string::npos);
            CHECK(proxy.error().message.find("ss") == std::string::npos);
            CHECK(proxy.error().message.find("user information hidden") != std::string::npos);
        }
    }
    auto slash = Proxy::parse("http://user:pa/ss@proxy:3128");
    REQUIRE(slash.has_value());
    CHECK(slash->authorization == "Basic " + serin::encode_base64("user:pa/ss"));
}
