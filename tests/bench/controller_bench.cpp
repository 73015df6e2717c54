// Benchmark: the whole controller at N canaries. serin (this build's binary, a child process)
// against a private devcluster, measured from outside: time to initialize every canary, RSS, CPU
// and API requests at rest and during concurrent releases, and image bump -> Progressing latency
// seen by a watcher in this process. Beside it, the same request figures for a model of Flagger's
// polling, computed from the same run's N and interval. Prints Markdown tables.
//
//   controller_bench [--canaries N] [--namespaces K] [--releases R] [--rest-seconds S]
//                    [--release-seconds S] [--soak-seconds S [--sample-seconds P]]
//                    [--quiet-seconds Q] [--keep]
//
// The cluster is as light as the scenario allows: etcd, kube-apiserver, the controller-manager and
// podsim (no meshsim, no Prometheus: blue/green on the `kubernetes` provider with no metrics needs
// neither). The Service range is widened to hold N x 3 Services, and the API server writes an
// audit log (Metadata level, JSON lines) of the requests of serin's own user, so its requests are
// counted independently of serin's counters.
//
// Phases:
//  1. N Deployments app-<i> (1 replica) and N Canaries (blue/green: 10 iterations, interval 1m,
//     provider kubernetes, no metrics) are created, all in namespace "bench" or, with
//     --namespaces K > 1, app-<i> in bench-<i mod K>, and every Deployment becomes available.
//  2. serin starts; "initialize" is the time from its start until every Canary is Initialized.
//  3. Settle: until no Deployment, Pod or Canary has changed for --quiet-seconds (the
//     controller-manager and podsim finish what initialization started), then the rest window
//     (--rest-seconds): serin's RSS, CPU (utime+stime from /proc/PID/stat), requests by verb from
//     its /metrics (serin_kube_requests_total) and from the audit log, reconciles run
//     (serin_reconcile_duration_seconds_count).
//  4. --soak-seconds S > 0 (the soak): S more seconds at rest, RSS and open fds sampled every
//     --sample-seconds (a minute), then the releases.
//  5. R releases (an image bump of R Deployments spread over the N), at once or one every
//     --bump-every-ms: bump -> Progressing
//     latency per canary (from just before the bump's PATCH is sent to the first watch event
//     showing the Canary Progressing), RSS and CPU over --release-seconds from the first bump,
//     requests in that window and the analysis steps taken in it (status changes of the released
//     canaries: a new phase or a new iteration). Each release's latency is broken down by placing
//     serin's scale-up and status write (their receipt and answer in the audit log) between the
//     moments the watches saw: bump sent, new template seen, Progressing seen.
#include <dirent.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "devcluster/dev_cluster.hpp"
#include "devcluster/process.hpp"
#include "platform/http/http_client.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/rest_client.hpp"

#ifndef SERIN_BINARY
#error "SERIN_BINARY must name the serin binary"
#endif

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace serin;
using WallClock = std::chrono::steady_clock;
/// For what is compared with the audit log's timestamps.
using SysClock = std::chrono::system_clock;
using kube::Json;

constexpr const char* kNamespace = "bench";
/// The prefix of the namespaces of the spread layout (--namespaces K > 1).
constexpr std::string_view kSpreadPrefix = "bench-";
constexpr const char* kSerinUser = "serin-bench";
constexpr const char* kOldImage = "ghcr.io/stefanprodan/podinfo:6.0.0";
constexpr const char* kNewImage = "ghcr.io/stefanprodan/podinfo:6.0.1";

double seconds_since(WallClock::time_point start) {
    return std::chrono::duration<double>(WallClock::now() - start).count();
}

/// Where the benchmark's objects live: all in namespace "bench" (--namespaces 1, the layout of
/// every result before the option existed), or spread over "bench-0" .. "bench-<n-1>", app-<i> in
/// bench-<i mod n>, as Flagger users' canaries spread over their teams' namespaces. serin watches
/// only "bench" in the first layout (-namespace), the whole cluster in the second (Flagger's
/// default).
struct Layout {
    int namespaces = 1;

    std::string of_index(int index) const {
        return namespaces <= 1 ? std::string(kNamespace)
                               : std::string(kSpreadPrefix) + std::to_string(index % namespaces);
    }
    /// The namespace of app-<i> (or of its -primary).
    std::string of_app(std::string_view app) const {
        int index = 0;
        if (app.starts_with("app-")) {
            app.remove_prefix(4);
            std::from_chars(app.data(), app.data() + app.size(), index);
        }
        return of_index(index);
    }
    bool holds(std::string_view ns) const {
        return namespaces <= 1 ? ns == kNamespace : ns.starts_with(kSpreadPrefix);
    }
    std::vector<std::string> all() const {
        std::vector<std::string> out;
        for (int i = 0; i < std::max(namespaces, 1); ++i) {
            out.push_back(of_index(i));
        }
        return out;
    }
    /// What serin and this benchmark's informers watch: the one namespace, or all ("").
    std::string watched() const { return namespaces <= 1 ? std::string(kNamespace) : ""; }
};

/// The nearest-rank percentile `q` (0..1) of `values`; 0 for none.
double percentile(std::vector<double> values, double q) {
    if (values.empty()) {
        return 0;
    }
    std::sort(values.begin(), values.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

/// Runs handlers of `io` until `done()` or `deadline`; true when done. run_one_for, so that the
/// deadline and `done` are looked at even when nothing happens.
bool run_until(asio::io_context& io, const std::function<bool()>& done,
               WallClock::time_point deadline, const std::function<void()>& every = {}) {
    while (!done()) {
        if (WallClock::now() >= deadline) {
            return false;
        }
        if (io.stopped()) {
            io.restart();
        }
        io.run_one_for(std::chrono::milliseconds{100});
        if (every) {
            every();
        }
    }
    return true;
}

/// Runs `task` on `io` until it completes; rethrows its exception.
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
    run_until(io, [&done] { return done; }, WallClock::time_point::max());
    if (error) {
        std::rethrow_exception(error);
    }
    return std::move(*out);
}

// ---- the serin process seen from /proc ----------------------------------------------------------

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

/// VmRSS of a process in MiB, from /proc/PID/status; 0 when it is gone.
double process_rss_mib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stod(line.substr(6)) / 1024.0;
        }
    }
    return 0;
}

/// Open file descriptors of a process (entries of /proc/PID/fd); -1 when it cannot be read.
int process_open_fds(pid_t pid) {
    DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (dir == nullptr) {
        return -1;
    }
    int count = 0;
    while (const dirent* entry = ::readdir(dir)) {
        count += entry->d_name[0] == '.' ? 0 : 1;
    }
    ::closedir(dir);
    return count;
}

// ---- request counts: serin's /metrics and the audit log ----------------------------------------

/// Requests by (Kubernetes verb, resource).
using Requests = std::map<std::pair<std::string, std::string>, double>;

Requests minus(const Requests& after, const Requests& before) {
    Requests out;
    for (const auto& [key, value] : after) {
        const auto it = before.find(key);
        const double delta = value - (it == before.end() ? 0 : it->second);
        if (delta > 0) {
            out[key] = delta;
        }
    }
    return out;
}

std::map<std::string, double> by_verb(const Requests& requests) {
    std::map<std::string, double> out;
    for (const auto& [key, value] : requests) {
        out[key.first] += value;
    }
    return out;
}

double total(const Requests& requests) {
    double sum = 0;
    for (const auto& entry : requests) {
        sum += entry.second;
    }
    return sum;
}

