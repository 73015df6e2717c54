#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <regex>
#include <string>

#include "platform/http/server.hpp"

/// serin-loadtester: the HTTP API of flagger-loadtester (flagger-spec-providers.md §14), so that
/// the webhooks of Flagger's examples work unchanged. See docs/loadtester.md.
namespace serin::loadtester {

struct LoadTesterOptions {
    /// The limit of every task (`-timeout`): its process group is killed then.
    std::chrono::milliseconds timeout = std::chrono::hours{1};
    /// `-namespace-regexp`: when set, payloads whose namespace it does not find (an unanchored
    /// search) are answered 403.
    std::optional<std::regex> namespace_regexp;
    /// Tasks running at once, background and blocking together; more are answered 429.
    std::size_t max_running = 32;
    /// The last this many bytes of a task's output are kept (logged, returned).
    std::size_t output_limit = 64 * 1024;
};

/// The load tester's requests and answers are those of platform/http's HttpServer.
using Request = http::ServerRequest;
using Response = http::ServerResponse;

/// The limits of the load tester's HttpServer: bodies of at most kMaxBodyBytes (413 beyond),
/// headers of at most 16 KiB, 256 connections, 30 s of silence closes a connection.
http::ServerOptions server_options();

/// Answers the load tester's requests: gates, task execution, /healthz and /metrics.
///
/// Thread safety: one io_context thread. Background tasks run as coroutines on the executor
/// given; the LoadTester may be destroyed while they run (they share its state), but the
/// io_context must then run until they end (after shutdown(), at once).
class LoadTester {
public:
    LoadTester(boost::asio::any_io_executor executor, LoadTesterOptions options);
    ~LoadTester();
    LoadTester(const LoadTester&) = delete;
    LoadTester& operator=(const LoadTester&) = delete;

    /// Answers one request. Blocking task types complete when their command ends.
    boost::asio::awaitable<Response> handle(Request request);

    /// Refuses new tasks (503) and lets running ones go on.
    void refuse_new_tasks();
    /// Kills every running task's process group and refuses new tasks (503).
    void shutdown();
    /// Tasks running now, background and blocking.
    std::size_t running() const;
    /// The counters in Prometheus's text format.
    std::string metrics() const;

    struct State;

private:
    std::shared_ptr<State> state_;
};

}  // namespace serin::loadtester
