// Go durations ("1m30s"), as Canary authors write them: a parsed duration is never negative.
#include "crds/api/canary.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto parsed = serin::api::parse_duration(serin::fuzz::as_text(data, size));
    if (parsed) {
        serin::fuzz::check(parsed->count() >= 0, "a negative duration");
    }
    return 0;
}