/// The value of label `name` in a Prometheus text series' label set `{a="x",b="y"}`.
std::string label(std::string_view labels, std::string_view name) {
    const std::string key = std::string(name) + "=\"";
    std::size_t at = labels.find(key);
    while (at != std::string_view::npos && at > 0 && labels[at - 1] != '{' &&
           labels[at - 1] != ',') {
        at = labels.find(key, at + 1);
    }
    if (at == std::string_view::npos) {
        return {};
    }
    const std::size_t start = at + key.size();
    return std::string(labels.substr(start, labels.find('"', start) - start));
}

/// What serin's /metrics says about its requests and reconciles.
struct SerinCounters {
    bool ok = false;
    Requests requests;  ///< serin_kube_requests_total by verb and resource
    double reconciles = 0;  ///< serin_reconcile_duration_seconds_count, every result
    double reconcile_seconds = 0;  ///< serin_reconcile_duration_seconds_sum
    double queue_waits = 0;        ///< serin_workqueue_wait_seconds_count
    double queue_wait_seconds = 0; ///< serin_workqueue_wait_seconds_sum
    double throttled = 0;          ///< serin_api_throttled_total
    double connections_opened = 0; ///< serin_api_connections_opened_total
    double connections_reused = 0; ///< serin_api_connections_reused_total
    double tls_resumed = 0;        ///< serin_api_tls_sessions_resumed_total
    double heap_in_use = 0;        ///< serin_heap_bytes{state="in_use"}
    double heap_free = 0;          ///< serin_heap_bytes{state="free"}
    /// serin_cache_objects and serin_cache_encoded_bytes by resource.
    std::map<std::string, std::pair<double, double>> caches;
};

SerinCounters parse_metrics(const std::string& text) {
    SerinCounters out;
    out.ok = true;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        const std::size_t space = line.rfind(' ');
        if (line.empty() || line[0] == '#' || space == std::string::npos) {
            continue;
        }
        const double value = std::strtod(line.c_str() + space + 1, nullptr);
        if (line.rfind("serin_kube_requests_total{", 0) == 0) {
            const std::string_view labels(line.data(), space);
            out.requests[{label(labels, "verb"), label(labels, "resource")}] += value;
        } else if (line.rfind("serin_reconcile_duration_seconds_count", 0) == 0) {
            out.reconciles += value;
        } else if (line.rfind("serin_reconcile_duration_seconds_sum", 0) == 0) {
            out.reconcile_seconds += value;
        } else if (line.rfind("serin_workqueue_wait_seconds_count", 0) == 0) {
            out.queue_waits += value;
        } else if (line.rfind("serin_workqueue_wait_seconds_sum", 0) == 0) {
            out.queue_wait_seconds += value;
        } else if (line.rfind("serin_api_throttled_total", 0) == 0) {
            out.throttled += value;
        } else if (line.rfind("serin_api_connections_opened_total", 0) == 0) {
            out.connections_opened += value;
        } else if (line.rfind("serin_api_connections_reused_total", 0) == 0) {
            out.connections_reused += value;
        } else if (line.rfind("serin_api_tls_sessions_resumed_total", 0) == 0) {
            out.tls_resumed += value;
        } else if (line.rfind("serin_heap_bytes{", 0) == 0) {
            const std::string state = label(std::string_view(line.data(), space), "state");
            (state == "in_use" ? out.heap_in_use : out.heap_free) = value;
        } else if (line.rfind("serin_cache_objects{", 0) == 0) {
            out.caches[label(std::string_view(line.data(), space), "resource")].first = value;
        } else if (line.rfind("serin_cache_encoded_bytes{", 0) == 0) {
            out.caches[label(std::string_view(line.data(), space), "resource")].second = value;
        }
    }
    return out;
}

asio::awaitable<SerinCounters> scrape(http::HttpClient& http, std::string url) {
    http::Request request;
    request.url = std::move(url);
    request.timeout = std::chrono::seconds{10};
    auto response = co_await http.send(std::move(request));
    if (!response || response->status != 200) {
        co_return SerinCounters{};
    }
    co_return parse_metrics(response->body);
}

/// One write of serin's in the audit log: when the API server received it and when it answered.
struct AuditWrite {
    std::string verb;      ///< "patch", "update", ...
    std::string resource;  ///< "deployments", "canaries/status", ...
    std::string name;
    SysClock::time_point received;
    SysClock::time_point completed;
};

/// An audit timestamp ("2026-12-06T19:30:12.123456Z", RFC 3339 with microseconds); nullopt when
/// it is not one.
std::optional<SysClock::time_point> audit_time(const std::string& text) {
    std::tm tm{};
    int micros = 0;
    char fraction[8] = {};
    if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6[0-9]Z", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, fraction) != 7) {
        return std::nullopt;
    }
    std::string digits(fraction);
    digits.resize(6, '0');
    micros = std::stoi(digits);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    const std::time_t seconds = timegm(&tm);
    return SysClock::from_time_t(seconds) + std::chrono::microseconds{micros};
}

/// Reads the audit log from `offset` up to its last complete line, counting the requests of
/// `user`: an ordinary request at its ResponseComplete line, a watch at its first line
/// (ResponseStarted once established, as serin counts it; `watches_seen` holds the auditIDs of
/// those counted). Advances `offset`. With `writes`, appends each write of `user` to it.
Requests read_audit(const fs::path& file, std::uintmax_t& offset, const std::string& user,
                    std::set<std::string>& watches_seen,
                    std::vector<AuditWrite>* writes = nullptr) {
    Requests out;
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return out;
    }
    in.seekg(static_cast<std::streamoff>(offset));
    std::string line;
    while (std::getline(in, line)) {
        if (in.eof()) {
            break;  // no newline yet: a line still being written, read next time
        }
        offset += line.size() + 1;
        const Json entry = Json::parse(line, nullptr, false);
        if (!entry.is_object() || entry.value("/user/username"_json_pointer, "") != user) {
            continue;
        }
        const std::string verb = entry.value("verb", "");
        const std::string stage = entry.value("stage", "");
        if (verb == "watch") {
            // Once per request, at whichever of its lines comes first.
            if (!watches_seen.insert(entry.value("auditID", "")).second) {
                continue;
            }
        } else if (stage != "ResponseComplete") {
            continue;
        }
        // A request for no resource (discovery, /version) is named by its path.
        std::string resource = entry.value("/objectRef/resource"_json_pointer, "");
        if (!entry.contains("objectRef")) {
            const std::string uri = entry.value("requestURI", "");
            resource = uri.substr(0, uri.find('?'));
        }
        const std::string sub = entry.value("/objectRef/subresource"_json_pointer, "");
        if (!sub.empty()) {
            resource += "/" + sub;
        }
        out[{verb, resource}] += 1;
        if (writes != nullptr && (verb == "create" || verb == "update" || verb == "patch")) {
            const auto received = audit_time(entry.value("requestReceivedTimestamp", ""));
            const auto completed = audit_time(entry.value("stageTimestamp", ""));
            if (received && completed) {
                writes->push_back({verb, resource,
                                   entry.value("/objectRef/name"_json_pointer, ""), *received,
                                   *completed});
            }
        }
    }
    return out;
}

// ---- the objects ----------------------------------------------------------------------------------

Json deployment_object(const std::string& name) {
    return {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
            {"spec",
             {{"replicas", 1},
              {"selector", {{"matchLabels", {{"app", name}}}}},
              {"template",
               {{"metadata", {{"labels", {{"app", name}}}}},
                {"spec",
                 {{"containers",
                   {{{"name", "app"},
                     {"image", kOldImage},
                     {"ports", {{{"name", "http"}, {"containerPort", 9898}}}}}}}}}}}}}};
}

