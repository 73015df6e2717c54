// One line of a watch stream from the API server.
#include "platform/kube/rest_client.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto event = serin::kube::decode_watch_frame(serin::fuzz::as_text(data, size));
    if (!event) {
        serin::fuzz::check(!event.error().message.empty(), "an error without a message");
    }
    return 0;
}
