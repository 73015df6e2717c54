// Benchmark: analysis ticks per second of ProviderMetricChecker, through its Prometheus provider,
// against the devcluster's real Prometheus with N canaries, beside `curl` running the same
// rendered queries in the same run.
//
//   analysis_bench [--canaries N] [--concurrency 1 16 64] [--curl-sample M] [--rounds 5]
//                  [--meshsim-rate R]
//
// It starts a private devcluster (podsim, meshsim, Prometheus scraping meshsim every second) and
// creates, in one namespace, what meshsim needs to send traffic to canary app-<i>: a Deployment
// app-<i> (made available by the controller-manager and podsim) and the Services app-<i>,
// app-<i>-primary and app-<i>-canary (headless: the devcluster's Service range is a /24). With no
// routing object meshsim sends each apex's stream by the apex's own selector, to Deployment
// app-<i>, so Istio's families carry destination_workload="app-<i>": what the builtin queries of a
// Canary targeting app-<i> select. No Canary object exists in the cluster: the Canary values are
// decoded in memory and handed to ProviderMetricChecker::check, so this measures the analysis
// path alone (no controller, no status writes). Prints Markdown tables.
#include <fcntl.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include "crds/api/canary.hpp"
#include "devcluster/dev_cluster.hpp"
#include "metrics/checker.hpp"
#include "metrics/prometheus/prometheus_client.hpp"
#include "metrics/queries.hpp"
#include "platform/http/http_client.hpp"
#include "platform/kube/rest_client.hpp"

extern char** environ;

namespace {

namespace asio = boost::asio;
using namespace serin;
using WallClock = std::chrono::steady_clock;
using kube::Json;

double seconds_since(WallClock::time_point start) {
    return std::chrono::duration<double>(WallClock::now() - start).count();
}

double milliseconds_since(WallClock::time_point start) {
    return std::chrono::duration<double, std::milli>(WallClock::now() - start).count();
}

/// The nearest-rank percentile `q` (0..1) of `values`; 0 for none.
double percentile(std::vector<double> values, double q) {
    if (values.empty()) {
        return 0;
    }
    std::sort(values.begin(), values.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

/// Runs handlers of `io` on this thread until `done()`. run_one rather than run: idle keep-alive
/// connections may leave work behind that never ends. An io_context that ran out of work stops
/// itself, and a stopped one runs nothing until restarted.
template <typename Done>
void run_until(asio::io_context& io, Done done) {
    while (!done()) {
        if (io.stopped()) {
            io.restart();
        }
        io.run_one();
    }
}

/// Runs `task` on `io` (the calling thread) until it completes; rethrows its exception.
template <typename T>
T run_sync(asio::io_context& io, asio::awaitable<T> task) {
    std::optional<T> out;
    std::exception_ptr error;
    bool done = false;
    asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
        error = e;
        if (!e) {
            out.emplace(std::move(value));
        }
        done = true;
    });
    run_until(io, [&done] { return done; });
    if (error) {
        std::rethrow_exception(error);
    }
    return std::move(*out);
}

// ---- CPU accounting: where the time goes ------------------------------------------------------

/// utime + stime of a process in seconds, from /proc/PID/stat; 0 when it is gone.
double process_cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (pid <= 0 || !std::getline(in, line)) {
        return 0;
    }
    // The command name is in parentheses and may hold spaces: fields are counted after it.
    std::istringstream fields(line.substr(line.rfind(')') + 2));
    std::vector<std::string> tokens;
    for (std::string t; fields >> t;) {
        tokens.push_back(t);
    }
    if (tokens.size() < 13) {
        return 0;
    }
    // tokens[0] is field 3 (state); utime and stime are fields 14 and 15.
    const double ticks = std::stod(tokens[11]) + std::stod(tokens[12]);
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double rusage_seconds(int who) {
    rusage usage{};
    ::getrusage(who, &usage);
    auto seconds = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// CPU seconds used so far by the client side (this process and the curl children it waited
/// for) and by the cluster's processes.
struct CpuSnapshot {
    double self = 0;
    double children = 0;
    double prometheus = 0;
    double meshsim = 0;
    double rest = 0;  ///< etcd, kube-apiserver, controller-manager, podsim
};

CpuSnapshot cpu_now(const devcluster::DevCluster& cluster) {
    CpuSnapshot s;
    s.self = rusage_seconds(RUSAGE_SELF);
    s.children = rusage_seconds(RUSAGE_CHILDREN);
    for (const devcluster::ComponentInfo& c : cluster.components()) {
        const double cpu = process_cpu_seconds(c.pid);
        (c.name == "prometheus" ? s.prometheus : c.name == "meshsim" ? s.meshsim : s.rest) += cpu;
    }
    return s;
}

CpuSnapshot cpu_delta(const CpuSnapshot& a, const CpuSnapshot& b) {
    return {b.self - a.self, b.children - a.children, b.prometheus - a.prometheus,
            b.meshsim - a.meshsim, b.rest - a.rest};
}

// ---- the workloads meshsim sends traffic to -----------------------------------------------------

Json deployment_object(const std::string& name) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"replicas", 1},
              {"selector", {{"matchLabels", {{"app", name}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", name}}}}},
                {"spec",
                 {{"containers",
                   {{{"name", "app"}, {"image", "ghcr.io/stefanprodan/podinfo:6.0.0"}}}}}}}}}}};
}

