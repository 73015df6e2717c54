#include "tests/chaos/campaign.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "devcluster/dev_cluster.hpp"
#include "devcluster/process.hpp"
#include "tests/chaos/latency_proxy.hpp"
#include "tests/e2e/e2e.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/test_http_server.hpp"

namespace serin::chaos {

namespace asio = boost::asio;
namespace fs = std::filesystem;
namespace types = kube::types;
using e2e::Json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// ---- invariants and faults, by name ----------------------------------------------------------

const char* const kHealthyNotSucceeded = "healthy-not-succeeded";
const char* const kHealthyPrimaryOld = "healthy-primary-not-new";
const char* const kFailingNotFailed = "failing-not-failed";
const char* const kFailingPrimaryTouched = "failing-primary-touched";
const char* const kPrimaryRolledTwice = "primary-rolled-twice";
const char* const kPrimaryRolledOutside = "primary-rolled-outside-release";
const char* const kReleaseStuck = "release-stuck";
const char* const kEarlyStep = "early-step";
const char* const kAlertLost = "alert-lost";
const char* const kAlertLostAtExit = "alert-lost-at-serin-exit";
const char* const kAlertTwice = "alert-sent-twice";
const char* const kApiRate = "api-rate-over-bound";

const std::vector<std::string> kInvariants = {
    kHealthyNotSucceeded, kHealthyPrimaryOld, kFailingNotFailed, kFailingPrimaryTouched,
    kPrimaryRolledTwice,  kPrimaryRolledOutside, kReleaseStuck,   kEarlyStep,
    kAlertLost,           kAlertLostAtExit,   kAlertTwice,        kApiRate};

enum class Fault {
    kKillLeader,
    kKillAtPromotion,
    kSigtermHandover,
    kApiserverRestart,
    kEtcdRestart,
    kPrometheusOutage,
    kWebhookSlow,
    kWebhookHang,
    kSlowNetwork,
};
constexpr int kFaultKinds = 9;

std::string fault_name(Fault f) {
    switch (f) {
        case Fault::kKillLeader: return "kill -9 leader";
        case Fault::kKillAtPromotion: return "kill -9 leader at Promoting";
        case Fault::kSigtermHandover: return "SIGTERM hand-over";
        case Fault::kApiserverRestart: return "kube-apiserver restart";
        case Fault::kEtcdRestart: return "etcd restart";
        case Fault::kPrometheusOutage: return "Prometheus outage";
        case Fault::kWebhookSlow: return "slow webhooks";
        case Fault::kWebhookHang: return "hanging webhooks";
        case Fault::kSlowNetwork: return "slow network to the API server";
    }
    return "?";
}

const std::string kImage = "ghcr.io/stefanprodan/podinfo:6.0.";
// Long enough that a step taken at once by a serin that just took over (about 4 s after the old
// one went: the lease, then the informers' sync) is told apart from a paced one.
constexpr auto kInterval = 8s;              // istio canaries without webhooks
constexpr auto kHookInterval = 10s;         // canaries with a webhook (its timeout is 3 s)
constexpr auto kHookTimeout = 3s;
constexpr auto kCooldown = 12s;             // between a canary's releases: its metric windows
constexpr auto kReleaseTimeout = 240s;
constexpr auto kPoll = 200ms;
constexpr auto kSample = 5s;                // serin's /metrics

/// Runs one API call of the driver's; nullopt when it fails or does not finish in time (the API
/// server may be away: that is what the campaign does to it).
template <class T>
std::optional<T> attempt(asio::io_context& io, asio::awaitable<Result<T>> task,
                         Clock::duration timeout) {
    try {
        auto result = testing::run(io, std::move(task), timeout);
        if (result) {
            return std::move(*result);
        }
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

std::string str(const Json& j, const std::string& pointer) {
    const Json v = e2e::at(j, pointer);
    return v.is_string() ? v.get<std::string>() : std::string();
}

int num(const Json& j, const std::string& pointer) {
    const Json v = e2e::at(j, pointer);
    return v.is_number() ? v.get<int>() : 0;
}

// ---- the driver's servers: webhooks and the alert receiver -------------------------------------

/// What the servers' thread and the driver share.
struct Shared {
    std::atomic<int> hook_mode{0};  ///< 0 answers at once, 1 after 1.5 s, 2 never
    std::mutex mutex;
    std::set<std::string> denied;                  ///< canaries whose hook says no
    std::map<std::pair<std::string, std::string>, int> alerts;  ///< (canary, message) -> count
    std::vector<std::string> alert_log;
    std::uint64_t hook_calls = 0;

    bool denies(const std::string& canary) {
        std::lock_guard lock(mutex);
        ++hook_calls;
        return denied.contains(canary);
    }
    void set_denied(const std::string& canary, bool deny) {
        std::lock_guard lock(mutex);
        if (deny) {
            denied.insert(canary);
        } else {
            denied.erase(canary);
        }
    }
    void record_alert(const std::string& body) {
        const Json slack = Json::parse(body, nullptr, false);
        std::string author = str(slack, "/attachments/0/author_name");
        const std::string text = str(slack, "/attachments/0/text");
        author = author.substr(0, author.find('.'));
        std::lock_guard lock(mutex);
        ++alerts[{author, text}];
        alert_log.push_back(author + ": " + text);
    }
    int alert_count(const std::string& canary, const std::string& message) {
        std::lock_guard lock(mutex);
        auto it = alerts.find({canary, message});
        return it == alerts.end() ? 0 : it->second;
    }
};

test::TestHttpServer::Handler server_handler(Shared& shared) {
    return [&shared](const test::TestRequest& request,
                     test::TestResponseWriter& writer) -> asio::awaitable<void> {
        const std::string& path = request.target;
        if (path == "/alerts") {
            shared.record_alert(request.body);
            co_await writer.respond(200, "ok");
            co_return;
        }
        if (path.rfind("/hook/", 0) != 0) {
            co_await writer.respond(404, "no such path");
            co_return;
        }
        const bool deny = shared.denies(path.substr(6));
        const int mode = shared.hook_mode.load();
        if (mode == 2) {
            co_await writer.hang();
            co_return;
        }
        if (mode == 1) {
            asio::steady_timer delay(co_await asio::this_coro::executor, 1500ms);
            co_await delay.async_wait(asio::use_awaitable);
        }
        co_await writer.respond(deny ? 403 : 200, deny ? "denied" : "approved");
    };
}

/// Runs the servers on a thread of their own, so that they answer while the driver blocks
/// (restarting the API server or etcd takes seconds).
class Servers {
public:
    Servers(Shared& shared, std::uint16_t apiserver_port)
        : work_(asio::make_work_guard(io_)),
          http_(io_.get_executor(), server_handler(shared)),
          proxy_(io_, apiserver_port),
          thread_([this] { io_.run(); }) {}
    ~Servers() {
        work_.reset();
        io_.stop();
        thread_.join();
    }
    Servers(const Servers&) = delete;
    Servers& operator=(const Servers&) = delete;

    std::string url(const std::string& path) const { return http_.base_url() + path; }
    LatencyProxy& proxy() { return proxy_; }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> work_;
    test::TestHttpServer http_;
    LatencyProxy proxy_;
    std::thread thread_;
};

// ---- one serin: start, kill, who leads, its request counter ----------------------------------

class Serin {
public:
    Serin(const std::string& ns, const fs::path& kubeconfig)
        : process_(ns, kubeconfig,
                   {"--enable-leader-election", "--leader-election-lease-duration=3s",
                    "--leader-election-renew-deadline=2s", "--leader-election-retry-period=1s"}) {
        mark();
    }
    void start() {
        mark();
        process_.start();
    }
    void kill() { process_.kill(); }
    void terminate() { process_.terminate(); }
    bool running() { return process_.running(); }
    /// Whether this run of it (since its last start) logged that it leads.
    bool leads() {
        if (!process_.running()) {
            return false;
        }
        std::ifstream in(process_.log_file());
        in.seekg(static_cast<std::streamoff>(offset_));
        std::string line;
        while (std::getline(in, line)) {
            if (line.find("leading as ") != std::string::npos) {
                return true;
            }
        }
        return false;
    }
    /// serin_api_requests_total summed over its labels, or nullopt when it does not answer.
    std::optional<double> api_requests() {
        if (!process_.running()) {
            return std::nullopt;
        }
        auto answer = devcluster::run_command(
            "curl", {"-s", "-m", "2", "http://127.0.0.1:" + std::to_string(process_.port()) + "/metrics"},
            3s);
        if (!answer || answer->exit_code != 0) {
            return std::nullopt;
        }
        std::istringstream in(answer->output);
        std::string line;
        double total = 0;
        bool seen = false;
        while (std::getline(in, line)) {
            if (line.rfind("serin_api_requests_total{", 0) == 0) {
                const auto space = line.rfind(' ');
                total += std::strtod(line.c_str() + space + 1, nullptr);
                seen = true;
            }
        }
        return seen ? std::optional<double>(total) : std::nullopt;
    }
    std::string log_tail() const { return process_.log_tail(20); }

private:
    void mark() {
        std::error_code ec;
        const auto size = fs::file_size(process_.log_file(), ec);
        offset_ = ec ? 0 : size;
    }
    e2e::SerinProcess process_;
    std::uintmax_t offset_ = 0;
};

// ---- one canary and its releases -------------------------------------------------------------

struct Release {
    int number = 0;
    bool healthy = true;
    std::string image_before;
    std::string image_after;
    std::string primary_template_before;
    std::string applied_before;  ///< status.lastAppliedSpec when it was started
    Clock::time_point started;
    int primary_changes = 0;
    bool seen_progressing = false;
    // pacing: when the previous step was observed, as the earliest time it can have happened
    std::optional<Clock::time_point> last_step_after;
    std::string last_step_key;
    bool last_seen_progressing = false;
};

/// When a status change happened: after `first`, by `second`.
using Window = std::pair<Clock::time_point, Clock::time_point>;

struct Track {
    std::string name;
    int index = 0;
    // the status changes each alert belongs to
    std::vector<Window> detections;  ///< "New revision detected"
    std::vector<Window> promotions;  ///< "... promotion finished"
    std::vector<Window> failures;    ///< "Failed checks threshold reached"
    bool istio = false;
    bool webhook = false;
    std::chrono::seconds interval{5};
    int revision = 0;
    std::optional<Release> release;
    std::optional<Clock::time_point> ended;
    std::string primary_template;  ///< as last seen
    std::optional<Json> unsent_bump;  ///< the image bump of the release, until a patch succeeds
    int releases = 0;
    int healthy_releases = 0;
    int failing_releases = 0;
};

struct Pending {
    Clock::time_point due;
    std::function<void()> action;
};

// ---- the campaign ------------------------------------------------------------------------------

class Campaign {
public:
    explicit Campaign(const CampaignOptions& options)
        : options_(options), rng_(options.seed), cluster_(start_cluster()),
          ns_(cluster_, "chaos"), client_(testing::make_admin_client(io_, cluster_)),
          servers_(shared_, cluster_.dev_cluster()->apiserver_port()) {
        report_.options = options;
        for (const std::string& kind : kInvariants) {
            report_.violations[kind] = 0;
        }
        if (!options.enforce_pacing && !options.strict) {
            report_.report_only.insert(kEarlyStep);
        }
        if (!options.strict) {
            report_.report_only.insert(kAlertLostAtExit);
        }
    }

    CampaignReport run();

private:
    static testing::TestCluster start_cluster() {
        devcluster::DevClusterOptions cluster_options;
        cluster_options.meshsim_rate = 20;
        auto cluster = devcluster::DevCluster::start(cluster_options);
        if (!cluster) {
            throw std::runtime_error("cannot start a devcluster: " + cluster.error().message);
        }
        return testing::TestCluster::owned(std::move(*cluster));
    }
    devcluster::DevCluster& dev() { return *cluster_.dev_cluster(); }
    std::string prometheus_url() const { return cluster_.prometheus_url(); }
    const std::string& ns() const { return ns_.name(); }
    int uniform(int low, int high) {  // both included
        return low + static_cast<int>(rng_() % static_cast<std::uint64_t>(high - low + 1));
    }

    void violation(const std::string& kind, const std::string& detail) {
        ++report_.violations[kind];
        report_.details.push_back(kind + ": " + detail);
    }

    fs::path proxy_kubeconfig();
    void create_objects();
    Json deployment_of(const Track& t) const;
    Json canary_of(const Track& t) const;
    void wait_initialized();
    std::vector<Fault> schedule();

    bool poll();
    void observe(Track& t, const Json& canary, const Json* primary, Clock::time_point seen_after,
                 Clock::time_point seen_by);
    void observe_pacing(Track& t, const Json& canary, Clock::time_point seen_after,
                        Clock::time_point seen_by);
    void end_release(Track& t, const Json& canary, const Json* primary);
    void start_release(Track& t);
    void send_bump(Track& t);
    void maybe_start_releases(bool allowed);

    void inject(Fault fault);
    Serin* leader();
    void kill_leader(const std::string& kind);
    void restart_when_exited(Serin* serin, Clock::time_point give_up);
    /// Runs `first`, then `again` up to three times while it fails: on a loaded machine a
    /// component may miss its start timeout (kube-apiserver's RBAC bootstrap, seen at a load of
    /// 20 on 2 cores). Throws when it never comes back.
    void bring_back(const std::string& what, const std::function<Result<void>()>& first,
                    const std::function<Result<void>()>& again);
    void heal();
    /// Injects `order` until `stop_at` while releases run, then heals the cluster, lets the
    /// releases end and checks the alerts. Throws when a component never comes back.
    void run_faults(const std::vector<Fault>& order, Clock::time_point stop_at);
    void run_pending();
    void sample_api(bool force);
    void check_alerts();
    void note_exits();
    /// How many of `windows` have a serin exit from just before to 15 s after them: an alert of
    /// a status change then may die with the process (serin keeps unsent alerts in memory).
    int near_exits(const std::vector<Window>& windows) const;
    void expect_alerts(const std::string& canary, const std::string& what, int got, int want,
                       const std::vector<Window>& windows);
    bool all_ended() const;

    CampaignOptions options_;
    CampaignReport report_;
    std::mt19937_64 rng_;
    testing::TestCluster cluster_;
    testing::TestNamespace ns_;
    asio::io_context io_;
    std::unique_ptr<kube::RestKubeClient> client_;
    Shared shared_;
    Servers servers_;
    std::vector<std::unique_ptr<Serin>> serins_;
    std::vector<Track> tracks_;
    std::vector<Pending> pending_;
    std::optional<Clock::time_point> last_ok_send_;
    bool kill_at_promotion_armed_ = false;
    std::vector<Clock::time_point> exits_;
    std::set<Serin*> restarting_;  ///< stopped by a fault, with a restart scheduled
    /// When the API server was away or slow: a step's write may then lag its check by seconds.
    std::vector<Window> disturbances_;
    Clock::time_point api_down_since_ = Clock::time_point::max();  ///< etcd stopped
    std::vector<bool> was_running_;
    // API request sampling
    std::vector<std::optional<double>> last_counter_;
    std::optional<Clock::time_point> last_sample_;
    Clock::time_point api_since_;
};

fs::path Campaign::proxy_kubeconfig() {
    std::ifstream in(cluster_.kubeconfig_path());
    std::stringstream text;
    text << in.rdbuf();
    std::string config = text.str();
    const std::string from = "127.0.0.1:" + std::to_string(dev().apiserver_port());
    const std::string to = "127.0.0.1:" + std::to_string(servers_.proxy().port());
    const auto at = config.find(from);
    if (at == std::string::npos) {
        throw std::runtime_error("no " + from + " in the admin kubeconfig");
    }
    config.replace(at, from.size(), to);
    fs::path path = dev().work_dir() / "kubeconfig-through-proxy";
    std::ofstream out(path);
    out << config;
    return path;
}

Json Campaign::deployment_of(const Track& t) const {
    Json d = {{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"name", t.name}, {"namespace", ns()}, {"labels", {{"app", t.name}}}}},
              {"spec",
               {{"replicas", 1},
                {"progressDeadlineSeconds", 120},
                {"selector", {{"matchLabels", {{"app", t.name}}}}},
                {"template",
                 {{"metadata",
                   {{"labels", {{"app", t.name}}},
                    {"annotations", {{"sim.serin.dev/error-rate", "0"}}}}},
                  {"spec",
                   {{"containers",
                     {{{"name", "podinfod"},
                       {"image", kImage + "0"},
                       {"ports", {{{"name", "http"}, {"containerPort", 9898}}}}}}}}}}}}}};
    return d;
}

Json Campaign::canary_of(const Track& t) const {
    Json analysis = {{"interval", std::to_string(t.interval.count()) + "s"},
                     {"threshold", 5},
                     {"alerts", {{{"name", "chaos"}, {"severity", "info"},
                                  {"providerRef", {{"name", "chaos-alerts"}}}}}}};
    if (t.istio) {
        analysis["stepWeight"] = 25;
        analysis["maxWeight"] = 50;
        analysis["metrics"] = {{{"name", "request-success-rate"},
                                {"interval", "10s"},
                                {"thresholdRange", {{"min", 99}}},
                                {"noData", "hold"},
                                {"errorLimit", 100}}};
    } else {
        analysis["iterations"] = 3;
    }
    if (t.webhook) {
        analysis["webhooks"] = {{{"name", "gate"},
                                 {"type", "rollout"},
                                 {"timeout", std::to_string(kHookTimeout.count()) + "s"},
                                 {"url", servers_.url("/hook/" + t.name)}}};
    }
    Json spec = {{"provider", t.istio ? "istio" : "kubernetes"},
                 {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", t.name}}},
                 {"progressDeadlineSeconds", 120},
                 {"service", {{"port", 80}, {"targetPort", "http"}}},
                 {"analysis", analysis}};
    if (t.istio) {
        spec["metricsServer"] = prometheus_url();
    }
    return {{"apiVersion", "flagger.app/v1beta1"},
            {"kind", "Canary"},
            {"metadata", {{"name", t.name}, {"namespace", ns()}}},
            {"spec", spec}};
}

void Campaign::create_objects() {
    const Json provider = {{"apiVersion", "flagger.app/v1beta1"},
                           {"kind", "AlertProvider"},
                           {"metadata", {{"name", "chaos-alerts"}, {"namespace", ns()}}},
                           {"spec", {{"type", "slack"}, {"channel", "chaos"},
                                     {"address", servers_.url("/alerts")}}}};
    auto created = testing::run(io_, client_->create(types::alert_providers(), ns(), provider));
    if (!created) {
        throw std::runtime_error("create AlertProvider: " + created.error().describe());
    }
    for (int i = 0; i < options_.canaries; ++i) {
        Track t;
        t.name = "c" + std::to_string(i);
        t.index = i;
        t.istio = i % 2 == 0;
        t.webhook = !t.istio || i % 4 == 2;
        t.interval = t.webhook ? kHookInterval : kInterval;
        for (const Json& object : {deployment_of(t), canary_of(t)}) {
            const auto& type = object["kind"] == "Canary" ? types::canaries() : types::deployments();
            auto made = testing::run(io_, client_->create(type, ns(), object));
            if (!made) {
                throw std::runtime_error("create " + t.name + ": " + made.error().describe());
            }
        }
        tracks_.push_back(std::move(t));
    }
}

void Campaign::wait_initialized() {
    auto done = testing::run(
        io_, testing::wait_for_objects(*client_, types::canaries(), ns(), "",
                                       [n = tracks_.size()](const testing::ObjectMap& all) {
                                           return all.size() == n &&
                                                  std::all_of(all.begin(), all.end(), [](const auto& kv) {
                                                      return e2e::phase(kv.second) == "Initialized";
                                                  });
                                       },
                                       180s),
        200s);
    if (!done) {
        throw std::runtime_error("the canaries were not initialized: " + done.error().message +
                                 "\n" + serins_.front()->log_tail());
    }
}

std::vector<Fault> Campaign::schedule() {
    // Every kind once per round, in a seeded order: a short run still sees each of them.
    std::vector<Fault> order;
    for (int round = 0; round < 20; ++round) {
        std::vector<Fault> kinds;
        kinds.reserve(kFaultKinds);
        for (int k = 0; k < kFaultKinds; ++k) {
            kinds.push_back(static_cast<Fault>(k));
        }
        std::shuffle(kinds.begin(), kinds.end(), rng_);
        order.insert(order.end(), kinds.begin(), kinds.end());
    }
    return order;
}

// ---- observing ---------------------------------------------------------------------------------

bool Campaign::poll() {
    const auto sent = Clock::now();
    auto canaries = attempt(io_, client_->list(types::canaries(), ns()), 5s);
    if (!canaries) {
        return false;
    }
    auto deployments = attempt(io_, client_->list(types::deployments(), ns()), 5s);
    if (!deployments) {
        return false;
    }
    const auto received = Clock::now();
    // A change seen now happened after the previous successful poll was sent.
    const auto after = last_ok_send_.value_or(sent);
    std::map<std::string, const Json*> by_name;
    for (const Json& d : deployments->items) {
        by_name[str(d, "/metadata/name")] = &d;
    }
    for (const Json& c : canaries->items) {
        const std::string name = str(c, "/metadata/name");
        for (Track& t : tracks_) {
            if (t.name == name) {
                auto primary = by_name.find(name + "-primary");
                observe(t, c, primary == by_name.end() ? nullptr : primary->second, after, received);
            }
        }
    }
    last_ok_send_ = sent;
    return true;
}

void Campaign::observe(Track& t, const Json& canary, const Json* primary,
                       Clock::time_point seen_after, Clock::time_point seen_by) {
    if (primary != nullptr) {
        const std::string tmpl = e2e::at(*primary, "/spec/template").dump();
        if (!t.primary_template.empty() && tmpl != t.primary_template) {
            if (t.release) {
                ++t.release->primary_changes;
            } else {
                violation(kPrimaryRolledOutside, t.name + "-primary's template changed between releases");
            }
        }
        t.primary_template = tmpl;
    }
    if (!t.release) {
        return;
    }
    Release& r = *t.release;
    const std::string phase = e2e::phase(canary);
    if (phase == "Promoting" && kill_at_promotion_armed_) {
        kill_at_promotion_armed_ = false;
        kill_leader(fault_name(Fault::kKillAtPromotion));
    }
    observe_pacing(t, canary, seen_after, seen_by);
    const bool terminal = phase == "Succeeded" || phase == "Failed";
    if (terminal && str(canary, "/status/lastAppliedSpec") != r.applied_before) {
        (r.healthy ? t.promotions : t.failures).emplace_back(seen_after, seen_by);
        end_release(t, canary, primary);
        return;
    }
    if (Clock::now() - r.started > kReleaseTimeout) {
        violation(kReleaseStuck, t.name + " release " + std::to_string(r.number) + " still " +
                                     phase + " after " + std::to_string(kReleaseTimeout.count()) + " s");
        t.release.reset();
        t.ended = Clock::now();
    }
}

void Campaign::observe_pacing(Track& t, const Json& canary, Clock::time_point seen_after,
                              Clock::time_point seen_by) {
    Release& r = *t.release;
    const bool progressing = e2e::phase(canary) == "Progressing" &&
                             str(canary, "/status/lastAppliedSpec") != r.applied_before;
    const std::string key = std::to_string(num(canary, "/status/canaryWeight")) + "/" +
                            std::to_string(num(canary, "/status/iterations")) + "/" +
                            std::to_string(num(canary, "/status/failedChecks"));
    if (progressing && r.last_seen_progressing && key != r.last_step_key) {
        // A paced step. It happened in (seen_after, seen_by]; the previous one after
        // last_step_after: the most they can be apart is seen_by - last_step_after.
        // A write held up by an API outage or a slow network says nothing of when its step's
        // checks ran: pairs whose earlier step may have been held up are not judged.
        const Clock::time_point from = r.last_step_after.value_or(seen_after) - t.interval;
        const bool disturbed =
            std::any_of(disturbances_.begin(), disturbances_.end(),
                        [&](const Window& d) { return d.first <= seen_by && d.second >= from; }) ||
            (servers_.proxy().latency() > 0ms) || api_down_since_ <= seen_by;
        if (r.last_step_after && disturbed) {
            ++report_.early_step_unjudged;
        } else if (r.last_step_after) {
            // Slack for what a step may wait on before its write (a webhook's timeout, a slow
            // network) beside the timer's own jitter.
            const double slack = t.webhook ? 4.5 : 2.0;
            const double most = seconds_between(*r.last_step_after, seen_by);
            const double least = static_cast<double>(t.interval.count()) - slack;
            if (most < least) {
                std::ostringstream detail;
                detail << t.name << " release " << r.number << ": step " << r.last_step_key << " -> "
                       << key << " at most " << std::fixed;
                detail.precision(1);
                detail << most << " s after the previous one (interval " << t.interval.count()
                       << " s, slack " << slack << " s)";
                violation(kEarlyStep, detail.str());
            }
        }
        r.last_step_after = seen_after;
    }
    if (progressing) {
        r.last_step_key = key;
        if (!r.seen_progressing) {
            r.seen_progressing = true;
            t.detections.emplace_back(seen_after, seen_by);
        }
    }
    r.last_seen_progressing = progressing;
}

void Campaign::end_release(Track& t, const Json& canary, const Json* primary) {
    Release& r = *t.release;
    const std::string phase = e2e::phase(canary);
    const std::string id = t.name + " release " + std::to_string(r.number);
    const std::string image = primary != nullptr ? e2e::image_of(*primary) : std::string("(none)");
    if (r.healthy) {
        if (phase != "Succeeded") {
            violation(kHealthyNotSucceeded, id + " (healthy) ended " + phase + ": " +
                                                str(canary, "/status/conditions/0/message"));
        } else if (image != r.image_after) {
            violation(kHealthyPrimaryOld, id + ": primary runs " + image + ", not " + r.image_after);
        }
        if (r.primary_changes > 1) {
            violation(kPrimaryRolledTwice, id + ": the primary's template changed " +
                                               std::to_string(r.primary_changes) + " times");
        }
    } else {
        if (phase != "Failed") {
            violation(kFailingNotFailed, id + " (failing) ended " + phase);
        }
        if (r.primary_changes > 0 || t.primary_template != r.primary_template_before) {
            violation(kFailingPrimaryTouched, id + ": the primary's template changed " +
                                                  std::to_string(r.primary_changes) + " times");
        }
    }
    ++report_.releases_ended;
    t.release.reset();
    t.ended = Clock::now();
    shared_.set_denied(t.name, false);
}

void Campaign::start_release(Track& t) {
    Release r;
    r.number = ++t.releases;
    // One in three fails, by the seed, the canary and the release's number alone (the shared
    // generator's draws interleave with timing-dependent ones).
    std::mt19937_64 draw(options_.seed * 1000003ULL + static_cast<std::uint64_t>(t.index) * 1009ULL +
                         static_cast<std::uint64_t>(r.number));
    r.healthy = draw() % 3 != 0;
    r.image_before = kImage + std::to_string(t.revision);
    r.image_after = kImage + std::to_string(++t.revision);
    r.primary_template_before = t.primary_template;
    auto canary = attempt(io_, client_->get(types::canaries(), ns(), t.name), 10s);
    if (!canary) {
        --t.releases;
        --t.revision;
        return;  // the API server is away; try again on a later poll
    }
    r.applied_before = str(*canary, "/status/lastAppliedSpec");
    shared_.set_denied(t.name, !r.healthy);
    const Json patch = {
        {"spec",
         {{"template",
           {{"metadata", {{"annotations", {{"sim.serin.dev/error-rate", r.healthy ? "0" : "20"}}}}},
            {"spec", {{"containers", {{{"name", "podinfod"}, {"image", r.image_after}}}}}}}}}}};
    // The release starts now; the patch is sent again until it succeeds (it is idempotent, and a
    // patch whose answer was lost may have been applied).
    t.unsent_bump = patch;
    r.started = Clock::now();
    ++report_.releases_started;
    ++(r.healthy ? report_.healthy : report_.failing);
    ++(r.healthy ? t.healthy_releases : t.failing_releases);
    t.release = std::move(r);
    send_bump(t);
}

void Campaign::send_bump(Track& t) {
    if (!t.unsent_bump) {
        return;
    }
    auto patched = attempt(io_,
                           client_->patch(types::deployments(), ns(), t.name,
                                          kube::PatchType::kStrategicMerge, t.unsent_bump->dump()),
                           10s);
    if (patched) {
        t.unsent_bump.reset();
    }
}

void Campaign::maybe_start_releases(bool allowed) {
    for (Track& t : tracks_) {
        send_bump(t);
    }
    for (Track& t : tracks_) {
        if (!allowed || report_.releases_started >= options_.releases) {
            return;
        }
        if (!t.release && (!t.ended || Clock::now() - *t.ended >= kCooldown)) {
            start_release(t);
        }
    }
}

bool Campaign::all_ended() const {
    return std::none_of(tracks_.begin(), tracks_.end(), [](const Track& t) { return t.release.has_value(); });
}

// ---- faults ------------------------------------------------------------------------------------

Serin* Campaign::leader() {
    for (auto& s : serins_) {
        if (s->leads()) {
            return s.get();
        }
    }
    return nullptr;
}

void Campaign::kill_leader(const std::string& kind) {
    Serin* l = leader();
    if (l == nullptr) {
        ++report_.leader_kills_skipped;
        return;
    }
    spdlog::info("chaos: {}", kind);
    l->kill();
    exits_.push_back(Clock::now());
    ++report_.faults[kind];
    restarting_.insert(l);
    pending_.push_back({Clock::now() + std::chrono::milliseconds{uniform(500, 3000)}, [this, l] {
                            restarting_.erase(l);
                            if (!l->running()) {
                                l->start();
                            }
                        }});
}

void Campaign::bring_back(const std::string& what, const std::function<Result<void>()>& first,
                          const std::function<Result<void>()>& again) {
    auto r = first();
    for (int attempt = 0; !r && attempt < 3; ++attempt) {
        spdlog::warn("chaos: {} did not come back ({}); starting it again", what, r.error().describe());
        ++report_.slow_restarts;
        r = again();
    }
    if (!r) {
        throw std::runtime_error(what + " did not come back: " + r.error().describe());
    }
}

void Campaign::restart_when_exited(Serin* serin, Clock::time_point give_up) {
    restarting_.insert(serin);
    if (!serin->running()) {
        restarting_.erase(serin);
        serin->start();
        return;
    }
    if (Clock::now() > give_up) {
        restarting_.erase(serin);
        serin->kill();
        serin->start();
        return;
    }
    pending_.push_back(
        {Clock::now() + 200ms, [this, serin, give_up] { restart_when_exited(serin, give_up); }});
}

void Campaign::inject(Fault fault) {
    const auto now = Clock::now();
    if (fault == Fault::kKillAtPromotion) {
        spdlog::info("chaos: armed: {}", fault_name(fault));
    } else if (fault != Fault::kKillLeader) {  // kill_leader() says so, once it finds a leader
        spdlog::info("chaos: {}", fault_name(fault));
    }
    switch (fault) {
        case Fault::kKillLeader:
            kill_leader(fault_name(fault));
            return;
        case Fault::kKillAtPromotion:
            kill_at_promotion_armed_ = true;  // counted when it fires
            return;
        case Fault::kSigtermHandover: {
            Serin* l = leader();
            if (l == nullptr) {
                return;
            }
            l->terminate();
            exits_.push_back(now);
            restart_when_exited(l, now + 30s);  // as the standby, once it has exited
            break;
        }
        case Fault::kApiserverRestart:
            // An API server that does not come back may be one that cannot reach etcd (seen
            // after an etcd restart that had reported healthy): bring etcd back too, which does
            // nothing while it runs.
            bring_back("kube-apiserver", [this] { return dev().restart_apiserver(); },
                       [this]() -> Result<void> {
                           if (auto r = dev().resume_etcd(); !r) {
                               return r;
                           }
                           return dev().start_apiserver();
                       });
            disturbances_.emplace_back(now, Clock::now() + 2s);
            break;
        case Fault::kEtcdRestart:
            if (auto r = dev().stop_etcd(); !r) {
                throw std::runtime_error("stop etcd: " + r.error().describe());
            }
            api_down_since_ = now;
            pending_.push_back({now + std::chrono::milliseconds{uniform(1000, 4000)}, [this, now] {
                                    bring_back("etcd", [this] { return dev().resume_etcd(); },
                                               [this] { return dev().resume_etcd(); });
                                    api_down_since_ = Clock::time_point::max();
                                    disturbances_.emplace_back(now, Clock::now() + 2s);
                                }});
            break;
        case Fault::kPrometheusOutage:
            if (auto r = dev().stop_prometheus(); !r) {
                throw std::runtime_error("stop prometheus: " + r.error().describe());
            }
            pending_.push_back({now + std::chrono::seconds{uniform(6, 12)}, [this] {
                                    bring_back("prometheus", [this] { return dev().resume_prometheus(); },
                                               [this] { return dev().resume_prometheus(); });
                                }});
            break;
        case Fault::kWebhookSlow:
            shared_.hook_mode = 1;
            pending_.push_back({now + 10s, [this] { shared_.hook_mode = 0; }});
            break;
        case Fault::kWebhookHang:
            shared_.hook_mode = 2;
            pending_.push_back({now + std::chrono::seconds{uniform(5, 8)}, [this] { shared_.hook_mode = 0; }});
            break;
        case Fault::kSlowNetwork:
            servers_.proxy().set_latency(std::chrono::milliseconds{uniform(100, 400)});
            pending_.push_back({now + std::chrono::seconds{uniform(8, 15)}, [this, now] {
                                    servers_.proxy().set_latency(0ms);
                                    disturbances_.emplace_back(now, Clock::now() + 2s);
                                }});
            break;
    }
    ++report_.faults[fault_name(fault)];
}

void Campaign::run_pending() {
    const auto now = Clock::now();
    std::vector<Pending> due;
    std::vector<Pending> later;
    for (Pending& p : pending_) {
        (p.due <= now ? due : later).push_back(std::move(p));
    }
    pending_ = std::move(later);
    for (Pending& p : due) {
        p.action();
    }
}

void Campaign::heal() {
    kill_at_promotion_armed_ = false;
    auto deadline = Clock::now() + 30s;
    while (!pending_.empty() && Clock::now() < deadline) {
        for (Pending& p : pending_) {
            p.due = std::min(p.due, Clock::now());
        }
        run_pending();
    }
    for (auto& s : serins_) {
        if (!s->running()) {
            s->start();
        }
    }
}

void Campaign::sample_api(bool force) {
    const auto now = Clock::now();
    if (!force && last_sample_ && now - *last_sample_ < kSample) {
        return;
    }
    double delta = 0;
    for (std::size_t i = 0; i < serins_.size(); ++i) {
        auto value = serins_[i]->api_requests();
        if (!value) {
            continue;  // not running, or not answering: its next sample counts from 0
        }
        const double before = last_counter_[i].value_or(0);
        delta += *value >= before ? *value - before : *value;  // a restart resets the counter
        last_counter_[i] = value;
    }
    for (std::size_t i = 0; i < serins_.size(); ++i) {
        if (!serins_[i]->running()) {
            last_counter_[i].reset();
        }
    }
    if (last_sample_) {
        const double dt = seconds_between(*last_sample_, now);
        report_.api_requests += delta;
        report_.api_seconds += dt;
        if (dt > 0) {
            const double rate = delta / dt;
            report_.api_max_rate = std::max(report_.api_max_rate, rate);
            if (rate > report_.api_bound) {
                std::ostringstream detail;
                detail.precision(1);
                detail << std::fixed << rate << " requests/s over " << dt << " s (bound "
                       << report_.api_bound << ")";
                violation(kApiRate, detail.str());
            }
        }
    }
    last_sample_ = now;
}

void Campaign::note_exits() {
    was_running_.resize(serins_.size(), true);
    for (std::size_t i = 0; i < serins_.size(); ++i) {
        Serin* serin = serins_[i].get();
        const bool running = serin->running();
        if (was_running_[i] && !running) {
            exits_.push_back(Clock::now());  // killed, stopped, or gone by itself (a lost lease)
            if (!restarting_.contains(serin)) {
                // Gone by itself: started again a second later, as the kubelet would.
                spdlog::info("chaos: a serin exited by itself; starting it again");
                ++report_.serin_exits_by_itself;
                restarting_.insert(serin);
                pending_.push_back({Clock::now() + 1s, [this, serin] {
                                        restarting_.erase(serin);
                                        if (!serin->running()) {
                                            serin->start();
                                        }
                                    }});
            }
        }
        was_running_[i] = running;
    }
}

int Campaign::near_exits(const std::vector<Window>& windows) const {
    int n = 0;
    for (const Window& w : windows) {
        n += std::any_of(exits_.begin(), exits_.end(), [&](Clock::time_point e) {
            return e >= w.first - 1s && e <= w.second + 15s;
        }) ? 1 : 0;
    }
    return n;
}

void Campaign::expect_alerts(const std::string& canary, const std::string& what, int got,
                             int want, const std::vector<Window>& windows) {
    const std::string counts = canary + ": \"" + what + "\" " + std::to_string(got) +
                               " times, expected " + std::to_string(want);
    if (got > want) {
        violation(kAlertTwice, counts);
        return;
    }
    const int missing = want - got;
    const int excused = std::min(missing, near_exits(windows));
    if (excused > 0) {
        violation(kAlertLostAtExit, counts + " (" + std::to_string(excused) +
                                        " of them with a serin exit within 15 s of the change)");
    }
    if (missing > excused) {
        violation(kAlertLost, counts);
    }
}

void Campaign::check_alerts() {
    const std::string init = "New Deployment detected, initialization completed.";
    const std::string revision = "New revision detected, progressing canary analysis.";
    const std::string promoted = "Canary analysis completed successfully, promotion finished.";
    const std::string failed = "checks threshold reached";
    const auto count = [this](const std::string& canary, const std::string& part) {
        std::lock_guard lock(shared_.mutex);
        int n = 0;
        for (const auto& [key, times] : shared_.alerts) {
            n += key.first == canary && key.second.find(part) != std::string::npos ? times : 0;
        }
        return n;
    };
    // Alerts are posted in the background, with retries: wait for them (a deadline, not a sleep).
    const auto complete = [&] {
        return std::all_of(tracks_.begin(), tracks_.end(), [&](const Track& t) {
            return count(t.name, init) >= 1 && count(t.name, revision) >= t.releases &&
                   count(t.name, promoted) >= t.healthy_releases &&
                   count(t.name, failed) >= t.failing_releases;
        });
    };
    testing::wait_until(complete, 30s, 200ms);
    for (const Track& t : tracks_) {
        expect_alerts(t.name, init, count(t.name, init), 1, {});
        expect_alerts(t.name, revision, count(t.name, revision), t.releases, t.detections);
        expect_alerts(t.name, promoted, count(t.name, promoted), t.healthy_releases, t.promotions);
        expect_alerts(t.name, failed, count(t.name, failed), t.failing_releases, t.failures);
    }
}

CampaignReport Campaign::run() {
    const auto began = Clock::now();
    const fs::path kubeconfig = proxy_kubeconfig();
    serins_.push_back(std::make_unique<Serin>(ns(), kubeconfig));
    serins_.push_back(std::make_unique<Serin>(ns(), kubeconfig));
    last_counter_.resize(serins_.size());
    // A hot loop would be hundreds a second; two serins' steady state is a few per canary step.
    report_.api_bound = 20.0 + 5.0 * options_.canaries;
    create_objects();
    wait_initialized();

    const std::vector<Fault> order = schedule();
    const auto window = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options_.minutes * 60));
    const auto stop_at = Clock::now() + window;
    sample_api(true);
    try {
        run_faults(order, stop_at);
    } catch (const std::exception& e) {
        // A component that never came back: the invariants cannot be judged from here on, but
        // what was counted so far, and the cluster's logs, are what a post-mortem needs.
        report_.stopped_early = e.what();
        report_.cluster_dir = dev().work_dir().string();
        dev().keep_work_dir();
        spdlog::error("chaos: stopped early: {} (the devcluster's folder is kept: {})", e.what(),
                      report_.cluster_dir);
    }
    {
        std::lock_guard lock(shared_.mutex);
        report_.alerts_received = static_cast<int>(shared_.alert_log.size());
        report_.webhook_calls = static_cast<int>(shared_.hook_calls);
    }
    report_.seconds = seconds_between(began, Clock::now());
    return report_;
}

