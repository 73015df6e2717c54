#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "platform/core/result.hpp"

namespace serin::http {

/// Which addresses an HTTP client may connect to. Canary authors name the URLs Serin calls
/// (webhooks, metrics servers, alert addresses); the policy keeps those calls away from
/// addresses that hand out credentials, such as a cloud's instance metadata service.
///
/// Rules are CIDRs ("169.254.0.0/16", "fd00:ec2::254/128", a bare address) or host names
/// ("metadata.google.internal", compared without case and trailing dot). An address or host is
/// refused when a deny rule matches it and no allow rule does: allow rules are exceptions to
/// deny rules. Names are checked before resolution and every resolved address at connect time,
/// so a name that resolves to a denied address is refused as well.
class AddressPolicy {
public:
    /// No rules: everything is allowed.
    AddressPolicy() = default;

    /// Serin's default: link-local addresses (169.254.0.0/16, fe80::/10), AWS's IPv6 metadata
    /// address (fd00:ec2::254) and the metadata host names of GCP, Azure and AWS are denied.
    static AddressPolicy metadata_denied();

    /// Adds a rule. Errors: kInvalid naming the entry (a bad prefix length, an empty entry).
    Result<void> deny(std::string_view entry);
    Result<void> allow(std::string_view entry);

    /// Whether a URL's host (a name or an IP literal) may be called. A refusal is kForbidden and
    /// names the host and the rule.
    Result<void> check_host(std::string_view host) const;

    /// Whether a resolved address ("169.254.169.254", "::ffff:10.0.0.1") may be connected to;
    /// `host` is the name it was resolved from, for the message. IPv4-mapped IPv6 addresses are
    /// checked as IPv4.
    Result<void> check_address(std::string_view address, std::string_view host) const;

    bool empty() const { return deny_.empty(); }
    /// The rules, for the start-up log: "deny 169.254.0.0/16, ...; allow ...".
    std::string describe() const;

private:
    struct Rule {
        std::string text;                      ///< as given, for messages
        std::string host;                      ///< a host-name rule: lower case, no trailing dot
        std::array<std::uint8_t, 16> bytes{};  ///< a network rule, IPv4 in the first 4 bytes
        int prefix = -1;                       ///< -1 for a host-name rule
        bool v4 = false;
    };
    static Result<Rule> parse_rule(std::string_view entry);
    static bool matches(const Rule& rule, const std::array<std::uint8_t, 16>& bytes, bool v4);
    static const Rule* first_match(const std::vector<Rule>& rules, std::string_view host);
    static const Rule* first_match(const std::vector<Rule>& rules,
                                   const std::array<std::uint8_t, 16>& bytes, bool v4);

    std::vector<Rule> deny_;
    std::vector<Rule> allow_;
};

}  // namespace serin::http