/// Headless, so that 3,000 Services fit the devcluster's /24 range; meshsim reads only the
/// names and selectors.
Json service_object(const std::string& name, const std::string& app) {
    return {{"apiVersion", "v1"},
            {"kind", "Service"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"clusterIP", "None"},
              {"selector", {{"app", app}}},
              {"ports", {{{"name", "http"}, {"port", 80}}}}}}};
}

struct Populate {
    kube::KubeClient& client;
    std::string ns;
    int count = 0;
    int next = 0;
    int failures = 0;
    std::string first_error;
};

asio::awaitable<void> create_one(Populate& p, const kube::ResourceType& type, Json object) {
    auto created = co_await p.client.create(type, p.ns, std::move(object));
    if (!created && created.error().kind != ErrorKind::kAlreadyExists) {
        if (p.failures++ == 0) {
            p.first_error = created.error().describe();
        }
    }
}

asio::awaitable<void> populate_worker(Populate& p) {
    while (p.next < p.count) {
        const std::string app = "app-" + std::to_string(p.next++);
        const std::string primary = app + "-primary";
        const std::string canary = app + "-canary";
        // Named locals, not temporaries, inside the co_await arguments (g++ 12).
        Json deployment = deployment_object(app);
        Json apex = service_object(app, app);
        // The primary's Service selects nothing that exists: no primary Deployment is needed,
        // since the apex's own selector routes all of its traffic to app-<i>.
        Json primary_service = service_object(primary, primary);
        Json canary_service = service_object(canary, app);
        co_await create_one(p, kube::types::deployments(), std::move(deployment));
        co_await create_one(p, kube::types::services(), std::move(apex));
        co_await create_one(p, kube::types::services(), std::move(primary_service));
        co_await create_one(p, kube::types::services(), std::move(canary_service));
    }
}

