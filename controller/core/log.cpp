#include "controller/core/log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace serin {

void configure_logging(std::string_view level, LogFormat format) {
    auto logger = spdlog::stderr_color_mt("serin");
    if (format == LogFormat::kJson) {
        logger->set_pattern(R"({"ts":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","msg":"%v"})",
                            spdlog::pattern_time_type::utc);
    } else {
        logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    }
    logger->set_level(spdlog::level::from_str(std::string(level)));
    spdlog::set_default_logger(logger);
}

}  // namespace serin
