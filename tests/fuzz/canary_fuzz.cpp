// A Canary object as the API server could hand it over (namespace users write them): decoding
// never crashes, a decoded Canary validates without crashing, and its status survives a round
// trip through Flagger's JSON.
#include "analysis/validate.hpp"
#include "crds/api/canary.hpp"
#include "platform/core/json.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace serin;
    auto json = parse_json(fuzz::as_text(data, size), 64);
    if (!json) {
        return 0;
    }
    auto canary = api::decode_canary(*json);
    if (!canary) {
        fuzz::check(!canary.error().message.empty(), "a decode error without a message");
        return 0;
    }
    (void)analysis::validate(canary->spec);
    (void)analysis::validate(canary->spec, "kubernetes");
    const nlohmann::json encoded = api::encode_status(canary->status);
    auto decoded = api::decode_status(encoded);
    fuzz::check(decoded.has_value(), "an encoded status does not decode");
    fuzz::check(api::encode_status(*decoded) == encoded, "a status changes in a round trip");
    return 0;
}