/// Creates the namespace and each canary's Deployment and three Services, with `writers`
/// coroutines in parallel.
bool populate(asio::io_context& io, kube::KubeClient& client, const std::string& ns, int count,
              int writers) {
    Json namespace_object = {{"apiVersion", "v1"}, {"kind", "Namespace"},
                             {"metadata", {{"name", ns}}}};
    auto made = run_sync(io, client.create(kube::types::namespaces(), "", namespace_object));
    if (!made && made.error().kind != ErrorKind::kAlreadyExists) {
        std::cerr << "namespace: " << made.error().describe() << "\n";
        return false;
    }
    Populate p{client, ns, count, 0, 0, {}};
    int running = writers;
    std::exception_ptr failure;
    for (int w = 0; w < writers; ++w) {
        asio::co_spawn(io, populate_worker(p), [&running, &failure](std::exception_ptr e) {
            failure = e ? e : failure;
            --running;
        });
    }
    run_until(io, [&running] { return running == 0; });
    if (failure) {
        std::rethrow_exception(failure);
    }
    if (p.failures > 0) {
        std::cerr << p.failures << " creates failed, the first: " << p.first_error << "\n";
    }
    return p.failures == 0;
}

// ---- the canaries and their queries -------------------------------------------------------------

std::vector<api::Canary> make_canaries(const std::string& ns, int count) {
    std::vector<api::Canary> out;
    out.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        const std::string app = "app-" + std::to_string(i);
        const Json object = {
            {"apiVersion", "flagger.app/v1beta1"},
            {"kind", "Canary"},
            {"metadata", {{"name", app}, {"namespace", ns}}},
            {"spec",
             {{"provider", "istio"},
              {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", app}}},
              {"service", {{"port", 80}}},
              {"analysis",
               {{"interval", "10s"},
                {"threshold", 5},
                {"stepWeight", 10},
                {"maxWeight", 50},
                {"metrics",
                 {{{"name", "request-success-rate"},
                   {"thresholdRange", {{"min", 99}}},
                   {"interval", "1m"}},
                  {{"name", "request-duration"},
                   {"thresholdRange", {{"max", 500}}},
                   {"interval", "30s"}}}}}}}}};
        auto canary = api::decode_canary(object);
        if (!canary) {
            throw std::runtime_error("decode_canary: " + canary.error().describe());
        }
        out.push_back(std::move(*canary));
    }
    return out;
}

/// The PromQL of each of the canary's builtin metrics, rendered as ProviderMetricChecker
/// renders it (same observer, same template, same variables), whitespace collapsed.
std::vector<std::string> rendered_queries(const api::Canary& canary) {
    std::vector<std::string> out;
    const metrics::Observer observer = metrics::observer_for("istio", canary.spec);
    for (const api::CanaryMetric& metric : canary.spec.analysis->metrics) {
        auto builtin = metrics::builtin_query(observer, metric.name);
        if (!builtin) {
            throw std::runtime_error("no builtin query for " + metric.name);
        }
        auto text = metrics::render_query(builtin->query, metrics::template_vars(canary, metric));
        if (!text) {
            throw std::runtime_error("render_query: " + text.error().describe());
        }
        out.push_back(metrics::collapse_whitespace(*text));
    }
    return out;
}

/// The URL PrometheusClient::query sends for `promql`.
std::string query_url(const std::string& prometheus, const std::string& promql) {
    return prometheus + "/api/v1/query?query=" + http::url_encode(promql);
}

// ---- waiting for the data -----------------------------------------------------------------------

asio::awaitable<std::optional<double>> value_of(metrics::PrometheusClient& prometheus,
                                                const std::string& address, std::string promql) {
    metrics::PrometheusQuery query;
    query.address = address;
    query.promql = std::move(promql);
    auto value = co_await prometheus.query(std::move(query));
    if (!value) {
        co_return std::nullopt;
    }
    co_return *value;
}

