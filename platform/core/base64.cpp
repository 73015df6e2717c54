#include "platform/core/base64.hpp"

#include <array>
#include <cstdint>

namespace serin {

std::string encode_base64(std::string_view data) {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    const auto byte = [&](std::size_t k) {
        return static_cast<std::uint32_t>(static_cast<unsigned char>(data[k]));
    };
    for (; i + 2 < data.size(); i += 3) {
        const std::uint32_t n = (byte(i) << 16U) | (byte(i + 1) << 8U) | byte(i + 2);
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += kAlphabet[(n >> 6U) & 63U];
        out += kAlphabet[n & 63U];
    }
    const std::size_t rest = data.size() - i;
    if (rest > 0) {
        const std::uint32_t n = (byte(i) << 16U) | (rest == 2 ? byte(i + 1) << 8U : 0U);
        out += kAlphabet[(n >> 18U) & 63U];
        out += kAlphabet[(n >> 12U) & 63U];
        out += rest == 2 ? kAlphabet[(n >> 6U) & 63U] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> decode_base64(std::string_view text) {
    static constexpr std::array<std::int8_t, 256> kTable = [] {
        std::array<std::int8_t, 256> table{};
        table.fill(-1);
        constexpr std::string_view kAlphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
            table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
        }
        return table;
    }();

    std::string out;
    out.reserve(text.size() / 4 * 3 + 3);
    std::uint32_t bits = 0;
    int nbits = 0;
    std::size_t symbols = 0;  // alphabet characters and padding, whitespace excluded
    std::size_t padding = 0;
    for (char c : text) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
            continue;
        }
        if (c == '=') {
            ++padding;
            ++symbols;
            continue;
        }
        if (padding > 0) {
            return std::nullopt;  // data after padding
        }
        std::int8_t value = kTable[static_cast<unsigned char>(c)];
        if (value < 0) {
            return std::nullopt;
        }
        ++symbols;
        bits = (bits << 6) | static_cast<std::uint32_t>(value);
        nbits += 6;
        if (nbits >= 8) {
            nbits -= 8;
            out.push_back(static_cast<char>((bits >> nbits) & 0xFFu));
        }
    }
    std::size_t data_symbols = symbols - padding;
    if (data_symbols % 4 == 1 || padding > 2) {
        return std::nullopt;
    }
    if (padding > 0 && (4 - data_symbols % 4) % 4 != padding) {
        return std::nullopt;  // padding must complete the last quantum exactly
    }
    return out;
}

}  // namespace serin