void Campaign::run_faults(const std::vector<Fault>& order, Clock::time_point stop_at) {
    std::size_t next_fault = 0;
    auto next_fault_at = Clock::now() + 5s;
    while (Clock::now() < stop_at) {
        poll();
        maybe_start_releases(true);
        if (Clock::now() >= next_fault_at && next_fault < order.size()) {
            inject(order[next_fault++]);
            next_fault_at = Clock::now() + std::chrono::seconds{uniform(10, 16)};
        }
        run_pending();
        note_exits();
        sample_api(false);
        asio::steady_timer tick(io_, kPoll);  // the sampling period, not a wait for a condition
        tick.wait();
    }
    heal();
    const auto drain_until = Clock::now() + kReleaseTimeout;
    while (!all_ended() && Clock::now() < drain_until) {
        poll();
        maybe_start_releases(false);
        note_exits();
        sample_api(false);
        asio::steady_timer tick(io_, kPoll);
        tick.wait();
    }
    poll();  // ends what can end, and marks the rest stuck below
    for (Track& t : tracks_) {
        if (t.release) {
            violation(kReleaseStuck, t.name + " release " + std::to_string(t.release->number) +
                                         " did not end");
        }
    }
    sample_api(true);
    check_alerts();
}

}  // namespace

// ---- options and the report --------------------------------------------------------------------

