#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace serin {

enum class LogFormat { kText, kJson };

/// Sets the process's log level ("debug", "info", "warn", "error") and format. Called once by main.
void configure_logging(std::string_view level, LogFormat format = LogFormat::kText);

}  // namespace serin
