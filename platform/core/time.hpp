#pragma once

#include <chrono>

/// Serin's time types, without Asio: pure code names instants with these and takes them as
/// arguments; only I/O code reads a Clock (platform/core/clock.hpp).
namespace serin {

using SteadyTime = std::chrono::steady_clock::time_point;
using SystemTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::steady_clock::duration;

}  // namespace serin