CampaignOptions options_from_environment() {
    CampaignOptions options;
    const auto number = [](const char* name) -> std::optional<double> {
        const char* value = std::getenv(name);
        if (value == nullptr || *value == '\0') {
            return std::nullopt;
        }
        return std::strtod(value, nullptr);
    };
    if (auto v = number("SERIN_CHAOS_SEED")) {
        options.seed = static_cast<std::uint64_t>(*v);
    }
    if (auto v = number("SERIN_CHAOS_CANARIES")) {
        options.canaries = std::clamp(static_cast<int>(*v), 1, 50);
    }
    if (auto v = number("SERIN_CHAOS_RELEASES")) {
        options.releases = std::clamp(static_cast<int>(*v), 1, 10000);
    }
    if (auto v = number("SERIN_CHAOS_MINUTES")) {
        options.minutes = std::clamp(*v, 0.1, 600.0);
    }
    if (auto v = number("SERIN_CHAOS_ENFORCE_PACING")) {
        options.enforce_pacing = *v != 0;
    }
    if (auto v = number("SERIN_CHAOS_STRICT")) {
        options.strict = *v != 0;
    }
    return options;
}

int CampaignReport::failures() const {
    int n = stopped_early.empty() ? 0 : 1;
    for (const auto& [kind, count] : violations) {
        n += report_only.contains(kind) ? 0 : count;
    }
    return n;
}

