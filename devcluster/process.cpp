#include "devcluster/process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;  // NOLINT: POSIX

namespace serin::devcluster {
namespace {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err) { return std::strerror(err); }

/// A file descriptor closed on scope exit.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        reset(std::exchange(other.fd_, -1));
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

/// Everything the child needs, prepared before fork() so the child only makes
/// async-signal-safe calls (the parent may have other threads).
struct ExecPlan {
    std::string path;
    std::vector<std::string> argv_storage;
    std::vector<std::string> env_storage;
    std::vector<char*> argv;
    std::vector<char*> envp;
    std::string working_dir;
};

ExecPlan make_plan(const std::filesystem::path& path, const ProcessSpec& spec) {
    ExecPlan plan;
    plan.path = path.string();
    plan.argv_storage.push_back(plan.path);
    plan.argv_storage.insert(plan.argv_storage.end(), spec.args.begin(), spec.args.end());
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry{*e};
        auto eq = entry.find('=');
        auto name = entry.substr(0, eq);
        bool overridden = std::any_of(spec.env.begin(), spec.env.end(),
                                      [&](const auto& kv) { return kv.first == name; });
        if (!overridden) {
            plan.env_storage.emplace_back(entry);
        }
    }
    for (const auto& [name, value] : spec.env) {
        plan.env_storage.push_back(name + "=" + value);
    }
    for (auto& a : plan.argv_storage) {
        plan.argv.push_back(a.data());
    }
    plan.argv.push_back(nullptr);
    for (auto& e : plan.env_storage) {
        plan.envp.push_back(e.data());
    }
    plan.envp.push_back(nullptr);
    plan.working_dir = spec.working_dir.string();
    return plan;
}

/// In the child: never returns. Only async-signal-safe calls.
[[noreturn]] void exec_child(const ExecPlan& plan, pid_t parent, int stdin_fd, int out_fd,
                             int error_pipe) {
    // Die with the supervising thread, even when it is SIGKILLed.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) {
        ::_exit(127);
    }
    ::setpgid(0, 0);
    // Signal dispositions set to SIG_IGN survive exec; give the program a clean slate.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            ::sigaction(sig, &dfl, nullptr);
        }
    }
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(stdin_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    if (!plan.working_dir.empty() && ::chdir(plan.working_dir.c_str()) != 0) {
        int err = errno;
        [[maybe_unused]] auto n = ::write(error_pipe, &err, sizeof err);
        ::_exit(127);
    }
    // Nothing else is inherited: descriptors opened without O_CLOEXEC elsewhere in the
    // process (another thread's pipe, a ready-pipe of the daemon) must not leak into servers.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    ::execve(plan.path.c_str(), plan.argv.data(), plan.envp.data());
    int err = errno;
    [[maybe_unused]] auto n = ::write(error_pipe, &err, sizeof err);
    ::_exit(127);
}

struct Spawned {
    pid_t pid;
    int pidfd;
};

Result<Spawned> spawn_impl(const ProcessSpec& spec, int out_fd) {
    auto path = find_executable(spec.executable.string());
    if (!path) {
        return fail(ErrorKind::kInternal,
                    spec.name + ": executable not found: " + spec.executable.string());
    }
    ExecPlan plan = make_plan(*path, spec);
    Fd devnull{::open("/dev/null", O_RDONLY | O_CLOEXEC)};
    if (devnull.get() < 0) {
        return fail(ErrorKind::kInternal, "open /dev/null: " + errno_text(errno));
    }
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return fail(ErrorKind::kInternal, "pipe2: " + errno_text(errno));
    }
    Fd error_read{pipe_fds[0]};
    Fd error_write{pipe_fds[1]};
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
        return fail(ErrorKind::kInternal, spec.name + ": fork: " + errno_text(errno));
    }
    if (pid == 0) {
        exec_child(plan, parent, devnull.get(), out_fd, error_write.get());
    }
    // Also set the group from here, so a kill(-pid) right after spawn cannot miss.
    ::setpgid(pid, pid);
    error_write.reset();
    int child_errno = 0;
    ssize_t n = 0;
    do {
        n = ::read(error_read.get(), &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof child_errno)) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        return fail(ErrorKind::kInternal,
                    spec.name + ": cannot execute " + plan.path + ": " + errno_text(child_errno));
    }
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd >= 0) {
        ::fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    }
    return Spawned{pid, pidfd};
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
               ::strsignal(WTERMSIG(status)) + ")";
    }
    return "ended with wait status " + std::to_string(status);
}

}  // namespace

