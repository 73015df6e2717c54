// ProviderMetricChecker with the builtin providers, as main builds it, against a loopback
// Prometheus stand-in: MetricTemplates with insecureSkipVerify over TLS, and the judge's two range
// queries (canary and primary).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "metrics/checker.hpp"
#include "platform/core/text.hpp"
#include "tests/support/test_certs.hpp"
#include "tests/support/test_http_server.hpp"
#include "tests/support/unimplemented_kube_client.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using Json = nlohmann::json;
using serin::analysis::MetricResult;
using serin::analysis::Verdict;
using serin::test::TestHttpServer;
using serin::test::TestRequest;
using serin::test::TestResponseWriter;

/// A Prometheus answer with one sample of `value` (instant) or a series (range).
std::string vector_answer(const std::string& value) {
    return R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,")" +
           value + R"("]}]}})";
}

std::string matrix_answer(const std::vector<double>& values) {
    Json points = Json::array();
    for (std::size_t i = 0; i < values.size(); ++i) {
        points.push_back(Json::array({1700000000 + static_cast<int>(i), std::to_string(values[i])}));
    }
    const Json body = {
        {"status", "success"},
        {"data", {{"resultType", "matrix"}, {"result", Json::array({{{"metric", Json::object()}, {"values", points}}})}}}};
    return body.dump();
}

/// The series the stand-in returns for the judge: the primary steady at 200, the canary at
/// `canary_ms` (each with a small ripple, as real rates have).
std::vector<double> series(double level) {
    std::vector<double> out;
    for (int i = 0; i < 11; ++i) {
        out.push_back(level * (0.98 + 0.004 * (i % 6)));
    }
    return out;
}

struct Fixture {
    explicit Fixture(bool tls) : tls_(tls) {}

    asio::io_context io;
    ManualClock clock;
    double canary_ms = 200;
    TestHttpServer::Handler handler = [this](const TestRequest& request,
                                             TestResponseWriter& writer) -> asio::awaitable<void> {
        // (No braced temporaries in co_await arguments: g++ 12 miscompiles them.)
        const serin::test::TestHeaders json{{"Content-Type", "application/json"}};
        if (request.target.rfind("/api/v1/query_range?", 0) == 0) {
            const bool primary = request.target.find("podinfo-primary") != std::string::npos;
            co_await writer.respond(200, matrix_answer(series(primary ? 200 : canary_ms)), json);
            co_return;
        }
        co_await writer.respond(200, vector_answer("99.5"), json);
    };
    bool tls_;
    std::unique_ptr<TestHttpServer> server = start_server();
    http::HttpClientPtr verified = make(false);
    http::HttpClientPtr insecure = make(true);
    testing::UnimplementedKubeClient kube;
    kube::Informer templates{kube, clock, kube::types::metric_templates()};  // never started
    kube::ObjectStore store{clock};

    /// The stand-in: HTTPS with a certificate from the test CA (which no client here trusts), or
    /// plain HTTP.
    std::unique_ptr<TestHttpServer> start_server() {
        if (!tls_) {
            return std::make_unique<TestHttpServer>(io.get_executor(), handler);
        }
        const auto& pki = serin::test::test_pki();
        return std::make_unique<TestHttpServer>(
            io.get_executor(), handler,
            serin::test::TestServerTls{pki.server.cert_pem, pki.server.key_pem, {}});
    }

    http::HttpClientPtr make(bool insecure_skip_verify) {
        http::ClientOptions options;
        options.tls.insecure_skip_verify = insecure_skip_verify;
        auto c = http::make_beast_client(io.get_executor(), options);
        REQUIRE(c);
        return std::move(*c);
    }

    /// A MetricTemplate `name` in namespace test querying the stand-in.
    void add_template(const std::string& name, const std::string& query, bool insecure_skip_verify) {
        store.add(templates);
        store.wrote(kube::types::metric_templates(),
                    {{"apiVersion", "flagger.app/v1beta1"},
                     {"kind", "MetricTemplate"},
                     {"metadata", {{"name", name}, {"namespace", "test"}, {"resourceVersion", "1"}}},
                     {"spec",
                      {{"provider",
                        {{"type", "prometheus"},
                         {"address", server->base_url()},
                         {"insecureSkipVerify", insecure_skip_verify}}},
                       {"query", query}}}});
    }

    /// The builtin providers over the verified client and `insecure_client`.
    metrics::ProviderRegistry providers(http::HttpClient* insecure_client) {
        metrics::ProviderRegistry registry(metrics::ProviderDeps{*verified, insecure_client, {}});
        metrics::register_builtin_providers(registry);
        return registry;
    }

    std::vector<MetricResult> check(metrics::ProviderMetricChecker& checker, api::Canary c) {
        std::optional<std::vector<MetricResult>> out;
        asio::co_spawn(io, checker.check(std::move(c)),
                       [&out](std::exception_ptr e, std::vector<MetricResult> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out.emplace(std::move(r));
                       });
        io.restart();
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
        while (!out && std::chrono::steady_clock::now() < deadline) {
            io.run_one_for(std::chrono::milliseconds{100});
        }
        REQUIRE(out.has_value());
        return std::move(*out);
    }
};

