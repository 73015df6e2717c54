#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "platform/core/result.hpp"

namespace serin::devcluster {

/// What to run and where its output goes.
struct ProcessSpec {
    std::string name;                  ///< for messages: "etcd", "kube-apiserver"
    std::filesystem::path executable;  ///< an absolute path, or a name looked up in $PATH
    std::vector<std::string> args;     ///< without argv[0]
    std::vector<std::pair<std::string, std::string>> env;  ///< added to (or replacing in) ours
    std::filesystem::path log_file;     ///< stdout and stderr are appended here; empty: /dev/null
    std::filesystem::path working_dir;  ///< empty: ours
};

/// The output and exit code of a short command run to completion.
struct CommandResult {
    int exit_code = -1;  ///< -1 when killed by a signal
    std::string output;  ///< stdout and stderr together
};

/// A supervised child process.
///
/// The child gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the thread that started it even when
/// the supervisor is killed outright, and its own process group, so stop() reaches anything it
/// forks. Signal dispositions and the signal mask are reset to defaults in the child, and no file
/// descriptor but stdin (/dev/null), stdout and stderr (the log) is inherited.
///
/// Thread safety: a Process is used by one thread. Because of PDEATHSIG, the thread that spawns a
/// process should live as long as the process is meant to.
class Process {
public:
    /// Starts the program; fails (kInternal) when it cannot be executed, with the reason.
    static Result<Process> spawn(ProcessSpec spec);

    Process(Process&& other) noexcept;
    Process& operator=(Process&& other) noexcept;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    /// Stops the process (see stop()) if it still runs.
    ~Process();

    pid_t pid() const { return pid_; }
    const ProcessSpec& spec() const { return spec_; }

    /// Whether the process still runs; reaps it when it has exited.
    bool running();
    /// Whether the process still runs, without reaping it (for const observers).
    bool is_running() const;
    /// Waits until the process exits or `timeout` passes; true when it has exited (and is reaped).
    bool wait_for_exit(std::chrono::milliseconds timeout);
    /// SIGTERM to the process group, up to `grace` for it to exit, then SIGKILL; always reaps.
    /// Idempotent.
    void stop(std::chrono::milliseconds grace = std::chrono::seconds{10});
    /// SIGKILL to the process group at once; reaps. Idempotent.
    void kill();
    /// "exited with status 1", "killed by signal 9", or "running".
    std::string describe_exit() const;
    /// The last `lines` lines of the log file.
    std::string log_tail(std::size_t lines = 20) const;

private:
    friend Result<CommandResult> run_command(
        const std::filesystem::path& executable, const std::vector<std::string>& args,
        std::chrono::milliseconds timeout,
        const std::vector<std::pair<std::string, std::string>>& env);
    Process(ProcessSpec spec, pid_t pid, int pidfd);
    void reap(int status);
    /// Waits for the exit without reaping, so the process group id stays reserved.
    bool wait_unreaped(std::chrono::milliseconds timeout);
    void close_pidfd();

    ProcessSpec spec_;
    pid_t pid_ = -1;
    int pidfd_ = -1;                  ///< readable once the process has exited
    std::optional<int> wait_status_;  ///< set once reaped
};

/// Runs a command to completion, capturing its output; kills it (kTransient) after `timeout`.
Result<CommandResult> run_command(const std::filesystem::path& executable,
                                  const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout,
                                  const std::vector<std::pair<std::string, std::string>>& env = {});

/// The executable's full path: `name` itself when it contains a '/', else the first match in $PATH.
std::optional<std::filesystem::path> find_executable(const std::string& name);

/// A loopback TCP port that nothing listens on at the time of the call (bind to port 0 and close).
/// Another program may take it before we use it: callers retry on "address already in use".
Result<std::uint16_t> pick_free_port();

/// Whether a listening socket can be bound to 127.0.0.1:`port` now (SO_REUSEADDR, as servers do,
/// so TIME_WAIT remnants of closed connections do not count).
bool port_is_free(std::uint16_t port);

/// Whether a process with that pid exists and is not a zombie.
bool pid_alive(pid_t pid);

/// The last `lines` lines of a text file; "" when it cannot be read.
std::string tail_file(const std::filesystem::path& path, std::size_t lines);

}  // namespace serin::devcluster
