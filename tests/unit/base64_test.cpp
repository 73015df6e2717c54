// serin::encode_base64 / decode_base64 against RFC 4648 §10's test vectors, and what decoding
// refuses.
#include <catch2/catch.hpp>

#include "platform/core/base64.hpp"

TEST_CASE("base64 encodes and decodes RFC 4648's test vectors") {
    const std::pair<std::string, std::string> vectors[] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        INFO(plain);
        CHECK(serin::encode_base64(plain) == encoded);
        CHECK(serin::decode_base64(encoded) == plain);
    }
    const std::string binary("\x00\xff\x10\x80", 4);
    CHECK(serin::encode_base64(binary) == "AP8QgA==");
    CHECK(serin::decode_base64("AP8QgA==") == binary);
    CHECK(serin::encode_base64("user:pass") == "dXNlcjpwYXNz");  // a Basic authorization
}

TEST_CASE("base64 decoding ignores whitespace and missing padding, and refuses the rest") {
    CHECK(serin::decode_base64("Zm9v\nYmFy\n") == "foobar");
    CHECK(serin::decode_base64("Zm8") == "fo");
    CHECK_FALSE(serin::decode_base64("Zm9v*mFy"));   // not in the alphabet
    CHECK_FALSE(serin::decode_base64("Zg==Zg=="));   // data after padding
    CHECK_FALSE(serin::decode_base64("Zm9vY"));      // a lone sixth bit group
    CHECK_FALSE(serin::decode_base64("Zm8=="));      // padding beyond the quantum
}