std::string CampaignReport::table() const {
    std::ostringstream out;
    out.precision(1);
    out << std::fixed;
    out << "chaos campaign: seed " << options.seed << ", " << options.canaries << " canaries, "
        << options.minutes << " min of faults, " << seconds << " s in all\n";
    out << "releases: " << releases_started << " started (" << healthy << " healthy, " << failing
        << " failing), " << releases_ended << " ended\n\n";
    out << "faults injected                               count\n";
    int total = 0;
    for (const auto& [kind, count] : faults) {
        out << "  " << kind << std::string(44 - std::min<std::size_t>(kind.size(), 43), ' ') << count
            << "\n";
        total += count;
    }
    out << "  (all)" << std::string(39, ' ') << total << "\n\n";
    out << "invariant violations                          count\n";
    for (const auto& [kind, count] : violations) {
        const std::string label = kind + (report_only.contains(kind) ? " (reported only)" : "");
        out << "  " << label << std::string(44 - std::min<std::size_t>(label.size(), 43), ' ')
            << count << "\n";
    }
    out << "\nearly-step pairs not judged (the earlier write may have waited on an API outage or a "
           "slow network): " << early_step_unjudged << "\n";
    out << "control-plane restarts that missed their 60-s start timeout and were tried again: "
        << slow_restarts << "\n";
    out << "serin exits by themselves (started again 1 s later): " << serin_exits_by_itself << "\n";
    out << "alerts received " << alerts_received << ", webhook calls " << webhook_calls
        << ", leader kills skipped (no leader at that moment) " << leader_kills_skipped << "\n";
    out << "API requests (serin's own counters, both serins): " << api_requests << " in "
        << api_seconds << " s, " << (api_seconds > 0 ? api_requests / api_seconds : 0.0)
        << "/s; busiest 5-s window " << api_max_rate << "/s (bound " << api_bound << "/s)\n";
    if (!details.empty()) {
        out << "\n";
        for (const std::string& line : details) {
            out << "  " << line << "\n";
        }
    }
    if (!stopped_early.empty()) {
        out << "\nresult: STOPPED EARLY: " << stopped_early << "\n(the devcluster's folder, "
            << "with every component's log, is kept: " << cluster_dir << ")\n";
        return out.str();
    }
    out << (failures() == 0 ? "\nresult: no violation" : "\nresult: VIOLATIONS") << "\n";
    return out.str();
}

CampaignReport run_campaign(const CampaignOptions& options) {
    Campaign campaign(options);
    return campaign.run();
}

}  // namespace serin::chaos
