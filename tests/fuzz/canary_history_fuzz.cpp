// A CanaryHistory object as read back (anyone allowed to edit it can write it): what decodes is
// within the bounds, and encoding it again decodes to the same history.
#include "crds/api/canary_history.hpp"
#include "platform/core/json.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace serin;
    auto json = parse_json(fuzz::as_text(data, size), 64);
    if (!json) {
        return 0;
    }
    auto history = api::decode_canary_history(*json);
    if (!history) {
        return 0;
    }
    fuzz::check(history->releases.size() <= api::kHistoryMaxReleases, "more releases than kept");
    nlohmann::json object = {{"spec", api::encode_canary_history_spec(*history)}};
    auto again = api::decode_canary_history(object);
    fuzz::check(again.has_value(), "an encoded history does not decode");
    fuzz::check(*again == *history, "a history changes in a round trip");
    return 0;
}
