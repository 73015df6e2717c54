// Text and JSON that cross a trust boundary: UTF-8 repair, clipping at character boundaries,
// bounded nesting, dumps that never throw, and accessors that never throw.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>

#include "platform/core/json.hpp"
#include "platform/core/text.hpp"
#include "tests/support/hostile.hpp"

namespace text = serin::text;

namespace {

std::string hostile(const std::string& name) { return serin::testing::hostile_input(name); }

}  // namespace

TEST_CASE("UTF-8 validity follows RFC 3629", "[text]") {
    CHECK(text::is_valid_utf8(""));
    CHECK(text::is_valid_utf8("plain ascii"));
    CHECK(text::is_valid_utf8("\xC3\xA4 \xE2\x82\xAC \xF0\x9F\x98\x80"));  // ä € 😀
    CHECK_FALSE(text::is_valid_utf8(hostile("text/latin1.txt")));
    CHECK_FALSE(text::is_valid_utf8(hostile("text/cut-utf8.txt")));  // cut inside a character
    // Overlong '/', overlong three-byte form, a surrogate, above U+10FFFF: each on its own.
    for (const char* bad : {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80"}) {
        INFO(bad);
        CHECK_FALSE(text::is_valid_utf8(bad));
    }
}

TEST_CASE("ill-formed sequences become U+FFFD and the rest is kept", "[text]") {
    CHECK(text::to_valid_utf8(hostile("text/latin1.txt")) ==
          "caf\xEF\xBF\xBD cr\xEF\xBF\xBDme br\xEF\xBF\xBDl\xEF\xBF\xBD" "e");
    const std::string repaired = text::to_valid_utf8(hostile("text/overlong.txt"));
    CHECK(text::is_valid_utf8(repaired));
    const std::string cut = text::to_valid_utf8(hostile("text/cut-utf8.txt"));
    CHECK(text::is_valid_utf8(cut));
    CHECK(cut.rfind("\xEF\xBF\xBD") == cut.size() - 3);  // the half character at the end
}

TEST_CASE("clip never splits a character and stays within its limit", "[text]") {
    std::string umlauts;
    for (int i = 0; i < 60; ++i) {
        umlauts += "\xC3\xA4";  // ä, two bytes
    }
    for (std::size_t limit : {0U, 1U, 2U, 3U, 4U, 5U, 80U, 81U, 119U, 120U, 121U}) {
        INFO(limit);
        const std::string clipped = text::clip(umlauts, limit);
        CHECK(clipped.size() <= limit);
        CHECK(text::is_valid_utf8(clipped));
    }
    CHECK(text::clip(umlauts, 9) == "\xC3\xA4\xC3\xA4\xC3\xA4...");
    CHECK(text::clip(umlauts, 120) == umlauts);
    CHECK(text::clip("short", 80) == "short");
    // Invalid input is repaired before it is measured.
    CHECK(text::is_valid_utf8(text::clip(hostile("text/cut-utf8.txt"), 100)));
}

TEST_CASE("line breaks and trimming", "[text]") {
    CHECK(text::has_line_break("a\r\nb"));
    CHECK(text::has_line_break("a\nb"));
    CHECK(text::has_line_break(std::string("a\0b", 3)));
    CHECK_FALSE(text::has_line_break("Bearer abc.def"));
    CHECK(text::trim(" \ttoken\r\n") == "token");
    CHECK(text::trim("\n").empty());
}

TEST_CASE("JSON nested deeper than the limit is refused before nlohmann sees it", "[json]") {
    const std::string deep = hostile("prometheus/deep-sample.json");
    CHECK(serin::json_nesting_depth(deep, 1'000'000) == 50'004);
    auto parsed = serin::parse_json(deep, serin::kMaxRemoteJsonDepth, "the answer");
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().kind == serin::ErrorKind::kBadRequest);
    CHECK(parsed.error().message == "the answer is nested deeper than 64 levels");
    // Brackets inside strings do not count.
    CHECK(serin::json_nesting_depth(R"({"a":"[[[[{{{{\"[["})", 100) == 1);
    auto ok = serin::parse_json(R"({"a":[1,{"b":"[[["}]})", 3);
    REQUIRE(ok.has_value());
    CHECK((*ok)["a"][1]["b"] == "[[[");
    CHECK_FALSE(serin::parse_json("{\"a\":", 3).has_value());
}

TEST_CASE("dump_json and show_json never throw on text that is not UTF-8", "[json]") {
    nlohmann::json value = {{"body", hostile("text/latin1.txt")}};
    CHECK_THROWS(value.dump());  // what nlohmann does by default
    const std::string dumped = serin::dump_json(value);
    CHECK(text::is_valid_utf8(dumped));
    CHECK(dumped == "{\"body\":\"caf\xEF\xBF\xBD cr\xEF\xBF\xBDme br\xEF\xBF\xBDl\xEF\xBF\xBD" "e\"}");
    const std::string shown = serin::show_json(nlohmann::json(std::string(500, 'x')), 40);
    CHECK(shown.size() == 40);
    CHECK(shown.substr(37) == "...");
}

TEST_CASE("json_string reads strings only, never throws on other types", "[json]") {
    const auto doc = nlohmann::json::parse(R"({"kind":7,"reason":"Conflict","message":null})");
    CHECK(serin::json_string(doc, "kind").empty());
    CHECK(serin::json_string(doc, "kind", "?") == "?");
    CHECK(serin::json_string(doc, "reason") == "Conflict");
    CHECK(serin::json_string(doc, "message", "none") == "none");
    CHECK(serin::json_string(nlohmann::json::array(), "kind", "x") == "x");
}
