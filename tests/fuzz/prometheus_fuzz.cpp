// A metrics server's answer (whoever runs the server a Canary names controls it).
#include <cmath>

#include "metrics/prometheus/prometheus_result.hpp"
#include "tests/fuzz/fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace serin;
    const auto body = fuzz::as_text(data, size);
    if (auto value = metrics::parse_query_response(body); !value) {
        fuzz::check(!value.error().message.empty(), "a query error without a message");
    }
    if (auto samples = metrics::parse_range_response(body)) {
        for (double v : *samples) {
            fuzz::check(std::isfinite(v), "a range sample that is NaN or infinite");
        }
    }
    return 0;
}