/// Polls until every canary's workload has series in Prometheus, each counter has (nearly) a
/// full minute of samples (the success rate's 1m window: query cost grows until it is full), and
/// both builtin queries of the last canary return data. False at the deadline.
asio::awaitable<bool> wait_for_data(metrics::PrometheusClient& prometheus, Clock& clock,
                                    const std::string& address, const std::string& ns, int count,
                                    std::vector<std::string> last_queries,
                                    WallClock::time_point deadline) {
    const std::string selector = "istio_requests_total{reporter=\"destination\","
                                 "destination_workload_namespace=\"" + ns + "\"";
    const std::string workloads = "count(sum by (destination_workload) (" + selector + "}))";
    const std::string samples = "min(count_over_time(" + selector + ",response_code=\"200\"}[1m]))";
    // Scraped every second, a full minute is 60 samples; a few may be missing at its edges.
    constexpr double kFullMinute = 55;
    auto last_report = WallClock::now();
    for (;;) {
        std::optional<double> seen = co_await value_of(prometheus, address, workloads);
        std::optional<double> filled = co_await value_of(prometheus, address, samples);
        bool last_ready = true;
        for (const std::string& q : last_queries) {
            std::optional<double> v = co_await value_of(prometheus, address, q);
            last_ready = last_ready && v.has_value();
        }
        const bool all_seen = seen && *seen >= count;
        if (all_seen && filled && *filled >= kFullMinute && last_ready) {
            co_return true;
        }
        if (WallClock::now() >= deadline) {
            std::cerr << "timed out: " << seen.value_or(0) << " workloads with data, min samples "
                      << filled.value_or(0) << ", last canary " << (last_ready ? "ready" : "not")
                      << "\n";
            co_return false;
        }
        if (seconds_since(last_report) >= 10) {
            std::cerr << "  waiting: " << seen.value_or(0) << "/" << count
                      << " workloads with data, min samples in 1m: " << filled.value_or(0)
                      << "\n";
            last_report = WallClock::now();
        }
        bool slept = co_await clock.sleep_for(std::chrono::seconds{1});
        (void)slept;
    }
}

// ---- serin: ProviderMetricChecker::check with C coroutines -------------------------------------

/// Forwards to an HttpClient, timing each send (one send is one query) and keeping its URL.
class TimedHttp final : public http::HttpClient {
public:
    explicit TimedHttp(http::HttpClient& inner) : inner_(inner) {}

    asio::awaitable<Result<http::Response>> send(http::Request request) override {
        if (keep_urls) {
            urls.push_back(request.url);
        }
        const auto start = WallClock::now();
        auto response = co_await inner_.send(std::move(request));
        latencies_ms.push_back(milliseconds_since(start));
        co_return response;
    }
    asio::awaitable<Result<http::Response>> stream(http::Request request,
                                                   http::LineHandler on_line) override {
        return inner_.stream(std::move(request), std::move(on_line));
    }
    http::ClientStats stats() const override { return inner_.stats(); }

    bool keep_urls = false;
    std::vector<std::string> urls;
    std::vector<double> latencies_ms;

private:
    http::HttpClient& inner_;
};

using Verdicts = std::array<std::size_t, 4>;  // indexed by analysis::Verdict

struct Ticks {
    metrics::ProviderMetricChecker& checker;
    const std::vector<api::Canary>& canaries;
    std::size_t next = 0;
    std::size_t end = 0;
    Verdicts verdicts{};
    std::string first_problem;
};

asio::awaitable<void> tick_worker(Ticks& t) {
    while (t.next < t.end) {
        api::Canary canary = t.canaries[t.next++];
        std::vector<analysis::MetricResult> results = co_await t.checker.check(std::move(canary));
        for (const analysis::MetricResult& r : results) {
            ++t.verdicts[static_cast<std::size_t>(r.verdict)];
            if (r.verdict != analysis::Verdict::kPass && t.first_problem.empty()) {
                t.first_problem = r.name + ": " + r.message;
            }
        }
    }
}

struct Row {
    std::string name;
    std::size_t queries = 0;
    double seconds = 0;
    double ticks_per_second = 0;
    bool ticks_equivalent = false;  ///< curl: queries/s / 2, not real ticks
    double p50_ms = 0;
    double p99_ms = 0;
    CpuSnapshot cpu;
    std::string note;
    double slowest_qps = 0;  ///< over the rounds, for the median row
    double fastest_qps = 0;
    double queries_per_second() const { return static_cast<double>(queries) / seconds; }
};

