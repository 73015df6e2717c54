// AlertProvider objects (namespace users write them).
#include "crds/api/alert_provider.hpp"
#include "platform/core/json.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto json = serin::parse_json(serin::fuzz::as_text(data, size), 64);
    if (!json) {
        return 0;
    }
    if (auto p = serin::api::decode_alert_provider(*json); !p) {
        serin::fuzz::check(!p.error().message.empty(), "an error without a message");
    }
    return 0;
}
