#include "loadtester/child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>

extern char** environ;  // NOLINT: POSIX declares it nowhere else

namespace serin::loadtester {

namespace asio = boost::asio;
using asio::experimental::awaitable_operators::operator&&;
using asio::experimental::awaitable_operators::operator||;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

std::string errno_text(int error) { return std::strerror(error); }

/// posix_spawn's attributes and file actions, released however spawn() returns.
struct SpawnSetup {
    posix_spawnattr_t attr{};
    posix_spawn_file_actions_t actions{};
    SpawnSetup() {
        posix_spawnattr_init(&attr);
        posix_spawn_file_actions_init(&actions);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

/// Starts argv with its output into `write_fd`; returns the pid or the spawn's errno.
Result<pid_t> spawn(const std::vector<std::string>& argv, int write_fd) {
    SpawnSetup setup;
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    // Its own process group (so a timeout reaches its children), default signal handling and no
    // blocked signals (the parent blocks or handles SIGTERM and SIGINT).
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&setup.attr, 0);
    posix_spawnattr_setsigmask(&setup.attr, &none);
    posix_spawnattr_setsigdefault(&setup.attr, &all);
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&setup.actions, write_fd, 1);
    posix_spawn_file_actions_adddup2(&setup.actions, write_fd, 2);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));  // NOLINT: the exec interface
    }
    args.push_back(nullptr);
    pid_t pid = -1;
    const int error =
        posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
    if (error == ENOENT || error == EACCES) {
        return fail(ErrorKind::kNotFound,
                    argv[0] + " is not installed (not an executable in $PATH)");
    }
    if (error != 0) {
        return fail(ErrorKind::kInternal, "starting " + argv[0] + ": " + errno_text(error));
    }
    return pid;
}

/// Appends to a tail that keeps only the last `limit` bytes.
void keep_tail(std::string& tail, const char* data, std::size_t n, std::size_t limit) {
    tail.append(data, n);
    if (tail.size() > limit) {
        tail.erase(0, tail.size() - limit);
    }
}

asio::awaitable<void> read_all(asio::posix::stream_descriptor& pipe, ChildResult& result,
                               std::size_t limit) {
    std::array<char, 16384> buffer{};
    for (;;) {
        auto [error, n] = co_await pipe.async_read_some(asio::buffer(buffer), kUse);
        if (n > 0) {
            result.output_bytes += n;
            keep_tail(result.output, buffer.data(), n, limit);
        }
        if (error) {
            co_return;  // EOF, or cancelled by the timeout
        }
    }
}

asio::awaitable<void> wait_exit(asio::posix::stream_descriptor& pidfd) {
    auto [error] = co_await pidfd.async_wait(asio::posix::stream_descriptor::wait_read, kUse);
    (void)error;
}

/// Waits for the child's exit, then kills what is left of its group (still reserved: the child
/// is not reaped yet), so that nothing of the task keeps the output pipe open.
asio::awaitable<void> wait_exit_then_kill(asio::posix::stream_descriptor& pidfd, pid_t pgid) {
    co_await wait_exit(pidfd);
    ::kill(-pgid, SIGKILL);
}

asio::awaitable<void> expire(asio::steady_timer& timer) {
    auto [error] = co_await timer.async_wait(kUse);
    (void)error;
}

}  // namespace

void ChildGroups::kill_all() const {
    for (pid_t pgid : groups_) {
        ::kill(-pgid, SIGKILL);
    }
}

std::string ChildResult::describe() const {
    if (signal != 0) {
        return signal == SIGKILL ? "signal: killed" : "signal: " + std::string(strsignal(signal));
    }
    return "exit status " + std::to_string(exit_code);
}

asio::awaitable<Result<ChildResult>> run_child(ChildOptions options, ChildGroups& groups) {
    auto executor = co_await asio::this_coro::executor;
    std::array<int, 2> fds{-1, -1};
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) {
        co_return fail(ErrorKind::kInternal, "pipe: " + errno_text(errno));
    }
    asio::posix::stream_descriptor pipe(executor, fds[0]);
    auto pid = spawn(options.argv, fds[1]);
    ::close(fds[1]);  // the child holds its own copy
    if (!pid) {
        co_return pid.error();
    }
    groups.add(*pid);
    const int raw_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0));
    ChildResult result;
    if (raw_pidfd < 0) {
        // Only without pidfd support (Linux < 5.3): kill it rather than leave it unwatched.
        ::kill(-*pid, SIGKILL);
        int status = 0;
        ::waitpid(*pid, &status, 0);
        groups.remove(*pid);
        co_return fail(ErrorKind::kInternal, "pidfd_open: " + errno_text(errno));
    }
    asio::posix::stream_descriptor pidfd(executor, raw_pidfd);
    asio::steady_timer timer(executor, options.timeout);
    auto outcome = co_await ((read_all(pipe, result, options.output_limit) &&
                              wait_exit_then_kill(pidfd, *pid)) ||
                             expire(timer));
    if (outcome.index() == 1) {
        // Timed out: kill the whole group and wait for the child (unreaped until then, so the
        // group id cannot have been reused).
        result.timed_out = true;
        ::kill(-*pid, SIGKILL);
        co_await wait_exit(pidfd);
    }
    int status = 0;
    ::waitpid(*pid, &status, 0);  // it has exited: does not block
    groups.remove(*pid);
    if (WIFEXITED(status)) {
        result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        result.signal = WTERMSIG(status);
    }
    co_return result;
}

}  // namespace serin::loadtester
