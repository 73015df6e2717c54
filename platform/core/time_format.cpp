#include "platform/core/time_format.hpp"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
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

std::string format_micro_time(SystemTime t) {
    const auto seconds = std::chrono::floor<std::chrono::seconds>(t);
    const auto micros =
        std::chrono::duration_cast<std::chrono::microseconds>(t - seconds).count();
    std::string text = format_time(seconds);  // "...:SSZ"
    char fraction[24];  // room for any long long, so -O3 sees no truncation
    std::snprintf(fraction, sizeof fraction, ".%06lldZ", static_cast<long long>(micros));
    text.pop_back();
    return text + fraction;
}

std::optional<SystemTime> parse_micro_time(std::string_view text) {
    std::optional<SystemTime> whole = parse_time(text);
    if (!whole || text.size() <= 20 || text[19] != '.') {
        return whole;
    }
    // parse_time accepted the text, so digits follow the dot up to the zone.
    std::int64_t micros = 0;
    int digits = 0;
    for (std::size_t i = 20; i < text.size() && digits < 6; ++i, ++digits) {
        if (std::isdigit(static_cast<unsigned char>(text[i])) == 0) {
            break;
        }
        micros = micros * 10 + (text[i] - '0');
    }
    for (; digits < 6; ++digits) {
        micros *= 10;
    }
    return *whole + std::chrono::duration_cast<SystemTime::duration>(
                        std::chrono::microseconds{micros});
}

}  // namespace serin
