#include "crds/api/canary_request.hpp"

#include "platform/core/text.hpp"

#include <array>
#include <tuple>
#include <utility>

namespace serin::api {

namespace {

constexpr std::array<std::pair<RequestAction, std::string_view>, 5> kActions{{
    {RequestAction::kPromote, "promote"},
    {RequestAction::kAbort, "abort"},
    {RequestAction::kPause, "pause"},
    {RequestAction::kResume, "resume"},
    {RequestAction::kRetry, "retry"},
}};

/// A string field within `max` bytes and valid UTF-8; "" when absent.
std::string bounded_string(detail::Reader& r, const Json& parent, std::string_view key,
                           const std::string& path, std::size_t max) {
    std::string value = r.string(parent, key, path).value_or("");
    if (!r.ok()) {
        return value;
    }
    if (value.size() > max) {
        r.invalid(detail::Reader::join(path, key),
                  "longer than " + std::to_string(max) + " bytes (" +
                      std::to_string(value.size()) + ")");
        return {};
    }
    if (!text::is_valid_utf8(value)) {
        r.invalid(detail::Reader::join(path, key), "not valid UTF-8");
        return {};
    }
    return value;
}

}  // namespace

std::string_view to_string(RequestAction action) {
    for (const auto& [a, name] : kActions) {
        if (a == action) {
            return name;
        }
    }
    return "promote";
}

std::optional<RequestAction> request_action(std::string_view text) {
    for (const auto& [a, name] : kActions) {
        if (name == text) {
            return a;
        }
    }
    return std::nullopt;
}

Result<CanaryRequest> decode_canary_request(const Json& object) {
    using detail::Reader;
    if (!object.is_object()) {
        return fail(ErrorKind::kInvalid,
                    "expected a CanaryRequest object, got " + Reader::show(object));
    }
    Reader r;
    CanaryRequest out;
    out.metadata = r.metadata(object);
    if (const Json* meta = Reader::field(object, "metadata")) {
        out.creation_timestamp =
            bounded_string(r, *meta, "creationTimestamp", "metadata", 64);
    }
    const Json* spec = r.object(object, "spec", "");
    if (spec == nullptr && r.ok()) {
        r.invalid("spec", "is required");
    }
    if (spec != nullptr && r.ok()) {
        const Json* ref = r.object(*spec, "canaryRef", "spec");
        if (ref == nullptr && r.ok()) {
            r.invalid("spec.canaryRef", "is required");
        }
        if (ref != nullptr) {
            out.spec.canary =
                bounded_string(r, *ref, "name", "spec.canaryRef", kMaxCanaryNameBytes);
            if (r.ok() && out.spec.canary.empty()) {
                r.invalid("spec.canaryRef.name", "is required");
            }
        }
        const auto action =
            r.one_of(*spec, "action", "spec", {"promote", "abort", "pause", "resume", "retry"});
        if (r.ok() && !action) {
            r.invalid("spec.action", "is required");
        }
        if (action) {
            out.spec.action = request_action(*action).value_or(RequestAction::kPromote);
        }
        out.spec.full = r.boolean(*spec, "full", "spec").value_or(false);
        out.spec.requested_by =
            bounded_string(r, *spec, "requestedBy", "spec", kMaxRequestedByBytes);
        out.spec.reason = bounded_string(r, *spec, "reason", "spec", kMaxReasonBytes);
    }
    if (r.ok()) {
        if (const Json* status = r.object(object, "status", "")) {
            CanaryRequestStatus& s = out.status;
            s.phase = r.one_of(*status, "phase", "status", {"", "Done", "Refused"}).value_or("");
            s.message = text::clip(r.string(*status, "message", "status").value_or(""),
                                   kMaxRequestMessageBytes);
            s.handled_time = text::clip(
                r.string(*status, "handledTime", "status").value_or(""), 64);
            s.revision = text::clip(r.string(*status, "revision", "status").value_or(""), 256);
        }
    }
    if (!r.ok()) {
        return r.error();
    }
    return out;
}

Json encode_request_status(const CanaryRequestStatus& status) {
    Json out = {{"phase", status.phase}};
    if (!status.message.empty()) {
        out["message"] = status.message;
    }
    if (!status.handled_time.empty()) {
        out["handledTime"] = status.handled_time;
    }
    if (!status.revision.empty()) {
        out["revision"] = status.revision;
    }
    return out;
}

bool handled_before(const CanaryRequest& a, const CanaryRequest& b) {
    return std::tie(a.creation_timestamp, a.metadata.name) <
           std::tie(b.creation_timestamp, b.metadata.name);
}

}  // namespace serin::api
