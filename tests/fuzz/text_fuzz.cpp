// Remote text quoted in messages (webhook and metrics answers): clip() and to_valid_utf8()
// always give valid UTF-8 within the limit.
#include "platform/core/text.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace serin;
    const auto text = fuzz::as_text(data, size);
    const std::size_t limit = size == 0 ? 0 : data[0];
    const std::string clipped = text::clip(text, limit);
    fuzz::check(text::is_valid_utf8(clipped), "clip() gave invalid UTF-8");
    fuzz::check(text::is_valid_utf8(text::to_valid_utf8(text)), "to_valid_utf8() is not");
    fuzz::check(text::utf8_prefix(text, limit).size() <= limit, "utf8_prefix() over the limit");
    return 0;
}
