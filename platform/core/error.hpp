#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace serin {

/// What went wrong, in the terms that decide what the caller does next.
enum class ErrorKind {
    kTransient,        ///< network failure, timeout, 5xx: retry with backoff
    kTooManyRequests,  ///< 429: retry after `retry_after`
    kNotFound,         ///< 404: often a normal state
    kAlreadyExists,    ///< 409 on create
    kConflict,         ///< 409 on a stale resourceVersion: re-read and re-decide
    kGone,             ///< 410: a watch's resourceVersion is too old; re-list
    kInvalid,          ///< 422 or bad input: no retry until the input changes
    kBadRequest,       ///< 400
    kUnauthorized,     ///< 401
    kForbidden,        ///< 403
    kTls,              ///< certificate verification or handshake failure
    kCancelled,        ///< the operation was cancelled
    kInternal,         ///< a bug
};

std::string_view to_string(ErrorKind kind);

/// One reason the API server gave for rejecting an object (`details.causes`).
struct ErrorCause {
    std::string field;
    std::string reason;
    std::string message;
};

/// An expected failure. Cheap to copy; carries enough to log, to report and to decide on a retry.
struct Error {
    ErrorKind kind = ErrorKind::kInternal;
    std::string message;
    int http_status = 0;
    std::optional<std::chrono::milliseconds> retry_after;
    std::vector<ErrorCause> causes;

    /// Is this worth retrying as is (after a delay)?
    bool retryable() const {
        return kind == ErrorKind::kTransient || kind == ErrorKind::kTooManyRequests;
    }
    /// "NotFound: configmaps \"x\" not found (404)" and the causes, for logs and status messages.
    std::string describe() const;
};

std::ostream& operator<<(std::ostream& os, const Error& error);

}  // namespace serin
