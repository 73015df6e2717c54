#include <catch2/catch.hpp>

#include "platform/core/time_format.hpp"

using serin::format_time;
using serin::parse_time;
using serin::SystemTime;
using namespace std::chrono_literals;

TEST_CASE("metav1.Time round-trips through format_time and parse_time") {
    const SystemTime t{std::chrono::seconds{1'700'000'000}};
    CHECK(format_time(t) == "2023-11-14T22:13:20Z");
    CHECK(parse_time("2023-11-14T22:13:20Z") == t);
    CHECK(parse_time(format_time(t + 59s)) == t + 59s);
}

TEST_CASE("parse_time accepts RFC 3339 fractions and offsets and refuses the rest") {
    const SystemTime t{std::chrono::seconds{1'700'000'000}};
    CHECK(parse_time("2023-11-14T22:13:20.123456Z") == t);
    CHECK(parse_time("2023-11-14T23:13:20+01:00") == t);
    CHECK(parse_time("2023-11-14T21:13:20-01:00") == t);
    CHECK_FALSE(parse_time("").has_value());
    CHECK_FALSE(parse_time("2023-11-14 22:13:20Z").has_value());
    CHECK_FALSE(parse_time("2023-11-14T22:13:20").has_value());
    CHECK_FALSE(parse_time("2023-13-14T22:13:20Z").has_value());
    CHECK_FALSE(parse_time("2023-11-14T22:13:20Zjunk").has_value());
}

TEST_CASE("metav1.MicroTime round-trips through format_micro_time and parse_micro_time") {
    const SystemTime t{std::chrono::seconds{1'700'000'000}};
    CHECK(serin::format_micro_time(t) == "2023-11-14T22:13:20.000000Z");
    CHECK(serin::format_micro_time(t + 1234567us) == "2023-11-14T22:13:21.234567Z");
    CHECK(serin::parse_micro_time(serin::format_micro_time(t + 1234567us)) == t + 1234567us);
    CHECK(serin::parse_micro_time("2023-11-14T22:13:20.5Z") == t + 500ms);
    CHECK(serin::parse_micro_time("2023-11-14T22:13:20.123456789Z") == t + 123456us);
    CHECK(serin::parse_micro_time("2023-11-14T23:13:20.25+01:00") == t + 250ms);
    CHECK(serin::parse_micro_time("2023-11-14T22:13:20Z") == t);
    CHECK_FALSE(serin::parse_micro_time("2023-11-14T22:13:20.5").has_value());
    CHECK_FALSE(serin::parse_micro_time("soon").has_value());
}
