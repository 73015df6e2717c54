// The address policy: rules, matching and what a refusal says.
#include "platform/http/address_policy.hpp"

#include <catch2/catch.hpp>

using serin::ErrorKind;
using serin::http::AddressPolicy;

TEST_CASE("the default policy denies link-local and metadata addresses, nothing else") {
    const AddressPolicy policy = AddressPolicy::metadata_denied();
    for (const char* denied :
         {"169.254.169.254", "169.254.0.1", "fd00:ec2::254", "fe80::1", "::ffff:169.254.169.254",
          "metadata.google.internal", "Metadata.Google.Internal.", "metadata", "instance-data"}) {
        INFO(denied);
        const auto checked = policy.check_host(denied);
        REQUIRE_FALSE(checked.has_value());
        CHECK(checked.error().kind == ErrorKind::kForbidden);
    }
    for (const char* allowed :
         {"10.0.0.1", "127.0.0.1", "::1", "192.168.1.1", "169.253.255.255", "169.255.0.0",
          "fd00:ec2::253", "flagger-loadtester.test", "metadata.example.com", "prometheus"}) {
        INFO(allowed);
        CHECK(policy.check_host(allowed).has_value());
    }
}

TEST_CASE("a refusal names the host, the address and the rule") {
    AddressPolicy policy;
    REQUIRE(policy.deny("10.96.0.0/12").has_value());
    const auto refused = policy.check_address("10.96.0.10", "kube-dns.kube-system");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message ==
          "the address policy refuses kube-dns.kube-system (10.96.0.10) (denied by 10.96.0.0/12; "
          "-address-policy-allow lifts it)");
    CHECK(policy.check_address("10.112.0.1", "x").has_value());  // just past the /12
}

TEST_CASE("prefix lengths that are not whole bytes match bit by bit") {
    AddressPolicy policy;
    REQUIRE(policy.deny("192.168.4.0/22").has_value());
    REQUIRE(policy.deny("2001:db8:80::/41").has_value());
    CHECK_FALSE(policy.check_address("192.168.7.255", "").has_value());
    CHECK(policy.check_address("192.168.8.0", "").has_value());
    CHECK(policy.check_address("192.168.3.255", "").has_value());
    CHECK_FALSE(policy.check_address("2001:db8:ff::1", "").has_value());
    CHECK(policy.check_address("2001:db8:7f::1", "").has_value());
    // An IPv4 rule does not match IPv6 addresses other than IPv4-mapped ones.
    CHECK(policy.check_address("::c0a8:401", "").has_value());
    CHECK_FALSE(policy.check_address("::ffff:192.168.4.1", "").has_value());
}

TEST_CASE("allow rules are exceptions to deny rules") {
    AddressPolicy policy = AddressPolicy::metadata_denied();
    REQUIRE(policy.allow("169.254.10.0/24").has_value());
    REQUIRE(policy.allow("metadata").has_value());
    CHECK(policy.check_host("169.254.10.7").has_value());
    CHECK_FALSE(policy.check_host("169.254.169.254").has_value());
    CHECK(policy.check_host("metadata").has_value());
    CHECK_FALSE(policy.check_host("metadata.google.internal").has_value());
    // An allow rule alone denies nothing.
    AddressPolicy only_allow;
    REQUIRE(only_allow.allow("10.0.0.0/8").has_value());
    CHECK(only_allow.empty());
    CHECK(only_allow.check_host("169.254.169.254").has_value());
}

TEST_CASE("bad rules are refused by name") {
    AddressPolicy policy;
    for (const char* bad :
         {"", "10.0.0.0/33", "::/129", "10.0.0.0/-1", "10.0.0.0/8x", "not-an-ip/8", "10.0.0.0/"}) {
        INFO(bad);
        const auto added = policy.deny(bad);
        REQUIRE_FALSE(added.has_value());
        CHECK(added.error().kind == ErrorKind::kInvalid);
    }
    CHECK(policy.empty());
    // With rules, an address it cannot read is refused rather than let through.
    REQUIRE(policy.deny("10.0.0.0/8").has_value());
    CHECK_FALSE(policy.check_address("not an address", "").has_value());
}

TEST_CASE("the policy describes its rules for the start-up log") {
    AddressPolicy policy;
    REQUIRE(policy.deny("10.0.0.0/8").has_value());
    REQUIRE(policy.allow("10.1.2.3").has_value());
    CHECK(policy.describe() == "deny 10.0.0.0/8; allow 10.1.2.3");
}
