#pragma once

#include <boost/asio/io_context.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace serin::chaos {

/// A loopback TCP proxy to 127.0.0.1:`target_port` that can slow its traffic down: while a
/// latency is set, every chunk read from either side waits that long before it is written on.
/// Bytes pass through untouched, so TLS works end to end. Connections to a target that went away
/// are closed, like a real network's.
///
/// Thread safety: runs on `io` (its own thread); set_latency() and port() may be called from any
/// thread.
class LatencyProxy {
public:
    LatencyProxy(boost::asio::io_context& io, std::uint16_t target_port);
    ~LatencyProxy();
    LatencyProxy(const LatencyProxy&) = delete;
    LatencyProxy& operator=(const LatencyProxy&) = delete;

    std::uint16_t port() const;
    void set_latency(std::chrono::milliseconds latency);
    std::chrono::milliseconds latency() const;
    std::uint64_t connections() const;

    struct State;

private:
    std::shared_ptr<State> state_;
};

}  // namespace serin::chaos
