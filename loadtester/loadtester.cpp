#include "loadtester/loadtester.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <map>
#include <set>

#include "loadtester/child.hpp"
#include "loadtester/gates.hpp"
#include "loadtester/payload.hpp"
#include "loadtester/task.hpp"
#include "platform/core/text.hpp"

namespace serin::loadtester {

namespace asio = boost::asio;

struct LoadTester::State {
    State(asio::any_io_executor ex, LoadTesterOptions o)
        : executor(std::move(ex)), options(std::move(o)) {}

    asio::any_io_executor executor;
    LoadTesterOptions options;
    GateStore gates;
    ChildGroups children;
    std::set<std::string> running_keys;  ///< background commands now running
    std::size_t running = 0;              ///< tasks now running, of every type
    bool stopping = false;

    // Counters for /metrics.
    std::uint64_t requests = 0;
    std::map<std::string, std::uint64_t> started;  ///< per task type
    std::map<std::string, std::uint64_t> failed;   ///< per task type
    std::uint64_t skipped = 0;
    std::uint64_t refused = 0;
    std::uint64_t timed_out = 0;
    std::uint64_t rejected = 0;  ///< 400 and 403 answers
};

namespace {

using StatePtr = std::shared_ptr<LoadTester::State>;

Response answer(int status, std::string body = {}) {
    Response r;
    r.status = status;
    r.body = std::move(body);
    return r;
}

/// Text for a log line: valid UTF-8, bounded.
std::string loggable(std::string_view s, std::size_t max = 4096) { return text::clip(s, max); }

bool namespace_allowed(const LoadTester::State& state, const std::string& ns) {
    return !state.options.namespace_regexp ||
           std::regex_search(ns, *state.options.namespace_regexp);
}

/// Reads a body-carrying request's payload: 400 when unreadable, 403 for a namespace that is
/// not served.
Result<Payload> authorized_payload(LoadTester::State& state, const Request& request,
                                   Response& refusal) {
    auto payload = read_payload(request.body);
    if (!payload) {
        ++state.rejected;
        refusal = answer(400, payload.error().message + "\n");
        return payload.error();
    }
    if (!namespace_allowed(state, payload->ns)) {
        ++state.rejected;
        refusal = answer(403, "Forbidden");
        return fail(ErrorKind::kForbidden, "namespace not served");
    }
    return payload;
}

ChildOptions child_options(const LoadTester::State& state, const Task& task) {
    ChildOptions options;
    options.argv = task.argv;
    options.timeout = state.options.timeout;
    options.output_limit = state.options.output_limit;
    return options;
}

void note_failure(LoadTester::State& state, const Task& task, const ChildResult& result) {
    if (!result.ok()) {
        ++state.failed[task.type_name];
    }
    if (result.timed_out) {
        ++state.timed_out;
    }
}

/// A background command: runs it, logs how it ended, and frees its de-duplication key.
asio::awaitable<void> run_background(StatePtr state, Task task, std::string key) {
    spdlog::info("command starting: {} (canary {})", loggable(task.command),
                 loggable(task.canary, 300));
    auto result = co_await run_child(child_options(*state, task), state->children);
    state->running_keys.erase(key);
    --state->running;
    if (!result) {
        ++state->failed[task.type_name];
        spdlog::error("command failed: {}: {}", loggable(task.command), result.error().message);
        co_return;
    }
    note_failure(*state, task, *result);
    const std::string how = result->timed_out
                                ? result->describe() + " (timed out after " +
                                      std::to_string(state->options.timeout.count()) + " ms)"
                                : result->describe();
    if (result->ok()) {
        spdlog::info("command finished: {} (canary {})", loggable(task.command),
                     loggable(task.canary, 300));
    } else {
        spdlog::error("command failed: {} (canary {}): {}", loggable(task.command),
                      loggable(task.canary, 300), how);
    }
    if (task.log_output) {
        spdlog::info("command output: {} (canary {}): {}", loggable(task.command),
                     loggable(task.canary, 300), text::to_valid_utf8(result->output));
    }
}

asio::awaitable<Response> run_blocking(StatePtr state, Task task) {
    spdlog::info("command starting: {} {} (canary {})", task.type_name, loggable(task.command),
                 loggable(task.canary, 300));
    auto result = co_await run_child(child_options(*state, task), state->children);
    --state->running;
    if (!result) {
        ++state->failed[task.type_name];
        co_return answer(500, "command " + task.command + " failed: " + result.error().message);
    }
    note_failure(*state, task, *result);
    std::string output = text::to_valid_utf8(result->output);
    if (!result->ok()) {
        spdlog::error("command failed: {} (canary {}): {}", loggable(task.command),
                      loggable(task.canary, 300), result->describe());
        co_return answer(500, "command " + task.command + " failed: " + output + ": " +
                                  result->describe());
    }
    spdlog::info("command finished: {} (canary {})", loggable(task.command),
                 loggable(task.canary, 300));
    co_return answer(200, task.return_output ? std::move(output) : std::string());
}

asio::awaitable<Response> run_task(StatePtr state, Request request) {
    Response refusal;
    auto payload = authorized_payload(*state, request, refusal);
    if (!payload) {
        co_return refusal;
    }
    auto task = make_task(*payload);
    if (!task) {
        ++state->rejected;
        co_return answer(400, task.error().message + "\n");
    }
    if (state->stopping) {
        co_return answer(503, "shutting down\n");
    }
    std::string key = dedupe_key(task->canary, task->command);
    if (!task->blocking() && state->running_keys.count(key) > 0) {
        // Flagger drops the copy too (its queue skips a command whose twin still runs); the
        // caller gets its 202 either way.
        ++state->skipped;
        spdlog::info("command skipped: {} from {} is already running", loggable(task->command),
                     loggable(task->canary, 300));
        co_return answer(202);
    }
    if (state->running >= state->options.max_running) {
        ++state->refused;
        co_return answer(429, "too many tasks running (" + std::to_string(state->running) +
                                  "); try again later\n");
    }
    ++state->running;
    ++state->started[task->type_name];
    if (task->blocking()) {
        co_return co_await run_blocking(state, std::move(*task));
    }
    state->running_keys.insert(key);
    asio::co_spawn(state->executor, run_background(state, std::move(*task), std::move(key)),
                   [](const std::exception_ptr& e) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               spdlog::error("background command: {}", ex.what());
                           }
                       }
                   });
    co_return answer(202);
}