/// One check() of each of canaries[0, count) with `concurrency` coroutines on this thread.
Row run_serin(asio::io_context& io, metrics::ProviderMetricChecker& checker, TimedHttp& timed,
              const std::vector<api::Canary>& canaries, std::size_t count, int concurrency,
              const devcluster::DevCluster& cluster) {
    Ticks t{checker, canaries, 0, count, {}, {}};
    timed.latencies_ms.clear();
    const http::ClientStats stats_before = timed.stats();
    const CpuSnapshot cpu_before = cpu_now(cluster);
    const auto start = WallClock::now();
    int running = concurrency;
    std::exception_ptr failure;
    for (int w = 0; w < concurrency; ++w) {
        asio::co_spawn(io, tick_worker(t), [&running, &failure](std::exception_ptr e) {
            failure = e ? e : failure;
            --running;
        });
    }
    run_until(io, [&running] { return running == 0; });
    Row row;
    row.seconds = seconds_since(start);
    row.cpu = cpu_delta(cpu_before, cpu_now(cluster));
    if (failure) {
        std::rethrow_exception(failure);
    }
    row.name = "serin, C=" + std::to_string(concurrency);
    row.queries = timed.latencies_ms.size();
    row.ticks_per_second = static_cast<double>(count) / row.seconds;
    row.p50_ms = percentile(timed.latencies_ms, 0.5);
    row.p99_ms = percentile(timed.latencies_ms, 0.99);
    const http::ClientStats stats_after = timed.stats();
    std::ostringstream note;
    note << t.verdicts[0] << " pass, " << t.verdicts[1] << " fail, " << t.verdicts[2]
         << " no data, " << t.verdicts[3] << " error; "
         << stats_after.connections_opened - stats_before.connections_opened
         << " connections opened";
    if (!t.first_problem.empty()) {
        note << "; first problem: " << t.first_problem;
    }
    row.note = note.str();
    return row;
}

// ---- curl ---------------------------------------------------------------------------------------

struct ProcessOutput {
    int exit_code = -1;
    double seconds = 0;
    std::string out;
};

