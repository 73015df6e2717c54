// The metric provider registry, and the Prometheus provider over a scripted HTTP client (no
// network): which client it uses, what it sends, and how it refuses bad settings.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "metrics/prometheus/prometheus_provider.hpp"
#include "metrics/provider.hpp"
#include "platform/core/base64.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using metrics::MetricProviderPtr;
using metrics::ProviderDeps;
using metrics::ProviderRegistry;
using metrics::ProviderSettings;

/// Records each request and answers it at once with `status` and `body`.
class ScriptedHttp final : public http::HttpClient {
public:
    asio::awaitable<Result<http::Response>> send(http::Request request) override {
        requests.push_back(std::move(request));
        http::Response response;
        response.status = status;
        response.body = body;
        co_return response;
    }
    asio::awaitable<Result<http::Response>> stream(http::Request, http::LineHandler) override {
        co_return fail(ErrorKind::kInternal, "not in this test");
    }

    std::vector<http::Request> requests;
    int status = 200;
    std::string body =
        R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"99.5"]}]}})";
};

/// A provider that answers nothing; the registry tests only look at how it was built.
class Inert final : public metrics::MetricProvider {
public:
    std::string_view name() const override { return "Inert"; }
    asio::awaitable<Result<std::optional<double>>> query(std::string) override {
        co_return std::optional<double>();
    }
    asio::awaitable<Result<std::vector<double>>> query_range(std::string,
                                                             metrics::RangeWindow) override {
        co_return std::vector<double>();
    }
};

template <class T>
T run(asio::io_context& io, asio::awaitable<T> task) {
    std::optional<T> out;
    asio::co_spawn(io, std::move(task), [&out](std::exception_ptr e, T r) {
        if (e) {
            std::rethrow_exception(e);
        }
        out.emplace(std::move(r));
    });
    io.restart();
    io.run();  // the scripted client answers at once
    REQUIRE(out.has_value());
    return std::move(*out);
}

std::optional<std::string> header(const http::Request& request, std::string_view name) {
    for (const auto& [key, value] : request.headers) {
        if (key == name) {
            return value;
        }
    }
    return std::nullopt;
}

ProviderSettings prometheus_at(std::string address) {
    ProviderSettings s;
    s.type = "prometheus";
    s.address = std::move(address);
    return s;
}

}  // namespace

TEST_CASE("the registry builds a provider of a type from its settings and the shared clients") {
    ScriptedHttp verified;
    ScriptedHttp insecure;
    ProviderRegistry registry(ProviderDeps{verified, &insecure, {}});
    std::vector<std::string> addresses;
    registry.add("datadog", [&](const ProviderSettings& settings, const ProviderDeps& deps)
                                -> Result<MetricProviderPtr> {
        CHECK(&deps.http == &verified);
        CHECK(deps.insecure == &insecure);
        addresses.push_back(settings.address);
        return MetricProviderPtr(std::make_unique<Inert>());
    });
    ProviderSettings settings;
    settings.type = "datadog";
    settings.address = "https://one";
    auto first = registry.build(settings);
    REQUIRE(first.has_value());
    CHECK((*first)->name() == "Inert");
    settings.address = "https://two";
    auto second = registry.build(settings);
    REQUIRE(second.has_value());
    // Built anew for each use, from that use's settings.
    CHECK(addresses == std::vector<std::string>{"https://one", "https://two"});
    CHECK(first->get() != second->get());
}

TEST_CASE("an unregistered type is refused naming it and what the build supports") {
    ScriptedHttp http;
    ProviderRegistry registry(ProviderDeps{http, nullptr, {}});
    const auto inert = [](const ProviderSettings&, const ProviderDeps&) -> Result<MetricProviderPtr> {
        return MetricProviderPtr(std::make_unique<Inert>());
    };
    CHECK(registry.supported() == "no provider is");
    registry.add("prometheus", inert);
    CHECK(registry.supported() == "prometheus is");

    ProviderSettings settings;
    settings.type = "graphite";
    auto built = registry.build(settings);
    REQUIRE_FALSE(built.has_value());
    CHECK(built.error().kind == ErrorKind::kInvalid);
    CHECK(built.error().message == "error: spec.provider.type: \"graphite\" is not supported by "
                                   "this build of Serin (prometheus is)");
    CHECK_FALSE(registry.supports("graphite"));
    CHECK(registry.supports("prometheus"));

    registry.add("datadog", inert);
    CHECK(registry.supported() == "datadog and prometheus are");
    registry.add("influxdb", inert);
    CHECK(registry.supported() == "datadog, influxdb and prometheus are");
}

TEST_CASE("the query observer reaches the providers built after it is set") {
    ScriptedHttp http;
    ProviderRegistry registry(ProviderDeps{http, nullptr, {}});
    metrics::register_builtin_providers(registry);
    int observed = 0;
    bool last_ok = false;
    registry.set_query_observer([&](std::chrono::steady_clock::duration, bool ok) {
        ++observed;
        last_ok = ok;
    });
    auto provider = registry.build(prometheus_at("http://prom:9090"));
    REQUIRE(provider.has_value());
    asio::io_context io;
    (void)run(io, (*provider)->query("vector(1)"));
    CHECK(observed == 1);
    CHECK(last_ok);
    http.status = 503;
    (void)run(io, (*provider)->query("vector(1)"));
    CHECK(observed == 2);
    CHECK_FALSE(last_ok);
}

