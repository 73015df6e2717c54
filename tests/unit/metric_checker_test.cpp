// ProviderMetricChecker against scripted providers (no network): which provider each metric
// runs on and with what settings, the query it is given, how its answers and errors are worded
// and judged, and the judge's two range queries.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "metrics/checker.hpp"
#include "platform/core/base64.hpp"
#include "tests/support/unimplemented_kube_client.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using Json = nlohmann::json;
using analysis::MetricResult;
using analysis::Verdict;
using metrics::ProviderSettings;

/// What the scripted providers were built with and asked, and what they answer.
struct Script {
    std::vector<ProviderSettings> built;
    std::vector<std::string> queries;
    std::vector<std::pair<std::string, metrics::RangeWindow>> ranges;
    Result<std::optional<double>> answer = std::optional<double>(42.0);
    std::optional<Error> build_error;  ///< what the factory fails with, when set
    double canary_level = 200;         ///< range answers: the primary's series is at 200
};

class ScriptedProvider final : public metrics::MetricProvider {
public:
    explicit ScriptedProvider(Script& script) : script_(script) {}

    std::string_view name() const override { return "Scripted"; }

    asio::awaitable<Result<std::optional<double>>> query(std::string query) override {
        script_.queries.push_back(std::move(query));
        co_return script_.answer;
    }

    asio::awaitable<Result<std::vector<double>>> query_range(std::string query,
                                                             metrics::RangeWindow window) override {
        const bool primary = query.find("-primary") != std::string::npos;
        script_.ranges.emplace_back(std::move(query), window);
        std::vector<double> series;
        for (int i = 0; i < 11; ++i) {
            series.push_back((primary ? 200 : script_.canary_level) * (0.98 + 0.004 * (i % 6)));
        }
        co_return series;
    }

private:
    Script& script_;
};

/// The HTTP client the registry is given; scripted providers never use it.
class NoHttp final : public http::HttpClient {
public:
    asio::awaitable<Result<http::Response>> send(http::Request) override {
        co_return fail(ErrorKind::kInternal, "not in this test");
    }
    asio::awaitable<Result<http::Response>> stream(http::Request, http::LineHandler) override {
        co_return fail(ErrorKind::kInternal, "not in this test");
    }
};

struct Fixture {
    ManualClock clock;  // before the io_context, which may hold its timers
    asio::io_context io;
    Script script;
    NoHttp http;
    metrics::ProviderRegistry providers{metrics::ProviderDeps{http, nullptr, {}}};
    testing::UnimplementedKubeClient kube;
    kube::Informer templates{kube, clock, kube::types::metric_templates()};  // never started
    kube::Informer secrets{kube, clock, kube::types::secrets()};
    kube::ObjectStore store{clock};

    /// `types` run on scripted providers; the checker reads templates from `store`.
    explicit Fixture(std::initializer_list<const char*> types) {
        for (const char* type : types) {
            providers.add(type, [this](const ProviderSettings& settings,
                                       const metrics::ProviderDeps&)
                                    -> Result<metrics::MetricProviderPtr> {
                script.built.push_back(settings);
                if (script.build_error) {
                    return *script.build_error;
                }
                return metrics::MetricProviderPtr(std::make_unique<ScriptedProvider>(script));
            });
        }
        store.add(templates);
        store.add(secrets);
    }

    void add_template(const std::string& name, Json provider, const std::string& query) {
        store.wrote(kube::types::metric_templates(),
                    {{"apiVersion", "flagger.app/v1beta1"},
                     {"kind", "MetricTemplate"},
                     {"metadata", {{"name", name}, {"namespace", "test"}, {"resourceVersion", "1"}}},
                     {"spec", {{"provider", std::move(provider)}, {"query", query}}}});
    }

