#include "controller/canary/prometheus_checker.hpp"

#include "analysis/metric_judge.hpp"
#include "analysis/queries.hpp"
#include "controller/kube/config.hpp"
#include "crds/api/json_access.hpp"
#include "crds/api/metric_template.hpp"

namespace serin::canary {

namespace asio = boost::asio;
using analysis::MetricResult;
using analysis::MetricSource;
using analysis::Verdict;

namespace {

MetricResult error(const std::string& name, std::string message) {
    return MetricResult{name, Verdict::kError, std::nullopt, std::move(message)};
}

/// A key of a Secret's data, decoded; "" when absent.
std::string secret_value(const kube::Json& secret, const char* key) {
    const std::string encoded = api::string_at(secret, {"data", key});
    return kube::decode_base64(encoded).value_or(std::string());
}

}  // namespace

asio::awaitable<std::vector<MetricResult>> PrometheusMetricChecker::check(api::Canary canary) {
    std::vector<MetricResult> results;
    if (canary.spec.analysis) {
        for (const api::CanaryMetric& metric : canary.spec.analysis->metrics) {
            results.push_back(co_await check_one(canary, metric));
        }
    }
    co_return results;
}

asio::awaitable<MetricResult> PrometheusMetricChecker::check_one(const api::Canary& canary,
                                                                 const api::CanaryMetric& metric) {
    if (metric.template_ref) {
        co_return co_await check_template(canary, metric);
    }
    const analysis::Observer observer = analysis::observer_for(options_.mesh_provider, canary.spec);
    metrics::PrometheusQuery query;
    query.address = canary.spec.metrics_server.empty() ? options_.metrics_server
                                                       : canary.spec.metrics_server;
    if (!metric.query.empty()) {
        query.promql = metric.query;
        auto value = co_await client_.query(query);
        if (!value) {
            co_return error(metric.name, "Prometheus query failed for " + metric.name + ": " +
                                             value.error().message);
        }
        co_return analysis::judge_metric(canary, metric, MetricSource::kInlineQuery, observer, *value);
    }
    auto builtin = analysis::builtin_query(observer, metric.name);
    if (!builtin) {
        co_return error(metric.name, "Metric query failed for " + metric.name +
                                         ": no usable metrics template and query were configured "
                                         "(no builtin " + metric.name + " for observer " +
                                         std::string(analysis::observer_name(observer)) + ")");
    }
    auto rendered = analysis::render_query(builtin->query, analysis::template_vars(canary, metric));
    if (!rendered) {
        co_return error(metric.name, rendered.error().message);
    }
    query.promql = std::move(*rendered);
    auto value = co_await client_.query(query);
    if (!value) {
        co_return error(metric.name, "Prometheus query failed: " + value.error().message);
    }
    std::optional<double> scaled = *value;
    if (scaled) {
        *scaled *= builtin->scale;
    }
    const MetricSource source = metric.name == "request-success-rate"
                                    ? MetricSource::kBuiltinSuccessRate
                                    : MetricSource::kBuiltinDuration;
    co_return analysis::judge_metric(canary, metric, source, observer, scaled);
}

asio::awaitable<MetricResult> PrometheusMetricChecker::check_template(
    const api::Canary& canary, const api::CanaryMetric& metric) {
    const std::string ns =
        metric.template_ref->ns.empty() ? canary.metadata.ns : metric.template_ref->ns;
    const std::string id = metric.template_ref->name + "." + ns;
    kube::ObjectPtr object =
        store_ != nullptr ? store_->get(kube::types::metric_templates(), ns, metric.template_ref->name)
                          : nullptr;
    if (object == nullptr) {
        co_return error(metric.name, "Metric template " + id + " error: not found");
    }
    auto decoded = api::decode_metric_template(*object);
    if (!decoded) {
        co_return error(metric.name, "Metric template " + id + " error: " + decoded.error().message);
    }
    const api::MetricTemplateProvider& provider = decoded->spec.provider;
    if (!provider.type.empty() && provider.type != "prometheus") {
        co_return error(metric.name, "Metric template " + id + " error: spec.provider.type: \"" +
                                         provider.type +
                                         "\" is not supported by this build of Serin (prometheus is)");
    }
    metrics::PrometheusQuery query;
    query.address = provider.address.empty() ? (canary.spec.metrics_server.empty()
                                                    ? options_.metrics_server
                                                    : canary.spec.metrics_server)
                                             : provider.address;
    query.headers = provider.headers;
    if (provider.secret_ref) {
        kube::ObjectPtr secret = store_->get(kube::types::secrets(), ns, provider.secret_ref->name);
        if (secret == nullptr) {
            co_return error(metric.name, "Metric template " + id + " secret " +
                                             provider.secret_ref->name + " error: not found");
        }
        query.bearer_token = secret_value(*secret, "token");
        if (query.bearer_token.empty()) {
            query.username = secret_value(*secret, "username");
            query.password = secret_value(*secret, "password");
            if (query.username.empty() || query.password.empty()) {
                co_return error(metric.name, "Metric template " + id + " secret " +
                                                 provider.secret_ref->name +
                                                 " error: it has neither token nor username and password");
            }
        }
    }
    auto rendered =
        analysis::render_query(decoded->spec.query, analysis::template_vars(canary, metric));
    if (!rendered) {
        co_return error(metric.name,
                        "Metric template " + id + " " + rendered.error().message);
    }
    query.promql = std::move(*rendered);
    auto value = co_await client_.query(query);
    if (!value) {
        co_return error(metric.name,
                        "Metric query failed for " + metric.name + ": " + value.error().message);
    }
    co_return analysis::judge_metric(canary, metric, MetricSource::kTemplate,
                                     analysis::observer_for(options_.mesh_provider, canary.spec),
                                     *value);
}

}  // namespace serin::canary
