#pragma once

// What the DevCluster's source files share: DevCluster::Impl (the io_context, the admin client and
// the child processes), running a coroutine to completion, and the helpers for files, logs and
// start-up failures. Internal to serin_devcluster: dev_cluster.cpp defines the helpers.

#include "devcluster/dev_cluster.hpp"
#include "devcluster/process.hpp"
#include "platform/core/clock.hpp"
#include "platform/http/http_client.hpp"
#include "platform/kube/rest_client.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#ifndef SERIN_SOURCE_DIR
#error "SERIN_SOURCE_DIR must name the repository root"
#endif
#ifndef SERIN_PODSIM_PATH
#define SERIN_PODSIM_PATH ""
#endif

namespace serin::devcluster {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

struct DevCluster::Impl {
    asio::io_context io;
    SystemClock clock;
    // Declared after io: destroyed first, while the io_context still exists.
    std::unique_ptr<kube::RestKubeClient> client;
    http::HttpClientPtr plain_http;
    std::optional<Process> etcd;
    std::optional<Process> apiserver;
    std::optional<Process> controller_manager;
    std::optional<Process> podsim;
    std::optional<Process> meshsim;
    std::optional<Process> prometheus;

    ~Impl() {
        client.reset();
        plain_http.reset();
    }
};

namespace detail {

inline constexpr int kPortAttempts = 4;
inline constexpr const char* kFieldManager = "serin-devcluster";

/// Runs `task` on `io` until it completes; cancels it at `deadline` (it then gets a few seconds
/// to wind down) and reports a timeout naming `what`.
template <class T>
Result<T> run_sync(asio::io_context& io, asio::awaitable<Result<T>> task,
                   SteadyClock::time_point deadline, const std::string& what) {
    std::optional<Result<T>> out;
    std::exception_ptr thrown;
    bool done = false;
    asio::cancellation_signal cancel;
    asio::co_spawn(
        io, std::move(task),
        asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, Result<T> r) {
            done = true;
            thrown = e;
            if (!e) {
                out.emplace(std::move(r));
            }
        }));
    io.restart();
    while (!done) {
        if (io.run_one_until(deadline) == 0 && !done) {
            if (SteadyClock::now() < deadline && io.stopped()) {
                io.restart();
                continue;
            }
            cancel.emit(asio::cancellation_type::terminal);
            auto grace = SteadyClock::now() + std::chrono::seconds{5};
            while (!done && io.run_one_until(grace) > 0) {
            }
            return fail(ErrorKind::kTransient, what + ": timed out");
        }
    }
    if (thrown) {
        try {
            std::rethrow_exception(thrown);
        } catch (const std::exception& e) {
            return fail(ErrorKind::kInternal, what + ": " + e.what());
        }
    }
    return std::move(*out);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d);

Result<void> write_file(const fs::path& path, const std::string& content,
                        fs::perms perms = fs::perms::owner_read | fs::perms::owner_write);

/// Appends a line that separates this start of a component from earlier ones in its log.
void mark_log(const fs::path& log, const std::string& what);

/// Whether the component's latest start (after the last marker) failed to bind its port.
bool lost_port_race(const Process& process);

std::string describe_failure(const std::string& component, const std::string& what,
                             const Process* process);

/// Polls `url` until it answers 200 (with `body_part` in the body, when given) while `process`
/// runs; false when the process exits first.
asio::awaitable<Result<bool>> wait_http_ok(Process& process, http::HttpClient& client,
                                           std::string url, std::string body_part,
                                           SteadyClock::time_point until);

}  // namespace detail

}  // namespace serin::devcluster
