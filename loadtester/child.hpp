#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "platform/core/result.hpp"

/// Child processes run without blocking the io_context: posix_spawn into a process group of
/// their own, output read from a pipe and the exit seen through a pidfd, both asynchronously.
namespace serin::loadtester {

/// The process groups of the children now running, so that shutdown can kill them all.
///
/// Thread safety: the io_context's thread.
class ChildGroups {
public:
    void add(pid_t pgid) { groups_.insert(pgid); }
    void remove(pid_t pgid) { groups_.erase(pgid); }
    std::size_t size() const { return groups_.size(); }
    /// SIGKILL to every group; their run_child calls then finish.
    void kill_all() const;

private:
    std::set<pid_t> groups_;
};

struct ChildOptions {
    std::vector<std::string> argv;  ///< argv[0] is looked up in $PATH
    std::chrono::milliseconds timeout = std::chrono::hours{1};
    std::size_t output_limit = 64 * 1024;  ///< only the last this many bytes are kept
};

struct ChildResult {
    int exit_code = -1;    ///< -1 when killed by a signal
    int signal = 0;        ///< the signal that ended it, else 0
    bool timed_out = false;
    std::string output;        ///< stdout and stderr together, the last output_limit bytes
    std::size_t output_bytes = 0;  ///< everything it wrote

    bool ok() const { return exit_code == 0; }
    /// As Go's ProcessState describes it: "exit status 1", "signal: killed".
    std::string describe() const;
};

/// Runs a child in a process group of its own, stdin /dev/null, stdout and stderr into one pipe.
/// At `timeout` the whole group is SIGKILLed; when the child itself ends, what is left of its
/// group is killed too (a task's background processes end with it). The output is read until the
/// child has exited and the pipe is closed (or the timeout). Takes its arguments by value.
/// Errors: kNotFound when argv[0] is not an executable in $PATH, kInternal for other spawn
/// failures.
boost::asio::awaitable<Result<ChildResult>> run_child(ChildOptions options, ChildGroups& groups);

}  // namespace serin::loadtester
