#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace serin {

/// Exponential backoff with full jitter in [base/2, base], capped.
/// Not thread-safe; each retry loop owns one. The RNG is seeded by the caller so tests repeat.
class Backoff {
public:
    Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
            std::uint64_t seed = std::random_device{}())
        : initial_(initial), max_(max), current_(initial), rng_(seed) {}

    /// The delay before the next attempt; each call doubles the base up to max.
    std::chrono::milliseconds next();
    /// After a success: start again from the initial delay.
    void reset() { current_ = initial_; }

private:
    std::chrono::milliseconds initial_;
    std::chrono::milliseconds max_;
    std::chrono::milliseconds current_;
    std::mt19937_64 rng_;
};

}  // namespace serin
