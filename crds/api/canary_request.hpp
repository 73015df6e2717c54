#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "crds/api/canary.hpp"
#include "platform/core/result.hpp"

/// The serin.dev/v1alpha1 CanaryRequest (docs/runtime-control.md): a request to promote, abort,
/// pause, resume or retry a canary's release, handled once by Serin, which writes its status.
namespace serin::api {

enum class RequestAction { kPromote, kAbort, kPause, kResume, kRetry };

/// "promote", "abort", ...
std::string_view to_string(RequestAction action);
/// nullopt for anything else.
std::optional<RequestAction> request_action(std::string_view text);

struct CanaryRequestSpec {
    std::string canary;  ///< spec.canaryRef.name: a Canary in the request's namespace
    RequestAction action = RequestAction::kPromote;
    bool full = false;          ///< promote only: skip the confirm-promotion gates too
    std::string requested_by;   ///< as the client states it
    std::string reason;
};

/// The request's status as Serin writes it.
struct CanaryRequestStatus {
    std::string phase;  ///< "" (pending), Done or Refused
    std::string message;
    std::string handled_time;
    std::string revision;  ///< the canary's lastAppliedSpec when handled
};

struct CanaryRequest {
    ObjectMeta metadata;
    std::string creation_timestamp;  ///< metadata.creationTimestamp (the handling order)
    CanaryRequestSpec spec;
    CanaryRequestStatus status;
};

/// Bounds on what a request may carry (the CRD's maxLength; a server without the schema, or an
/// older CRD, must not let more through).
inline constexpr std::size_t kMaxCanaryNameBytes = 253;
inline constexpr std::size_t kMaxRequestedByBytes = 256;
inline constexpr std::size_t kMaxReasonBytes = 1024;
/// Messages Serin writes about requests (status.message, status.requests[].message).
inline constexpr std::size_t kMaxRequestMessageBytes = 512;

/// Decodes a CanaryRequest. Errors: kInvalid naming the field path ("spec.action: ..."), also
/// for text over its bound or not valid UTF-8. Never throws.
Result<CanaryRequest> decode_canary_request(const Json& object);

/// The status as written to the status subresource (empty fields omitted, phase always).
Json encode_request_status(const CanaryRequestStatus& status);

/// Whether a request is ordered before another: creationTimestamp, then name.
bool handled_before(const CanaryRequest& a, const CanaryRequest& b);

}  // namespace serin::api
