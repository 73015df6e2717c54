// Log formats: every line about a canary carries its key as a field of its own, and json and
// logfmt lines stay parseable whatever the message holds.
#include "platform/core/log.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

/// Installs a default logger that writes `format` lines into a string, and puts the previous
/// default back when it goes out of scope.
class CapturedLog {
public:
    explicit CapturedLog(serin::LogFormat format) : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out_);
        auto logger = std::make_shared<spdlog::logger>("log_test", sink);
        logger->set_formatter(serin::make_log_formatter(format));
        logger->set_level(spdlog::level::info);
        spdlog::set_default_logger(logger);
    }
    ~CapturedLog() { spdlog::set_default_logger(previous_); }
    CapturedLog(const CapturedLog&) = delete;
    CapturedLog& operator=(const CapturedLog&) = delete;

    std::vector<std::string> lines() const {
        std::vector<std::string> result;
        std::istringstream in(out_.str());
        for (std::string line; std::getline(in, line);) {
            result.push_back(line);
        }
        return result;
    }

private:
    std::shared_ptr<spdlog::logger> previous_;
    std::ostringstream out_;
};

}  // namespace

TEST_CASE("json log: a line about a canary has its key as a field, and any message stays valid") {
    std::vector<std::string> lines;
    {
        CapturedLog log(serin::LogFormat::kJson);
        serin::CanaryLog("shop/podinfo").warn("halted: {}", "check \"error-rate\" failed\n\tat 12%");
        spdlog::info("informers synced");
        serin::CanaryLog("shop/podinfo").debug("below the level, not written");
        lines = log.lines();
    }
    REQUIRE(lines.size() == 2);
    const auto about = nlohmann::json::parse(lines[0]);
    CHECK(about.at("canary") == "shop/podinfo");
    CHECK(about.at("level") == "warning");
    CHECK(about.at("msg") == "halted: check \"error-rate\" failed\n\tat 12%");
    const std::string ts = about.at("ts");
    CHECK(ts.size() == std::string("2026-12-03T10:00:00.000Z").size());
    CHECK(ts.back() == 'Z');

    const auto general = nlohmann::json::parse(lines[1]);
    CHECK_FALSE(general.contains("canary"));
    CHECK(general.at("level") == "info");
    CHECK(general.at("msg") == "informers synced");
}

TEST_CASE("json log: control characters in a message are escaped") {
    std::vector<std::string> lines;
    {
        CapturedLog log(serin::LogFormat::kJson);
        serin::CanaryLog("a/b").info("bell{}end\\", '\x07');
        lines = log.lines();
    }
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].find("\\u0007") != std::string::npos);
    CHECK(nlohmann::json::parse(lines[0]).at("msg") == "bell\x07" "end\\");
}

TEST_CASE("logfmt log: the canary key and a bare message are unquoted, others are quoted") {
    std::vector<std::string> lines;
    {
        CapturedLog log(serin::LogFormat::kLogfmt);
        serin::CanaryLog("shop/podinfo").info("promoted");
        serin::CanaryLog("shop/podinfo").error("weight {} = \"{}\"", 20, "x");
        spdlog::warn("lease lost");
        lines = log.lines();
    }
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].rfind("ts=", 0) == 0);
    CHECK(lines[0].find(" level=info canary=shop/podinfo msg=promoted") != std::string::npos);
    CHECK(lines[1].find(" level=error canary=shop/podinfo msg=\"weight 20 = \\\"x\\\"\"") !=
          std::string::npos);
    CHECK(lines[2].find(" level=warning msg=\"lease lost\"") != std::string::npos);
    CHECK(lines[2].find("canary=") == std::string::npos);
}

TEST_CASE("text log: a line about a canary starts its message with the key") {
    std::vector<std::string> lines;
    {
        CapturedLog log(serin::LogFormat::kText);
        serin::CanaryLog("shop/podinfo").info("advance weight {}", 10);
        spdlog::info("serving on port {}", 8080);
        lines = log.lines();
    }
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].find(" info canary shop/podinfo: advance weight 10") != std::string::npos);
    CHECK(lines[1].find(" info serving on port 8080") != std::string::npos);
    CHECK(lines[1].find("canary") == std::string::npos);
}

TEST_CASE("every format escapes line breaks, repairs broken UTF-8 and bounds the message") {
    const std::string hostile = "webhook said: line one\nERROR fake line\r\ncaf\xE9";
    for (auto format : {serin::LogFormat::kText, serin::LogFormat::kLogfmt, serin::LogFormat::kJson}) {
        const std::vector<std::string> lines = [&] {
            CapturedLog log(format);
            serin::CanaryLog("ns/podinfo").warn("{}", hostile);
            serin::CanaryLog("ns/podinfo").warn("{}", std::string(100'000, 'x'));
            return log.lines();
        }();
        REQUIRE(lines.size() == 2);  // the line breaks did not make lines of their own
        CHECK(lines[0].find("line one\\nERROR fake line\\r\\ncaf\xEF\xBF\xBD") != std::string::npos);
        CHECK(lines[1].size() < 4200);
    }
}
