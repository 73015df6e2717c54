#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crds/api/canary.hpp"
#include "platform/core/result.hpp"

/// Checks of a Canary that need nothing but the Canary: bad input is refused by name before the
/// release engine sees it (docs/security.md).
namespace serin::analysis {

/// Checks of the spec that need nothing but the spec (flagger-spec §2.14, impossible weights, and
/// values that would stall or rush a release: a weighted canary that can never advance, webhook
/// timeouts and retries beyond kMaxWebhookTimeout and kMaxWebhookRetries, metric windows under a
/// second). `provider` is the canary's router (spec.provider or the -mesh-provider default):
/// the kubernetes provider runs weighted canaries as blue/green, so their weights do not matter.
/// Errors: kInvalid naming the field and the value.
Result<void> validate(const api::CanarySpec& spec, std::string_view provider = {});

/// The longest webhook `timeout` accepted (per attempt).
inline constexpr std::chrono::minutes kMaxWebhookTimeout{10};
/// The most webhook `retries` accepted.
inline constexpr int kMaxWebhookRetries = 10;

/// With -no-cross-namespace-refs: upstreamRef, metric templateRefs and alert providerRefs must
/// name the canary's own namespace (or none). Errors: kInvalid naming the field.
Result<void> validate_namespaces(const api::Canary& canary);

/// The autoscalerRef kinds serin scales (autoscaling/v2 or v2beta2, whichever the server has).
inline constexpr std::string_view kSupportedAutoscalerKinds = "HorizontalPodAutoscaler";

/// spec.autoscalerRef.kind must be one serin handles (KEDA's ScaledObject is not built).
/// Errors: kInvalid "spec.autoscalerRef.kind: "<kind>" is not supported by this build (supported:
/// HorizontalPodAutoscaler)".
Result<void> validate_autoscaler(const api::CanarySpec& spec);

/// The spec.provider.type of the MetricTemplate a templateRef names (the reference resolved in
/// the canary's namespace by the caller); nullopt when there is no such template (a metric check
/// error later, as in Flagger, not a refusal).
using TemplateProviderType = std::function<std::optional<std::string>(const api::TemplateRef&)>;

/// Every metric's MetricTemplate must name a provider type in `supported` (the types this build
/// has, sorted): a release that could never query it is refused before it starts, instead of
/// failing its checks and rolling back. Errors: kInvalid, e.g.
/// "spec.analysis.metrics[0].templateRef: MetricTemplate "x" provider.type "datadog" is not
/// supported by this build (supported: prometheus)".
Result<void> validate_metric_providers(const api::CanarySpec& spec,
                                       const TemplateProviderType& provider_type,
                                       const std::vector<std::string>& supported);

}  // namespace serin::analysis
