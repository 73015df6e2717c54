// Benchmark: LIST then WATCH-sync N ConfigMaps with Serin's informer, beside
// `kubectl get configmaps -A -o json`, on the same devcluster in the same run.
//
//   informer_bench [--objects N] [--kubeconfig K]
//
// Without --kubeconfig it starts a private devcluster. Each contender runs in a child process so
// that its peak RSS (wait4's ru_maxrss) is its own. Prints a Markdown table.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <iostream>

#include "devcluster/dev_cluster.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/rest_client.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using WallClock = std::chrono::steady_clock;
using kube::Json;

struct ChildResult {
    int exit_code = -1;
    double seconds = 0;
    long max_rss_kib = 0;
};

/// Runs argv in a child with stdout sent to /dev/null; wall time and peak RSS from wait4.
ChildResult run_child(const std::vector<std::string>& argv) {
    auto start = WallClock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
        int devnull = ::open("/dev/null", O_WRONLY);
        ::dup2(devnull, STDOUT_FILENO);
        std::vector<char*> args;
        for (const auto& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        std::_Exit(127);
    }
    int status = 0;
    rusage usage{};
    ::wait4(pid, &status, 0, &usage);
    ChildResult result;
    result.seconds = std::chrono::duration<double>(WallClock::now() - start).count();
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result.max_rss_kib = usage.ru_maxrss;
    return result;
}

/// Child mode: an informer on all ConfigMaps; exits 0 once synced and all `expect` are cached.
int sync_mode(const std::string& kubeconfig, std::size_t expect) {
    auto config = kube::load_kubeconfig(kubeconfig);
    if (!config) {
        std::cerr << config.error().describe() << "\n";
        return 2;
    }
    asio::io_context io;
    SystemClock clock;
    auto client = kube::make_rest_client(io.get_executor(), *config, clock);
    if (!client) {
        std::cerr << client.error().describe() << "\n";
        return 2;
    }
    kube::Informer informer(**client, clock, kube::types::config_maps());
    informer.start(io.get_executor());
    auto deadline = WallClock::now() + std::chrono::minutes{5};
    while (!(informer.has_synced() && informer.size() >= expect) && WallClock::now() < deadline) {
        io.run_one_for(std::chrono::milliseconds{100});
    }
    std::fprintf(stderr, "synced %zu objects\n", informer.size());
    return informer.size() >= expect ? 0 : 1;
}

/// Makes `count` ConfigMaps in namespace `ns` with a few writers in parallel.
bool populate(const kube::ClusterConfig& config, const std::string& ns, int count) {
    asio::io_context io;
    SystemClock clock;
    kube::RestClientOptions options;
    options.write_qps = 0;
    auto client = kube::make_rest_client(io.get_executor(), config, clock, options);
    if (!client) {
        return false;
    }
    kube::KubeClient& kc = **client;
    int failures = 0;
    Json namespace_object = {{"apiVersion", "v1"}, {"kind", "Namespace"},
                             {"metadata", {{"name", ns}}}};
    auto writer = [&kc, &failures, ns, count](int first, int stride) -> asio::awaitable<void> {
        for (int i = first; i < count; i += stride) {
            Json cm = {{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", {{"name", "bench-" + std::to_string(i)}, {"namespace", ns}}},
                       {"data", {{"index", std::to_string(i)}, {"payload", std::string(64, 'x')}}}};
            auto created = co_await kc.create(kube::types::config_maps(), ns, std::move(cm));
            if (!created && created.error().kind != ErrorKind::kAlreadyExists) {
                ++failures;
            }
        }
    };
    bool done = false;
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        auto made = co_await kc.create(kube::types::namespaces(), "", namespace_object);
        (void)made;  // it may exist from an earlier run
        using namespace asio::experimental::awaitable_operators;
        co_await ((writer(0, 8) && writer(1, 8) && writer(2, 8) && writer(3, 8)) &&
                  (writer(4, 8) && writer(5, 8) && writer(6, 8) && writer(7, 8)));
        done = true;
    }, asio::detached);
    io.run();
    return done && failures == 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"LIST+WATCH sync of many ConfigMaps: Serin's informer beside kubectl"};
    int objects = 10'000;
    std::string kubeconfig;
    std::string mode = "compare";
    std::size_t expect = 0;
    app.add_option("--objects", objects, "ConfigMaps to create");
    app.add_option("--kubeconfig", kubeconfig, "use this cluster instead of a private one");
    app.add_option("--mode", mode, "compare (default) or sync (internal)");
    app.add_option("--expect", expect, "sync mode: objects to wait for");
    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);

    if (mode == "sync") {
        return sync_mode(kubeconfig, expect);
    }

    std::unique_ptr<devcluster::DevCluster> cluster;
    if (kubeconfig.empty()) {
        devcluster::DevClusterOptions options;
        options.start_podsim = false;
        options.wait_for_controller_manager = false;
        auto started = devcluster::DevCluster::start(options);
        if (!started) {
            std::cerr << "devcluster: " << started.error().describe() << "\n";
            return 1;
        }
        cluster = std::move(*started);
        kubeconfig = cluster->kubeconfig_path().string();
    }
    auto config = kube::load_kubeconfig(kubeconfig);
    if (!config) {
        std::cerr << config.error().describe() << "\n";
        return 1;
    }
    std::cerr << "creating " << objects << " ConfigMaps...\n";
    auto t0 = WallClock::now();
    if (!populate(*config, "bench-informer", objects)) {
        std::cerr << "populating failed\n";
        return 1;
    }
    std::cerr << "created in " << std::chrono::duration<double>(WallClock::now() - t0).count()
              << " s\n";

    const std::string self = "/proc/self/exe";
    std::vector<std::string> serin_cmd = {self, "--mode", "sync", "--kubeconfig", kubeconfig,
                                          "--expect", std::to_string(objects)};
    std::vector<std::string> kubectl_cmd = {"kubectl", "--kubeconfig", kubeconfig, "get",
                                            "configmaps", "-A", "-o", "json"};
    // Warm the API server's caches once, then measure each contender three times and keep the
    // median, alternating so neither is favoured by what ran before.
    run_child(kubectl_cmd);
    std::vector<ChildResult> serin_runs, kubectl_runs;
    for (int i = 0; i < 3; ++i) {
        serin_runs.push_back(run_child(serin_cmd));
        kubectl_runs.push_back(run_child(kubectl_cmd));
    }
    auto median = [](std::vector<ChildResult> runs) {
        std::sort(runs.begin(), runs.end(),
                  [](const ChildResult& a, const ChildResult& b) { return a.seconds < b.seconds; });
        return runs[runs.size() / 2];
    };
    auto s = median(serin_runs);
    auto k = median(kubectl_runs);
    std::printf("| %d ConfigMaps (+ system ones) | time to sync (s) | peak RSS (MiB) | exit |\n",
                objects);
    std::printf("|---|---|---|---|\n");
    std::printf("| serin Informer (LIST pages of 500, then WATCH) | %.2f | %.1f | %d |\n",
                s.seconds, static_cast<double>(s.max_rss_kib) / 1024.0, s.exit_code);
    std::printf("| kubectl get configmaps -A -o json | %.2f | %.1f | %d |\n", k.seconds,
                static_cast<double>(k.max_rss_kib) / 1024.0, k.exit_code);
    std::printf("| ratio serin / kubectl | %.2f | %.2f | |\n", s.seconds / k.seconds,
                static_cast<double>(s.max_rss_kib) / static_cast<double>(k.max_rss_kib));
    return s.exit_code == 0 && k.exit_code == 0 ? 0 : 1;
}
