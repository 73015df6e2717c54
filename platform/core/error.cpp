#include "platform/core/error.hpp"

namespace serin {

std::string_view to_string(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::kTransient: return "Transient";
        case ErrorKind::kTooManyRequests: return "TooManyRequests";
        case ErrorKind::kNotFound: return "NotFound";
        case ErrorKind::kAlreadyExists: return "AlreadyExists";
        case ErrorKind::kConflict: return "Conflict";
        case ErrorKind::kGone: return "Gone";
        case ErrorKind::kInvalid: return "Invalid";
        case ErrorKind::kBadRequest: return "BadRequest";
        case ErrorKind::kUnauthorized: return "Unauthorized";
        case ErrorKind::kForbidden: return "Forbidden";
        case ErrorKind::kTls: return "Tls";
        case ErrorKind::kCancelled: return "Cancelled";
        case ErrorKind::kInternal: return "Internal";
    }
    return "Unknown";
}

std::string Error::describe() const {
    std::string out{to_string(kind)};
    out += ": ";
    out += message;
    if (http_status != 0) {
        out += " (HTTP " + std::to_string(http_status) + ")";
    }
    for (const auto& cause : causes) {
        out += "; ";
        if (!cause.field.empty()) {
            out += cause.field + ": ";
        }
        out += cause.message.empty() ? cause.reason : cause.message;
    }
    return out;
}

std::ostream& operator<<(std::ostream& os, const Error& error) { return os << error.describe(); }

}  // namespace serin
