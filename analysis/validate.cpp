#include "analysis/validate.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace serin::analysis {

namespace {

/// flagger-spec §2.14: a Knative Service target if and only if provider knative, and no
/// autoscalerRef with it (Knative scales its revisions itself).
Result<void> validate_knative(const api::CanarySpec& spec, std::string_view provider) {
    const bool knative_target = spec.target_ref.kind == "Service" &&
                                spec.target_ref.api_version == "serving.knative.dev/v1";
    if (knative_target && provider != "knative") {
        return fail(ErrorKind::kInvalid, "spec.provider: \"" + std::string(provider) +
                                             "\" cannot release a Knative Service; a "
                                             "serving.knative.dev/v1 Service target needs "
                                             "provider knative");
    }
    if (!knative_target && provider == "knative") {
        return fail(ErrorKind::kInvalid,
                    "spec.targetRef: provider knative releases only Knative Services (apiVersion "
                    "serving.knative.dev/v1, kind Service), not " +
                        spec.target_ref.api_version + " " + spec.target_ref.kind);
    }
    if (knative_target && spec.autoscaler_ref) {
        return fail(ErrorKind::kInvalid,
                    "spec.autoscalerRef: not allowed with a Knative Service target (Knative "
                    "scales its revisions itself)");
    }
    // A Knative Service's traffic block splits by percent only; Flagger would send every request
    // to the canary during the A/B iterations instead.
    if (knative_target && spec.analysis && spec.analysis->match.is_array() &&
        !spec.analysis->match.empty()) {
        return fail(ErrorKind::kInvalid,
                    "spec.analysis.match: A/B testing is not supported by provider knative (a "
                    "Knative Service's traffic splits by percent only)");
    }
    return Result<void>{};
}

}  // namespace

Result<void> validate(const api::CanarySpec& spec, std::string_view provider) {
    if (auto knative = validate_knative(spec, provider); !knative) {
        return knative;
    }
    const bool knative_target = provider == "knative";
    if (!knative_target && spec.target_ref.kind != "Deployment" &&
        spec.target_ref.kind != "DaemonSet") {
        return fail(ErrorKind::kInvalid,
                    "spec.targetRef.kind: \"" + spec.target_ref.kind +
                        "\" is not supported; Serin releases Deployment and DaemonSet targets");
    }
    if (!knative_target && spec.target_ref.api_version != "apps/v1") {
        return fail(ErrorKind::kInvalid, "spec.targetRef.apiVersion: \"" +
                                             spec.target_ref.api_version +
                                             "\" is not supported; use apps/v1");
    }
    if (spec.service.port <= 0 || spec.service.port > 65535) {
        return fail(ErrorKind::kInvalid,
                    "spec.service.port: " + std::to_string(spec.service.port) +
                        " is not a port number (1-65535)");
    }
    if (!spec.analysis) {
        return Result<void>{};
    }
    const auto& a = *spec.analysis;
    if (a.max_weight > 100) {
        return fail(ErrorKind::kInvalid, "spec.analysis.maxWeight: " +
                                             std::to_string(a.max_weight) +
                                             " is above 100");
    }
    if (a.step_weight > 100) {
        return fail(ErrorKind::kInvalid, "spec.analysis.stepWeight: " +
                                             std::to_string(a.step_weight) + " is above 100");
    }
    if (a.step_weight_promotion > 100) {
        return fail(ErrorKind::kInvalid, "spec.analysis.stepWeightPromotion: " +
                                             std::to_string(a.step_weight_promotion) +
                                             " is above 100");
    }
    for (std::size_t i = 0; i < a.step_weights.size(); ++i) {
        if (a.step_weights[i] <= 0 || a.step_weights[i] > 100) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.stepWeights[{}]: {} is not between 1 and 100",
                                    i, a.step_weights[i]));
        }
    }
    const bool weighted = a.iterations == 0 && provider != "kubernetes";
    if (weighted && a.step_weight <= 0 && a.step_weights.empty()) {
        return fail(ErrorKind::kInvalid,
                    fmt::format("spec.analysis.stepWeight: {} never moves traffic; a weighted "
                                "canary needs stepWeight or stepWeights above 0 (or iterations "
                                "for blue/green)",
                                a.step_weight));
    }
    for (std::size_t i = 0; i < a.webhooks.size(); ++i) {
        const auto& hook = a.webhooks[i];
        if (hook.timeout_duration < std::chrono::seconds{1} ||
            hook.timeout_duration > kMaxWebhookTimeout) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.webhooks[{}].timeout: \"{}\" is not between "
                                    "1s and {}m",
                                    i, hook.timeout, kMaxWebhookTimeout.count()));
        }
        if (hook.retries > kMaxWebhookRetries) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.webhooks[{}].retries: {} is above {}", i,
                                    hook.retries, kMaxWebhookRetries));
        }
    }
    for (std::size_t i = 0; i < a.metrics.size(); ++i) {
        const auto& m = a.metrics[i];
        if (m.interval_duration < std::chrono::seconds{1}) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.metrics[{}].interval: \"{}\" is below 1s, "
                                    "too short a window for a metric query",
                                    i, m.interval));
        }
    }
    for (std::size_t i = 1; i < a.step_weights.size(); ++i) {
        if (a.step_weights[i] <= a.step_weights[i - 1]) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.stepWeights[{}]: {} is not above the step "
                                    "before it ({}); weights must increase",
                                    i, a.step_weights[i], a.step_weights[i - 1]));
        }
    }
    if (a.session_affinity && !a.session_affinity->primary_cookie_name.empty() &&
        a.session_affinity->cookie_name == a.session_affinity->primary_cookie_name) {
        return fail(ErrorKind::kInvalid,
                    "spec.analysis.sessionAffinity.primaryCookieName: \"" +
                        a.session_affinity->primary_cookie_name +
                        "\" must differ from cookieName");
    }
    for (std::size_t i = 0; i < a.metrics.size(); ++i) {
        const auto& m = a.metrics[i];
        const bool builtin = m.name == "request-success-rate" || m.name == "request-duration";
        if (!builtin && !m.template_ref && m.query.empty()) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.metrics[{}]: \"{}\" is not a builtin metric "
                                    "and has neither templateRef nor query",
                                    i, m.name));
        }
        if (m.judge && (m.threshold_range || m.threshold)) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.metrics[{}].judge: \"{}\" has thresholds too; "
                                    "a judged metric is compared with the primary, so write its "
                                    "thresholds as a second metric",
                                    i, m.name));
        }
        if (m.judge && !m.template_ref && !m.query.empty()) {
            return fail(ErrorKind::kInvalid,
                        fmt::format("spec.analysis.metrics[{}].judge: \"{}\" uses an inline "
                                    "query, which cannot be rendered for the primary; use a "
                                    "builtin metric or a templateRef with {{{{ target }}}}",
                                    i, m.name));
        }
    }
    return Result<void>{};
}

