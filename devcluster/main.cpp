// serin-devcluster: starts and stops the local control plane for the demo and the tests.
//
//   serin-devcluster up --dir D [--foreground] [--no-podsim] [--ttl 2h]
//   serin-devcluster down --dir D
//   serin-devcluster status --dir D
//
// `up` stops whatever cluster a previous run left in D, then starts a new one. Without
// --foreground it returns once the cluster is ready, leaving a supervisor process (its pid in
// D/supervisor.pid, its log in D/supervisor.log) that keeps the cluster until `down`, SIGTERM,
// SIGINT or the --ttl runs out; the components die with the supervisor even if it is killed.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "devcluster/dev_cluster.hpp"
#include "devcluster/process.hpp"
#include "platform/core/log.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/rest_client.hpp"

namespace {

namespace fs = std::filesystem;
using serin::devcluster::DevCluster;
using serin::devcluster::DevClusterOptions;
using SteadyClock = std::chrono::steady_clock;

constexpr const char* kPidFile = "supervisor.pid";
constexpr const char* kSupervisorLog = "supervisor.log";

struct UpArgs {
    fs::path dir;
    bool foreground = false;
    bool no_podsim = false;
    std::string ttl = "2h";
    fs::path k8s_bin;
    int timeout_seconds = 60;
    std::string log_level = "info";
};

/// "2h", "90m", "30s" or plain seconds; 0 means no limit.
std::optional<std::chrono::seconds> parse_duration(const std::string& text) {
    if (text.empty()) {
        return std::nullopt;
    }
    std::size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    std::string unit = text.substr(used);
    long long scale = 1;
    if (unit == "h") {
        scale = 3600;
    } else if (unit == "m") {
        scale = 60;
    } else if (unit != "s" && !unit.empty()) {
        return std::nullopt;
    }
    if (value < 0) {
        return std::nullopt;
    }
    return std::chrono::seconds{value * scale};
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string cmdline_of(pid_t pid) {
    std::string raw = read_file("/proc/" + std::to_string(pid) + "/cmdline");
    std::replace(raw.begin(), raw.end(), '\0', ' ');
    return raw;
}

/// The pid in D/supervisor.pid if that process is alive and is a serin-devcluster supervisor.
std::optional<pid_t> live_supervisor(const fs::path& dir) {
    std::string text = read_file(dir / kPidFile);
    if (text.empty()) {
        return std::nullopt;
    }
    pid_t pid = 0;
    try {
        pid = static_cast<pid_t>(std::stol(text));
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (!serin::devcluster::pid_alive(pid) ||
        cmdline_of(pid).find("serin-devcluster") == std::string::npos) {
        return std::nullopt;
    }
    return pid;
}

/// Removes D/supervisor.pid if it names `pid` (a newer supervisor may own it by now).
void remove_pid_file_of(const fs::path& dir, pid_t pid) {
    std::string text = read_file(dir / kPidFile);
    try {
        if (!text.empty() && static_cast<pid_t>(std::stol(text)) != pid) {
            return;
        }
    } catch (const std::exception&) {
    }
    std::error_code ec;
    fs::remove(dir / kPidFile, ec);
}

/// Waits for a process that is not our child to end: a pidfd becomes readable when it exits.
bool wait_gone(pid_t pid, SteadyClock::time_point deadline) {
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    while (serin::devcluster::pid_alive(pid)) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
        if (left.count() <= 0) {
            if (pidfd >= 0) {
                ::close(pidfd);
            }
            return false;
        }
        if (pidfd >= 0) {
            pollfd p{pidfd, POLLIN, 0};
            // Readable at exit; a zombie (exited, not yet reaped by its parent) counts as gone
            // through pid_alive, checked again at the top of the loop.
            ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds{20});
        }
    }
    if (pidfd >= 0) {
        ::close(pidfd);
    }
    return true;
}

/// Stops the cluster recorded in `dir`, if any: the supervisor, then any component still alive,
/// then waits for the ports to be free. Returns a message for the user; false when something
/// could not be stopped.
bool stop_cluster_in(const fs::path& dir, std::chrono::seconds timeout, std::string& message) {
    auto deadline = SteadyClock::now() + timeout;
    bool found = false;
    if (auto pid = live_supervisor(dir)) {
        found = true;
        ::kill(*pid, SIGTERM);
        if (!wait_gone(*pid, deadline)) {
            // Its components die with it (PR_SET_PDEATHSIG).
            ::kill(*pid, SIGKILL);
            wait_gone(*pid, SteadyClock::now() + std::chrono::seconds{10});
        }
        remove_pid_file_of(dir, *pid);
    } else {
        std::error_code ec;
        fs::remove(dir / kPidFile, ec);  // stale, if there is one: its process is gone
    }
    nlohmann::json state = nlohmann::json::parse(read_file(dir / "state.json"), nullptr, false);
    bool ok = true;
    if (state.is_object()) {
        for (const auto& c : state.value("components", nlohmann::json::array())) {
            pid_t pid = c.value("pid", 0);
            std::string name = c.value("name", "");
            if (pid <= 0 || !serin::devcluster::pid_alive(pid)) {
                continue;
            }
            // Only if it still is that component (pids get reused) and runs from this folder.
            std::string cmd = cmdline_of(pid);
            if (cmd.find(dir.string()) == std::string::npos) {
                continue;
            }
            found = true;
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            if (!wait_gone(pid, SteadyClock::now() + std::chrono::seconds{10})) {
                message += name + " (pid " + std::to_string(pid) + ") does not go away. ";
                ok = false;
            }
        }
        for (const auto& port : state.value("ports", nlohmann::json::array())) {
            auto p = port.get<std::uint16_t>();
            if (p == 0) {
                continue;
            }
            while (!serin::devcluster::port_is_free(p)) {
                if (SteadyClock::now() >= deadline) {
                    message += "port " + std::to_string(p) + " is still in use. ";
                    ok = false;
                    break;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds{50});
            }
        }
    }
    if (message.empty()) {
        message = found ? "devcluster in " + dir.string() + " stopped"
                        : "no devcluster running in " + dir.string();
    }
    return ok;
}

DevClusterOptions cluster_options(const UpArgs& args) {
    DevClusterOptions options;
    options.work_dir = args.dir;
    options.k8s_bin_dir = args.k8s_bin;
    options.start_podsim = !args.no_podsim;
    options.start_timeout = std::chrono::seconds{args.timeout_seconds};
    return options;
}

/// Blocks until SIGTERM, SIGINT or SIGHUP arrives (they must be blocked already), `ttl` passes
/// (0: never) or `give_up()`, asked every second, returns true.
void wait_for_stop(std::chrono::seconds ttl, const std::function<bool()>& give_up) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    const auto deadline =
        ttl.count() == 0 ? SteadyClock::time_point::max() : SteadyClock::now() + ttl;
    while (true) {
        auto now = SteadyClock::now();
        if (now >= deadline) {
            spdlog::info("devcluster: ttl of {} s is over, stopping", ttl.count());
            return;
        }
        auto wait = std::min<std::chrono::nanoseconds>(std::chrono::seconds{1}, deadline - now);
        timespec ts{static_cast<time_t>(wait.count() / 1'000'000'000),
                    static_cast<long>(wait.count() % 1'000'000'000)};
        int sig = ::sigtimedwait(&set, nullptr, &ts);
        if (sig > 0) {
            spdlog::info("devcluster: got signal {}, stopping", sig);
            return;
        }
        if (give_up && give_up()) {
            return;
        }
    }
}

/// The supervisor's watchdog: stops when its folder is deleted (nothing could use the cluster
/// any more), and logs components that exit on their own (kept for the post-mortem).
std::function<bool()> make_watchdog(DevCluster& cluster) {
    auto reported = std::make_shared<std::set<std::string>>();
    return [&cluster, reported]() {
        std::error_code ec;
        if (!fs::exists(cluster.kubeconfig_path(), ec)) {
            spdlog::warn("devcluster: {} is gone, stopping", cluster.kubeconfig_path().string());
            return true;
        }
        for (const auto& c : cluster.components()) {
            if (c.pid == 0 && reported->insert(c.name).second) {
                spdlog::warn("devcluster: {} exited on its own; its log: {}", c.name,
                             c.log_file.string());
            }
        }
        return false;
    };
}

void block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
}

void write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        done += static_cast<std::size_t>(n);
    }
}

