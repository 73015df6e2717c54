#include "metrics/prometheus/prometheus_checker.hpp"

#include "crds/api/json_access.hpp"
#include "crds/api/metric_template.hpp"
#include "metrics/metric_judge.hpp"
#include "metrics/queries.hpp"
#include "platform/core/text.hpp"

namespace serin::metrics {

namespace asio = boost::asio;
using analysis::MetricResult;
using metrics::MetricSource;
using analysis::Verdict;

namespace {

MetricResult error(const std::string& name, std::string message) {
    return MetricResult{name, Verdict::kError, std::nullopt, std::move(message), std::nullopt};
}

}  // namespace

asio::awaitable<std::vector<MetricResult>> PrometheusMetricChecker::check(api::Canary canary) {
    std::vector<MetricResult> results;
    if (canary.spec.analysis) {
        for (const api::CanaryMetric& metric : canary.spec.analysis->metrics) {
            if (metric.judge) {
                results.push_back(co_await check_judged(canary, metric));
            } else {
                results.push_back(co_await check_one(canary, metric));
            }
        }
    }
    co_return results;
}

metrics::PrometheusClient& PrometheusMetricChecker::client_for(const Prepared& prepared) {
    return prepared.insecure ? *insecure_client_ : client_;
}

Result<PrometheusMetricChecker::Prepared> PrometheusMetricChecker::prepare(
    const api::Canary& canary, const api::CanaryMetric& metric,
    const metrics::TemplateVars& vars) const {
    const std::string default_server =
        canary.spec.metrics_server.empty() ? options_.metrics_server : canary.spec.metrics_server;
    Prepared prepared;
    if (metric.template_ref) {
        const std::string ns =
            metric.template_ref->ns.empty() ? canary.metadata.ns : metric.template_ref->ns;
        const std::string id = metric.template_ref->name + "." + ns;
        kube::ObjectPtr object =
            store_ != nullptr
                ? store_->get(kube::types::metric_templates(), ns, metric.template_ref->name)
                : nullptr;
        if (object == nullptr) {
            return fail(ErrorKind::kNotFound, "Metric template " + id + " error: not found");
        }
        auto decoded = api::decode_metric_template(*object);
        if (!decoded) {
            return fail(ErrorKind::kInvalid,
                        "Metric template " + id + " error: " + decoded.error().message);
        }
        const api::MetricTemplateProvider& provider = decoded->spec.provider;
        if (!provider.type.empty() && provider.type != "prometheus") {
            return fail(ErrorKind::kInvalid,
                        "Metric template " + id + " error: spec.provider.type: \"" +
                            provider.type +
                            "\" is not supported by this build of Serin (prometheus is)");
        }
        if (provider.insecure_skip_verify && !insecure_client_) {
            return fail(ErrorKind::kInvalid,
                        "Metric template " + id +
                            " error: spec.provider.insecureSkipVerify is set but this checker "
                            "has no client without TLS verification");
        }
        prepared.insecure = provider.insecure_skip_verify;
        prepared.source = MetricSource::kTemplate;
        if (provider.address.empty() && (provider.secret_ref || !provider.headers.empty())) {
            // The Canary's metricsServer is its author's choice, and a template may be shared
            // from another namespace: its credentials go to its own address or nowhere.
            return fail(ErrorKind::kInvalid,
                        "Metric template " + id +
                            " error: spec.provider.address is empty; a template with a "
                            "secretRef or headers must name its own server (its credentials are "
                            "never sent to the canary's metricsServer)");
        }
        prepared.query.address = provider.address.empty() ? default_server : provider.address;
        prepared.query.headers = provider.headers;
        if (provider.secret_ref) {
            kube::ObjectPtr secret =
                store_->get(kube::types::secrets(), ns, provider.secret_ref->name);
            if (secret == nullptr) {
                return fail(ErrorKind::kNotFound, "Metric template " + id + " secret " +
                                                      provider.secret_ref->name +
                                                      " error: not found");
            }
            const std::string& secret_name = provider.secret_ref->name;
            // A token file saved with a trailing newline is common; a bearer token never holds
            // whitespace, so it is trimmed rather than sent with a line break.
            prepared.query.bearer_token =
                std::string(text::trim(kube::secret_data(*secret, "token")));
            if (prepared.query.bearer_token.empty()) {
                prepared.query.username = kube::secret_data(*secret, "username");
                prepared.query.password = kube::secret_data(*secret, "password");
                if (prepared.query.username.empty() || prepared.query.password.empty()) {
                    return fail(ErrorKind::kInvalid,
                                "Metric template " + id + " secret " + secret_name +
                                    " error: it has neither token nor username and password");
                }
            }
            for (const auto& [key, value] :
                 {std::pair<const char*, const std::string*>{"token", &prepared.query.bearer_token},
                  {"username", &prepared.query.username},
                  {"password", &prepared.query.password}}) {
                if (text::has_line_break(*value)) {
                    return fail(ErrorKind::kInvalid, "Metric template " + id + " secret " +
                                                         secret_name + " error: data." + key +
                                                         " holds a line break or NUL");
                }
            }
        }
        for (const auto& [name, values] : provider.headers) {
            for (const std::string& value : values) {
                if (text::has_line_break(name) || text::has_line_break(value)) {
                    return fail(ErrorKind::kInvalid,
                                "Metric template " + id + " error: spec.provider.headers." +
                                    text::clip(name, 64) + " holds a line break or NUL");
                }
            }
        }
        auto rendered = metrics::render_query(decoded->spec.query, vars);
        if (!rendered) {
            return fail(ErrorKind::kInvalid,
                        "Metric template " + id + " " + rendered.error().message);
        }
        prepared.query.promql = std::move(*rendered);
        return prepared;
    }
    prepared.query.address = default_server;
    if (!metric.query.empty()) {
        prepared.query.promql = metric.query;  // Flagger sends inline queries as written
        return prepared;
    }
    const metrics::Observer observer = metrics::observer_for(options_.mesh_provider, canary.spec);
    auto builtin = metrics::builtin_query(observer, metric.name);
    if (!builtin) {
        return fail(ErrorKind::kInvalid,
                    "Metric query failed for " + metric.name +
                        ": no usable metrics template and query were configured (no builtin " +
                        metric.name + " for observer " +
                        std::string(metrics::observer_name(observer)) + ")");
    }
    auto rendered = metrics::render_query(builtin->query, vars);
    if (!rendered) {
        return fail(ErrorKind::kInvalid, rendered.error().message);
    }
    prepared.query.promql = std::move(*rendered);
    prepared.scale = builtin->scale;
    prepared.source = metric.name == "request-success-rate" ? MetricSource::kBuiltinSuccessRate
                                                            : MetricSource::kBuiltinDuration;
    return prepared;
}

asio::awaitable<MetricResult> PrometheusMetricChecker::check_one(const api::Canary& canary,
                                                                 const api::CanaryMetric& metric) {
    auto prepared = prepare(canary, metric, metrics::template_vars(canary, metric));
    if (!prepared) {
        co_return error(metric.name, prepared.error().message);
    }
    auto value = co_await client_for(*prepared).query(prepared->query);
    if (!value) {
        const std::string what = prepared->source == MetricSource::kInlineQuery
                                     ? "Prometheus query failed for " + metric.name + ": "
                                 : prepared->source == MetricSource::kTemplate
                                     ? "Metric query failed for " + metric.name + ": "
                                     : std::string("Prometheus query failed: ");
        co_return error(metric.name, what + value.error().message);
    }
    std::optional<double> scaled = *value;
    if (scaled) {
        *scaled *= prepared->scale;
    }
    co_return metrics::judge_metric(canary, metric, prepared->source,
                                     metrics::observer_for(options_.mesh_provider, canary.spec),
                                     scaled);
}

asio::awaitable<MetricResult> PrometheusMetricChecker::check_judged(
    const api::Canary& canary, const api::CanaryMetric& metric) {
    const metrics::TemplateVars canary_vars = metrics::template_vars(canary, metric);
    // The primary's series is the same query about the primary workload: only `target` names
    // it (the builtin queries and templates select workloads by {{ target }}).
    metrics::TemplateVars primary_vars = canary_vars;
    primary_vars.target += "-primary";
    auto canary_query = prepare(canary, metric, canary_vars);
    auto primary_query = prepare(canary, metric, primary_vars);
    if (!canary_query || !primary_query) {
        co_return error(metric.name, (!canary_query ? canary_query : primary_query).error().message);
    }
    const auto end = clock_ != nullptr ? clock_->system_now() : std::chrono::system_clock::now();
    const auto window = metric.interval_duration;
    const auto step = metric.judge->step.count() > 0
                          ? metric.judge->step
                          : std::max(std::chrono::milliseconds{1000}, window / 60);
    auto canary_series =
        co_await client_for(*canary_query).query_range(canary_query->query, end - window, end, step);
    if (!canary_series) {
        co_return error(metric.name, "Metric query failed for " + metric.name + " (canary): " +
                                         canary_series.error().message);
    }
    auto primary_series = co_await client_for(*primary_query)
                              .query_range(primary_query->query, end - window, end, step);
    if (!primary_series) {
        co_return error(metric.name, "Metric query failed for " + metric.name + " (primary): " +
                                         primary_series.error().message);
    }
    for (double& v : *canary_series) {
        v *= canary_query->scale;
    }
    for (double& v : *primary_series) {
        v *= primary_query->scale;
    }
    MetricResult result;
    result.name = metric.name;
    result.judged = analysis::judge::classify(std::move(*canary_series), std::move(*primary_series),
                                              metrics::judge_config(*metric.judge));
    result.verdict = result.judged->label == analysis::judge::Label::kPass ? Verdict::kPass
                                                                            : Verdict::kFail;
    result.message = "Metric " + metric.name + " judged " +
                     std::string(analysis::judge::to_string(result.judged->label)) + ": " +
                     result.judged->reason;
    co_return result;
}

}  // namespace serin::metrics