/// Blue/green on the kubernetes provider: ten iterations a minute apart, no metrics, no hooks.
Json canary_object(const std::string& name, const std::string& interval) {
    return {{"apiVersion", "flagger.app/v1beta1"},
            {"kind", "Canary"},
            {"metadata", {{"name", name}}},
            {"spec",
             {{"provider", "kubernetes"},
              {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
              {"service", {{"port", 80}, {"targetPort", "http"}}},
              {"analysis", {{"interval", interval}, {"threshold", 5}, {"iterations", 10}}}}}};
}

struct Populate {
    kube::KubeClient& client;
    const Layout& layout;
    std::string interval;
    int count = 0;
    int next = 0;
    int failures = 0;
    std::string first_error;
};

asio::awaitable<void> create_one(Populate& p, const kube::ResourceType& type, std::string ns,
                                 Json object) {
    auto created = co_await p.client.create(type, ns, std::move(object));
    if (!created && created.error().kind != ErrorKind::kAlreadyExists) {
        if (p.failures++ == 0) {
            p.first_error = created.error().describe();
        }
    }
}

asio::awaitable<void> populate_worker(Populate& p) {
    while (p.next < p.count) {
        const int index = p.next++;
        const std::string app = "app-" + std::to_string(index);
        // Named locals, not temporaries, inside the co_await arguments (g++ 12).
        Json deployment = deployment_object(app);
        Json canary = canary_object(app, p.interval);
        std::string ns = p.layout.of_index(index);
        co_await create_one(p, kube::types::deployments(), ns, std::move(deployment));
        co_await create_one(p, kube::types::canaries(), std::move(ns), std::move(canary));
    }
}

bool populate(asio::io_context& io, kube::KubeClient& client, const Layout& layout, int count,
              const std::string& interval) {
    for (const std::string& ns : layout.all()) {
        Json namespace_object = {{"apiVersion", "v1"}, {"kind", "Namespace"},
                                 {"metadata", {{"name", ns}}}};
        auto made = run_sync(io, client.create(kube::types::namespaces(), "", namespace_object));
        if (!made && made.error().kind != ErrorKind::kAlreadyExists) {
            std::cerr << "namespace " << ns << ": " << made.error().describe() << "\n";
            return false;
        }
    }
    Populate p{client, layout, interval, count, 0, 0, {}};
    int running = 16;
    for (int w = 0; w < 16; ++w) {
        asio::co_spawn(io, populate_worker(p), [&running](const std::exception_ptr&) { --running; });
    }
    run_until(io, [&running] { return running == 0; }, WallClock::time_point::max());
    if (p.failures > 0) {
        std::cerr << p.failures << " creates failed, the first: " << p.first_error << "\n";
    }
    return p.failures == 0;
}

// ---- the watcher ----------------------------------------------------------------------------------

std::string phase_of(const Json& canary) {
    return canary.value("/status/phase"_json_pointer, "");
}

/// What the watches on Canaries, Deployments and Pods saw, with the times they saw it.
struct Watcher {
    std::set<std::string> initialized;  ///< canaries that have been Initialized (or later)
    std::size_t available = 0;          ///< Deployments app-<i> with an available replica
    WallClock::time_point last_change = WallClock::now();  ///< any object of the three kinds
    /// Released canaries: when their bump was sent, and the latency to Progressing once seen.
    std::unordered_map<std::string, WallClock::time_point> bumped;
    std::unordered_map<std::string, double> progressing;
    /// When the new template was first seen in the Deployment watch (the bump committed, as
    /// serin's informer learns of it), and the latency from there to Progressing.
    std::unordered_map<std::string, WallClock::time_point> template_seen;
    std::unordered_map<std::string, double> progressing_after_seen;
    /// The same moments on the system clock, to place serin's writes (audit log) between them.
    std::unordered_map<std::string, SysClock::time_point> bumped_system;
    std::unordered_map<std::string, SysClock::time_point> template_seen_system;
    std::unordered_map<std::string, SysClock::time_point> progressing_system;
    bool counting_steps = false;
    std::uint64_t steps = 0;  ///< status changes (phase or iteration) of released canaries

    void on_canary(const Json* old_object, const Json& object) {
        last_change = WallClock::now();
        const std::string name = object.value("/metadata/name"_json_pointer, "");
        const std::string phase = phase_of(object);
        if (!phase.empty() && phase != "Initializing") {
            initialized.insert(name);
        }
        const auto bump = bumped.find(name);
        if (bump == bumped.end()) {
            return;
        }
        if (phase == "Progressing" && !progressing.contains(name)) {
            progressing[name] = seconds_since(bump->second);
            progressing_system[name] = SysClock::now();
            if (const auto seen = template_seen.find(name); seen != template_seen.end()) {
                progressing_after_seen[name] = seconds_since(seen->second);
            }
        }
        if (counting_steps && old_object != nullptr) {
            const auto iterations = "/status/iterations"_json_pointer;
            if (phase_of(*old_object) != phase ||
                old_object->value(iterations, 0) != object.value(iterations, 0)) {
                ++steps;
            }
        }
    }

    void on_deployment(const Json* old_object, const Json& object) {
        last_change = WallClock::now();
        const std::string name = object.value("/metadata/name"_json_pointer, "");
        if (name.ends_with("-primary")) {
            return;
        }
        if (bumped.contains(name) && !template_seen.contains(name) &&
            object.value("/spec/template/spec/containers/0/image"_json_pointer, "") == kNewImage) {
            template_seen[name] = WallClock::now();
            template_seen_system[name] = SysClock::now();
        }
        const auto available_pointer = "/status/availableReplicas"_json_pointer;
        const bool was = old_object != nullptr && old_object->value(available_pointer, 0) > 0;
        const bool is = object.value(available_pointer, 0) > 0;
        if (was != is) {
            available = is ? available + 1 : available - 1;
        }
    }
};

/// The watcher's handlers for one kind, for the objects of the benchmark's namespaces only (a
/// watch of the whole cluster also sees the devcluster's own).
kube::EventHandlers handlers(Watcher& watcher, const Layout& layout,
                             void (Watcher::*on)(const Json* old_object, const Json& object)) {
    auto ours = [&layout](const Json& object) {
        return layout.holds(object.value("/metadata/namespace"_json_pointer, ""));
    };
    kube::EventHandlers h;
    h.on_add = [&watcher, on, ours](const kube::ObjectPtr& object) {
        if (ours(*object)) {
            (watcher.*on)(nullptr, *object);
        }
    };
    h.on_update = [&watcher, on, ours](const kube::ObjectPtr& old_object,
                                       const kube::ObjectPtr& object) {
        if (ours(*object)) {
            (watcher.*on)(old_object.get(), *object);
        }
    };
    h.on_delete = [&watcher, ours](const kube::ObjectPtr& object) {
        if (ours(*object)) {
            watcher.last_change = WallClock::now();
        }
    };
    return h;
}

/// The releases: an image bump of each chosen Deployment, sent at once.
struct Bumps {
    kube::KubeClient& client;
    const Layout& layout;
    Watcher& watcher;
    int failures = 0;
};

asio::awaitable<void> bump(Bumps& bumps, std::string name) {
    bumps.watcher.bumped[name] = WallClock::now();
    bumps.watcher.bumped_system[name] = SysClock::now();
    std::string body =
        Json{{"spec",
              {{"template",
                {{"spec", {{"containers", {{{"name", "app"}, {"image", kNewImage}}}}}}}}}}}
            .dump();
    std::string ns = bumps.layout.of_app(name);
    auto done = co_await bumps.client.patch(kube::types::deployments(), ns, name,
                                            kube::PatchType::kStrategicMerge, std::move(body));
    bumps.failures += done ? 0 : 1;
}

/// Sends the bumps of `names` one every `every` (each on its own, so a slow patch delays no
/// other).
asio::awaitable<void> bump_paced(Bumps& bumps, std::vector<std::string> names,
                                 std::chrono::milliseconds every) {
    const auto executor = co_await asio::this_coro::executor;
    asio::steady_timer timer(executor);
    for (std::string& name : names) {
        asio::co_spawn(executor, bump(bumps, std::move(name)), asio::detached);
        timer.expires_after(every);
        co_await timer.async_wait(asio::use_awaitable);
    }
}

// ---- measuring windows ----------------------------------------------------------------------------

/// serin's CPU, RSS and requests over a window.
struct Window {
    double seconds = 0;
    double cpu_seconds = 0;
    double rss_start_mib = 0;
    double rss_end_mib = 0;
    double rss_max_mib = 0;
    int fds_end = 0;
    Requests serin;  ///< from its /metrics
    Requests audit;  ///< from the audit log
    std::vector<AuditWrite> audit_writes;  ///< serin's writes in the window, from the audit log
    double reconciles = 0;
    double reconcile_seconds = 0;
    double queue_waits = 0;
    double queue_wait_seconds = 0;
    double throttled = 0;
    double connections_opened = 0;
    double connections_reused = 0;
    double tls_resumed = 0;
    bool serin_counted = false;

    double cpu_percent() const { return seconds > 0 ? 100 * cpu_seconds / seconds : 0; }
    double per_minute(double count) const { return seconds > 0 ? count * 60 / seconds : 0; }
};

struct Bench {
    asio::io_context& io;
    http::HttpClient& http;
    std::string metrics_url;
    pid_t serin_pid = 0;
    fs::path audit_log;
    std::uintmax_t audit_offset = 0;
    std::set<std::string> watches_seen;

    struct Mark {
        WallClock::time_point at;
        double cpu = 0;
        SerinCounters counters;
    };

    /// Now, for a window's start or end; what the audit log holds up to now is returned and
    /// consumed, so that the next window counts from here.
    Mark mark(Requests* audit = nullptr, std::vector<AuditWrite>* writes = nullptr) {
        Requests read = read_audit(audit_log, audit_offset, kSerinUser, watches_seen, writes);
        if (audit != nullptr) {
            *audit = std::move(read);
        }
        Mark m;
        m.counters = run_sync(io, scrape(http, metrics_url));
        m.cpu = process_cpu_seconds(serin_pid);
        m.at = WallClock::now();
        return m;
    }

    /// Runs the io_context for `duration` (informers and coroutines go on), sampling RSS every
    /// second, and calling `each_sample` every `period` with the seconds since the start, RSS,
    /// open fds and the CPU % of a core since the previous sample.
    Window measure(std::chrono::seconds duration, const std::function<bool()>& stop_early = {},
                   const std::function<void(double, double, int, double)>& each_sample = {},
                   std::chrono::seconds period = std::chrono::seconds{60}) {
        Window w;
        const Mark start = mark();
        w.rss_start_mib = w.rss_max_mib = process_rss_mib(serin_pid);
        auto next_sample = WallClock::now() + std::chrono::seconds{1};
        auto next_period = WallClock::now() + period;
        double period_cpu = start.cpu;
        run_until(
            io, [&] { return stop_early && stop_early(); }, start.at + duration, [&] {
                const auto now = WallClock::now();
                if (now >= next_sample) {
                    w.rss_max_mib = std::max(w.rss_max_mib, process_rss_mib(serin_pid));
                    next_sample = now + std::chrono::seconds{1};
                }
                if (each_sample && now >= next_period) {
                    const double cpu = process_cpu_seconds(serin_pid);
                    const auto seconds = static_cast<double>(period.count());
                    each_sample(std::chrono::duration<double>(now - start.at).count(),
                                process_rss_mib(serin_pid), process_open_fds(serin_pid),
                                100 * (cpu - period_cpu) / seconds);
                    period_cpu = cpu;
                    next_period += period;
                }
            });
        const Mark end = mark(&w.audit, &w.audit_writes);
        w.seconds = std::chrono::duration<double>(end.at - start.at).count();
        w.cpu_seconds = end.cpu - start.cpu;
        w.rss_end_mib = process_rss_mib(serin_pid);
        w.rss_max_mib = std::max(w.rss_max_mib, w.rss_end_mib);
        w.fds_end = process_open_fds(serin_pid);
        w.serin_counted = start.counters.ok && end.counters.ok;
        w.serin = minus(end.counters.requests, start.counters.requests);
        w.reconciles = end.counters.reconciles - start.counters.reconciles;
        w.reconcile_seconds = end.counters.reconcile_seconds - start.counters.reconcile_seconds;
        w.queue_waits = end.counters.queue_waits - start.counters.queue_waits;
        w.queue_wait_seconds = end.counters.queue_wait_seconds - start.counters.queue_wait_seconds;
        w.throttled = end.counters.throttled - start.counters.throttled;
        w.connections_opened = end.counters.connections_opened - start.counters.connections_opened;
        w.connections_reused = end.counters.connections_reused - start.counters.connections_reused;
        w.tls_resumed = end.counters.tls_resumed - start.counters.tls_resumed;
        return w;
    }
};

// ---- what the caches hold ------------------------------------------------------------------------

/// One resource in serin's caches: its objects and the bytes of their encodings (serin's own
/// metrics), beside what the same objects take as JSON text and as JSON trees (nlohmann::json, as
/// a cache of trees would hold them), measured here on a LIST of them.
struct CacheRow {
    std::string resource;
    double objects = 0;
    double encoded_bytes = 0;
    std::size_t listed = 0;
    double text_bytes = 0;  ///< per object, managedFields left out as serin does
    double tree_bytes = 0;  ///< per object: heap in use after parsing the text, minus before
};

std::vector<CacheRow> measure_caches(asio::io_context& io, kube::KubeClient& client,
                                     const Layout& layout, const SerinCounters& counters) {
    std::vector<CacheRow> rows;
    for (const auto& type : {kube::types::canaries(), kube::types::deployments(),
                             kube::types::services()}) {
        CacheRow row;
        row.resource = type.group.empty() ? type.resource : type.resource + "." + type.group;
        if (auto it = counters.caches.find(row.resource); it != counters.caches.end()) {
            row.objects = it->second.first;
            row.encoded_bytes = it->second.second;
        }
        std::vector<std::string> texts;
        kube::ListOptions options;
        options.limit = 500;
        do {
            auto page = run_sync(io, client.list(type, layout.watched(), options));
            if (!page) {
                break;
            }
            for (Json& item : page->items) {
                if (!layout.holds(item.value("/metadata/namespace"_json_pointer, ""))) {
                    continue;
                }
                item["metadata"].erase("managedFields");
                texts.push_back(item.dump());
            }
            options.continue_token = page->continue_token;
        } while (!options.continue_token.empty());
        row.listed = texts.size();
        if (texts.empty()) {
            rows.push_back(row);
            continue;
        }
        std::vector<Json> trees;
        trees.reserve(texts.size());
        const std::size_t before = mallinfo2().uordblks;
        for (const std::string& text : texts) {
            trees.push_back(Json::parse(text));
        }
        const std::size_t after = mallinfo2().uordblks;
        double text_total = 0;
        for (const std::string& text : texts) {
            text_total += static_cast<double>(text.size());
        }
        const auto count = static_cast<double>(texts.size());
        row.text_bytes = text_total / count;
        row.tree_bytes = static_cast<double>(after - before) / count;
        rows.push_back(row);
    }
    return rows;
}

// ---- Flagger's polling, modelled ------------------------------------------------------------------

/// What Flagger reads from the API server on one tick of one canary, by flagger-spec.md §2.3 (the
/// tick re-reads the Canary, §2.1), for blue/green on the kubernetes provider with no metrics,
/// webhooks, autoscaler or tracked configs. Each object read is counted once per tick although
/// several steps read it: a lower bound.
struct FlaggerTick {
    const char* what;
    int at_rest;      ///< a canary Initialized or Succeeded, nothing changed
    int progressing;  ///< a canary in its analysis
};

constexpr FlaggerTick kFlaggerTick[] = {
    {"get canaries: the tick re-reads its Canary (§2.1)", 1, 1},
    {"get deployments: the target, for its labels and pod-template hash (steps 2, 12)", 1, 1},
    {"get services: S-canary and S-primary reconciled (step 3)", 2, 2},
    {"get deployments: X-primary, created if missing (step 6)", 1, 1},
    {"get services: the apex S reconciled (step 8)", 1, 1},
    {"get deployments: X-primary readiness (step 14)", 0, 1},
    {"get deployments: the target's readiness (step 18)", 0, 1},
    {"update canaries/status: the iteration or phase written (§2.4)", 0, 1},
};

int flagger_reads(bool progressing) {
    int sum = 0;
    for (const FlaggerTick& t : kFlaggerTick) {
        const bool write = std::string_view(t.what).starts_with("update");
        sum += write ? 0 : progressing ? t.progressing : t.at_rest;
    }
    return sum;
}

int flagger_writes() {
    int sum = 0;
    for (const FlaggerTick& t : kFlaggerTick) {
        sum += std::string_view(t.what).starts_with("update") ? t.progressing : 0;
    }
    return sum;
}

// ---- printing --------------------------------------------------------------------------------

std::string fixed(double value, int digits = 1) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
    return buffer;
}

