#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "platform/core/result.hpp"

/// Reading a Prometheus instant-query answer (flagger-spec §5.2). Pure; the HTTP client that
/// fetches it comes with the Prometheus provider.
namespace serin::metrics {

/// The value of a `/api/v1/query` response body: the sample of a scalar, or of the one element
/// of a vector; nullopt when there is no data (an empty vector, NaN, +Inf or -Inf), which the
/// caller reports as no data rather than as a value.
///
/// The body is untrusted (any Canary may name its own metrics server): it is parsed with a
/// nesting limit, every field's type is checked, and messages quote at most a few dozen bytes
/// of it as valid UTF-8. Sample values are read as Prometheus writes them: decimal, "NaN",
/// "+Inf", "-Inf" (no hexadecimal, no surrounding space).
/// Errors (never exceptions): kBadRequest for a body that is not a Prometheus response or is
/// nested too deep, a response with status "error" (its errorType and error), a range vector or
/// matrix ("query returned multiple values"), a vector of several series (naming two; Flagger
/// takes the last silently), a string result, or a sample that is not a number.
Result<std::optional<double>> parse_query_response(std::string_view body);

/// The samples of a `/api/v1/query_range` response body holding at most one series, in time
/// order, without the NaN and infinite ones; empty when there is no series (no data).
/// Errors: kBadRequest as for parse_query_response, and for a result that is not a matrix or
/// holds more than one series (a judged query must aggregate to one).
Result<std::vector<double>> parse_range_response(std::string_view body);

}  // namespace serin::metrics