    void add_secret(const std::string& name, const std::map<std::string, std::string>& data) {
        Json encoded = Json::object();
        for (const auto& [key, value] : data) {
            encoded[key] = encode_base64(value);
        }
        store.wrote(kube::types::secrets(),
                    {{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata", {{"name", name}, {"namespace", "test"}, {"resourceVersion", "1"}}},
                     {"data", encoded}});
    }

    std::vector<MetricResult> check(api::Canary canary,
                                    metrics::MetricCheckerOptions options = {}) {
        metrics::ProviderMetricChecker checker(providers, std::move(options), &clock);
        checker.use_store(store);
        std::optional<std::vector<MetricResult>> out;
        asio::co_spawn(io, checker.check(std::move(canary)),
                       [&out](std::exception_ptr e, std::vector<MetricResult> r) {
                           if (e) {
                               std::rethrow_exception(e);
                           }
                           out.emplace(std::move(r));
                       });
        io.restart();
        io.run();  // scripted providers answer at once
        REQUIRE(out.has_value());
        return std::move(*out);
    }

    /// The one result of a canary with only `metric`.
    MetricResult check_one(api::CanaryMetric metric, metrics::MetricCheckerOptions options = {},
                           std::string metrics_server = "") {
        api::Canary c;
        c.metadata.name = "podinfo";
        c.metadata.ns = "test";
        c.spec.target_ref = {"apps/v1", "Deployment", "podinfo"};
        c.spec.metrics_server = std::move(metrics_server);
        c.spec.analysis.emplace();
        c.spec.analysis->metrics = {std::move(metric)};
        auto results = check(std::move(c), std::move(options));
        REQUIRE(results.size() == 1);
        return results[0];
    }
};

api::CanaryMetric template_metric(const std::string& name) {
    api::CanaryMetric m;
    m.name = name;
    m.interval = "10s";
    m.interval_duration = std::chrono::seconds{10};
    m.template_ref = api::TemplateRef{name, ""};
    return m;
}

api::CanaryMetric builtin(const std::string& name, double min, double max) {
    api::CanaryMetric m;
    m.name = name;
    m.threshold_range = api::ThresholdRange{min, max};
    return m;
}

}  // namespace

TEST_CASE("a template of a registered type runs on its provider with the rendered query and the "
          "Secret's data") {
    Fixture f({"prometheus", "datadog"});
    f.add_secret("dd-keys", {{"datadog_api_key", "k1"}, {"datadog_application_key", "k2"}});
    f.add_template("latency",
                   {{"type", "datadog"},
                    {"address", "https://dd.example"},
                    {"headers", {{"X-Tenant", {"a", "b"}}}},
                    {"secretRef", {{"name", "dd-keys"}}},
                    {"region", "eu-west-1"},
                    {"insecureSkipVerify", true}},
                   "avg:latency{service:{{ target }},env:{{ variables.env }}}.rollup({{ interval }})");
    api::CanaryMetric m = template_metric("latency");
    m.template_variables = {{"env", "prod"}};
    m.threshold_range = api::ThresholdRange{std::nullopt, 50.0};

    const MetricResult r = f.check_one(m);
    CHECK(r.verdict == Verdict::kPass);
    CHECK(r.value == 42.0);
    REQUIRE(f.script.built.size() == 1);
    const ProviderSettings& s = f.script.built[0];
    CHECK(s.type == "datadog");
    CHECK(s.address == "https://dd.example");
    CHECK(s.headers == std::map<std::string, std::vector<std::string>>{{"X-Tenant", {"a", "b"}}});
    CHECK(s.secret_name == "dd-keys");
    CHECK(s.secret ==
          std::map<std::string, std::string>{{"datadog_api_key", "k1"}, {"datadog_application_key", "k2"}});
    CHECK(s.region == "eu-west-1");
    CHECK(s.insecure_skip_verify);
    CHECK(f.script.queries == std::vector<std::string>{"avg:latency{service:podinfo,env:prod}.rollup(10s)"});

    SECTION("a value over its maximum fails with the template's wording") {
        f.script.answer = std::optional<double>(60.0);
        const MetricResult high = f.check_one(m);
        CHECK(high.verdict == Verdict::kFail);
        CHECK(high.message == "Halt podinfo.test advancement latency 60.00 > 50");
    }
}

TEST_CASE("a template whose type nobody registered fails naming it, and nothing is built") {
    Fixture f({"prometheus"});
    f.add_template("latency", {{"type", "datadog"}, {"address", "https://dd.example"}}, "q");
    const MetricResult r = f.check_one(template_metric("latency"));
    CHECK(r.verdict == Verdict::kError);
    CHECK(r.message == "Metric template latency.test error: spec.provider.type: \"datadog\" is not "
                       "supported by this build of Serin (prometheus is)");
    CHECK(f.script.built.empty());
    CHECK(f.script.queries.empty());
}

