#pragma once

#include <spdlog/formatter.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace serin {

/// kText: "<time> <level> <message>" for people (Flagger's "console").
/// kJson: one object per line: {"ts", "level", "canary" (when the line is about one), "msg"}.
/// kLogfmt: "ts=... level=... canary=<key> msg=\"...\"".
enum class LogFormat { kText, kJson, kLogfmt };

/// Sets the process's log level ("debug", "info", "warn", "error") and format. Called once by main.
void configure_logging(std::string_view level, LogFormat format = LogFormat::kText);

/// The formatter configure_logging installs; exposed so tests can format lines without a sink.
std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format);

namespace detail {
void log_about_canary(spdlog::level::level_enum level, std::string_view key, std::string message);
}  // namespace detail

/// Logs lines about one canary. Its key ("namespace/name") is a field of its own in the json and
/// logfmt formats, so that a log pipeline can select one canary's lines; in text it leads the
/// message as "canary <key>: ".
class CanaryLog {
public:
    explicit CanaryLog(std::string_view key) : key_(key) {}

    template <class... Args>
    void debug(fmt::format_string<Args...> format, Args&&... args) const {
        write(spdlog::level::debug, format, std::forward<Args>(args)...);
    }
    template <class... Args>
    void info(fmt::format_string<Args...> format, Args&&... args) const {
        write(spdlog::level::info, format, std::forward<Args>(args)...);
    }
    template <class... Args>
    void warn(fmt::format_string<Args...> format, Args&&... args) const {
        write(spdlog::level::warn, format, std::forward<Args>(args)...);
    }
    template <class... Args>
    void error(fmt::format_string<Args...> format, Args&&... args) const {
        write(spdlog::level::err, format, std::forward<Args>(args)...);
    }

private:
    template <class... Args>
    void write(spdlog::level::level_enum level, fmt::format_string<Args...> format,
               Args&&... args) const {
        if (spdlog::default_logger_raw()->should_log(level)) {
            detail::log_about_canary(level, key_,
                                     fmt::format(format, std::forward<Args>(args)...));
        }
    }

    std::string_view key_;
};

}  // namespace serin