/// Runs argv (looked up in $PATH) with stdout captured; wall time from spawn to reaped.
ProcessOutput run_process(const std::vector<std::string>& argv) {
    ProcessOutput result;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return result;
    }
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    const auto start = WallClock::now();
    pid_t pid = 0;
    const int spawned = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (spawned != 0) {
        ::close(fds[0]);
        return result;
    }
    char buffer[65536];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) != 0;) {
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        result.out.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.seconds = seconds_since(start);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

/// What curl's -w line says about each transfer.
struct CurlTally {
    std::map<std::string, std::size_t> codes;  ///< HTTP status -> transfers
    long min_bytes = -1;
    long max_bytes = 0;
    std::vector<double> time_total_ms;
    long connects = 0;

    void add(const std::string& lines) {
        std::istringstream in(lines);
        std::string code;
        long bytes = 0;
        double seconds = 0;
        long connected = 0;
        while (in >> code >> bytes >> seconds >> connected) {
            ++codes[code];
            connects += connected;
            min_bytes = min_bytes < 0 ? bytes : std::min(min_bytes, bytes);
            max_bytes = std::max(max_bytes, bytes);
            time_total_ms.push_back(seconds * 1000);
        }
    }
    std::string describe() const {
        std::ostringstream out;
        for (const auto& [code, n] : codes) {
            out << n << " x HTTP " << code << ", ";
        }
        out << "bodies " << min_bytes << "-" << max_bytes << " bytes, " << connects
            << " connections opened";
        return out.str();
    }
};

// The -w line: time_total, plus what shows real answers (status, body size) and whether the
// connection was reused (num_connects is 0 then).
const char* const kCurlWrite = "%{http_code} %{size_download} %{time_total} %{num_connects}\\n";

/// A shell script's way: one curl process per query; latency is the process's wall time.
Row run_curl_per_process(const std::vector<std::string>& urls,
                         const devcluster::DevCluster& cluster) {
    CurlTally tally;
    std::vector<double> wall_ms;
    int failed = 0;
    const CpuSnapshot cpu_before = cpu_now(cluster);
    const auto start = WallClock::now();
    for (const std::string& url : urls) {
        ProcessOutput p = run_process({"curl", "-sS", "-o", "/dev/null", "-w", kCurlWrite, url});
        failed += p.exit_code == 0 ? 0 : 1;
        wall_ms.push_back(p.seconds * 1000);
        tally.add(p.out);
    }
    Row row;
    row.seconds = seconds_since(start);
    row.cpu = cpu_delta(cpu_before, cpu_now(cluster));
    row.name = "curl, a process per query";
    row.queries = urls.size();
    row.ticks_per_second = row.queries_per_second() / 2;
    row.ticks_equivalent = true;
    row.p50_ms = percentile(wall_ms, 0.5);
    row.p99_ms = percentile(wall_ms, 0.99);
    std::ostringstream note;
    note << tally.describe() << "; " << failed << " curl exits not 0; its own time_total p50 "
         << percentile(tally.time_total_ms, 0.5) << " ms";
    row.note = note.str();
    return row;
}

/// One curl process given every URL (a config file of url/output pairs): one connection,
/// reused; latency is curl's time_total per transfer.
Row run_curl_one_process(const std::vector<std::string>& urls, const std::filesystem::path& file,
                         const devcluster::DevCluster& cluster) {
    {
        std::ofstream config(file);
        for (const std::string& url : urls) {
            config << "url = \"" << url << "\"\noutput = \"/dev/null\"\n";
        }
    }
    const CpuSnapshot cpu_before = cpu_now(cluster);
    ProcessOutput p = run_process({"curl", "-sS", "-K", file.string(), "-w", kCurlWrite});
    Row row;
    row.cpu = cpu_delta(cpu_before, cpu_now(cluster));
    CurlTally tally;
    tally.add(p.out);
    row.name = "curl, one process, connection reused";
    row.seconds = p.seconds;
    row.queries = tally.time_total_ms.size();
    row.ticks_per_second = row.queries_per_second() / 2;
    row.ticks_equivalent = true;
    row.p50_ms = percentile(tally.time_total_ms, 0.5);
    row.p99_ms = percentile(tally.time_total_ms, 0.99);
    row.note = tally.describe() + "; curl exit " + std::to_string(p.exit_code);
    return row;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Analysis ticks per second on the devcluster's Prometheus: Serin's "
                 "ProviderMetricChecker beside curl on the same queries"};
    int canaries = 1000;
    std::vector<int> concurrency = {1, 16, 64};
    int curl_sample = 200;
    double meshsim_rate = 1;
    int timeout_seconds = 600;
    int rounds = 5;
    app.add_option("--canaries", canaries, "canaries (workloads with traffic)")
        ->check(CLI::PositiveNumber);
    app.add_option("--concurrency", concurrency, "coroutines calling check() at once, per run");
    app.add_option("--curl-sample", curl_sample, "queries for the curl-process-per-query run")
        ->check(CLI::PositiveNumber);
    app.add_option("--meshsim-rate", meshsim_rate, "requests per second per apex in meshsim")
        ->check(CLI::PositiveNumber);
    app.add_option("--timeout", timeout_seconds, "seconds to wait for setup and data");
    app.add_option("--rounds", rounds, "runs of every mode; the median is reported")
        ->check(CLI::PositiveNumber);
    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);
    const std::string ns = "bench-analysis";
    const auto deadline = WallClock::now() + std::chrono::seconds{timeout_seconds};

    devcluster::DevClusterOptions options;
    options.meshsim_rate = meshsim_rate;
    std::cerr << "starting the devcluster...\n";
    auto started = devcluster::DevCluster::start(options);
    if (!started) {
        std::cerr << "devcluster: " << started.error().describe() << "\n";
        return 1;
    }
    devcluster::DevCluster& cluster = **started;
    const std::string prometheus_url = cluster.prometheus_url();

    asio::io_context io;
    SystemClock clock;
    kube::RestClientOptions rest_options;
    rest_options.write_qps = 0;  // no client-side limit: setup, not the thing measured
    auto kube_client =
        kube::make_rest_client(io.get_executor(), cluster.cluster_config(), clock, rest_options);
    if (!kube_client) {
        std::cerr << kube_client.error().describe() << "\n";
        return 1;
    }
    std::cerr << "creating " << canaries << " Deployments and " << 3 * canaries
              << " Services...\n";
    auto t0 = WallClock::now();
    if (!populate(io, **kube_client, ns, canaries, 16)) {
        return 1;
    }
    std::cerr << "created in " << seconds_since(t0) << " s\n";

    const std::vector<api::Canary> values = make_canaries(ns, canaries);
    std::vector<std::string> urls;
    for (const api::Canary& c : values) {
        for (const std::string& q : rendered_queries(c)) {
            urls.push_back(query_url(prometheus_url, q));
        }
    }

    // The wait uses a client of its own, so the measured client starts with no connection.
    auto wait_http = http::make_beast_client(io.get_executor(), {});
    auto bench_http = http::make_beast_client(io.get_executor(), {});
    if (!wait_http || !bench_http) {
        std::cerr << "http client failed\n";
        return 1;
    }
    metrics::PrometheusClient wait_prometheus(**wait_http);
    std::cerr << "waiting for Prometheus to have a minute of data for every canary...\n";
    t0 = WallClock::now();
    const bool ready =
        run_sync(io, wait_for_data(wait_prometheus, clock, prometheus_url, ns, canaries,
                                   rendered_queries(values.back()), deadline));
    if (!ready) {
        return 1;
    }
    std::cerr << "data ready after " << seconds_since(t0) << " s\n";

    // The controller's setup: a beast client with default options, the istio mesh provider.
    TimedHttp timed(**bench_http);
    metrics::MetricCheckerOptions checker_options;
    checker_options.mesh_provider = "istio";
    checker_options.metrics_server = prometheus_url;
    metrics::ProviderRegistry providers(metrics::ProviderDeps{timed, nullptr, {}});
    metrics::register_builtin_providers(providers);
    metrics::ProviderMetricChecker checker(providers, checker_options);

    // Background: what the cluster burns with nobody querying (meshsim and scrapes), so the CPU
    // columns of the runs can be read against it. A measuring window, not a wait.
    const CpuSnapshot idle_before = cpu_now(cluster);
    const auto idle_start = WallClock::now();
    (void)run_sync(io, clock.sleep_for(std::chrono::seconds{5}));
    Row idle;
    idle.name = "nobody querying (5 s)";
    idle.seconds = seconds_since(idle_start);
    idle.cpu = cpu_delta(idle_before, cpu_now(cluster));

    // Warm-up: connections, Prometheus' caches, this process' allocator; not reported.
    const std::size_t all = values.size();
    run_serin(io, checker, timed, values, std::min<std::size_t>(all, 200), 16, cluster);

    // An evenly spread sample of both kinds of query for the process-per-query run.
    std::vector<std::string> sample;
    const std::size_t wanted = std::min<std::size_t>(urls.size(), curl_sample);
    for (std::size_t k = 0; k < wanted; ++k) {
        sample.push_back(urls[k * urls.size() / wanted]);
    }

    // Every mode `rounds` times, the modes alternating within a round so that none is favoured
    // by what ran before (Prometheus' scrapes and compactions come and go); the median by wall
    // time is reported, with its own percentiles.
    const std::size_t modes = concurrency.size() + 2;
    std::vector<std::vector<Row>> runs(modes);
    for (int round = 1; round <= rounds; ++round) {
        std::cerr << "round " << round << " of " << rounds << ":";
        for (std::size_t i = 0; i < concurrency.size(); ++i) {
            timed.keep_urls = round == 1 && i == 0;
            std::cerr << " serin C=" << concurrency[i] << std::flush;
            runs[i].push_back(run_serin(io, checker, timed, values, all, concurrency[i], cluster));
            if (timed.keep_urls) {
                // The URLs curl gets must be the ones the checker sent.
                std::vector<std::string> sent = timed.urls;
                std::vector<std::string> ours = urls;
                std::sort(sent.begin(), sent.end());
                std::sort(ours.begin(), ours.end());
                if (sent != ours) {
                    std::cerr << "\nthe checker sent other URLs than the ones rendered here, "
                                 "e.g.\n  "
                              << (sent.empty() ? std::string("(none)") : sent.front()) << "\n";
                    return 1;
                }
                timed.keep_urls = false;
                timed.urls.clear();
            }
        }
        std::cerr << ", curl x " << sample.size() << std::flush;
        runs[modes - 2].push_back(run_curl_per_process(sample, cluster));
        std::cerr << ", curl -K (" << urls.size() << " URLs)\n";
        runs[modes - 1].push_back(
            run_curl_one_process(urls, cluster.work_dir() / "curl-urls.conf", cluster));
    }
    std::vector<Row> rows;
    for (std::vector<Row>& mode : runs) {
        std::sort(mode.begin(), mode.end(),
                  [](const Row& a, const Row& b) { return a.seconds < b.seconds; });
        rows.push_back(mode[mode.size() / 2]);
        rows.back().slowest_qps = mode.back().queries_per_second();
        rows.back().fastest_qps = mode.front().queries_per_second();
    }
    const Row& curl_one = rows.back();

    std::printf("Median of %d rounds.\n\n", rounds);
    std::printf("| %d canaries, 2 queries a tick | queries | wall (s) | queries/s | ticks/s | "
                "p50 (ms) | p99 (ms) | queries/s vs curl one process | queries/s, all rounds |\n",
                canaries);
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    for (const Row& r : rows) {
        // curl runs no ticks: its column is queries/s / 2, in parentheses.
        char ticks[32];
        std::snprintf(ticks, sizeof ticks, r.ticks_equivalent ? "(%.0f)" : "%.0f",
                      r.ticks_per_second);
        std::printf("| %s | %zu | %.2f | %.0f | %s | %.2f | %.2f | %.2f | %.0f-%.0f |\n",
                    r.name.c_str(), r.queries, r.seconds, r.queries_per_second(), ticks, r.p50_ms,
                    r.p99_ms, r.queries_per_second() / curl_one.queries_per_second(),
                    r.slowest_qps, r.fastest_qps);
    }
    std::printf("\nResults:\n");
    for (const Row& r : rows) {
        std::printf("- %s: %s\n", r.name.c_str(), r.note.c_str());
    }
    std::printf("\n| CPU seconds during the run | wall (s) | client | prometheus | meshsim | "
                "etcd, apiserver, controller-manager, podsim | prometheus CPU ms/query |\n");
    std::printf("|---|---|---|---|---|---|---|\n");
    auto cpu_row = [](const Row& r) {
        char per_query[32] = "";
        if (r.queries > 0) {
            std::snprintf(per_query, sizeof per_query, "%.3f",
                          r.cpu.prometheus * 1000 / static_cast<double>(r.queries));
        }
        std::printf("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %s |\n", r.name.c_str(), r.seconds,
                    r.cpu.self + r.cpu.children, r.cpu.prometheus, r.cpu.meshsim, r.cpu.rest,
                    per_query);
    };
    cpu_row(idle);
    for (const Row& r : rows) {
        cpu_row(r);
    }
    return 0;
}