TEST_CASE("builtin and inline queries run on the metrics server's provider") {
    Fixture f({"prometheus", "datadog"});
    metrics::MetricCheckerOptions flag;
    flag.metrics_server = "http://flag:9090";
    const metrics::TemplateVars vars = [] {
        api::Canary c;
        c.metadata.name = "podinfo";
        c.metadata.ns = "test";
        c.spec.target_ref = {"apps/v1", "Deployment", "podinfo"};
        return metrics::template_vars(c, builtin("request-success-rate", 99, 100));
    }();
    const auto istio =
        metrics::builtin_query(metrics::Observer::kIstio, "request-success-rate").value();
    const std::string rendered = metrics::render_query(istio.query, vars).value();

    SECTION("at -metrics-server when the canary names no metricsServer") {
        const MetricResult r = f.check_one(builtin("request-success-rate", 1, 100), flag);
        CHECK(r.verdict == Verdict::kPass);
        REQUIRE(f.script.built.size() == 1);
        CHECK(f.script.built[0].type == "prometheus");
        CHECK(f.script.built[0].address == "http://flag:9090");
        CHECK(f.script.built[0].secret.empty());
        CHECK(f.script.queries == std::vector<std::string>{rendered});
    }
    SECTION("at spec.metricsServer when it is set") {
        (void)f.check_one(builtin("request-success-rate", 1, 100), flag, "http://own:9090");
        REQUIRE(f.script.built.size() == 1);
        CHECK(f.script.built[0].address == "http://own:9090");
    }
    SECTION("an inline query is sent as written, not rendered") {
        api::CanaryMetric m;
        m.name = "errors";
        m.query = "sum(up{job=\"{{ target }}\"})";
        (void)f.check_one(m, flag);
        REQUIRE(f.script.built.size() == 1);
        CHECK(f.script.built[0].type == "prometheus");
        CHECK(f.script.queries == std::vector<std::string>{"sum(up{job=\"{{ target }}\"})"});
    }
    SECTION("without a provider of the metrics server's type they fail saying so") {
        Fixture other({"datadog"});
        const MetricResult r = other.check_one(builtin("request-success-rate", 1, 100), flag);
        CHECK(r.verdict == Verdict::kError);
        CHECK(r.message ==
              "Metric query failed for request-success-rate: builtin and inline queries need the "
              "prometheus provider, which this build of Serin lacks (datadog is)");
        CHECK(other.script.built.empty());
    }
}

TEST_CASE("a provider's error is worded by where the query came from, naming the provider") {
    Fixture f({"prometheus", "datadog"});
    f.script.answer = fail(ErrorKind::kTransient, "connection refused");
    f.add_template("latency", {{"type", "datadog"}, {"address", "https://dd.example"}}, "q");
    api::CanaryMetric inline_query;
    inline_query.name = "errors";
    inline_query.query = "sum(up)";

    CHECK(f.check_one(builtin("request-success-rate", 99, 100)).message ==
          "Scripted query failed: connection refused");
    CHECK(f.check_one(inline_query).message ==
          "Scripted query failed for errors: connection refused");
    CHECK(f.check_one(template_metric("latency")).message ==
          "Metric query failed for latency: connection refused");
}

TEST_CASE("a factory's error follows the template's name") {
    Fixture f({"datadog"});
    f.add_secret("dd-keys", {{"datadog_api_key", "k1"}});
    f.add_template("latency",
                   {{"type", "datadog"}, {"address", "https://dd.example"}, {"secretRef", {{"name", "dd-keys"}}}},
                   "q");
    ProviderSettings with_name;
    with_name.secret_name = "dd-keys";
    SECTION("about the template") {
        f.script.build_error = metrics::provider_error("spec.provider.region is required");
        CHECK(f.check_one(template_metric("latency")).message ==
              "Metric template latency.test error: spec.provider.region is required");
    }
    SECTION("about its Secret") {
        f.script.build_error =
            metrics::secret_error(with_name, "datadog_application_key is required");
        CHECK(f.check_one(template_metric("latency")).message ==
              "Metric template latency.test secret dd-keys error: datadog_application_key is "
              "required");
    }
    CHECK(f.script.queries.empty());
}

TEST_CASE("a template's Secret that does not exist is an error naming it, before any build") {
    Fixture f({"datadog"});
    f.add_template("latency",
                   {{"type", "datadog"}, {"address", "https://dd.example"}, {"secretRef", {{"name", "gone"}}}},
                   "q");
    const MetricResult r = f.check_one(template_metric("latency"));
    CHECK(r.verdict == Verdict::kError);
    CHECK(r.message == "Metric template latency.test secret gone error: not found");
    CHECK(f.script.built.empty());
}

