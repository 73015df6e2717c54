#include "platform/core/text.hpp"

namespace serin::text {

namespace {

/// The length of the well-formed UTF-8 sequence at the start of `s`, or 0 when it is ill-formed.
/// `bad` is then how many bytes make up its maximal ill-formed subpart (at least 1).
std::size_t sequence_length(std::string_view s, std::size_t& bad) {
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = byte(0);
    bad = 1;
    if (lead < 0x80) {
        return 1;
    }
    std::size_t need = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
        need = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 2;
        if (lead == 0xE0) {
            low = 0xA0;  // no overlong three-byte forms
        } else if (lead == 0xED) {
            high = 0x9F;  // no surrogates
        }
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 3;
        if (lead == 0xF0) {
            low = 0x90;  // no overlong four-byte forms
        } else if (lead == 0xF4) {
            high = 0x8F;  // nothing above U+10FFFF
        }
    } else {
        return 0;
    }
    for (std::size_t i = 1; i <= need; ++i) {
        if (i >= s.size()) {
            return 0;
        }
        const unsigned char c = byte(i);
        const unsigned char lo = i == 1 ? low : 0x80;
        const unsigned char hi = i == 1 ? high : 0xBF;
        if (c < lo || c > hi) {
            return 0;
        }
        bad = i + 1;
    }
    return need + 1;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
    while (!s.empty()) {
        std::size_t bad = 0;
        const std::size_t n = sequence_length(s, bad);
        if (n == 0) {
            return false;
        }
        s.remove_prefix(n);
    }
    return true;
}

std::string to_valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    while (!s.empty()) {
        std::size_t bad = 0;
        const std::size_t n = sequence_length(s, bad);
        if (n == 0) {
            out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
            s.remove_prefix(bad);
        } else {
            out.append(s.substr(0, n));
            s.remove_prefix(n);
        }
    }
    return out;
}

std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) {
    if (s.size() <= max_bytes) {
        return s;
    }
    std::size_t end = max_bytes;
    // Back up over continuation bytes to the start of the character that does not fit.
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0U) == 0x80U) {
        --end;
    }
    return s.substr(0, end);
}

std::string clip(std::string_view s, std::size_t max_bytes) {
    std::string valid = is_valid_utf8(s) ? std::string(s) : to_valid_utf8(s);
    if (valid.size() <= max_bytes) {
        return valid;
    }
    constexpr std::string_view kEllipsis = "...";
    if (max_bytes < kEllipsis.size()) {
        return std::string(utf8_prefix(valid, max_bytes));
    }
    std::string out(utf8_prefix(valid, max_bytes - kEllipsis.size()));
    out += kEllipsis;
    return out;
}

bool has_line_break(std::string_view s) {
    constexpr std::string_view kBreaks{"\r\n\0", 3};
    return s.find_first_of(kBreaks) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
    constexpr std::string_view kSpace = " \t\r\n";
    const auto first = s.find_first_not_of(kSpace);
    if (first == std::string_view::npos) {
        return {};
    }
    const auto last = s.find_last_not_of(kSpace);
    return s.substr(first, last - first + 1);
}

}  // namespace serin::text
