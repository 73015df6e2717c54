#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "platform/core/time.hpp"

namespace serin {

/// Kubernetes' metav1.Time: RFC 3339 in UTC to the second, "2026-12-02T01:44:25Z".
std::string format_time(SystemTime t);

/// Parses RFC 3339 ("2026-12-02T01:44:25Z"; fractions and numeric offsets accepted); nullopt for
/// anything else.
std::optional<SystemTime> parse_time(std::string_view text);

/// Kubernetes' metav1.MicroTime: RFC 3339 in UTC to the microsecond,
/// "2026-12-02T01:44:25.123456Z".
std::string format_micro_time(SystemTime t);

/// parse_time that keeps the fraction of a second (to the microsecond; further digits are
/// dropped). nullopt for what parse_time refuses.
std::optional<SystemTime> parse_micro_time(std::string_view text);

}  // namespace serin