Response gate(LoadTester::State& state, const Request& request, const std::string& path) {
    Response refusal;
    auto payload = authorized_payload(state, request, refusal);
    if (!payload) {
        return refusal;
    }
    const bool rollback = path.rfind("/rollback/", 0) == 0;
    const std::string key = rollback ? GateStore::rollback_key(payload->canary())
                                     : GateStore::gate_key(payload->canary());
    const std::string verb = path.substr(path.rfind('/') + 1);
    if (verb == "check") {
        const bool open = state.gates.is_open(key);
        spdlog::info("{} gate {} checked: {}", rollback ? "rollback" : "promotion",
                     loggable(key, 600), open ? "open" : "closed");
        return open ? answer(200, "Approved") : answer(403, "Forbidden");
    }
    if (!state.gates.set(key, verb == "open")) {
        return answer(503, "too many gates\n");
    }
    spdlog::info("{} gate {} {}", rollback ? "rollback" : "promotion", loggable(key, 600),
                 verb == "open" ? "opened" : "closed");
    return answer(202);
}

std::string path_of(const std::string& target) {
    const auto query = target.find('?');
    return query == std::string::npos ? target : target.substr(0, query);
}

}  // namespace

http::ServerOptions server_options() {
    http::ServerOptions options;
    options.max_body_bytes = kMaxBodyBytes;
    options.max_header_bytes = 16 * 1024;
    options.max_connections = 256;
    options.idle_timeout = std::chrono::seconds{30};
    options.server_name = "serin-loadtester";
    return options;
}

LoadTester::LoadTester(asio::any_io_executor executor, LoadTesterOptions options)
    : state_(std::make_shared<State>(std::move(executor), std::move(options))) {}

LoadTester::~LoadTester() = default;

void LoadTester::refuse_new_tasks() { state_->stopping = true; }

void LoadTester::shutdown() {
    state_->stopping = true;
    state_->children.kill_all();
}

std::size_t LoadTester::running() const { return state_->running; }

asio::awaitable<Response> LoadTester::handle(Request request) {
    StatePtr state = state_;  // the coroutine keeps the state alive, whatever happens to *this
    ++state->requests;
    const std::string path = path_of(request.target);
    if (path == "/healthz") {
        co_return answer(200, "OK");
    }
    if (path == "/metrics") {
        Response r = answer(200, metrics());
        r.content_type = "text/plain; version=0.0.4";
        co_return r;
    }
    if (path == "/gate/approve") {
        co_return answer(200, "OK");
    }
    if (path == "/gate/halt") {
        co_return answer(403, "Forbidden");
    }
    if (path == "/gate/check" || path == "/gate/open" || path == "/gate/close" ||
        path == "/rollback/check" || path == "/rollback/open" || path == "/rollback/close") {
        co_return gate(*state, request, path);
    }
    co_return co_await run_task(state, std::move(request));
}

std::string LoadTester::metrics() const {
    const State& s = *state_;
    std::string out;
    auto line = [&out](const std::string& name, const std::string& labels, std::uint64_t value) {
        out += name + labels + " " + std::to_string(value) + "\n";
    };
    auto header = [&out](const char* name, const char* type, const char* help) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    header("serin_loadtester_requests_total", "counter", "Requests received.");
    line("serin_loadtester_requests_total", "", s.requests);
    header("serin_loadtester_requests_rejected_total", "counter",
           "Requests answered 400 or 403 (bad payload, unknown type, namespace not served).");
    line("serin_loadtester_requests_rejected_total", "", s.rejected);
    header("serin_loadtester_tasks_started_total", "counter", "Tasks started, by type.");
    for (const auto& [type, n] : s.started) {
        line("serin_loadtester_tasks_started_total", "{type=\"" + type + "\"}", n);
    }
    header("serin_loadtester_tasks_failed_total", "counter",
           "Tasks that failed to start or ended with a non-zero status, by type.");
    for (const auto& [type, n] : s.failed) {
        line("serin_loadtester_tasks_failed_total", "{type=\"" + type + "\"}", n);
    }
    header("serin_loadtester_tasks_skipped_total", "counter",
           "Background commands dropped because the same canary's identical command was running.");
    line("serin_loadtester_tasks_skipped_total", "", s.skipped);
    header("serin_loadtester_tasks_refused_total", "counter",
           "Tasks refused (429) because too many were running.");
    line("serin_loadtester_tasks_refused_total", "", s.refused);
    header("serin_loadtester_tasks_timed_out_total", "counter",
           "Tasks killed at the -timeout.");
    line("serin_loadtester_tasks_timed_out_total", "", s.timed_out);
    header("serin_loadtester_tasks_running", "gauge", "Tasks running now.");
    line("serin_loadtester_tasks_running", "", s.running);
    header("serin_loadtester_gates", "gauge", "Gates remembered.");
    line("serin_loadtester_gates", "", s.gates.size());
    return out;
}

}  // namespace serin::loadtester