const std::vector<std::string> kVerbs = {"get", "list", "watch", "create", "update", "patch",
                                         "delete"};

std::string verbs_per_minute(const Window& w, const Requests& requests) {
    const auto verbs = by_verb(requests);
    std::string out;
    for (const std::string& verb : kVerbs) {
        const auto it = verbs.find(verb);
        out += " " + fixed(w.per_minute(it == verbs.end() ? 0 : it->second)) + " |";
    }
    return out;
}

void print_breakdown(const std::string& title, const Requests& requests) {
    std::printf("\n%s:", title.c_str());
    if (requests.empty()) {
        std::printf(" none");
    }
    for (const auto& [key, count] : requests) {
        std::printf(" %s %s x %.0f;", key.first.c_str(), key.second.c_str(), count);
    }
    std::printf("\n");
}

/// The first write of serin's to `resource` `name` the API server received at or after `from`.
const AuditWrite* first_write(const std::vector<AuditWrite>& writes, const std::string& resource,
                              const std::string& name, SysClock::time_point from) {
    const AuditWrite* first = nullptr;
    for (const AuditWrite& w : writes) {
        if (w.resource == resource && w.name == name && w.received >= from &&
            (first == nullptr || w.received < first->received)) {
            first = &w;
        }
    }
    return first;
}

