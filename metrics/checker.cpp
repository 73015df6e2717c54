#include "metrics/checker.hpp"

#include <algorithm>

#include "crds/api/metric_template.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::metrics {

namespace asio = boost::asio;
using analysis::MetricResult;
using analysis::Verdict;

namespace {

MetricResult error(const std::string& name, std::string message) {
    return MetricResult{name, Verdict::kError, std::nullopt, std::move(message), std::nullopt};
}

/// Every key of a Secret's data, decoded (a provider reads the keys it knows).
std::map<std::string, std::string> secret_map(const kube::Json& secret) {
    std::map<std::string, std::string> out;
    const auto data = secret.find("data");
    if (data != secret.end() && data->is_object()) {
        for (const auto& [key, value] : data->items()) {
            out.emplace(key, kube::secret_data(secret, key));
        }
    }
    return out;
}

}  // namespace

asio::awaitable<std::vector<MetricResult>> ProviderMetricChecker::check(api::Canary canary) {
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

std::string ProviderMetricChecker::metrics_server_address(const api::Canary& canary) const {
    return canary.spec.metrics_server.empty() ? options_.metrics_server
                                              : canary.spec.metrics_server;
}

Result<MetricProviderPtr> ProviderMetricChecker::metrics_server(
    const api::Canary& canary, const api::CanaryMetric& metric) const {
    if (!providers_.supports(kMetricsServerType)) {
        return fail(ErrorKind::kInvalid, "Metric query failed for " + metric.name +
                                             ": builtin and inline queries need the " +
                                             std::string(kMetricsServerType) +
                                             " provider, which this build of Serin lacks (" +
                                             providers_.supported() + ")");
    }
    ProviderSettings settings;
    settings.type = std::string(kMetricsServerType);
    settings.address = metrics_server_address(canary);
    auto provider = providers_.build(settings);
    if (!provider) {
        return fail(provider.error().kind,
                    "Metric query failed for " + metric.name + ": " + provider.error().message);
    }
    return provider;
}

Result<ProviderMetricChecker::Resolved> ProviderMetricChecker::resolve(
    const api::Canary& canary, const api::CanaryMetric& metric) const {
    if (metric.template_ref) {
        return resolve_template(canary, *metric.template_ref);
    }
    Resolved resolved;
    if (!metric.query.empty()) {
        resolved.query = metric.query;
        resolved.render = false;  // Flagger sends inline queries as written
    } else {
        const Observer observer = observer_for(options_.mesh_provider, canary.spec);
        auto builtin = builtin_query(observer, metric.name);
        if (!builtin) {
            return fail(ErrorKind::kInvalid,
                        "Metric query failed for " + metric.name +
                            ": no usable metrics template and query were configured (no "
                            "builtin " +
                            metric.name + " for observer " + std::string(observer_name(observer)) +
                            ")");
        }
        resolved.query = std::move(builtin->query);
        resolved.scale = builtin->scale;
        resolved.word_names = builtin->word_names;
        resolved.source = metric.name == "request-success-rate" ? MetricSource::kBuiltinSuccessRate
                                                                : MetricSource::kBuiltinDuration;
    }
    auto provider = metrics_server(canary, metric);
    if (!provider) {
        return provider.error();
    }
    resolved.provider = std::move(*provider);
    return resolved;
}

Result<ProviderMetricChecker::Resolved> ProviderMetricChecker::resolve_template(
    const api::Canary& canary, const api::TemplateRef& ref) const {
    const std::string ns = ref.ns.empty() ? canary.metadata.ns : ref.ns;
    const std::string id = "Metric template " + ref.name + "." + ns;
    kube::ObjectPtr object =
        store_ != nullptr ? store_->get(kube::types::metric_templates(), ns, ref.name) : nullptr;
    if (object == nullptr) {
        return fail(ErrorKind::kNotFound, id + " error: not found");
    }
    auto decoded = api::decode_metric_template(*object);
    if (!decoded) {
        return fail(ErrorKind::kInvalid, id + " error: " + decoded.error().message);
    }
    const api::MetricTemplateProvider& spec = decoded->spec.provider;
    if (auto known = providers_.supports(spec.type); !known) {
        return fail(ErrorKind::kInvalid, id + " " + known.error().message);
    }
    ProviderSettings settings;
    settings.type = spec.type;
    settings.address = spec.address;
    settings.headers = spec.headers;
    settings.region = spec.region;
    settings.insecure_skip_verify = spec.insecure_skip_verify;
    if (settings.address.empty() && settings.type == kMetricsServerType) {
        if (spec.secret_ref || !spec.headers.empty()) {
            // The Canary's metricsServer is its author's choice, and a template may be shared
            // from another namespace: its credentials go to its own address or nowhere.
            return fail(ErrorKind::kInvalid,
                        id + " error: spec.provider.address is empty; a template with a "
                             "secretRef or headers must name its own server (its credentials "
                             "are never sent to the canary's metricsServer)");
        }
        settings.address = metrics_server_address(canary);
    }
    if (spec.secret_ref) {
        // The template's namespace, not the canary's: the Secret belongs with the template.
        kube::ObjectPtr secret = store_->get(kube::types::secrets(), ns, spec.secret_ref->name);
        if (secret == nullptr) {
            return fail(ErrorKind::kNotFound,
                        id + " secret " + spec.secret_ref->name + " error: not found");
        }
        settings.secret_name = spec.secret_ref->name;
        settings.secret = secret_map(*secret);
    }
    auto provider = providers_.build(settings);
    if (!provider) {
        return fail(provider.error().kind, id + " " + provider.error().message);
    }
    Resolved resolved;
    resolved.provider = std::move(*provider);
    resolved.query = std::move(decoded->spec.query);
    resolved.context = id + " ";
    resolved.source = MetricSource::kTemplate;
    return resolved;
}

namespace {

/// `query` as sent for `vars`: rendered unless `do_render` is false. Errors carry the full
/// Warning text: `context` (which template) and render_query's message.
Result<std::string> render(const std::string& query, bool do_render, const std::string& context,
                           const TemplateVars& vars) {
    if (!do_render) {
        return query;
    }
    auto rendered = render_query(query, vars);
    if (!rendered) {
        return fail(ErrorKind::kInvalid, context + rendered.error().message);
    }
    return rendered;
}

}  // namespace

asio::awaitable<MetricResult> ProviderMetricChecker::check_one(const api::Canary& canary,
                                                               const api::CanaryMetric& metric) {
    auto resolved = resolve(canary, metric);
    if (!resolved) {
        co_return error(metric.name, resolved.error().message);
    }
    TemplateVars vars = template_vars(canary, metric);
    if (resolved->word_names) {
        vars = word_names(std::move(vars));
    }
    auto query = render(resolved->query, resolved->render, resolved->context, vars);
    if (!query) {
        co_return error(metric.name, query.error().message);
    }
    auto value = co_await resolved->provider->query(std::move(*query));
    if (!value) {
        // Flagger's texts: builtin and inline queries name the provider, templates do not.
        const std::string provider(resolved->provider->name());
        const std::string what = resolved->source == MetricSource::kInlineQuery
                                     ? provider + " query failed for " + metric.name + ": "
                                 : resolved->source == MetricSource::kTemplate
                                     ? "Metric query failed for " + metric.name + ": "
                                     : provider + " query failed: ";
        co_return error(metric.name, what + value.error().message);
    }
    std::optional<double> scaled = *value;
    if (scaled) {
        *scaled *= resolved->scale;
    }
    co_return judge_metric(canary, metric, resolved->source,
                           observer_for(options_.mesh_provider, canary.spec), scaled);
}

asio::awaitable<MetricResult> ProviderMetricChecker::check_judged(const api::Canary& canary,
                                                                  const api::CanaryMetric& metric) {
    auto resolved = resolve(canary, metric);
    if (!resolved) {
        co_return error(metric.name, resolved.error().message);
    }
    const TemplateVars canary_vars = resolved->word_names ? word_names(template_vars(canary, metric))
                                                          : template_vars(canary, metric);
    // The primary's series is the same query about the primary workload: only `target` names
    // it (the builtin queries and templates select workloads by {{ target }}).
    TemplateVars primary_vars = canary_vars;
    primary_vars.target += "-primary";
    auto canary_query = render(resolved->query, resolved->render, resolved->context, canary_vars);
    auto primary_query = render(resolved->query, resolved->render, resolved->context, primary_vars);
    if (!canary_query || !primary_query) {
        co_return error(metric.name, (!canary_query ? canary_query : primary_query).error().message);
    }
    const auto end = clock_ != nullptr ? clock_->system_now() : std::chrono::system_clock::now();
    const auto window = metric.interval_duration;
    const auto step = metric.judge->step.count() > 0
                          ? metric.judge->step
                          : std::max(std::chrono::milliseconds{1000}, window / 60);
    const RangeWindow range{end - window, end, step};
    MetricProvider& provider = *resolved->provider;
    auto canary_series = co_await provider.query_range(std::move(*canary_query), range);
    if (!canary_series) {
        co_return error(metric.name, "Metric query failed for " + metric.name + " (canary): " +
                                         canary_series.error().message);
    }
    auto primary_series = co_await provider.query_range(std::move(*primary_query), range);
    if (!primary_series) {
        co_return error(metric.name, "Metric query failed for " + metric.name + " (primary): " +
                                         primary_series.error().message);
    }
    for (double& v : *canary_series) {
        v *= resolved->scale;
    }
    for (double& v : *primary_series) {
        v *= resolved->scale;
    }
    MetricResult result;
    result.name = metric.name;
    result.judged = analysis::judge::classify(std::move(*canary_series), std::move(*primary_series),
                                              judge_config(*metric.judge));
    result.verdict = result.judged->label == analysis::judge::Label::kPass ? Verdict::kPass
                                                                            : Verdict::kFail;
    result.message = "Metric " + metric.name + " judged " +
                     std::string(analysis::judge::to_string(result.judged->label)) + ": " +
                     result.judged->reason;
    co_return result;
}

}  // namespace serin::metrics