TEST_CASE("register_builtin_providers adds prometheus, whose queries are named Prometheus") {
    ScriptedHttp http;
    ProviderRegistry registry(ProviderDeps{http, nullptr, {}});
    metrics::register_builtin_providers(registry);
    CHECK(registry.supported() == "prometheus is");
    auto provider = registry.build(prometheus_at("http://prom:9090"));
    REQUIRE(provider.has_value());
    CHECK((*provider)->name() == "Prometheus");
}

TEST_CASE("the Prometheus provider queries its address with the template's headers and Secret") {
    ScriptedHttp http;
    const ProviderDeps deps{http, nullptr, {}};
    asio::io_context io;
    ProviderSettings s = prometheus_at("http://prom.example:9090/tenant/");
    s.headers = {{"X-Scope-OrgID", {"team-a"}}};
    s.secret_name = "prom-auth";

    SECTION("a token, trimmed, as a Bearer token") {
        s.secret = {{"token", "abc\n"}, {"username", "u"}, {"password", "p"}};
        auto provider = metrics::make_prometheus_provider(s, deps);
        REQUIRE(provider.has_value());
        const auto value = run(io, (*provider)->query("sum(up)\n  by (job)"));
        REQUIRE(value.has_value());
        CHECK(*value == 99.5);
        REQUIRE(http.requests.size() == 1);
        const http::Request& r = http.requests[0];
        CHECK(r.url == "http://prom.example:9090/tenant/api/v1/query?query=sum%28up%29%20by%20%28job%29");
        CHECK(header(r, "Authorization") == "Bearer abc");
        CHECK(header(r, "X-Scope-OrgID") == "team-a");
    }
    SECTION("without a token, username and password as Basic") {
        s.secret = {{"username", "u"}, {"password", "p"}};
        auto provider = metrics::make_prometheus_provider(s, deps);
        REQUIRE(provider.has_value());
        (void)run(io, (*provider)->query("vector(1)"));
        REQUIRE(http.requests.size() == 1);
        CHECK(header(http.requests[0], "Authorization") == "Basic " + encode_base64("u:p"));
    }
    SECTION("without a secretRef, no Authorization") {
        s.secret_name.clear();
        auto provider = metrics::make_prometheus_provider(s, deps);
        REQUIRE(provider.has_value());
        (void)run(io, (*provider)->query("vector(1)"));
        REQUIRE(http.requests.size() == 1);
        CHECK_FALSE(header(http.requests[0], "Authorization").has_value());
    }
    SECTION("a range query over the window, in its steps") {
        http.body = R"({"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}})";
        s.secret = {{"token", "abc"}};
        auto provider = metrics::make_prometheus_provider(s, deps);
        REQUIRE(provider.has_value());
        const auto end = std::chrono::system_clock::time_point{std::chrono::seconds{1'700'000'000}};
        const auto series = run(io, (*provider)->query_range(
                                        "avg(x)", {end - std::chrono::seconds{10}, end,
                                                   std::chrono::milliseconds{5000}}));
        REQUIRE(series.has_value());
        CHECK(*series == std::vector<double>{1, 2});
        REQUIRE(http.requests.size() == 1);
        const http::Request& r = http.requests[0];
        CHECK_THAT(r.url, Catch::StartsWith("http://prom.example:9090/tenant/api/v1/query_range?"
                                            "query=avg%28x%29") &&
                              Catch::EndsWith("&start=1699999990.000&end=1700000000.000&step=5s"));
        CHECK(header(r, "Authorization") == "Bearer abc");
        CHECK(header(r, "X-Scope-OrgID") == "team-a");
    }
}

TEST_CASE("the Prometheus provider refuses credentials it cannot send safely, by name") {
    ScriptedHttp http;
    const ProviderDeps deps{http, nullptr, {}};
    ProviderSettings s = prometheus_at("http://prom:9090");
    s.secret_name = "prom-auth";
    const auto refused = [&]() {
        auto provider = metrics::make_prometheus_provider(s, deps);
        REQUIRE_FALSE(provider.has_value());
        CHECK(provider.error().kind == ErrorKind::kInvalid);
        return provider.error().message;
    };
    SECTION("a Secret with neither token nor username and password") {
        s.secret = {{"username", "u"}};
        CHECK(refused() == "secret prom-auth error: it has neither token nor username and password");
    }
    SECTION("a line break in what would be sent") {
        s.secret = {{"username", "u\r\nX-Other: 1"}, {"password", "p"}};
        CHECK(refused() == "secret prom-auth error: data.username holds a line break or NUL");
    }
    SECTION("a line break in a header") {
        s.secret_name.clear();
        s.headers = {{"X-Scope-OrgID", {"tenant\nX-Other: 1"}}};
        CHECK(refused() == "error: spec.provider.headers.X-Scope-OrgID holds a line break or NUL");
    }
}

TEST_CASE("insecureSkipVerify picks the client without verification, and is refused without one") {
    ScriptedHttp verified;
    ScriptedHttp insecure;
    asio::io_context io;
    ProviderSettings s = prometheus_at("https://prom:9090");
    s.insecure_skip_verify = true;

    auto provider = metrics::make_prometheus_provider(s, ProviderDeps{verified, &insecure, {}});
    REQUIRE(provider.has_value());
    (void)run(io, (*provider)->query("vector(1)"));
    CHECK(insecure.requests.size() == 1);
    CHECK(verified.requests.empty());

    auto refused = metrics::make_prometheus_provider(s, ProviderDeps{verified, nullptr, {}});
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message ==
          "error: spec.provider.insecureSkipVerify is set but this checker has no client without "
          "TLS verification");
}
