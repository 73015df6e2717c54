// serin::Result: [[nodiscard]], so a dropped error is a compiler warning (an error under -Werror),
// and it still converts from and to boost::system::result.
#include <catch2/catch.hpp>
#include <type_traits>

#include "platform/core/result.hpp"

namespace {

serin::Result<int> twice(int x) {
    if (x < 0) {
        return serin::fail(serin::ErrorKind::kInvalid, "negative");
    }
    return 2 * x;
}

}  // namespace

TEST_CASE("Result is a boost::system::result that must not be dropped") {
    static_assert(std::is_base_of_v<boost::system::result<int, serin::Error>, serin::Result<int>>);
    const serin::Result<int> ok = twice(2);
    REQUIRE(ok.has_value());
    CHECK(*ok == 4);
    const serin::Result<int> bad = twice(-1);
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().kind == serin::ErrorKind::kInvalid);
    const boost::system::result<int, serin::Error> base = ok;
    const serin::Result<int> back = base;
    CHECK(*back == 4);
    serin::Result<void> none{};
    CHECK(none.has_value());
    CHECK_THROWS_AS(bad.value(), serin::ErrorException);
    // That a dropped Result does not compile is the test "a dropped Result does not compile"
    // (tests/compile/dropped_result.cpp).
}