api::Canary canary_with(api::CanaryMetric metric) {
    api::Canary c;
    c.metadata.name = "podinfo";
    c.metadata.ns = "test";
    c.spec.target_ref = {"apps/v1", "Deployment", "podinfo"};
    c.spec.analysis.emplace();
    c.spec.analysis->metrics = {std::move(metric)};
    return c;
}

api::CanaryMetric template_metric(const std::string& name) {
    api::CanaryMetric m;
    m.name = name;
    m.interval = "10s";
    m.interval_duration = std::chrono::seconds{10};
    m.template_ref = api::TemplateRef{name, ""};
    return m;
}

}  // namespace

TEST_CASE("insecureSkipVerify: a template on a Prometheus with an untrusted certificate is read") {
    Fixture f(true);
    f.add_template("success", "vector(99.5)", true);
    metrics::ProviderRegistry providers = f.providers(f.insecure.get());
    metrics::ProviderMetricChecker checker(providers, {}, &f.clock);
    checker.use_store(f.store);
    api::CanaryMetric m = template_metric("success");
    m.threshold_range = api::ThresholdRange{99.0, std::nullopt};
    const auto results = f.check(checker, canary_with(m));
    REQUIRE(results.size() == 1);
    CHECK(results[0].verdict == Verdict::kPass);
    CHECK(results[0].value == 99.5);
    CHECK(f.server->requests().size() == 1);
}

TEST_CASE("without insecureSkipVerify the untrusted certificate is an error naming TLS") {
    Fixture f(true);
    f.add_template("success", "vector(99.5)", false);
    metrics::ProviderRegistry providers = f.providers(f.insecure.get());
    metrics::ProviderMetricChecker checker(providers, {}, &f.clock);
    checker.use_store(f.store);
    api::CanaryMetric m = template_metric("success");
    m.threshold_range = api::ThresholdRange{99.0, std::nullopt};
    const auto results = f.check(checker, canary_with(m));
    REQUIRE(results.size() == 1);
    CHECK(results[0].verdict == Verdict::kError);
    CHECK_THAT(results[0].message, Catch::Contains("Metric query failed for success") &&
                                       Catch::Contains("certificate verify failed"));
    CHECK(f.server->requests().empty());  // the handshake failed before any request
}

TEST_CASE("insecureSkipVerify on a checker without an insecure client is an error, not a bypass") {
    Fixture f(true);
    f.add_template("success", "vector(99.5)", true);
    metrics::ProviderRegistry providers = f.providers(nullptr);
    metrics::ProviderMetricChecker checker(providers, {}, &f.clock);
    checker.use_store(f.store);
    const auto results = f.check(checker, canary_with(template_metric("success")));
    REQUIRE(results.size() == 1);
    CHECK(results[0].verdict == Verdict::kError);
    CHECK_THAT(results[0].message, Catch::Contains("spec.provider.insecureSkipVerify is set"));
    CHECK(f.server->requests().empty());
}

TEST_CASE("a judged metric range-queries the canary and the primary over its interval") {
    Fixture f(false);
    const std::string query =
        "avg(latency{namespace=\"{{ namespace }}\",workload=\"{{ target }}\"}[{{ interval }}])";
    f.add_template("mean-latency", query, false);
    metrics::ProviderRegistry providers = f.providers(f.insecure.get());
    metrics::ProviderMetricChecker checker(providers, {}, &f.clock);
    checker.use_store(f.store);
    api::CanaryMetric m = template_metric("mean-latency");
    m.judge = api::MetricJudge{};
    m.judge->direction = "increase";

    SECTION("the same latency is Pass, with both sides' samples") {
        const auto results = f.check(checker, canary_with(m));
        REQUIRE(results.size() == 1);
        REQUIRE(results[0].judged.has_value());
        CHECK(results[0].judged->label == analysis::judge::Label::kPass);
        CHECK(results[0].judged->canary_count == 11);
        CHECK(results[0].judged->primary_count == 11);
        // Two range queries: the canary's (target podinfo), then the primary's; the window ends
        // now (the checker's clock), is the metric's interval, and has 1s steps (10s / 60 < 1s).
        const auto& requests = f.server->requests();
        REQUIRE(requests.size() == 2);
        CHECK_THAT(requests[0].target, Catch::Contains("workload%3D%22podinfo%22"));
        CHECK_THAT(requests[1].target, Catch::Contains("workload%3D%22podinfo-primary%22"));
        for (const auto& r : requests) {
            CHECK_THAT(r.target, Catch::StartsWith("/api/v1/query_range?") &&
                                     Catch::Contains("&start=1699999990.000&end=1700000000.000") &&
                                     Catch::Contains("&step=1s"));
        }
    }
    SECTION("a canary 30% slower is High with the ratio of the means") {
        f.canary_ms = 260;
        const auto results = f.check(checker, canary_with(m));
        REQUIRE(results.size() == 1);
        REQUIRE(results[0].judged.has_value());
        CHECK(results[0].judged->label == analysis::judge::Label::kHigh);
        CHECK(results[0].judged->ratio == Approx(1.3).epsilon(0.001));
        CHECK(results[0].verdict == Verdict::kFail);
        CHECK_THAT(results[0].message, Catch::StartsWith("Metric mean-latency judged High"));
    }
    SECTION("judge.step sets the resolution of the range queries") {
        m.judge->step = std::chrono::seconds{5};
        f.check(checker, canary_with(m));
        REQUIRE(f.server->requests().size() == 2);
        CHECK_THAT(f.server->requests()[0].target, Catch::Contains("&step=5s"));
    }
}