Result<Process> Process::spawn(ProcessSpec spec) {
    Fd out;
    if (spec.log_file.empty()) {
        out.reset(::open("/dev/null", O_WRONLY | O_CLOEXEC));
    } else {
        std::error_code ec;
        std::filesystem::create_directories(spec.log_file.parent_path(), ec);
        out.reset(::open(spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    }
    if (out.get() < 0) {
        return fail(ErrorKind::kInternal, spec.name + ": cannot open log " +
                                              spec.log_file.string() + ": " + errno_text(errno));
    }
    auto spawned = spawn_impl(spec, out.get());
    if (!spawned) {
        return spawned.error();
    }
    return Process(std::move(spec), spawned->pid, spawned->pidfd);
}

Process::Process(ProcessSpec spec, pid_t pid, int pidfd)
    : spec_(std::move(spec)), pid_(pid), pidfd_(pidfd) {}

Process::Process(Process&& other) noexcept
    : spec_(std::move(other.spec_)),
      pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      wait_status_(std::exchange(other.wait_status_, std::nullopt)) {}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        stop();
        close_pidfd();
        spec_ = std::move(other.spec_);
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::exchange(other.pidfd_, -1);
        wait_status_ = std::exchange(other.wait_status_, std::nullopt);
    }
    return *this;
}

Process::~Process() {
    stop();
    close_pidfd();
}

void Process::close_pidfd() {
    if (pidfd_ >= 0) {
        ::close(pidfd_);
        pidfd_ = -1;
    }
}

void Process::reap(int status) {
    wait_status_ = status;
    close_pidfd();
}

bool Process::running() {
    if (pid_ <= 0 || wait_status_) {
        return false;
    }
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
        reap(status);
        return false;
    }
    if (r < 0 && errno == ECHILD) {
        reap(0);
        return false;
    }
    return true;
}

bool Process::is_running() const {
    if (pid_ <= 0 || wait_status_) {
        return false;
    }
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
        return false;
    }
    return info.si_pid != pid_;
}

bool Process::wait_for_exit(std::chrono::milliseconds timeout) {
    if (pid_ <= 0 || wait_status_) {
        return true;
    }
    auto deadline = Clock::now() + timeout;
    while (true) {
        if (!running()) {
            return true;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return false;
        }
        if (pidfd_ >= 0) {
            // The pidfd becomes readable when the process exits: an event, not a poll loop.
            pollfd p{pidfd_, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000)));
        } else {
            // Old kernels without pidfd_open: check again shortly.
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds{10}));
        }
    }
}

void Process::stop(std::chrono::milliseconds grace) {
    if (!running()) {
        return;
    }
    if (::kill(-pid_, SIGTERM) != 0) {
        ::kill(pid_, SIGTERM);
    }
    wait_unreaped(grace);
    // Whatever the program forked into its group goes with it. The leader is at most a zombie
    // here (not yet reaped), so the group id cannot have been reused: this reaches only ours.
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    wait_for_exit(std::chrono::seconds{30});
}

void Process::kill() {
    if (!running()) {
        return;
    }
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    wait_for_exit(std::chrono::seconds{30});
}

bool Process::wait_unreaped(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (true) {
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
            info.si_pid == pid_) {
            return true;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return false;
        }
        if (pidfd_ >= 0) {
            pollfd p{pidfd_, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000)));
        } else {
            std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds{10}));
        }
    }
}

std::string Process::describe_exit() const {
    if (pid_ <= 0) {
        return "not started";
    }
    if (!wait_status_) {
        return "running";
    }
    return describe_status(*wait_status_);
}

std::string Process::log_tail(std::size_t lines) const { return tail_file(spec_.log_file, lines); }

