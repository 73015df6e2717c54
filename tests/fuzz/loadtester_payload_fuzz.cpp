// A webhook payload as serin-loadtester receives it (anyone who reaches its port sends one).
#include "loadtester/payload.hpp"
#include "loadtester/task.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto payload = serin::loadtester::read_payload(serin::fuzz::as_text(data, size));
    if (payload) {
        (void)serin::loadtester::make_task(*payload);
    }
    return 0;
}