TEST_CASE("a template of the metrics server's type without an address runs at the metrics "
          "server, and only without credentials") {
    Fixture f({"prometheus"});
    f.add_secret("token", {{"token", "t"}});
    f.add_template("plain", {{"type", "prometheus"}}, "vector(1)");
    f.add_template("with-secret", {{"type", "prometheus"}, {"secretRef", {{"name", "token"}}}},
                   "vector(1)");
    f.add_template("with-headers", {{"type", "prometheus"}, {"headers", {{"X-Token", {"t"}}}}},
                   "vector(1)");

    const MetricResult plain = f.check_one(template_metric("plain"), {}, "http://own:9090");
    CHECK(plain.verdict == Verdict::kPass);
    REQUIRE(f.script.built.size() == 1);
    CHECK(f.script.built[0].address == "http://own:9090");
    for (const char* name : {"with-secret", "with-headers"}) {
        INFO(name);
        const MetricResult r = f.check_one(template_metric(name), {}, "http://own:9090");
        CHECK(r.verdict == Verdict::kError);
        CHECK_THAT(r.message, Catch::Contains("spec.provider.address is empty"));
    }
    CHECK(f.script.built.size() == 1);
}

TEST_CASE("a missing template is an error naming it") {
    Fixture f({"prometheus"});
    const MetricResult r = f.check_one(template_metric("absent"));
    CHECK(r.verdict == Verdict::kError);
    CHECK(r.message == "Metric template absent.test error: not found");
}

TEST_CASE("builtin values are judged in the metric's unit, and no data as no data") {
    Fixture f({"prometheus"});
    metrics::MetricCheckerOptions kubernetes;
    kubernetes.mesh_provider = "kubernetes";  // the app's own histogram, in seconds

    SECTION("a duration in seconds is judged in milliseconds") {
        f.script.answer = std::optional<double>(0.6);
        const MetricResult r = f.check_one(builtin("request-duration", 0, 500), kubernetes);
        CHECK(r.verdict == Verdict::kFail);
        REQUIRE(r.value.has_value());
        CHECK(*r.value == Approx(600));
        CHECK(r.message == "Halt podinfo.test advancement request duration 600ms > 500ms");
    }
    SECTION("no data is Flagger's no values found") {
        f.script.answer = std::optional<double>();
        const MetricResult r = f.check_one(builtin("request-success-rate", 99, 100), kubernetes);
        CHECK(r.verdict == Verdict::kNoData);
        CHECK_THAT(r.message, Catch::StartsWith("Halt advancement no values found for"));
    }
}

TEST_CASE("a judged metric range-queries one provider for the canary, then the primary") {
    Fixture f({"datadog"});
    f.add_template("mean-latency", {{"type", "datadog"}, {"address", "https://dd.example"}},
                   "avg:latency{workload:{{ target }}}");
    api::CanaryMetric m = template_metric("mean-latency");
    m.judge = api::MetricJudge{};
    m.judge->direction = "increase";

    SECTION("over the metric's interval ending now, in 1s steps") {
        const MetricResult r = f.check_one(m);
        REQUIRE(r.judged.has_value());
        CHECK(r.judged->label == analysis::judge::Label::kPass);
        CHECK(f.script.built.size() == 1);
        REQUIRE(f.script.ranges.size() == 2);
        CHECK(f.script.ranges[0].first == "avg:latency{workload:podinfo}");
        CHECK(f.script.ranges[1].first == "avg:latency{workload:podinfo-primary}");
        for (const auto& [query, window] : f.script.ranges) {
            CHECK(window.end == f.clock.system_now());
            CHECK(window.end - window.start == std::chrono::seconds{10});
            CHECK(window.step == std::chrono::milliseconds{1000});
        }
        CHECK(f.script.queries.empty());
    }
    SECTION("a canary 30% slower is High") {
        f.script.canary_level = 260;
        const MetricResult r = f.check_one(m);
        REQUIRE(r.judged.has_value());
        CHECK(r.judged->label == analysis::judge::Label::kHigh);
        CHECK(r.verdict == Verdict::kFail);
        CHECK_THAT(r.message, Catch::StartsWith("Metric mean-latency judged High"));
    }
}
