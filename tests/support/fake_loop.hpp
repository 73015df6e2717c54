#pragma once

// The loop most component tests on the fake API server share: one io_context thread, a
// ManualClock, the fake and one client on it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "platform/core/clock.hpp"
#include "tests/support/fake_kube_client.hpp"

namespace serin::testing {

/// A single-threaded io_context, a ManualClock (declared first, so it outlives the io_context's
/// coroutines), a fake API server and one client on it.
struct FakeLoop {
    ManualClock clock;
    boost::asio::io_context io;
    FakeApiServer api{clock};
    std::unique_ptr<FakeKubeClient> client = api.client();

    /// Runs every handler that is ready, until none is.
    void run_until_idle() {
        io.restart();
        while (io.poll() > 0) {
        }
    }

    /// Runs `task` to completion (it must not wait on anything but the fake and the clock).
    template <class T>
    T run(boost::asio::awaitable<T> task) {
        std::optional<T> out;
        boost::asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
            if (e) {
                std::rethrow_exception(e);
            }
            out.emplace(std::move(value));
        });
        run_until_idle();
        REQUIRE(out.has_value());
        return std::move(*out);
    }
};

}  // namespace serin::testing