Result<CommandResult> run_command(const std::filesystem::path& executable,
                                  const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout,
                                  const std::vector<std::pair<std::string, std::string>>& env) {
    ProcessSpec spec;
    spec.name = executable.filename().string();
    spec.executable = executable;
    spec.args = args;
    spec.env = env;
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
        return fail(ErrorKind::kInternal, "pipe2: " + errno_text(errno));
    }
    Fd out_read{pipe_fds[0]};
    Fd out_write{pipe_fds[1]};
    auto spawned = spawn_impl(spec, out_write.get());
    if (!spawned) {
        return spawned.error();
    }
    out_write.reset();
    Process process(std::move(spec), spawned->pid, spawned->pidfd);
    auto deadline = Clock::now() + timeout;
    CommandResult result;
    char buffer[4096];
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            process.stop(std::chrono::milliseconds{0});
            return fail(ErrorKind::kTransient, executable.string() + " timed out after " +
                                                   std::to_string(timeout.count()) + " ms");
        }
        pollfd p{out_read.get(), POLLIN, 0};
        int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            continue;
        }
        ssize_t n = ::read(out_read.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;  // EOF: the command closed its output
        }
        result.output.append(buffer, static_cast<std::size_t>(n));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!process.wait_for_exit(std::max(left, std::chrono::milliseconds{1}))) {
        process.stop(std::chrono::milliseconds{0});
        return fail(ErrorKind::kTransient, executable.string() + " did not exit in time");
    }
    std::string how = process.describe_exit();
    const std::string prefix = "exited with status ";
    result.exit_code = how.rfind(prefix, 0) == 0 ? std::stoi(how.substr(prefix.size())) : -1;
    return result;
}

std::optional<std::filesystem::path> find_executable(const std::string& name) {
    if (name.empty()) {
        return std::nullopt;
    }
    if (name.find('/') != std::string::npos) {
        if (::access(name.c_str(), X_OK) == 0) {
            return std::filesystem::path(name);
        }
        return std::nullopt;
    }
    const char* path_env = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe)
    std::string path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
    std::stringstream dirs(path);
    std::string dir;
    while (std::getline(dirs, dir, ':')) {
        if (dir.empty()) {
            continue;
        }
        auto candidate = std::filesystem::path(dir) / name;
        if (::access(candidate.c_str(), X_OK) == 0) {
            return candidate;
        }
    }
    return std::nullopt;
}

Result<std::uint16_t> pick_free_port() {
    Fd sock{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (sock.get() < 0) {
        return fail(ErrorKind::kInternal, "socket: " + errno_text(errno));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        return fail(ErrorKind::kInternal, "bind 127.0.0.1:0: " + errno_text(errno));
    }
    socklen_t len = sizeof addr;
    if (::getsockname(sock.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        return fail(ErrorKind::kInternal, "getsockname: " + errno_text(errno));
    }
    return ntohs(addr.sin_port);
}

bool port_is_free(std::uint16_t port) {
    Fd sock{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (sock.get() < 0) {
        return false;
    }
    int one = 1;
    ::setsockopt(sock.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        return false;
    }
    return ::listen(sock.get(), 1) == 0;
}

bool pid_alive(pid_t pid) {
    if (pid <= 0) {
        return false;
    }
    if (::kill(pid, 0) != 0 && errno != EPERM) {
        return false;
    }
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string content;
    std::getline(stat, content);
    // "pid (comm) S ...": the state follows the last ')'.
    auto paren = content.rfind(')');
    if (paren == std::string::npos || paren + 2 >= content.size()) {
        return true;
    }
    char state = content[paren + 2];
    return state != 'Z' && state != 'X';
}

std::string tail_file(const std::filesystem::path& path, std::size_t lines) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return {};
    }
    constexpr std::streamoff kMaxRead = 64 * 1024;
    in.seekg(0, std::ios::end);
    std::streamoff size = in.tellg();
    std::streamoff start = std::max<std::streamoff>(0, size - kMaxRead);
    in.seekg(start);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!text.empty() && text.back() == '\n') {
        text.pop_back();
    }
    std::size_t pos = text.size();
    std::size_t found = 0;
    while (pos > 0 && found < lines) {
        auto nl = text.rfind('\n', pos - 1);
        if (nl == std::string::npos) {
            pos = 0;
            break;
        }
        pos = nl;
        ++found;
    }
    if (found == lines && pos < text.size() && text[pos] == '\n') {
        ++pos;
    }
    return text.substr(pos);
}

}  // namespace serin::devcluster
