#include "platform/core/backoff.hpp"

#include <algorithm>

namespace serin {

std::chrono::milliseconds Backoff::next() {
    auto base = current_;
    current_ = std::min(max_, current_ * 2);
    auto half = base.count() / 2;
    std::uniform_int_distribution<std::int64_t> dist(half, std::max<std::int64_t>(half, base.count()));
    return std::chrono::milliseconds{dist(rng_)};
}

}  // namespace serin