Result<void> validate_namespaces(const api::Canary& canary) {
    const std::string& own = canary.metadata.ns;
    auto refuse = [&](const std::string& field, const std::string& ns) {
        return fail(ErrorKind::kInvalid, field + ": \"" + ns + "\" is another namespace than the "
                                         "canary's, refused by -no-cross-namespace-refs");
    };
    const auto& spec = canary.spec;
    if (spec.upstream_ref && !spec.upstream_ref->ns.empty() && spec.upstream_ref->ns != own) {
        return refuse("spec.upstreamRef.namespace", spec.upstream_ref->ns);
    }
    if (!spec.analysis) {
        return Result<void>{};
    }
    for (std::size_t i = 0; i < spec.analysis->metrics.size(); ++i) {
        const auto& ref = spec.analysis->metrics[i].template_ref;
        if (ref && !ref->ns.empty() && ref->ns != own) {
            return refuse(fmt::format("spec.analysis.metrics[{}].templateRef.namespace", i), ref->ns);
        }
    }
    for (std::size_t i = 0; i < spec.analysis->alerts.size(); ++i) {
        const auto& ns = spec.analysis->alerts[i].provider_ref.ns;
        if (!ns.empty() && ns != own) {
            return refuse(fmt::format("spec.analysis.alerts[{}].providerRef.namespace", i), ns);
        }
    }
    return Result<void>{};
}

Result<void> validate_autoscaler(const api::CanarySpec& spec) {
    if (spec.autoscaler_ref && spec.autoscaler_ref->kind != kSupportedAutoscalerKinds) {
        return fail(ErrorKind::kInvalid,
                    "spec.autoscalerRef.kind: \"" + spec.autoscaler_ref->kind +
                        "\" is not supported by this build (supported: " +
                        std::string(kSupportedAutoscalerKinds) + ")");
    }
    return Result<void>{};
}

Result<void> validate_metric_providers(const api::CanarySpec& spec,
                                       const TemplateProviderType& provider_type,
                                       const std::vector<std::string>& supported) {
    if (!spec.analysis) {
        return Result<void>{};
    }
    const auto& metrics = spec.analysis->metrics;
    for (std::size_t i = 0; i < metrics.size(); ++i) {
        if (!metrics[i].template_ref) {
            continue;
        }
        const api::TemplateRef& ref = *metrics[i].template_ref;
        const std::optional<std::string> type = provider_type(ref);
        if (!type || std::find(supported.begin(), supported.end(), *type) != supported.end()) {
            continue;
        }
        std::string list;
        for (const std::string& s : supported) {
            list += (list.empty() ? "" : ", ") + s;
        }
        const std::string where =
            ref.ns.empty() ? std::string() : " in namespace \"" + ref.ns + "\"";
        return fail(ErrorKind::kInvalid,
                    "spec.analysis.metrics[" + std::to_string(i) +
                        "].templateRef: MetricTemplate \"" + ref.name + "\"" + where +
                        " provider.type \"" + *type +
                        "\" is not supported by this build (supported: " +
                        (list.empty() ? "none" : list) + ")");
    }
    return Result<void>{};
}

}  // namespace serin::analysis
