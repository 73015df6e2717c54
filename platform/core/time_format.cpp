#include "platform/core/time_format.hpp"

#include <cctype>
#include <charconv>
#include <ctime>

namespace serin {

std::string format_time(SystemTime t) {
    const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
    std::tm utc{};
    ::gmtime_r(&seconds, &utc);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return buffer;
}

std::optional<SystemTime> parse_time(std::string_view text) {
    auto number = [&text](std::size_t pos, std::size_t len, int& out) {
        if (pos + len > text.size()) {
            return false;
        }
        const char* first = text.data() + pos;
        const char* last = first + len;
        auto [ptr, ec] = std::from_chars(first, last, out);
        return ec == std::errc{} && ptr == last;
    };
    int y = 0;
    int mo = 0;
    int d = 0;
    int h = 0;
    int mi = 0;
    int s = 0;
    if (text.size() < 20 || !number(0, 4, y) || text[4] != '-' || !number(5, 2, mo) ||
        text[7] != '-' || !number(8, 2, d) || (text[10] != 'T' && text[10] != 't') ||
        !number(11, 2, h) || text[13] != ':' || !number(14, 2, mi) || text[16] != ':' ||
        !number(17, 2, s)) {
        return std::nullopt;
    }
    std::size_t pos = 19;
    if (text[pos] == '.') {
        ++pos;
        while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0) {
            ++pos;
        }
    }
    std::chrono::minutes offset{0};
    if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z') && pos + 1 == text.size()) {
        // UTC
    } else if (pos + 6 == text.size() && (text[pos] == '+' || text[pos] == '-')) {
        int oh = 0;
        int om = 0;
        if (!number(pos + 1, 2, oh) || text[pos + 3] != ':' || !number(pos + 4, 2, om)) {
            return std::nullopt;
        }
        offset = std::chrono::hours{oh} + std::chrono::minutes{om};
        if (text[pos] == '-') {
            offset = -offset;
        }
    } else {
        return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{y},
                                          std::chrono::month{static_cast<unsigned>(mo)},
                                          std::chrono::day{static_cast<unsigned>(d)}};
    if (!ymd.ok() || h > 23 || mi > 59 || s > 60) {
        return std::nullopt;
    }
    const auto t = std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} +
                   std::chrono::seconds{s} - offset;
    return std::chrono::time_point_cast<SystemTime::duration>(t);
}

}  // namespace serin
