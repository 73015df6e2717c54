#pragma once

#include <chrono>
#include <string_view>

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

}  // namespace serin::analysis
