// Log formats. The json and logfmt lines are written by custom pattern flags, so that the message
// and the canary key are escaped for their format; the text format keeps spdlog's own pattern.
//
// The canary key reaches the formatter through a thread_local that log_about_canary sets only for
// the duration of one synchronous logger call (the logger has no async sinks), so no coroutine
// can run in between and no line can pick up another canary's key.
#include "platform/core/log.hpp"

#include "platform/core/text.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <memory>
#include <string>

namespace serin {

namespace {

thread_local std::string_view current_canary;

void append(spdlog::memory_buf_t& dest, std::string_view text) {
    dest.append(text.data(), text.data() + text.size());
}

/// `text` as the inside of a JSON string.
void append_json_escaped(spdlog::memory_buf_t& dest, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (const char c : text) {
        switch (c) {
            case '"':
                append(dest, "\\\"");
                break;
            case '\\':
                append(dest, "\\\\");
                break;
            case '\n':
                append(dest, "\\n");
                break;
            case '\r':
                append(dest, "\\r");
                break;
            case '\t':
                append(dest, "\\t");
                break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    const auto u = static_cast<unsigned char>(c);
                    const char escaped[] = {'\\', 'u', '0', '0', kHex[u >> 4U], kHex[u & 0xFU]};
                    dest.append(escaped, escaped + sizeof escaped);
                } else {
                    dest.push_back(c);
                }
        }
    }
}

/// A logfmt value: bare when it has no space, quote, '=' or control character, else quoted with
/// JSON-style escapes.
void append_logfmt_value(spdlog::memory_buf_t& dest, std::string_view text) {
    const bool bare = !text.empty() && text.find_first_of(" \"=\\") == std::string_view::npos &&
                      std::none_of(text.begin(), text.end(), [](char c) {
                          return static_cast<unsigned char>(c) < 0x20;
                      });
    if (bare) {
        append(dest, text);
        return;
    }
    dest.push_back('"');
    append_json_escaped(dest, text);
    dest.push_back('"');
}

/// The longest message a line carries; messages quote webhook and metrics answers.
constexpr std::size_t kMaxLogMessage = 4096;

/// The message, valid UTF-8 and at most kMaxLogMessage bytes, so no format can be broken by
/// what a remote server wrote.
std::string payload(const spdlog::details::log_msg& msg) {
    return text::clip(std::string_view{msg.payload.data(), msg.payload.size()}, kMaxLogMessage);
}

/// %q: the message of a text line with control characters escaped (a line break in a
/// webhook's answer must not start what looks like another log line).
class TextMessageFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        append_json_escaped(dest, payload(msg));
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<TextMessageFlag>();
    }
};

/// %K: "canary <key>: " on a line about a canary (text).
class TextCanaryFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg&, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        if (!current_canary.empty()) {
            append(dest, "canary ");
            append(dest, current_canary);
            append(dest, ": ");
        }
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<TextCanaryFlag>();
    }
};

/// %J: `"canary":"<key>","msg":"<message>"`, escaped (json).
class JsonFieldsFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        if (!current_canary.empty()) {
            append(dest, "\"canary\":\"");
            append_json_escaped(dest, current_canary);
            append(dest, "\",");
        }
        append(dest, "\"msg\":\"");
        append_json_escaped(dest, payload(msg));
        dest.push_back('"');
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<JsonFieldsFlag>();
    }
};

/// %F: `canary=<key> msg=<message>` (logfmt).
class LogfmtFieldsFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&,
                spdlog::memory_buf_t& dest) override {
        if (!current_canary.empty()) {
            append(dest, "canary=");
            append_logfmt_value(dest, current_canary);
            dest.push_back(' ');
        }
        append(dest, "msg=");
        append_logfmt_value(dest, payload(msg));
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<LogfmtFieldsFlag>();
    }
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_log_formatter(LogFormat format) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    switch (format) {
        case LogFormat::kJson:
            formatter->add_flag<JsonFieldsFlag>('J').set_pattern(
                R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l",%J})");
            break;
        case LogFormat::kLogfmt:
            formatter->add_flag<LogfmtFieldsFlag>('F').set_pattern(
                "ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l %F");
            break;
        case LogFormat::kText:
            formatter->add_flag<TextCanaryFlag>('K').add_flag<TextMessageFlag>('q').set_pattern(
                "%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %K%q");
            break;
    }
    return formatter;
}

void configure_logging(std::string_view level, LogFormat format) {
    auto logger = spdlog::stderr_color_mt("serin");
    logger->set_formatter(make_log_formatter(format));
    logger->set_level(spdlog::level::from_str(std::string(level)));
    spdlog::set_default_logger(logger);
}

namespace detail {

void log_about_canary(spdlog::level::level_enum level, std::string_view key, std::string message) {
    struct Scope {
        explicit Scope(std::string_view k) { current_canary = k; }
        ~Scope() { current_canary = {}; }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;
    } scope(key);
    spdlog::default_logger_raw()->log(level, "{}", message);
}

}  // namespace detail

}  // namespace serin