/// Where each release's bump -> Progressing went, placing serin's two writes of the release's
/// first reconcile (the target's scale-up, then the status) from the audit log between what
/// the benchmark's watches saw. Only releases with every moment found are counted.
///
/// Each release's time is also split in two: the cluster's share (the API server committing
/// and fanning out the bump, answering serin's two writes, fanning out the status) and serin's
/// share (from the new template visible in a watch to its scale-up received, which also holds
/// the delivery of the watch event to serin, and from the scale-up answered to the status
/// received). The cluster's share is what a release would take with a serin that spent no time
/// at all, given the same answers from the API server.
void print_release_breakdown(const Watcher& watcher, const std::vector<AuditWrite>& writes) {
    std::vector<double> to_seen, to_scale, scale_took, to_status, status_took, to_watch;
    std::vector<double> cluster_share, serin_share;
    for (const auto& [name, bumped] : watcher.bumped_system) {
        const auto seen = watcher.template_seen_system.find(name);
        const auto progressing = watcher.progressing_system.find(name);
        const AuditWrite* scale = first_write(writes, "deployments", name, bumped);
        const AuditWrite* status = first_write(writes, "canaries/status", name, bumped);
        if (seen == watcher.template_seen_system.end() ||
            progressing == watcher.progressing_system.end() || scale == nullptr ||
            status == nullptr) {
            continue;
        }
        const auto secs = [](SysClock::duration d) {
            return std::chrono::duration<double>(d).count();
        };
        to_seen.push_back(secs(seen->second - bumped));
        to_scale.push_back(secs(scale->received - seen->second));
        scale_took.push_back(secs(scale->completed - scale->received));
        to_status.push_back(secs(status->received - scale->completed));
        status_took.push_back(secs(status->completed - status->received));
        to_watch.push_back(secs(progressing->second - status->completed));
        cluster_share.push_back(to_seen.back() + scale_took.back() + status_took.back() +
                                to_watch.back());
        serin_share.push_back(to_scale.back() + to_status.back());
    }
    std::printf("\nWhere bump -> Progressing went, per release (%zu of %zu placed; serin's writes "
                "from the audit log, the rest from this benchmark's watches):\n\n",
                to_seen.size(), watcher.bumped_system.size());
    std::printf("| segment | p50 (s) | p99 (s) | max (s) |\n|---|---|---|---|\n");
    const auto row = [](const char* what, const std::vector<double>& v) {
        std::printf("| %s | %.3f | %.3f | %.3f |\n", what, percentile(v, 0.5), percentile(v, 0.99),
                    percentile(v, 1.0));
    };
    row("bump sent -> new template seen in the benchmark's watch", to_seen);
    row("new template seen -> serin's scale-up of the target received", to_scale);
    row("scale-up received -> answered", scale_took);
    row("scale-up answered -> serin's status write (Progressing) received", to_status);
    row("status write received -> answered", status_took);
    row("status write answered -> Progressing seen in the benchmark's watch", to_watch);
    row("the cluster's share: bump seen, both writes answered, status seen", cluster_share);
    row("serin's share: template seen -> scale-up, scale-up answered -> status", serin_share);
}

int parse_interval_seconds(const std::string& interval) {
    if (interval.empty()) {
        return 60;
    }
    const int value = std::atoi(interval.c_str());
    switch (interval.back()) {
        case 'h': return value * 3600;
        case 'm': return value * 60;
        default: return value;
    }
}