int run_foreground(const UpArgs& args, std::chrono::seconds ttl) {
    block_stop_signals();
    auto cluster = DevCluster::start(cluster_options(args));
    if (!cluster) {
        std::cerr << "serin-devcluster: " << cluster.error().message << "\n";
        return 1;
    }
    std::cout << "export KUBECONFIG=" << (*cluster)->kubeconfig_path().string() << std::endl;
    wait_for_stop(ttl, make_watchdog(**cluster));
    (*cluster)->stop();
    return 0;
}

/// The supervisor: a daemon (own session, no terminal) that starts the cluster, reports the
/// outcome on `ready_fd`, then keeps the cluster until told to stop.
[[noreturn]] void run_supervisor(const UpArgs& args, std::chrono::seconds ttl, int ready_fd) {
    int devnull = ::open("/dev/null", O_RDONLY);
    int log = ::open((args.dir / kSupervisorLog).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(devnull, 0);
    if (log >= 0) {
        ::dup2(log, 1);
        ::dup2(log, 2);
    }
    // Whatever invoked `up` (ctest, a shell pipeline) waits for EOF on its pipes: keep none open.
    ::close_range(3, static_cast<unsigned>(ready_fd) - 1, 0);
    ::close_range(static_cast<unsigned>(ready_fd) + 1, ~0U, 0);
    {
        std::ofstream pid_file(args.dir / kPidFile, std::ios::trunc);
        pid_file << ::getpid() << "\n";
    }
    // Logging was configured by main(); its sinks write to fds 1 and 2, now the log file.
    auto cluster = DevCluster::start(cluster_options(args));
    if (!cluster) {
        spdlog::error("devcluster: {}", cluster.error().message);
        write_all(ready_fd, "error\n" + cluster.error().message + "\n");
        ::close(ready_fd);
        remove_pid_file_of(args.dir, ::getpid());
        std::_Exit(1);
    }
    write_all(ready_fd, "ok\n");
    ::close(ready_fd);
    wait_for_stop(ttl, make_watchdog(**cluster));
    (*cluster)->stop();
    cluster->reset();
    remove_pid_file_of(args.dir, ::getpid());
    spdlog::info("devcluster: stopped");
    std::_Exit(0);
}

int run_up(UpArgs args) {
    auto ttl = parse_duration(args.ttl);
    if (!ttl) {
        std::cerr << "serin-devcluster: --ttl: expected e.g. 2h, 30m, 90s or 0\n";
        return 2;
    }
    std::error_code ec;
    args.dir = fs::absolute(args.dir, ec).lexically_normal();
    fs::create_directories(args.dir, ec);
    if (ec) {
        std::cerr << "serin-devcluster: cannot create " << args.dir << ": " << ec.message() << "\n";
        return 1;
    }
    std::string message;
    if (live_supervisor(args.dir) || fs::exists(args.dir / "state.json")) {
        if (!stop_cluster_in(args.dir, std::chrono::seconds{60}, message)) {
            std::cerr << "serin-devcluster: cannot stop the cluster left in " << args.dir << ": "
                      << message << "\n";
            return 1;
        }
    }
    if (args.foreground) {
        return run_foreground(args, *ttl);
    }
    // Signals are blocked before the fork, so the supervisor never misses a SIGTERM sent while
    // it starts; its component processes reset the mask.
    block_stop_signals();
    int ready[2];
    if (::pipe(ready) != 0) {
        std::cerr << "serin-devcluster: pipe: " << std::strerror(errno) << "\n";
        return 1;
    }
    pid_t child = ::fork();
    if (child < 0) {
        std::cerr << "serin-devcluster: fork: " << std::strerror(errno) << "\n";
        return 1;
    }
    if (child == 0) {
        ::close(ready[0]);
        ::setsid();
        pid_t supervisor = ::fork();
        if (supervisor != 0) {
            std::_Exit(supervisor < 0 ? 1 : 0);
        }
        run_supervisor(args, *ttl, ready[1]);
    }
    ::close(ready[1]);
    int status = 0;
    ::waitpid(child, &status, 0);
    std::string answer;
    char buffer[4096];
    while (true) {
        ssize_t n = ::read(ready[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        answer.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(ready[0]);
    if (answer.rfind("ok\n", 0) == 0) {
        std::cout << "export KUBECONFIG=" << (args.dir / "kubeconfig").string() << std::endl;
        return 0;
    }
    if (answer.rfind("error\n", 0) == 0) {
        std::cerr << "serin-devcluster: " << answer.substr(6);
    } else {
        std::cerr << "serin-devcluster: the supervisor died during start-up; its log ("
                  << (args.dir / kSupervisorLog).string() << ") ends with:\n"
                  << serin::devcluster::tail_file(args.dir / kSupervisorLog, 20) << "\n";
    }
    return 1;
}

int run_down(const fs::path& dir_arg, int timeout_seconds) {
    std::error_code ec;
    fs::path dir = fs::absolute(dir_arg, ec).lexically_normal();
    std::string message;
    bool ok = stop_cluster_in(dir, std::chrono::seconds{timeout_seconds}, message);
    (ok ? std::cout : std::cerr) << "serin-devcluster: " << message << "\n";
    return ok ? 0 : 1;
}

int run_status(const fs::path& dir_arg) {
    std::error_code ec;
    fs::path dir = fs::absolute(dir_arg, ec).lexically_normal();
    auto supervisor = live_supervisor(dir);
    nlohmann::json state = nlohmann::json::parse(read_file(dir / "state.json"), nullptr, false);
    if (!supervisor) {
        std::cout << "no devcluster running in " << dir.string() << "\n";
        return 3;
    }
    std::cout << "supervisor: pid " << *supervisor << "\n";
    if (state.is_object()) {
        std::cout << "server: " << state.value("server", "") << "\n"
                  << "kubeconfig: " << state.value("kubeconfig", "") << "\n";
        for (const auto& c : state.value("components", nlohmann::json::array())) {
            pid_t pid = c.value("pid", 0);
            bool alive = serin::devcluster::pid_alive(pid);
            std::cout << c.value("name", "") << ": "
                      << (alive ? "running, pid " + std::to_string(pid) : std::string("stopped"))
                      << " (log " << c.value("log", "") << ")\n";
        }
    }
    auto config = serin::kube::load_kubeconfig(dir / "kubeconfig");
    if (!config) {
        std::cout << "kubeconfig: " << config.error().describe() << "\n";
        return 1;
    }
    boost::asio::io_context io;
    serin::SystemClock clock;
    serin::kube::RestClientOptions options;
    options.max_retries = 0;
    options.request_timeout = std::chrono::seconds{5};
    auto client = serin::kube::make_rest_client(io.get_executor(), *config, clock, options);
    if (!client) {
        std::cout << "client: " << client.error().describe() << "\n";
        return 1;
    }
    auto future = boost::asio::co_spawn(io, (*client)->get_raw("/readyz"), boost::asio::use_future);
    io.run();
    auto ready = future.get();
    std::cout << "readyz: " << (ready ? *ready : ready.error().describe()) << "\n";
    return ready && *ready == "ok" ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "serin-devcluster: a local Kubernetes 1.20 control plane for Serin's demo and tests"};
    app.require_subcommand(1);

    UpArgs up;
    auto* up_cmd = app.add_subcommand("up", "start a cluster in --dir (stopping any left there)");
    up_cmd->add_option("--dir", up.dir, "work folder: kubeconfig, keys, logs, etcd data")
        ->required();
    up_cmd->add_flag("--foreground", up.foreground, "stay in the foreground until a signal");
    up_cmd->add_flag("--no-podsim", up.no_podsim, "do not start podsim (pods stay Pending)");
    up_cmd->add_option("--ttl", up.ttl, "stop by itself after this long (2h, 30m, 0 = never)")
        ->default_str("2h");
    up_cmd->add_option("--k8s-bin", up.k8s_bin,
                       "kube-apiserver/kube-controller-manager folder (default: $SERIN_K8S_BIN "
                       "or ~/.cache/serin/k8s-1.20.2)");
    up_cmd->add_option("--timeout", up.timeout_seconds, "start-up timeout in seconds")
        ->default_str("60");
    up_cmd->add_option("--log-level", up.log_level, "debug, info, warn or error");

    fs::path down_dir;
    int down_timeout = 60;
    auto* down_cmd =
        app.add_subcommand("down", "stop the cluster in --dir and wait until it's gone");
    down_cmd->add_option("--dir", down_dir, "the folder given to up")->required();
    down_cmd->add_option("--timeout", down_timeout, "seconds to wait")->default_str("60");

    fs::path status_dir;
    auto* status_cmd = app.add_subcommand("status", "is a cluster running in --dir, and ready?");
    status_cmd->add_option("--dir", status_dir, "the folder given to up")->required();

    CLI11_PARSE(app, argc, argv);
    if (*up_cmd) {
        serin::configure_logging(up.log_level);
        return run_up(up);
    }
    if (*down_cmd) {
        return run_down(down_dir, down_timeout);
    }
    return run_status(status_dir);
}