TEST_CASE("a template without an address never sends its credentials to the canary's server") {
    Fixture f(false);
    f.store.add(f.templates);
    for (const char* name : {"with-secret", "with-headers"}) {
        Json provider = {{"type", "prometheus"}};
        if (std::string(name) == "with-secret") {
            provider["secretRef"] = {{"name", "shared-token"}};
        } else {
            provider["headers"] = {{"Authorization", {"Bearer shared"}}};
        }
        f.store.wrote(kube::types::metric_templates(),
                      {{"apiVersion", "flagger.app/v1beta1"},
                       {"kind", "MetricTemplate"},
                       {"metadata", {{"name", name}, {"namespace", "test"}, {"resourceVersion", "1"}}},
                       {"spec", {{"provider", provider}, {"query", "vector(1)"}}}});
    }
    metrics::ProviderRegistry providers = f.providers(f.insecure.get());
    metrics::ProviderMetricChecker checker(providers, {}, &f.clock);
    checker.use_store(f.store);
    for (const char* name : {"with-secret", "with-headers"}) {
        INFO(name);
        api::Canary c = canary_with(template_metric(name));
        c.spec.metrics_server = f.server->base_url();  // the canary author's choice
        const auto results = f.check(checker, c);
        REQUIRE(results.size() == 1);
        CHECK(results[0].verdict == Verdict::kError);
        CHECK_THAT(results[0].message,
                   Catch::Contains("spec.provider.address is empty; a template with a secretRef "
                                   "or headers must name its own server"));
    }
    CHECK(f.server->requests().empty());
}

TEST_CASE("a template header with a line break is refused by name") {
    Fixture f(false);
    f.store.add(f.templates);
    f.store.wrote(kube::types::metric_templates(),
                  {{"apiVersion", "flagger.app/v1beta1"},
                   {"kind", "MetricTemplate"},
                   {"metadata", {{"name", "split"}, {"namespace", "test"}, {"resourceVersion", "1"}}},
                   {"spec",
                    {{"provider",
                      {{"type", "prometheus"},
                       {"address", f.server->base_url()},
                       {"headers", {{"X-Scope-OrgID", {"tenant\r\nX-Other: 1"}}}}}},
                     {"query", "vector(1)"}}}});
    metrics::ProviderRegistry providers = f.providers(f.insecure.get());
    metrics::ProviderMetricChecker checker(providers, {}, &f.clock);
    checker.use_store(f.store);
    const auto results = f.check(checker, canary_with(template_metric("split")));
    REQUIRE(results.size() == 1);
    CHECK(results[0].verdict == Verdict::kError);
    CHECK_THAT(results[0].message,
               Catch::Contains("spec.provider.headers.X-Scope-OrgID holds a line break or NUL"));
    CHECK(f.server->requests().empty());
}

TEST_CASE("a 503 whose body is cut inside a character is quoted short and as valid UTF-8") {
    Fixture f(false);
    std::string body = "service unavailable: ";
    for (int i = 0; i < 400; ++i) {
        body += "\xC3\xA4";  // ä
    }
    body.resize(600);  // cut inside a character, as a proxy that truncates would
    TestHttpServer unavailable(f.io.get_executor(),
                               [body](const TestRequest&, TestResponseWriter& writer)
                                   -> asio::awaitable<void> { co_await writer.respond(503, body); });
    metrics::ProviderRegistry providers = f.providers(f.insecure.get());
    metrics::ProviderMetricChecker checker(providers, {}, &f.clock);
    api::CanaryMetric m;
    m.name = "errors";
    m.interval = "1m";
    m.query = "sum(up)";
    api::Canary c = canary_with(m);
    c.spec.metrics_server = unavailable.base_url();
    const auto results = f.check(checker, c);
    REQUIRE(results.size() == 1);
    CHECK(results[0].verdict == Verdict::kError);
    CHECK_THAT(results[0].message, Catch::Contains("error response: Status 503: service unavailable"));
    CHECK(serin::text::is_valid_utf8(results[0].message));
    CHECK(results[0].message.size() < 600);
}
