#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "platform/core/error.hpp"
#include "platform/kube/config.hpp"

namespace serin::cli {

/// The five requests of docs/runtime-control.md.
inline constexpr std::string_view kActions[] = {"promote", "abort", "pause", "resume", "retry"};

/// A CanaryRequest for `canary` (the live object: its name, namespace and uid go into the
/// reference): generateName `<canary>-<action>-`, an ownerReference to the canary (not a
/// controller), spec.canaryRef, action, full (promote only), requestedBy and reason.
nlohmann::json make_request(const nlohmann::json& canary, std::string_view action, bool full,
                            const std::string& requested_by, const std::string& reason);

/// Who the client says it is, for spec.requestedBy: the client certificate's CN, else the
/// ServiceAccount a token names ("system:serviceaccount:NS:NAME"), else the kubeconfig's user
/// entry, else the basic-auth user name, else "unknown".
std::string requested_by(const kube::ClusterConfig& config);

/// The subject ("sub") of a JWT bearer token, without checking its signature (the API server
/// does that); "" when `token` is not a JWT.
std::string token_subject(const std::string& token);
/// The subject CN of a PEM certificate; "" when there is none.
std::string certificate_common_name(const std::string& pem);

/// A failure as the user should read it: what was being done (`doing`: "create a promote
/// request for canary test/podinfo") and why; on 403, the missing permission, as
/// "you lack `create canaryrequests.serin.dev in namespace test`", from the API server's
/// Status message.
std::string describe_failure(const Error& error, std::string_view doing);
/// "create canaryrequests.serin.dev in namespace test" from a 403's message; "" when the
/// message does not have the API server's form.
std::string missing_permission(std::string_view message);

}  // namespace serin::cli
