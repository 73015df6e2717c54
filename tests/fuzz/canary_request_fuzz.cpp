// A CanaryRequest object (anyone allowed to create one writes it).
#include "crds/api/canary_request.hpp"
#include "platform/core/json.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto json = serin::parse_json(serin::fuzz::as_text(data, size), 64);
    if (!json) {
        return 0;
    }
    if (auto r = serin::api::decode_canary_request(*json); !r) {
        serin::fuzz::check(!r.error().message.empty(), "an error without a message");
    }
    return 0;
}
