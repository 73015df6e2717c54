// MetricTemplate objects (namespace users write them).
#include "crds/api/metric_template.hpp"
#include "platform/core/json.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto json = serin::parse_json(serin::fuzz::as_text(data, size), 64);
    if (!json) {
        return 0;
    }
    if (auto t = serin::api::decode_metric_template(*json); !t) {
        serin::fuzz::check(!t.error().message.empty(), "an error without a message");
    }
    return 0;
}
