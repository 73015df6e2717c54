#pragma once

/// How bad what a release reports is: picks an alert's colour and which AlertProviders get it.
namespace serin::analysis {

enum class Severity { kInfo, kWarn, kError };

}  // namespace serin::analysis
