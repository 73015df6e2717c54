#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "controller/core/result.hpp"

/// Reading a Prometheus instant-query answer (flagger-spec §5.2). Pure; the HTTP client that
/// fetches it comes with the Prometheus provider.
namespace serin::metrics {

/// The value of a `/api/v1/query` response body: the sample of a scalar, or of the last element
/// of a vector; nullopt when there is no data (an empty vector, NaN, +Inf or -Inf), which the
/// caller reports as no data rather than as a value.
/// Errors: kBadRequest for a body that is not a Prometheus response, a response with status
/// "error" (its errorType and error), a range vector or matrix ("query returned multiple
/// values"), a string result, or a sample that is not a number.
Result<std::optional<double>> parse_query_response(std::string_view body);

/// The samples of a `/api/v1/query_range` response body holding at most one series, in time
/// order, without the NaN and infinite ones; empty when there is no series (no data).
/// Errors: kBadRequest as for parse_query_response, and for a result that is not a matrix or
/// holds more than one series (a judged query must aggregate to one).
Result<std::vector<double>> parse_range_response(std::string_view body);

}  // namespace serin::metrics