/// The smallest prefix whose range holds `services` ClusterIPs, with room to spare, and not
/// wider than a /12 (the API server's limit).
std::string service_cidr_for(int services) {
    int bits = 8;
    while ((1 << bits) < 2 * services + 16 && bits < 20) {
        ++bits;
    }
    return "10.0.0.0/" + std::to_string(32 - bits);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"The controller at N canaries: initialization, rest and releases, measured from "
                 "outside, beside a model of Flagger's polling"};
    int canaries = 1000;
    int releases = 100;
    int rest_seconds = 120;
    int release_seconds = 150;
    int soak_seconds = 0;
    int sample_seconds = 60;
    int quiet_seconds = 20;
    int settle_timeout = 900;
    int setup_timeout = 1800;
    std::string interval = "1m";
    std::string serin_binary = SERIN_BINARY;
    bool keep = false;
    app.add_option("--canaries", canaries, "Deployments with a Canary each")
        ->check(CLI::PositiveNumber);
    app.add_option("--releases", releases, "image bumps after the rest window");
    Layout layout;
    app.add_option("--namespaces", layout.namespaces,
                   "spread the apps over this many namespaces (default 1: all in \"bench\")")
        ->check(CLI::PositiveNumber);
    int bump_every_ms = 0;
    app.add_option("--bump-every-ms", bump_every_ms,
                   "send the bumps this many ms apart (default 0: all at once)");
    app.add_option("--rest-seconds", rest_seconds, "length of the rest window")
        ->check(CLI::PositiveNumber);
    app.add_option("--release-seconds", release_seconds,
                   "length of the window from the first bump (at least until all are Progressing)")
        ->check(CLI::PositiveNumber);
    app.add_option("--soak-seconds", soak_seconds,
                   "the soak: this long at rest after the rest window (1800 for 30 minutes), RSS "
                   "and open fds sampled every --sample-seconds, then the releases");
    app.add_option("--sample-seconds", sample_seconds, "the soak's sampling period")
        ->check(CLI::PositiveNumber);
    app.add_option("--quiet-seconds", quiet_seconds,
                   "settled: no Deployment, Pod or Canary changed for this long");
    app.add_option("--settle-timeout", settle_timeout, "seconds to wait for the cluster to settle");
    app.add_option("--timeout", setup_timeout,
                   "seconds for each of: objects available, every canary initialized");
    app.add_option("--interval", interval, "the canaries' analysis interval");
    app.add_option("--serin", serin_binary, "the serin binary");
    std::vector<std::string> serin_flags;
    app.add_option("--serin-flag", serin_flags,
                   "a flag passed on to serin, e.g. --serin-flag=-concurrent-reconciles=2");
    app.add_option("--keep", keep, "keep the cluster's folder (logs, audit log) afterwards");
    CLI11_PARSE(app, argc, argv);
    spdlog::set_level(spdlog::level::warn);
    releases = std::clamp(releases, 0, canaries);

    // ---- the cluster ----
    char dir_template[] = "/tmp/serin-controller-bench-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) {
        std::perror("mkdtemp");
        return 1;
    }
    const fs::path work_dir = dir_template;
    devcluster::DevClusterOptions options;
    options.work_dir = work_dir;
    options.start_meshsim = false;
    options.start_prometheus = false;
    options.service_cidr = service_cidr_for(3 * canaries);
    options.audit_log = work_dir / "audit.log";
    options.audit_users = {kSerinUser};
    options.keep = keep;
    std::cerr << "starting the devcluster (Service range " << options.service_cidr << ")...\n";
    auto started = devcluster::DevCluster::start(options);
    if (!started) {
        std::cerr << "devcluster: " << started.error().describe() << "\n";
        return 1;
    }
    devcluster::DevCluster& cluster = **started;
    // serin's own identity, so that the audit log tells its requests from everyone else's.
    const std::string serin_token = "serin-bench-" + std::to_string(::getpid()) + "-token";
    if (auto added = cluster.add_token_user(serin_token, kSerinUser, {"system:masters"}); !added) {
        std::cerr << "token: " << added.error().describe() << "\n";
        return 1;
    }
    const fs::path serin_kubeconfig = work_dir / "kubeconfig-serin-bench";
    {
        std::ifstream in(cluster.kubeconfig_path());
        std::stringstream text;
        text << in.rdbuf();
        std::string config = text.str();
        const std::size_t at = config.find(cluster.admin_token());
        if (at == std::string::npos) {
            std::cerr << "the admin kubeconfig has no token\n";
            return 1;
        }
        config.replace(at, cluster.admin_token().size(), serin_token);
        std::ofstream(serin_kubeconfig) << config;
    }

    asio::io_context io;
    SystemClock clock;
    kube::RestClientOptions rest_options;
    rest_options.write_qps = 0;  // no client-side limit: setup and releases, not what is measured
    auto kube_client =
        kube::make_rest_client(io.get_executor(), cluster.cluster_config(), clock, rest_options);
    auto metrics_http = http::make_beast_client(io.get_executor(), {});
    if (!kube_client || !metrics_http) {
        std::cerr << "clients failed\n";
        return 1;
    }
    kube::KubeClient& client = **kube_client;

    // ---- the objects ----
    std::cerr << "creating " << canaries << " Deployments and Canaries...\n";
    auto t0 = WallClock::now();
    if (!populate(io, client, layout, canaries, interval)) {
        return 1;
    }
    const double create_seconds = seconds_since(t0);
    std::cerr << "created in " << fixed(create_seconds) << " s\n";

    Watcher watcher;
    kube::InformerOptions informer_options;
    informer_options.ns = layout.watched();
    // Trees, not encodings: the watcher shares the cluster's two cores, so it skips encoding
    // each object it is sent and decoding the one it replaces (its memory is not measured). Its
    // CPU in the burst did not clearly fall: 0.57-0.77 s in runs AE-AG against 0.79 in AD.
    informer_options.compact = false;
    kube::Informer canary_informer(client, clock, kube::types::canaries(), informer_options);
    kube::Informer deployment_informer(client, clock, kube::types::deployments(),
                                       informer_options);
    kube::Informer pod_informer(client, clock, kube::types::pods(), informer_options);
    canary_informer.add_handlers(handlers(watcher, layout, &Watcher::on_canary));
    deployment_informer.add_handlers(handlers(watcher, layout, &Watcher::on_deployment));
    kube::EventHandlers pod_handlers;
    pod_handlers.on_add = [&watcher](const kube::ObjectPtr&) {
        watcher.last_change = WallClock::now();
    };
    pod_handlers.on_update = [&watcher](const kube::ObjectPtr&, const kube::ObjectPtr&) {
        watcher.last_change = WallClock::now();
    };
    pod_handlers.on_delete = pod_handlers.on_add;
    pod_informer.add_handlers(pod_handlers);
    canary_informer.start(io.get_executor());
    deployment_informer.start(io.get_executor());
    pod_informer.start(io.get_executor());

    const auto n = static_cast<std::size_t>(canaries);
    std::cerr << "waiting for every Deployment to be available...\n";
    t0 = WallClock::now();
    if (!run_until(io, [&] { return watcher.available >= n; },
                   t0 + std::chrono::seconds{setup_timeout})) {
        std::cerr << "timed out: " << watcher.available << " of " << n << " available\n";
        return 1;
    }
    std::cerr << "available after " << fixed(seconds_since(t0)) << " s\n";

    // ---- serin ----
    auto port = devcluster::pick_free_port();
    if (!port) {
        std::cerr << port.error().describe() << "\n";
        return 1;
    }
    devcluster::ProcessSpec spec;
    spec.name = "serin";
    spec.executable = serin_binary;
    spec.args = {"-kubeconfig=" + serin_kubeconfig.string(), "-mesh-provider=kubernetes",
                 "-log-level=info", "-port=" + std::to_string(*port)};
    if (!layout.watched().empty()) {
        spec.args.push_back("-namespace=" + layout.watched());
    }
    spec.args.insert(spec.args.end(), serin_flags.begin(), serin_flags.end());
    spec.log_file = work_dir / "logs" / "serin.log";
    std::cerr << "starting serin...\n";
    const auto serin_start = WallClock::now();
    auto serin = devcluster::Process::spawn(spec);
    if (!serin) {
        std::cerr << "serin: " << serin.error().describe() << "\n";
        return 1;
    }
    Bench bench{io, **metrics_http, "http://127.0.0.1:" + std::to_string(*port) + "/metrics",
                serin->pid(), options.audit_log, 0, {}};
    double rss_init_max = 0;
    const bool initialized = run_until(
        io, [&] { return watcher.initialized.size() >= n || !serin->running(); },
        serin_start + std::chrono::seconds{setup_timeout},
        [&] { rss_init_max = std::max(rss_init_max, process_rss_mib(bench.serin_pid)); });
    const double init_seconds = seconds_since(serin_start);
    const double init_cpu = process_cpu_seconds(bench.serin_pid);
    const double rss_after_init = process_rss_mib(bench.serin_pid);
    if (!initialized || !serin->running()) {
        std::cerr << "not initialized: " << watcher.initialized.size() << " of " << n << ", serin "
                  << serin->describe_exit() << "\n"
                  << serin->log_tail() << "\n";
        return 1;
    }
    std::cerr << "all initialized after " << fixed(init_seconds) << " s\n";
    Requests init_audit =
        read_audit(options.audit_log, bench.audit_offset, kSerinUser, bench.watches_seen);

    // ---- settle, then at rest ----
    std::cerr << "settling (nothing changed for " << quiet_seconds << " s)...\n";
    t0 = WallClock::now();
    const bool settled = run_until(
        io, [&] { return seconds_since(watcher.last_change) >= quiet_seconds; },
        t0 + std::chrono::seconds{settle_timeout});
    const double settle_seconds = seconds_since(t0);
    std::cerr << (settled ? "settled after " : "not settled, measuring anyway after ")
              << fixed(settle_seconds) << " s; at rest for " << rest_seconds << " s...\n";
    const Window rest = bench.measure(std::chrono::seconds{rest_seconds});
    const SerinCounters rest_end = run_sync(io, scrape(**metrics_http, bench.metrics_url));
    const std::vector<CacheRow> cache_rows = measure_caches(io, client, layout, rest_end);

    struct Sample {
        double seconds;
        double rss;
        int fds;
        double cpu;
    };
    std::vector<Sample> soak;
    Window soak_window;
    if (soak_seconds > 0) {
        std::cerr << "soak: at rest for " << soak_seconds << " s...\n";
        soak.push_back({0, process_rss_mib(bench.serin_pid), process_open_fds(bench.serin_pid), 0});
        soak_window = bench.measure(
            std::chrono::seconds{soak_seconds}, {},
            [&](double seconds, double rss, int fds, double cpu) {
                soak.push_back({seconds, rss, fds, cpu});
                std::cerr << "  +" << fixed(seconds, 0) << " s: RSS " << fixed(rss) << " MiB, "
                          << fds << " fds\n";
            },
            std::chrono::seconds{sample_seconds});
    }

    // ---- releases ----
    Window during;
    std::vector<double> latencies;
    std::vector<double> latencies_after_seen;
    if (releases > 0) {
        std::cerr << releases << " releases"
                  << (bump_every_ms > 0 ? ", one bump every " + std::to_string(bump_every_ms) + " ms"
                                        : std::string(" at once"))
                  << "...\n";
        watcher.counting_steps = true;
        Bumps bumps{client, layout, watcher};
        std::function<bool()> all_progressing = [&] {
            return watcher.progressing.size() >= static_cast<std::size_t>(releases);
        };
        // The bumps go out from inside the window, so its requests and CPU include them.
        bool launched = false;
        during = bench.measure(std::chrono::seconds{release_seconds}, [&] {
            if (!launched) {
                launched = true;
                std::vector<std::string> names;
                for (int r = 0; r < releases; ++r) {
                    const int index = static_cast<int>(static_cast<long>(r) * canaries / releases);
                    names.push_back("app-" + std::to_string(index));
                }
                if (bump_every_ms > 0) {
                    asio::co_spawn(io,
                                   bump_paced(bumps, std::move(names),
                                              std::chrono::milliseconds{bump_every_ms}),
                                   asio::detached);
                } else {
                    for (std::string& name : names) {
                        asio::co_spawn(io, bump(bumps, std::move(name)), asio::detached);
                    }
                }
            }
            return false;
        });
        for (const auto& entry : watcher.progressing) {
            latencies.push_back(entry.second);
        }
        for (const auto& entry : watcher.progressing_after_seen) {
            latencies_after_seen.push_back(entry.second);
        }
        if (bumps.failures > 0 || !all_progressing()) {
            std::cerr << bumps.failures << " bumps failed; " << watcher.progressing.size() << " of "
                      << releases << " reached Progressing in the window\n";
        }
    }

    // ---- tables ----
    const int interval_s = parse_interval_seconds(interval);
    const double ticks_per_minute = 60.0 / interval_s;
    const double flagger_rest_per_min = canaries * flagger_reads(false) * ticks_per_minute;

    std::string flags_given;
    for (const std::string& flag : serin_flags) {
        flags_given += " " + flag;
    }
    const std::string pacing =
        bump_every_ms > 0 ? "one bump every " + std::to_string(bump_every_ms) + " ms" : "at once";
    const std::string where = layout.namespaces <= 1
                                  ? "all in one namespace, serin watching it"
                                  : "over " + std::to_string(layout.namespaces) +
                                        " namespaces, serin watching the whole cluster";
    std::printf("Serin %s%s at %d canaries (blue/green, provider kubernetes, interval %s, no "
                "metrics; %s); %d releases, %s.\n\n",
                serin_binary.c_str(), flags_given.c_str(), canaries, interval.c_str(),
                where.c_str(), releases, pacing.c_str());
    std::printf("| %d canaries | serin |\n|---|---|\n", canaries);
    std::printf("| objects created (Deployment + Canary each) | %.1f s |\n", create_seconds);
    std::printf("| serin start -> every Canary Initialized | %.1f s |\n", init_seconds);
    std::printf("| CPU during initialization | %.1f s (%.0f%% of a core) |\n", init_cpu,
                100 * init_cpu / init_seconds);
    std::printf("| RSS after initialization (peak during it) | %.1f MiB (%.1f) |\n", rss_after_init,
                rss_init_max);
    std::printf("| settle (no Deployment, Pod or Canary change for %d s) | %.0f s%s |\n",
                quiet_seconds, settle_seconds, settled ? "" : ", not reached");
    std::printf("| at rest: window | %.0f s |\n", rest.seconds);
    std::printf("| at rest: RSS (end, max) | %.1f MiB, %.1f MiB |\n", rest.rss_end_mib,
                rest.rss_max_mib);
    std::printf("| at rest: CPU | %.2f%% of a core (%.2f s) |\n", rest.cpu_percent(),
                rest.cpu_seconds);
    std::printf("| at rest: API requests / min (serin's counter, audit log) | %.1f, %.1f |\n",
                rest.per_minute(total(rest.serin)), rest.per_minute(total(rest.audit)));
    std::printf("| at rest: reconciles run | %.0f (%.1f / min) |\n", rest.reconciles,
                rest.per_minute(rest.reconciles));
    std::printf("| at rest: open fds | %d |\n", rest.fds_end);
    std::printf("| at rest: heap in use; held free (serin_heap_bytes) | %.1f MiB; %.1f MiB |\n",
                rest_end.heap_in_use / (1024.0 * 1024.0), rest_end.heap_free / (1024.0 * 1024.0));
    if (releases > 0) {
        std::printf("| releases: bump -> Progressing p50 / p99 / max | %.3f / %.3f / %.3f s (%zu "
                    "of %d seen) |\n",
                    percentile(latencies, 0.5), percentile(latencies, 0.99),
                    percentile(latencies, 1.0), latencies.size(), releases);
        std::printf("| releases: new template seen in a watch -> Progressing p50 / p99 / max | "
                    "%.3f / %.3f / %.3f s (%zu) |\n",
                    percentile(latencies_after_seen, 0.5), percentile(latencies_after_seen, 0.99),
                    percentile(latencies_after_seen, 1.0), latencies_after_seen.size());
        std::printf("| releases: window from the first bump | %.0f s |\n", during.seconds);
        std::printf("| releases: RSS (end, max) | %.1f MiB, %.1f MiB |\n", during.rss_end_mib,
                    during.rss_max_mib);
        std::printf("| releases: CPU | %.2f%% of a core (%.2f s) |\n", during.cpu_percent(),
                    during.cpu_seconds);
        const double steps = static_cast<double>(watcher.steps);
        std::printf("| releases: analysis steps seen (phase or iteration changes) | %.0f |\n",
                    steps);
        std::printf("| releases: API requests (serin's counter, audit log) | %.0f, %.0f |\n",
                    total(during.serin), total(during.audit));
        if (steps > 0) {
            const auto writes = [](const Requests& r) {
                const auto v = by_verb(r);
                double sum = 0;
                for (const char* verb : {"create", "update", "patch", "delete"}) {
                    sum += v.contains(verb) ? v.at(verb) : 0;
                }
                return sum;
            };
            std::printf("| releases: API requests per step, all (writes) | %.2f (%.2f) |\n",
                        total(during.audit) / steps, writes(during.audit) / steps);
        }
        std::printf("| releases: reconciles run; mean duration | %.0f; %.3f s |\n",
                    during.reconciles,
                    during.reconciles > 0 ? during.reconcile_seconds / during.reconciles : 0.0);
        std::printf("| releases: work queue waits; mean wait | %.0f; %.3f s |\n",
                    during.queue_waits,
                    during.queue_waits > 0 ? during.queue_wait_seconds / during.queue_waits : 0.0);
        std::printf("| releases: writes that waited for the token bucket | %.0f |\n",
                    during.throttled);
        std::printf("| releases: API connections opened (TLS resumed); requests on kept-alive "
                    "ones | %.0f (%.0f); %.0f |\n",
                    during.connections_opened, during.tls_resumed, during.connections_reused);
    }
    if (!rest.serin_counted) {
        std::printf("\n(serin's /metrics could not be read: its counts are missing)\n");
    }
    if (releases > 0) {
        print_release_breakdown(watcher, during.audit_writes);
    }

    std::printf("\nWhat serin's caches hold at rest (bytes per object; the JSON tree is what a cache "
                "of nlohmann::json trees would hold, measured by parsing the listed objects):\n\n");
    std::printf("| resource | objects in serin's cache | JSON text | JSON tree (heap) | serin's "
                "encoding | tree / encoding |\n|---|---|---|---|---|---|\n");
    for (const CacheRow& row : cache_rows) {
        const double encoded = row.objects > 0 ? row.encoded_bytes / row.objects : 0;
        std::printf("| %s | %.0f (listed: %zu) | %.0f | %.0f | %.0f | %.1f |\n",
                    row.resource.c_str(), row.objects, row.listed, row.text_bytes, row.tree_bytes,
                    encoded, encoded > 0 ? row.tree_bytes / encoded : 0.0);
    }

    std::printf("\nAPI requests per minute by verb:\n\n");
    std::printf("| per minute | get | list | watch | create | update | patch | delete |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    std::printf("| serin at rest, its counter |%s\n", verbs_per_minute(rest, rest.serin).c_str());
    std::printf("| serin at rest, audit log |%s\n", verbs_per_minute(rest, rest.audit).c_str());
    if (releases > 0) {
        std::printf("| serin during %d releases, its counter |%s\n", releases,
                    verbs_per_minute(during, during.serin).c_str());
        std::printf("| serin during %d releases, audit log |%s\n", releases,
                    verbs_per_minute(during, during.audit).c_str());
    }
    std::printf("| Flagger's polling (model) at rest | %.0f | 0 | 0 | 0 | 0 | 0 | 0 |\n",
                flagger_rest_per_min);
    if (releases > 0) {
        const double progressing_reads =
            releases * flagger_reads(true) + (canaries - releases) * flagger_reads(false);
        std::printf("| Flagger's polling (model), %d progressing | %.0f | 0 | 0 | 0 | %.0f | 0 | 0 "
                    "|\n",
                    releases, progressing_reads * ticks_per_minute,
                    releases * flagger_writes() * ticks_per_minute);
    }

    std::printf("\nFlagger's polling, modelled from flagger-spec.md §2 for the same %d canaries "
                "and %s interval (one tick per canary per interval; each object a tick reads "
                "counted once):\n\n",
                canaries, interval.c_str());
    std::printf("| a tick of one canary | at rest | progressing |\n|---|---|---|\n");
    for (const FlaggerTick& t : kFlaggerTick) {
        std::printf("| %s | %d | %d |\n", t.what, t.at_rest, t.progressing);
    }
    std::printf("| requests a tick | %d | %d |\n", flagger_reads(false),
                flagger_reads(true) + flagger_writes());
    std::printf("\n| %d canaries, %s interval | Flagger (model) | serin (audit log) |\n|---|---|---|\n",
                canaries, interval.c_str());
    std::printf("| API requests / min at rest | %.0f | %.1f |\n", flagger_rest_per_min,
                rest.per_minute(total(rest.audit)));
    if (releases > 0 && watcher.steps > 0) {
        std::printf("| API requests per analysis step | %d | %.2f |\n",
                    flagger_reads(true) + flagger_writes(),
                    total(during.audit) / static_cast<double>(watcher.steps));
    }

    print_breakdown("Requests of serin's user in the audit log during initialization", init_audit);
    print_breakdown("Requests of serin's user in the audit log at rest", rest.audit);
    print_breakdown("serin's counter at rest", rest.serin);
    if (releases > 0) {
        print_breakdown("Requests of serin's user in the audit log during the releases",
                        during.audit);
    }
    if (!soak.empty()) {
        std::printf("\nSoak: at rest for %d s after the rest window, then the releases; API "
                    "requests at rest over the soak: %.1f / min (audit log), reconciles %.0f.\n\n",
                    soak_seconds, soak_window.per_minute(total(soak_window.audit)),
                    soak_window.reconciles);
        std::printf("| soak time (s) | RSS (MiB) | open fds | CPU (%% of a core, since the last "
                    "sample) |\n|---|---|---|---|\n");
        for (const Sample& s : soak) {
            std::printf("| %.0f | %.1f | %d | %.2f |\n", s.seconds, s.rss, s.fds, s.cpu);
        }
        if (releases > 0) {
            std::printf("| after %d releases (+%.0f s) | %.1f | %d | %.2f |\n", releases,
                        during.seconds, during.rss_end_mib, during.fds_end,
                        during.cpu_percent());
        }
    }
    std::fflush(stdout);
    serin->stop(std::chrono::seconds{10});
    // The cluster keeps a given folder (logs, the audit log): it goes too unless --keep. After a
    // failure it is left for its logs.
    started->reset();
    if (!keep) {
        std::error_code ec;
        fs::remove_all(work_dir, ec);
    }
    return 0;
}
