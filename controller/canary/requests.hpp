#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "platform/kube/kube_client.hpp"
#include "platform/kube/resource.hpp"

/// Runtime requests (docs/runtime-control.md), what the controller's parts share about them:
/// their API type and the index that finds a canary's requests. The Reconciler's handling of
/// them is in requests.cpp.
namespace serin::canary {

/// The requests informer's index by canary: "<namespace>/<spec.canaryRef.name>".
inline constexpr std::string_view kRequestsByCanary = "canary";
std::vector<std::string> request_canary_index(const kube::Json& request);

/// Whether a request still waits to be handled (status.phase empty).
bool request_pending(const kube::Json& request);

}  // namespace serin::canary
