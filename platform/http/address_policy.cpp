#include "platform/http/address_policy.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <optional>

#include "platform/core/text.hpp"

namespace serin::http {
namespace {

struct Parsed {
    std::array<std::uint8_t, 16> bytes{};
    bool v4 = false;
};

/// An IP literal as bytes; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4.
std::optional<Parsed> parse_address(std::string_view text) {
    if (text.empty() || text.size() > 64) {
        return std::nullopt;
    }
    const std::string s(text);
    Parsed out;
    in_addr v4{};
    if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        std::memcpy(out.bytes.data(), &v4, 4);
        out.v4 = true;
        return out;
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) {
        return std::nullopt;
    }
    std::memcpy(out.bytes.data(), &v6, 16);
    static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::equal(kMapped.begin(), kMapped.end(), out.bytes.begin())) {
        std::array<std::uint8_t, 16> v4_bytes{};
        std::copy(out.bytes.begin() + 12, out.bytes.end(), v4_bytes.begin());
        out.bytes = v4_bytes;
        out.v4 = true;
    }
    return out;
}

std::string normal_host(std::string_view host) {
    std::string out(host);
    while (!out.empty() && out.back() == '.') {
        out.pop_back();
    }
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

Error refused(std::string_view what, const std::string& rule) {
    return fail(ErrorKind::kForbidden, "the address policy refuses " + text::clip(what, 256) +
                                           " (denied by " + rule +
                                           "; -address-policy-allow lifts it)");
}

}  // namespace

AddressPolicy AddressPolicy::metadata_denied() {
    AddressPolicy policy;
    for (std::string_view entry :
         {"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "metadata.google.internal",
          "metadata", "metadata.azure.internal", "instance-data", "instance-data.ec2.internal"}) {
        const auto added = policy.deny(entry);
        (void)added;  // the built-in rules parse
    }
    return policy;
}

Result<AddressPolicy::Rule> AddressPolicy::parse_rule(std::string_view entry) {
    Rule rule;
    rule.text = std::string(entry);
    if (entry.empty()) {
        return fail(ErrorKind::kInvalid, "an address policy entry is empty");
    }
    const auto slash = entry.find('/');
    const auto address = parse_address(entry.substr(0, slash));
    if (!address) {
        if (slash != std::string_view::npos) {
            return fail(ErrorKind::kInvalid, "address policy entry '" + text::clip(entry, 128) +
                                                 "' is neither a CIDR nor a host name");
        }
        rule.host = normal_host(entry);
        return rule;
    }
    rule.bytes = address->bytes;
    rule.v4 = address->v4;
    const int bits = rule.v4 ? 32 : 128;
    rule.prefix = bits;
    if (slash != std::string_view::npos) {
        const std::string_view length = entry.substr(slash + 1);
        int prefix = -1;
        const auto [end, ec] =
            std::from_chars(length.data(), length.data() + length.size(), prefix);
        if (ec != std::errc{} || end != length.data() + length.size() || prefix < 0 ||
            prefix > bits) {
            return fail(ErrorKind::kInvalid, "address policy entry '" + text::clip(entry, 128) +
                                                 "' has a bad prefix length");
        }
        rule.prefix = prefix;
    }
    return rule;
}

Result<void> AddressPolicy::deny(std::string_view entry) {
    auto rule = parse_rule(entry);
    if (!rule) {
        return rule.error();
    }
    deny_.push_back(std::move(*rule));
    return {};
}

Result<void> AddressPolicy::allow(std::string_view entry) {
    auto rule = parse_rule(entry);
    if (!rule) {
        return rule.error();
    }
    allow_.push_back(std::move(*rule));
    return {};
}

bool AddressPolicy::matches(const Rule& rule, const std::array<std::uint8_t, 16>& bytes, bool v4) {
    if (rule.prefix < 0 || rule.v4 != v4) {
        return false;
    }
    const int whole = rule.prefix / 8;
    if (!std::equal(rule.bytes.begin(), rule.bytes.begin() + whole, bytes.begin())) {
        return false;
    }
    const int rest = rule.prefix % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (rule.bytes[whole] & mask) == (bytes[whole] & mask);
}

const AddressPolicy::Rule* AddressPolicy::first_match(const std::vector<Rule>& rules,
                                                      std::string_view host) {
    for (const Rule& rule : rules) {
        if (rule.prefix < 0 && rule.host == host) {
            return &rule;
        }
    }
    return nullptr;
}

const AddressPolicy::Rule* AddressPolicy::first_match(const std::vector<Rule>& rules,
                                                      const std::array<std::uint8_t, 16>& bytes,
                                                      bool v4) {
    for (const Rule& rule : rules) {
        if (matches(rule, bytes, v4)) {
            return &rule;
        }
    }
    return nullptr;
}

Result<void> AddressPolicy::check_host(std::string_view host) const {
    if (deny_.empty()) {
        return {};
    }
    if (parse_address(host)) {
        return check_address(host, {});
    }
    const std::string name = normal_host(host);
    const Rule* denied = first_match(deny_, name);
    if (denied != nullptr && first_match(allow_, name) == nullptr) {
        return refused(host, denied->text);
    }
    return {};
}

Result<void> AddressPolicy::check_address(std::string_view address, std::string_view host) const {
    if (deny_.empty()) {
        return {};
    }
    const auto parsed = parse_address(address);
    if (!parsed) {
        return fail(ErrorKind::kForbidden,
                    "the address policy cannot read address " + text::clip(address, 64));
    }
    const Rule* denied = first_match(deny_, parsed->bytes, parsed->v4);
    if (denied == nullptr || first_match(allow_, parsed->bytes, parsed->v4) != nullptr) {
        return {};
    }
    std::string what(address);
    if (!host.empty() && host != address) {
        what = std::string(host) + " (" + what + ")";
    }
    return refused(what, denied->text);
}

std::string AddressPolicy::describe() const {
    auto list = [](const std::vector<Rule>& rules) {
        std::string out;
        for (const Rule& rule : rules) {
            out += (out.empty() ? "" : ", ") + rule.text;
        }
        return out.empty() ? std::string("nothing") : out;
    };
    return "deny " + list(deny_) + "; allow " + list(allow_);
}

}  // namespace serin::http
