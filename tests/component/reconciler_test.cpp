// The reconciler on an in-memory API server (tests/support/fake_kube_client) and a ManualClock:
// the order of its writes, finalization, refusals with and without a re-queue, and the crash
// property: a release stopped after any single write and finished by a fresh controller ends
// exactly as one that ran without a stop.
#include <catch2/catch.hpp>

#include "controller/canary/background_calls.hpp"
#include "controller/canary/caches.hpp"
#include "controller/canary/history_store.hpp"
#include "controller/canary/reconciler.hpp"
#include "controller/canary/requests.hpp"
#include "controller/canary/webhook.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/router.hpp"
#include "metrics/metric_checker.hpp"
#include "platform/http/http_client.hpp"
#include "platform/core/time_format.hpp"
#include "platform/kube/event_recorder.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/fake_kube_client.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using serin::testing::FakeApiServer;
using serin::testing::FakeKubeClient;
using Json = nlohmann::json;
namespace kube = serin::kube;
namespace types = serin::kube::types;
namespace canary = serin::canary;

constexpr const char* kNs = "test";
constexpr const char* kKey = "test/podinfo";
constexpr auto kInterval = 10s;

const kube::ResourceType& virtual_services() {
    return serin::meshes::route_types::istio_virtual_services();
}

/// Runs handlers until none is ready (ManualClock timers fire only when the test moves time).
void settle(asio::io_context& io) {
    for (int i = 0; i < 10'000; ++i) {
        io.restart();
        if (io.poll() == 0) {
            return;
        }
    }
    FAIL("the io_context never went idle");
}

/// The test's metric provider: it has the prometheus provider type only, and every metric it
/// checks gets `verdict` (an error would count as a failed check).
class StubMetricChecker final : public serin::metrics::MetricChecker {
public:
    boost::asio::awaitable<std::vector<serin::analysis::MetricResult>> check(
        serin::api::Canary canary) override {
        std::vector<serin::analysis::MetricResult> results;
        if (canary.spec.analysis) {
            for (const auto& metric : canary.spec.analysis->metrics) {
                ++checks;
                results.push_back(serin::analysis::MetricResult{
                    metric.name, verdict, 1.0,
                    verdict == serin::analysis::Verdict::kPass ? "" : "stub: query failed",
                    std::nullopt});
            }
        }
        co_return results;
    }
    std::optional<std::vector<std::string>> provider_types() const override {
        return std::vector<std::string>{"prometheus"};
    }

    serin::analysis::Verdict verdict = serin::analysis::Verdict::kPass;
    int checks = 0;
};

/// One Serin process: a client of its own, the caches, and what the Controller would wire
/// around a Reconciler. Destroying it is a process that dies: nothing it holds survives, only
/// what the server stores.
class Process {
public:
    Process(asio::io_context& io, serin::ManualClock& clock, FakeApiServer& server,
            serin::http::HttpClient& http, std::vector<kube::ResourceType> route_types,
            canary::HistoryStoreOptions history_options = {},
            serin::QuietGate* hold_back = nullptr)
        : io_(io),
          client_(server.client()),
          caches_(*client_, clock, cache_options(std::move(route_types))),
          recorder_(*client_, clock, recorder_options(hold_back)),
          webhooks_(http, http, clock),
          calls_(io.get_executor(), clock, {},
                 [this](const std::string& key) { woken_.insert(key); }),
          routers_(serin::meshes::RouterDeps{caches_.kube()}),
          history_(*client_, clock, io.get_executor(), history_options),
          reconciler_(canary::ReconcilerDeps{io.get_executor(), caches_.kube(), clock, recorder_,
                                             webhooks_, routers_, metrics_, nullptr, calls_,
                                             caches_.secrets(), nullptr, &history_},
                      reconciler_options()) {
        serin::meshes::register_builtin_routers(routers_);
        caches_.start(io.get_executor());
        settle(io_);
        REQUIRE(caches_.synced());
    }
    ~Process() {
        caches_.stop();
        settle(io_);
    }

    FakeKubeClient& client() { return *client_; }

    /// One reconcile of the canary, run to its end. nullopt: it failed (a crashed client).
    std::optional<canary::ReconcileResult> reconcile(const std::string& key = kKey) {
        serin::Result<canary::ReconcileResult> out = run_reconcile(key, true);
        if (!out) {
            return std::nullopt;
        }
        return *out;
    }

    /// Starts a reconcile of the canary and runs the io_context only until it has ended (what
    /// it left to the background may still be under way). false: it failed.
    bool reconcile_without_settling(const std::string& key = kKey) {
        return run_reconcile(key, false).has_value();
    }

    /// Whether a background answer woke the canary since the last call.
    bool woken() { return woken_.erase(kKey) > 0; }

    StubMetricChecker& metrics() { return metrics_; }
    const canary::HistoryStore& history() const { return history_; }
    canary::HistoryStore& history() { return history_; }

private:
    /// One reconcile of `key`; then the io_context runs until idle (`settle_all`) or only until
    /// the reconcile has ended.
    serin::Result<canary::ReconcileResult> run_reconcile(const std::string& key, bool settle_all) {
        std::optional<serin::Result<canary::ReconcileResult>> out;
        asio::co_spawn(io_, reconciler_.reconcile(key),
                       [&](std::exception_ptr e, serin::Result<canary::ReconcileResult> r) {
                           REQUIRE_FALSE(e);
                           out = std::move(r);
                       });
        if (settle_all) {
            settle(io_);
        }
        for (int i = 0; i < 10'000 && !out; ++i) {
            io_.restart();
            io_.poll_one();
        }
        REQUIRE(out.has_value());
        return std::move(*out);
    }

    static canary::CacheOptions cache_options(std::vector<kube::ResourceType> route_types) {
        canary::CacheOptions options;
        options.route_types = std::move(route_types);
        options.requests = true;
        return options;
    }
    static kube::EventRecorderOptions recorder_options(serin::QuietGate* hold_back) {
        kube::EventRecorderOptions options;
        options.hold_back = hold_back;
        return options;
    }
    static canary::ReconcilerOptions reconciler_options() {
        canary::ReconcilerOptions options;
        options.mesh_provider = "kubernetes";
        options.requests = true;
        return options;
    }

    asio::io_context& io_;
    std::unique_ptr<FakeKubeClient> client_;
    canary::Caches caches_;
    kube::EventRecorder recorder_;
    canary::WebhookClient webhooks_;
    StubMetricChecker metrics_;
    canary::BackgroundCalls calls_;
    serin::meshes::RouterRegistry routers_;
    canary::HistoryStore history_;
    canary::Reconciler reconciler_;
    std::set<std::string> woken_;
};

Json deployment(const std::string& image) {
    return Json{{"apiVersion", "apps/v1"},
                {"kind", "Deployment"},
                {"metadata", {{"name", "podinfo"}, {"namespace", kNs}}},
                {"spec",
                 {{"replicas", 2},
                  {"selector", {{"matchLabels", {{"app", "podinfo"}}}}},
                  {"template",
                   {{"metadata", {{"labels", {{"app", "podinfo"}}}}},
                    {"spec",
                     {{"containers",
                       Json::array({{{"name", "podinfo"},
                                     {"image", image},
                                     {"ports", Json::array({{{"containerPort", 9898}}})}}})}}}}}}}};
}

/// A canary of `provider`: blue/green (iterations) or weighted (stepWeight up to maxWeight).
Json canary_of(const std::string& provider, bool blue_green) {
    Json analysis = {{"interval", "10s"}, {"threshold", 2}};
    if (blue_green) {
        analysis["iterations"] = 2;
    } else {
        analysis["stepWeight"] = 20;
        analysis["maxWeight"] = 40;
    }
    return Json{{"apiVersion", "flagger.app/v1beta1"},
                {"kind", "Canary"},
                {"metadata", {{"name", "podinfo"}, {"namespace", kNs}}},
                {"spec",
                 {{"provider", provider},
                  {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "podinfo"}}},
                  {"service", {{"port", 9898}}},
                  {"analysis", analysis}}}};
}

/// The test's kube-controller-manager: every Deployment is rolled out and available.
void roll_out(FakeApiServer& server) {
    for (const Json& d : server.objects(types::deployments(), kNs)) {
        const std::int64_t replicas = d["spec"].value("replicas", std::int64_t{1});
        Json status = {{"observedGeneration", d["metadata"].value("generation", std::int64_t{1})},
                       {"replicas", replicas},
                       {"updatedReplicas", replicas},
                       {"readyReplicas", replicas},
                       {"availableReplicas", replicas},
                       {"conditions",
                        Json::array({{{"type", "Available"}, {"status", "True"}},
                                     {{"type", "Progressing"},
                                      {"status", "True"},
                                      {"reason", "NewReplicaSetAvailable"}}})}};
        if (d.contains("status") && d["status"] == status) {
            continue;
        }
        REQUIRE(server.set_status(types::deployments(), kNs, d["metadata"]["name"].get<std::string>(),
                                  status)
                    .has_value());
    }
}

std::string phase_of(FakeApiServer& server) {
    auto c = server.object(types::canaries(), kNs, "podinfo");
    if (!c || !c->contains("status")) {
        return "";
    }
    return (*c)["status"].value("phase", "");
}

/// A fresh server with the types Serin reads and writes, and the target.
std::unique_ptr<FakeApiServer> new_server(serin::ManualClock& clock, bool istio,
                                          bool history = true) {
    auto server = std::make_unique<FakeApiServer>(clock);
    if (history) {
        server->serve(kube::types::canary_histories());
    }
    for (const kube::ResourceType* type :
         {&types::canaries(), &types::deployments(), &types::daemon_sets(), &types::services(),
          &types::config_maps(), &types::secrets(), &types::horizontal_pod_autoscalers(),
          &types::metric_templates(), &types::alert_providers(), &types::events()}) {
        server->serve(*type);
    }
    server->serve(kube::types::canary_requests(), serin::testing::TypeTraits{});
    if (istio) {
        for (const kube::ResourceType& type : serin::meshes::route_types::all()) {
            server->serve(type);
        }
    }
    REQUIRE(server->seed(types::deployments(), deployment("podinfo:1.0.0")).has_value());
    return server;
}

/// What a release leaves behind, for comparing two runs.
struct Outcome {
    std::string phase;
    Json status;  ///< the canary's status without times
    Json primary_template;
    Json target_replicas;
    Json apex_selector;
    Json virtual_service_http;
    int reconciles = 0;
    bool operator==(const Outcome& o) const {
        return phase == o.phase && status == o.status && primary_template == o.primary_template &&
               target_replicas == o.target_replicas && apex_selector == o.apex_selector &&
               virtual_service_http == o.virtual_service_http;
    }
};

std::ostream& operator<<(std::ostream& os, const Outcome& o) {
    return os << "phase " << o.phase << " status " << o.status.dump() << " primary "
              << o.primary_template.dump() << " target replicas " << o.target_replicas.dump()
              << " apex " << o.apex_selector.dump() << " vs " << o.virtual_service_http.dump();
}

Outcome outcome_of(FakeApiServer& server) {
    Outcome out;
    out.phase = phase_of(server);
    if (auto c = server.object(types::canaries(), kNs, "podinfo")) {
        out.status = (*c)["status"];
        out.status.erase("lastTransitionTime");
        out.status.erase("lastStepTime");
        for (Json& condition : out.status["conditions"]) {
            condition.erase("lastTransitionTime");
            condition.erase("lastUpdateTime");
        }
    }
    if (auto p = server.object(types::deployments(), kNs, "podinfo-primary")) {
        out.primary_template = (*p)["spec"]["template"];
    }
    if (auto t = server.object(types::deployments(), kNs, "podinfo")) {
        out.target_replicas = (*t)["spec"]["replicas"];
    }
    if (auto s = server.object(types::services(), kNs, "podinfo")) {
        out.apex_selector = (*s)["spec"]["selector"];
    }
    if (server.serves(virtual_services())) {
        if (auto vs = server.object(virtual_services(), kNs, "podinfo")) {
            out.virtual_service_http = (*vs)["spec"]["http"];
        }
    }
    return out;
}

/// A release from a new canary to promotion: initialize, bump the image once Initialized, run
/// until Succeeded. With `crash_after`, the first process dies after that many writes and a
/// fresh one carries on from what the server stores.
Outcome release(const std::string& provider, bool blue_green,
                std::optional<std::size_t> crash_after, std::size_t* writes = nullptr) {
    serin::ManualClock clock;  // before the io_context, which its timers need
    asio::io_context io;
    auto http = serin::http::make_beast_client(io.get_executor(), {});
    REQUIRE(http.has_value());
    const bool istio = provider == "istio";
    auto server = new_server(clock, istio);
    const std::vector<kube::ResourceType> routes =
        istio ? serin::meshes::route_types::all() : std::vector<kube::ResourceType>{};
    REQUIRE(server->seed(types::canaries(), canary_of(provider, blue_green)).has_value());

    auto process = std::make_unique<Process>(io, clock, *server, **http, routes);
    if (crash_after) {
        process->client().crash_after_writes(*crash_after);
    }
    bool bumped = false;
    int restarts = 0;
    Outcome out;
    for (; out.reconciles < 200; ++out.reconciles) {
        roll_out(*server);
        settle(io);
        auto result = process->reconcile();
        if (!result || process->client().crashed()) {
            // Dead: a fresh process starts from the stored objects.
            REQUIRE(++restarts <= 1);
            process.reset();
            process = std::make_unique<Process>(io, clock, *server, **http, routes);
            continue;
        }
        while (process->woken()) {  // an answer worked out in the background
            roll_out(*server);
            settle(io);
            result = process->reconcile();
            REQUIRE(result.has_value());
        }
        const std::string phase = phase_of(*server);
        if (phase == "Initialized" && !bumped) {
            auto target = server->object(types::deployments(), kNs, "podinfo");
            REQUIRE(target.has_value());
            (*target)["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2.0.0";
            REQUIRE(server->put(types::deployments(), *target).has_value());
            bumped = true;
        }
        if (phase == "Succeeded" || phase == "Failed") {
            break;
        }
        clock.advance(kInterval);
    }
    if (writes != nullptr) {
        *writes = process->client().writes_applied();
    }
    Outcome final_state = outcome_of(*server);
    final_state.reconciles = out.reconciles;
    process.reset();
    return final_state;
}

}  // namespace

TEST_CASE("crash property: a blue/green release stopped after any single write ends as one that was not") {
    std::size_t writes = 0;
    const Outcome whole = release("kubernetes", true, std::nullopt, &writes);
    REQUIRE(whole.phase == "Succeeded");
    REQUIRE(whole.primary_template["spec"]["containers"][0]["image"] == "podinfo:2.0.0");
    REQUIRE(writes > 5);
    for (std::size_t k = 1; k <= writes; ++k) {
        INFO("stopped after write " << k << " of " << writes);
        const Outcome resumed = release("kubernetes", true, k);
        CHECK(resumed == whole);
    }
}

TEST_CASE("crash property: a weighted release stopped after any single write ends as one that was not") {
    std::size_t writes = 0;
    const Outcome whole = release("istio", false, std::nullopt, &writes);
    REQUIRE(whole.phase == "Succeeded");
    REQUIRE(whole.primary_template["spec"]["containers"][0]["image"] == "podinfo:2.0.0");
    REQUIRE(writes > 5);
    for (std::size_t k = 1; k <= writes; ++k) {
        INFO("stopped after write " << k << " of " << writes);
        const Outcome resumed = release("istio", false, k);
        CHECK(resumed == whole);
    }
}

namespace {

/// A server with the target, a process on it, and the canary `spec_patch` merged into a
/// kubernetes blue/green canary.
struct World {
    serin::ManualClock clock;  // before the io_context
    asio::io_context io;
    serin::http::HttpClientPtr http;
    std::unique_ptr<FakeApiServer> server;
    std::unique_ptr<Process> process;

    explicit World(const Json& spec_patch = Json::object(), Json target = deployment("podinfo:1.0.0"),
                   bool history = true) {
        auto client = serin::http::make_beast_client(io.get_executor(), {});
        REQUIRE(client.has_value());
        http = std::move(*client);
        server = new_server(clock, false, history);
        REQUIRE(server->put(types::deployments(), std::move(target)).has_value());
        Json c = canary_of("kubernetes", true);
        c["spec"].merge_patch(spec_patch);
        REQUIRE(server->seed(types::canaries(), c).has_value());
        process = std::make_unique<Process>(io, clock, *server, *http, std::vector<kube::ResourceType>{});
    }

    /// One paced step: the test's controller-manager, a reconcile (and one more per background
    /// answer), then the interval passes.
    std::optional<canary::ReconcileResult> step() {
        roll_out(*server);
        settle(io);
        auto result = process->reconcile();
        while (result && process->woken()) {
            roll_out(*server);
            settle(io);
            result = process->reconcile();
        }
        clock.advance(kInterval);
        return result;
    }

    std::optional<Json> canary() { return server->object(types::canaries(), kNs, "podinfo"); }

    /// The Events recorded about the canary, as "<type>: <message>".
    std::vector<std::string> events() {
        std::vector<std::string> out;
        for (const Json& e : server->objects(types::events(), kNs)) {
            out.push_back(e.value("type", "") + ": " + e.value("message", ""));
        }
        return out;
    }

    /// The Accepted condition's status and message.
    std::pair<std::string, std::string> accepted() {
        auto c = canary();
        REQUIRE(c.has_value());
        for (const Json& condition : (*c)["status"]["conditions"]) {
            if (condition.value("type", "") == "Accepted") {
                return {condition.value("status", ""), condition.value("message", "")};
            }
        }
        return {"", ""};
    }
};

bool contains(const std::vector<std::string>& lines, const std::string& part) {
    for (const std::string& line : lines) {
        if (line.find(part) != std::string::npos) {
            return true;
        }
    }
    return false;
}

}  // namespace

// ---- release history (docs/runtime-control.md) --------------------------------------------------

namespace {

/// Runs the World's canary at least one paced step, then until `phase`.
void run_until(World& w, const std::string& phase) {
    REQUIRE(w.step().has_value());
    for (int i = 0; i < 60 && phase_of(*w.server) != phase; ++i) {
        REQUIRE(w.step().has_value());
    }
    REQUIRE(phase_of(*w.server) == phase);
}

void bump(World& w, const std::string& image) {
    auto target = w.server->object(types::deployments(), kNs, "podinfo");
    REQUIRE(target.has_value());
    (*target)["spec"]["template"]["spec"]["containers"][0]["image"] = image;
    REQUIRE(w.server->put(types::deployments(), *target).has_value());
}

}  // namespace

TEST_CASE("a whole release is recorded in the canary's CanaryHistory, and a restarted controller "
          "appends to the same object") {
    World w;
    run_until(w, "Initialized");
    CHECK_FALSE(w.server->object(kube::types::canary_histories(), kNs, "podinfo").has_value());
    bump(w, "podinfo:2.0.0");
    run_until(w, "Succeeded");

    auto stored = w.server->object(kube::types::canary_histories(), kNs, "podinfo");
    REQUIRE(stored.has_value());
    const Json canary_object = *w.canary();
    CHECK((*stored)["metadata"]["ownerReferences"][0]["uid"] == canary_object["metadata"]["uid"]);
    CHECK((*stored)["metadata"]["ownerReferences"][0]["kind"] == "Canary");
    CHECK((*stored)["spec"]["canaryRef"]["name"] == "podinfo");
    const Json& releases = (*stored)["spec"]["releases"];
    REQUIRE(releases.size() == 1);
    const Json first = releases[0];  // a copy: `stored` is read again below
    CHECK(first["outcome"] == "Succeeded");
    CHECK(first["image"] == "podinfo:2.0.0");
    CHECK(first["strategy"] == "blue-green");
    CHECK(first["revision"] == canary_object["status"]["lastPromotedSpec"]);
    CHECK(first["reason"] == "Promotion completed! Scaling down podinfo.test");
    CHECK(first.contains("end"));
    std::vector<std::string> steps;
    for (const Json& s : first["steps"]) {
        steps.push_back(s["phase"].get<std::string>() + " " + std::to_string(s["iteration"].get<int>()));
    }
    // The run starts, two iterations, all traffic to the canary, promotion, finalising, done.
    CHECK(steps == std::vector<std::string>{"Progressing 0", "Progressing 1", "Progressing 2",
                                            "Progressing 3", "Promoting 3", "Finalising 0",
                                            "Succeeded 0"});
    const std::string uid = (*stored)["metadata"]["uid"];
    CHECK(w.process->history().stats().failures == 0);
    CHECK(w.process->history().kept() == 0);  // the release ended: nothing kept in memory

    // A restart: a fresh process, with nothing in memory, releases the next version.
    w.process.reset();
    w.process = std::make_unique<Process>(w.io, w.clock, *w.server, *w.http,
                                          std::vector<kube::ResourceType>{});
    bump(w, "podinfo:3.0.0");
    run_until(w, "Succeeded");
    stored = w.server->object(kube::types::canary_histories(), kNs, "podinfo");
    REQUIRE(stored.has_value());
    CHECK((*stored)["metadata"]["uid"] == uid);  // the same object, updated
    REQUIRE((*stored)["spec"]["releases"].size() == 2);
    CHECK((*stored)["spec"]["releases"][0] == first);
    CHECK((*stored)["spec"]["releases"][1]["image"] == "podinfo:3.0.0");
    CHECK((*stored)["spec"]["releases"][1]["outcome"] == "Succeeded");
    CHECK((*stored)["spec"]["releases"][1]["previousRevision"] == first["revision"]);
}

TEST_CASE("a reconcile does not wait for its history record, which is written after the status") {
    World w;
    run_until(w, "Initialized");
    bump(w, "podinfo:2.0.0");
    roll_out(*w.server);
    settle(w.io);
    w.server->clear_write_log();
    // The reconcile that starts the release ends once `Progressing` is written: the record of
    // the new release (a GET, then the create) is still to come.
    REQUIRE(w.process->reconcile_without_settling());
    CHECK(phase_of(*w.server) == "Progressing");
    CHECK_FALSE(w.server->object(kube::types::canary_histories(), kNs, "podinfo").has_value());
    CHECK(w.process->history().pending() == 1);

    settle(w.io);
    CHECK(w.process->history().pending() == 0);
    auto stored = w.server->object(kube::types::canary_histories(), kNs, "podinfo");
    REQUIRE(stored.has_value());
    REQUIRE((*stored)["spec"]["releases"].size() == 1);
    CHECK((*stored)["spec"]["releases"][0]["image"] == "podinfo:2.0.0");
    CHECK((*stored)["spec"]["releases"][0]["outcome"] == "Running");
    // In the order the server saw them: the status first, the record after it.
    std::vector<std::string> log = w.server->write_log(true);
    const auto status = std::find_if(log.begin(), log.end(), [](const std::string& line) {
        return line.find("canaries test/podinfo/status") != std::string::npos;
    });
    const auto history = std::find_if(log.begin(), log.end(), [](const std::string& line) {
        return line.find("create canaryhistories") != std::string::npos;
    });
    INFO(log.size() << " writes");
    REQUIRE(status != log.end());
    REQUIRE(history != log.end());
    CHECK(status < history);
}

TEST_CASE("while reconciles run, a release's Events and history record wait, stamped when made") {
    World w;
    run_until(w, "Initialized");
    serin::QuietGate gate(w.clock, serin::QuietGateOptions{std::chrono::milliseconds{250},
                                                           std::chrono::seconds{5}});
    canary::HistoryStoreOptions held;
    held.hold_back = &gate;
    w.process.reset();
    w.process = std::make_unique<Process>(w.io, w.clock, *w.server, *w.http,
                                          std::vector<kube::ResourceType>{}, held, &gate);
    const std::size_t events_before = w.events().size();
    gate.begin();  // another canary's reconcile runs on
    bump(w, "podinfo:2.0.0");
    roll_out(*w.server);
    settle(w.io);
    const std::string started = serin::format_time(w.clock.system_now());
    REQUIRE(w.process->reconcile().has_value());
    CHECK(phase_of(*w.server) == "Progressing");
    w.clock.advance(std::chrono::seconds{2});
    settle(w.io);
    CHECK(w.events().size() == events_before);
    CHECK_FALSE(w.server->object(kube::types::canary_histories(), kNs, "podinfo").has_value());

    gate.end();  // the reconciles pause: what waited is written
    w.clock.advance(std::chrono::milliseconds{250});
    settle(w.io);
    const std::vector<std::string> events = w.events();
    CHECK(contains(events, "Normal: New revision detected! Scaling up podinfo." + std::string(kNs)));
    auto stored = w.server->object(kube::types::canary_histories(), kNs, "podinfo");
    REQUIRE(stored.has_value());
    CHECK((*stored)["spec"]["releases"].back()["image"] == "podinfo:2.0.0");
    // Written 2.25 s late, each Event carries the time of the reconcile that reported it.
    for (const Json& e : w.server->objects(types::events(), kNs)) {
        if (e.value("message", "").rfind("New revision detected!", 0) == 0) {
            CHECK(e.value("firstTimestamp", "") == started);
        }
    }
    CHECK(gate.held() >= 2);  // the Events' writer and the history's
    w.process.reset();  // before the gate it holds
}

TEST_CASE("records queued for one canary before its writer runs are written in the order made") {
    World w;
    run_until(w, "Initialized");
    auto decoded = serin::api::decode_canary(*w.canary());
    REQUIRE(decoded.has_value());
    serin::api::Canary canary = *decoded;
    canary.status.phase = "Progressing";  // mid-release, with no release recorded yet
    // Three analysis steps in a row, each queued before anything is written.
    for (int iteration = 1; iteration <= 3; ++iteration) {
        serin::analysis::Decision decision;
        decision.status = canary.status;
        decision.status.iterations = iteration;
        decision.consumed_tick = true;
        decision.active = true;
        w.process->history().record(canary, nullptr, serin::analysis::Observations{}, decision);
        canary.status = decision.status;
        w.clock.advance(kInterval);
    }
    CHECK(w.process->history().pending() == 3);
    settle(w.io);
    CHECK(w.process->history().pending() == 0);
    auto stored = w.server->object(kube::types::canary_histories(), kNs, "podinfo");
    REQUIRE(stored.has_value());
    REQUIRE((*stored)["spec"]["releases"].size() == 1);
    std::vector<int> iterations;
    std::vector<std::string> times;
    for (const Json& step : (*stored)["spec"]["releases"][0]["steps"]) {
        iterations.push_back(step["iteration"].get<int>());
        times.push_back(step["time"].get<std::string>());
    }
    CHECK(iterations == std::vector<int>{1, 2, 3});
    // Each stamped when it was made, not when written.
    REQUIRE(times.size() == 3);
    CHECK(times[0] < times[1]);
    CHECK(times[1] < times[2]);
}

TEST_CASE("a deleted canary leaves nothing of its history in memory, even with a record under way") {
    World w;
    run_until(w, "Initialized");
    bump(w, "podinfo:2.0.0");
    roll_out(*w.server);
    settle(w.io);
    REQUIRE(w.process->reconcile_without_settling());
    REQUIRE(w.process->history().pending() == 1);
    // The canary goes before its record is written; the next reconcile finds it gone.
    REQUIRE(w.server->remove(types::canaries(), kNs, "podinfo").has_value());
    settle(w.io);
    REQUIRE(w.process->reconcile().has_value());
    CHECK(w.process->history().pending() == 0);
    CHECK(w.process->history().kept() == 0);
}

TEST_CASE("past max_queued a history record is dropped and counted, and the release goes on") {
    World w;
    run_until(w, "Initialized");
    canary::HistoryStoreOptions full;
    full.max_queued = 0;
    w.process.reset();
    w.process = std::make_unique<Process>(w.io, w.clock, *w.server, *w.http,
                                          std::vector<kube::ResourceType>{}, full);
    bump(w, "podinfo:2.0.0");
    roll_out(*w.server);
    settle(w.io);
    REQUIRE(w.process->reconcile_without_settling());
    CHECK(phase_of(*w.server) == "Progressing");
    CHECK(w.process->history().pending() == 0);
    CHECK(w.process->history().stats().dropped == 1);
    CHECK(w.process->history().stats().failures == 1);
    settle(w.io);
    CHECK_FALSE(w.server->object(kube::types::canary_histories(), kNs, "podinfo").has_value());
}

TEST_CASE("history writes that conflict are applied again to the stored object") {
    World w;
    run_until(w, "Initialized");
    bump(w, "podinfo:2.0.0");
    REQUIRE(w.step().has_value());  // Progressing: the history is created
    auto stored = w.server->object(kube::types::canary_histories(), kNs, "podinfo");
    REQUIRE(stored.has_value());
    // Someone else writes it (a label): the store's resourceVersion is stale now.
    (*stored)["metadata"]["labels"]["edited"] = "by-hand";
    REQUIRE(w.server->put(kube::types::canary_histories(), *stored).has_value());
    run_until(w, "Succeeded");
    stored = w.server->object(kube::types::canary_histories(), kNs, "podinfo");
    REQUIRE(stored.has_value());
    CHECK((*stored)["metadata"]["labels"]["edited"] == "by-hand");
    CHECK((*stored)["spec"]["releases"][0]["outcome"] == "Succeeded");
    CHECK((*stored)["spec"]["releases"][0]["steps"].size() == 7);
    CHECK(w.process->history().stats().conflicts >= 1);
    CHECK(w.process->history().stats().failures == 0);
}

TEST_CASE("without the CanaryHistory CRD a release goes on and nothing is recorded") {
    World w(Json::object(), deployment("podinfo:1.0.0"), false);
    run_until(w, "Initialized");
    bump(w, "podinfo:2.0.0");
    run_until(w, "Succeeded");
    CHECK(w.process->history().stats().writes == 0);
    CHECK(w.process->history().stats().failures == 0);
    for (const std::string& line : w.server->write_log(true)) {
        CHECK(line.find("canaryhistories") == std::string::npos);
    }
}

TEST_CASE("each reconcile writes routing and workloads first, then the status, then Events") {
    World w;
    std::size_t seen = 0;
    bool bumped = false;
    int status_writes = 0;
    for (int i = 0; i < 60 && phase_of(*w.server) != "Succeeded"; ++i) {
        REQUIRE(w.step().has_value());
        const std::vector<std::string> log = w.server->write_log(true);
        // This reconcile's writes (the test's own status writes are not in a client's log).
        std::vector<std::string> mine(log.begin() + static_cast<std::ptrdiff_t>(seen), log.end());
        seen = log.size();
        std::ptrdiff_t status_at = -1;
        for (std::size_t j = 0; j < mine.size(); ++j) {
            if (mine[j].find("canaries " + std::string(kNs) + "/podinfo/status") != std::string::npos) {
                status_at = static_cast<std::ptrdiff_t>(j);
            }
        }
        if (status_at < 0) {
            continue;
        }
        ++status_writes;
        for (std::size_t j = 0; j < mine.size(); ++j) {
            INFO("reconcile " << i << " write " << j << ": " << mine[j]);
            const bool event = mine[j].find(" events ") != std::string::npos;
            const bool workload = mine[j].find(" deployments ") != std::string::npos ||
                                  mine[j].find(" services ") != std::string::npos;
            if (static_cast<std::ptrdiff_t>(j) < status_at) {
                CHECK_FALSE(event);
            } else if (static_cast<std::ptrdiff_t>(j) > status_at) {
                CHECK_FALSE(workload);
            }
        }
        if (phase_of(*w.server) == "Initialized" && !bumped) {
            auto target = w.server->object(types::deployments(), kNs, "podinfo");
            (*target)["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2.0.0";
            REQUIRE(w.server->put(types::deployments(), *target).has_value());
            bumped = true;
        }
    }
    CHECK(phase_of(*w.server) == "Succeeded");
    CHECK(status_writes >= 4);  // initialized, progressing, promoting, finalising, succeeded
}

TEST_CASE("a target scaled to zero in the middle of a run is scaled up again and the release is promoted") {
    World w;
    run_until(w, "Initialized");
    auto replicas = [&w] {
        auto target = w.server->object(types::deployments(), kNs, "podinfo");
        REQUIRE(target.has_value());
        return (*target)["spec"].value("replicas", -1);
    };
    bump(w, "podinfo:2.0.0");
    run_until(w, "Progressing");
    REQUIRE(replicas() == 2);  // sized like the primary

    auto target = w.server->object(types::deployments(), kNs, "podinfo");
    (*target)["spec"]["replicas"] = 0;  // someone scales it down
    REQUIRE(w.server->put(types::deployments(), *target).has_value());
    const int iterations = w.canary()->at("status").value("iterations", -1);
    REQUIRE(w.step().has_value());
    CHECK(replicas() == 2);
    CHECK(contains(w.events(), "Normal: Scaling up podinfo." + std::string(kNs) +
                                   ": the analysis needs it running"));
    CHECK(w.canary()->at("status").value("iterations", -1) == iterations);  // no step taken

    run_until(w, "Succeeded");
    const std::vector<std::string> events = w.events();
    CHECK(std::count(events.begin(), events.end(),
                     "Normal: New revision detected! Scaling up podinfo." + std::string(kNs)) == 1);
}

TEST_CASE("with revertOnDeletion a deleted canary gives its target back before it goes") {
    World w(Json{{"revertOnDeletion", true}});
    for (int i = 0; i < 10 && phase_of(*w.server) != "Initialized"; ++i) {
        REQUIRE(w.step().has_value());
    }
    REQUIRE(phase_of(*w.server) == "Initialized");
    auto c = w.canary();
    REQUIRE(c.has_value());
    CHECK((*c)["metadata"]["finalizers"] == Json::array({"finalizer.flagger.app"}));
    // Initialized: the target scaled to zero, the primary serving.
    CHECK(w.server->object(types::deployments(), kNs, "podinfo")->at("spec").at("replicas") == 0);

    REQUIRE(w.server->remove(types::canaries(), kNs, "podinfo").has_value());
    for (int i = 0; i < 10 && w.canary().has_value(); ++i) {
        REQUIRE(w.step().has_value());
    }
    CHECK_FALSE(w.canary().has_value());  // the finalizer removed, the canary gone
    CHECK(w.server->object(types::deployments(), kNs, "podinfo")->at("spec").at("replicas") == 2);
    CHECK(contains(w.events(), "Normal: Terminating canary podinfo.test"));
    CHECK(contains(w.events(), "Normal: Terminated canary podinfo.test"));
}

TEST_CASE("a canary that cannot be acted on is refused once, named, and not re-queued") {
    World w(Json{{"targetRef", {{"name", "missing"}}}});
    auto result = w.step();
    REQUIRE(result.has_value());
    CHECK_FALSE(result->requeue_after.has_value());
    const auto [status, message] = w.accepted();
    CHECK(status == "False");
    CHECK(message == "spec.targetRef.name: Deployment \"missing\" not found in namespace test");
    CHECK(contains(w.events(), "Warning: " + message));
    // Reported once: the same refusal again writes nothing.
    const std::size_t writes = w.server->write_log(true).size();
    REQUIRE(w.step().has_value());
    CHECK(w.server->write_log(true).size() == writes);
}

TEST_CASE("a target whose ConfigMap is missing is refused and looked at again after 10 s") {
    Json target = deployment("podinfo:1.0.0");
    target["spec"]["template"]["spec"]["volumes"] =
        Json::array({{{"name", "config"}, {"configMap", {{"name", "settings"}}}}});
    World w(Json::object(), target);
    auto result = w.step();
    REQUIRE(result.has_value());
    REQUIRE(result->requeue_after.has_value());
    CHECK(*result->requeue_after == std::chrono::seconds{10});
    const auto [status, message] = w.accepted();
    CHECK(status == "False");
    CHECK(message.find("configmap settings.test used by the pod template of Deployment podinfo "
                       "not found") != std::string::npos);
    // Once the ConfigMap exists the canary is accepted and initialized.
    REQUIRE(w.server
                ->seed(types::config_maps(),
                       Json{{"apiVersion", "v1"},
                            {"kind", "ConfigMap"},
                            {"metadata", {{"name", "settings"}, {"namespace", kNs}}},
                            {"data", {{"a", "1"}}}})
                .has_value());
    for (int i = 0; i < 5 && phase_of(*w.server) != "Initialized"; ++i) {
        REQUIRE(w.step().has_value());
    }
    CHECK(phase_of(*w.server) == "Initialized");
    CHECK(w.accepted().first == "True");
    CHECK(w.server->object(types::config_maps(), kNs, "settings-primary").has_value());
}

// ---- what this build lacks is refused up front (issue 16 item 5) --------------------------------

namespace {

Json metric_template(const std::string& provider_type) {
    return Json{{"apiVersion", "flagger.app/v1beta1"},
                {"kind", "MetricTemplate"},
                {"metadata", {{"name", "latency"}, {"namespace", kNs}}},
                {"spec",
                 {{"provider", {{"type", provider_type}, {"address", "http://metrics:9090"}}},
                  {"query", "histogram_quantile(0.99, rate(latency[1m]))"}}}};
}

/// A canary metric on MetricTemplate "latency".
Json template_metric() {
    return Json{{"analysis",
                 {{"metrics", Json::array({{{"name", "latency"},
                                            {"templateRef", {{"name", "latency"}}},
                                            {"thresholdRange", {{"max", 500}}},
                                            {"interval", "1m"}}})}}}};
}

/// What a refusal must leave: Accepted=False with `message`, one Warning Event saying it, no
/// primary (no release started), no failed check counted, no metric queried.
void check_refused_before_release(World& w, const std::string& message) {
    for (int i = 0; i < 3; ++i) {
        auto result = w.step();
        REQUIRE(result.has_value());
        CHECK_FALSE(result->requeue_after.has_value());  // a watched object change lifts it
    }
    const auto [status, said] = w.accepted();
    CHECK(status == "False");
    CHECK(said == message);
    CHECK(contains(w.events(), "Warning: " + message));
    CHECK_FALSE(w.server->object(types::deployments(), kNs, "podinfo-primary").has_value());
    auto c = w.canary();
    REQUIRE(c.has_value());
    CHECK((*c)["status"].value("phase", "") == "");
    CHECK((*c)["status"].value("failedChecks", 0) == 0);
    CHECK(w.process->metrics().checks == 0);
    // The target keeps serving: nothing scaled it down.
    CHECK(w.server->object(types::deployments(), kNs, "podinfo")->at("spec").at("replicas") == 2);
}

}  // namespace

TEST_CASE("a MetricTemplate whose provider type is not built is refused before the release") {
    World w(template_metric());
    REQUIRE(w.server->seed(types::metric_templates(), metric_template("datadog")).has_value());
    w.process->metrics().verdict = serin::analysis::Verdict::kError;  // would count if queried
    check_refused_before_release(
        w, "spec.analysis.metrics[0].templateRef: MetricTemplate \"latency\" provider.type "
           "\"datadog\" is not supported by this build (supported: prometheus)");
    // The template fixed, the canary is accepted and initialized.
    REQUIRE(w.server->put(types::metric_templates(), metric_template("prometheus")).has_value());
    w.process->metrics().verdict = serin::analysis::Verdict::kPass;
    for (int i = 0; i < 5 && phase_of(*w.server) != "Initialized"; ++i) {
        REQUIRE(w.step().has_value());
    }
    CHECK(phase_of(*w.server) == "Initialized");
    CHECK(w.accepted().first == "True");
}

TEST_CASE("a spec.provider that is not built is refused before the release") {
    World w(Json{{"provider", "ambassador"}});
    check_refused_before_release(
        w, "spec.provider: \"ambassador\" is not supported by this build of Serin (supported: "
           "apisix, appmesh:v1beta2, contour, gatewayapi:v1, gatewayapi:v1beta1, gloo, istio, knative, "
           "kubernetes, kuma, linkerd, nginx, osm, skipper, smi:v1alpha1, smi:v1alpha2, smi:v1alpha3, "
           "traefik)");
}

TEST_CASE("an autoscalerRef kind that is not built is refused before the release") {
    World w(Json{{"autoscalerRef",
                  {{"apiVersion", "keda.sh/v1alpha1"},
                   {"kind", "ScaledObject"},
                   {"name", "podinfo"}}}});
    check_refused_before_release(w, "spec.autoscalerRef.kind: \"ScaledObject\" is not supported by "
                                    "this build (supported: HorizontalPodAutoscaler)");
}

TEST_CASE("a release whose MetricTemplate turns unsupported pauses where it stands, then resumes") {
    // Decided: the refusal keeps the status (phase, iterations, failedChecks) and every object
    // as they are, counts nothing and rolls nothing back; once the template is fixed the release
    // carries on from there.
    Json spec = template_metric();
    spec["analysis"]["iterations"] = 3;
    World w(spec);
    REQUIRE(w.server->seed(types::metric_templates(), metric_template("prometheus")).has_value());
    for (int i = 0; i < 10 && phase_of(*w.server) != "Initialized"; ++i) {
        REQUIRE(w.step().has_value());
    }
    REQUIRE(phase_of(*w.server) == "Initialized");
    auto target = w.server->object(types::deployments(), kNs, "podinfo");
    (*target)["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2.0.0";
    REQUIRE(w.server->put(types::deployments(), *target).has_value());
    for (int i = 0; i < 10 && w.process->metrics().checks == 0; ++i) {
        REQUIRE(w.step().has_value());
    }
    REQUIRE(phase_of(*w.server) == "Progressing");
    REQUIRE(w.process->metrics().checks > 0);
    const Json before = w.canary()->at("status");

    REQUIRE(w.server->put(types::metric_templates(), metric_template("datadog")).has_value());
    w.process->metrics().verdict = serin::analysis::Verdict::kError;
    const int checks = w.process->metrics().checks;
    for (int i = 0; i < 5; ++i) {
        REQUIRE(w.step().has_value());
    }
    const Json paused = w.canary()->at("status");
    CHECK(w.accepted().first == "False");
    CHECK(paused.value("phase", "") == "Progressing");
    CHECK(paused.value("failedChecks", 0) == 0);
    CHECK(paused.value("iterations", 0) == before.value("iterations", 0));
    CHECK(w.process->metrics().checks == checks);
    CHECK(w.server->object(types::deployments(), kNs, "podinfo-primary")
              ->at("spec")["template"]["spec"]["containers"][0]["image"] == "podinfo:1.0.0");

    REQUIRE(w.server->put(types::metric_templates(), metric_template("prometheus")).has_value());
    w.process->metrics().verdict = serin::analysis::Verdict::kPass;
    for (int i = 0; i < 30 && phase_of(*w.server) != "Succeeded"; ++i) {
        REQUIRE(w.step().has_value());
    }
    CHECK(phase_of(*w.server) == "Succeeded");
    CHECK(w.accepted().first == "True");
    CHECK(w.server->object(types::deployments(), kNs, "podinfo-primary")
              ->at("spec")["template"]["spec"]["containers"][0]["image"] == "podinfo:2.0.0");
}

// ---- runtime requests (docs/runtime-control.md) -------------------------------------------------

namespace {

/// Creates a CanaryRequest for podinfo from alice, as kubectl serin would.
void create_request(World& w, const std::string& name, const std::string& action,
                    bool full = false) {
    Json request = {{"apiVersion", "serin.dev/v1alpha1"},
                    {"kind", "CanaryRequest"},
                    {"metadata", {{"name", name}, {"namespace", kNs}}},
                    {"spec",
                     {{"canaryRef", {{"name", "podinfo"}}},
                      {"action", action},
                      {"full", full},
                      {"requestedBy", "alice"}}}};
    REQUIRE(w.server->seed(kube::types::canary_requests(), request).has_value());
}

Json request_status(World& w, const std::string& name) {
    auto request = w.server->object(kube::types::canary_requests(), kNs, name);
    REQUIRE(request.has_value());
    return request->value("status", Json::object());
}

/// How often status.requests records the request named `name`.
int records_of(World& w, const std::string& name) {
    int n = 0;
    for (const Json& r : w.canary()->at("status").value("requests", Json::array())) {
        n += r.value("name", "") == name ? 1 : 0;
    }
    return n;
}

int events_naming(World& w, const std::string& name) {
    int n = 0;
    for (const std::string& e : w.events()) {
        n += e.find("(CanaryRequest " + name) != std::string::npos ? 1 : 0;
    }
    return n;
}

/// A blue/green release of podinfo:2.0.0 with `iterations`, run until it has taken a step.
void start_release(World& w) {
    for (int i = 0; i < 10 && phase_of(*w.server) != "Initialized"; ++i) {
        REQUIRE(w.step().has_value());
    }
    REQUIRE(phase_of(*w.server) == "Initialized");
    auto target = w.server->object(types::deployments(), kNs, "podinfo");
    (*target)["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2.0.0";
    REQUIRE(w.server->put(types::deployments(), *target).has_value());
    for (int i = 0; i < 10 && w.canary()->at("status").value("iterations", 0) < 1; ++i) {
        REQUIRE(w.step().has_value());
    }
    REQUIRE(phase_of(*w.server) == "Progressing");
}

std::string primary_image(World& w) {
    return w.server->object(types::deployments(), kNs, "podinfo-primary")
        ->at("spec")["template"]["spec"]["containers"][0]["image"];
}

}  // namespace

TEST_CASE("a promote request skips the remaining iterations and its request is Done once") {
    World w(Json{{"analysis", {{"iterations", 20}}}});
    start_release(w);
    create_request(w, "podinfo-promote-a", "promote");
    int steps = 0;
    for (; steps < 10 && phase_of(*w.server) != "Succeeded"; ++steps) {
        REQUIRE(w.step().has_value());
    }
    CHECK(phase_of(*w.server) == "Succeeded");
    CHECK(steps <= 4);  // promoting, finalising, succeeded: not 19 more iterations
    CHECK(primary_image(w) == "podinfo:2.0.0");
    const Json status = request_status(w, "podinfo-promote-a");
    CHECK(status.value("phase", "") == "Done");
    CHECK(status.value("message", "") ==
          "Promotion requested by alice: skipping the remaining analysis steps of podinfo.test");
    CHECK(status.value("revision", "").rfind("s1:", 0) == 0);
    CHECK_FALSE(status.value("handledTime", "").empty());
    CHECK(records_of(w, "podinfo-promote-a") == 1);
    CHECK(events_naming(w, "podinfo-promote-a") == 1);
    CHECK(contains(w.events(), "Normal: Promotion requested by alice"));
}

TEST_CASE("an abort request rolls back at once and leaves the primary untouched") {
    World w(Json{{"analysis", {{"iterations", 20}}}});
    start_release(w);
    create_request(w, "podinfo-abort-a", "abort");
    REQUIRE(w.step().has_value());
    CHECK(phase_of(*w.server) == "Failed");
    CHECK(primary_image(w) == "podinfo:1.0.0");
    CHECK(w.server->object(types::deployments(), kNs, "podinfo")->at("spec")["replicas"] == 0);
    CHECK(request_status(w, "podinfo-abort-a").value("phase", "") == "Done");
    CHECK(contains(w.events(), "Warning: Rolling back podinfo.test aborted by alice (request "
                               "podinfo-abort-a)"));
    CHECK(events_naming(w, "podinfo-abort-a") == 1);

    // A second abort of a failed canary is refused, with a Warning.
    create_request(w, "podinfo-abort-b", "abort");
    REQUIRE(w.step().has_value());
    CHECK(request_status(w, "podinfo-abort-b").value("phase", "") == "Refused");
    CHECK(contains(w.events(), "Warning: Abort requested by alice refused: podinfo is not "
                               "releasing (phase Failed)"));
}

TEST_CASE("a pause request holds the iterations across intervals, resume goes on an interval later") {
    World w(Json{{"analysis", {{"iterations", 4}}}});
    start_release(w);
    create_request(w, "podinfo-pause-a", "pause");
    auto paused = w.step();
    REQUIRE(paused.has_value());
    REQUIRE(paused->requeue_after.has_value());
    CHECK(*paused->requeue_after == serin::Duration(kInterval));  // no busy re-queue
    const int held_at = w.canary()->at("status").value("iterations", 0);
    CHECK(w.canary()->at("status")["paused"].value("request", "") == "podinfo-pause-a");
    for (int i = 0; i < 3; ++i) {
        REQUIRE(w.step().has_value());
        CHECK(w.canary()->at("status").value("iterations", 0) == held_at);
    }
    create_request(w, "podinfo-resume-a", "resume");
    REQUIRE(w.step().has_value());  // the resume itself takes no step
    CHECK(request_status(w, "podinfo-resume-a").value("phase", "") == "Done");
    CHECK_FALSE(w.canary()->at("status").contains("paused"));
    CHECK(w.canary()->at("status").value("iterations", 0) == held_at);
    REQUIRE(w.step().has_value());
    CHECK(w.canary()->at("status").value("iterations", 0) == held_at + 1);
    for (int i = 0; i < 20 && phase_of(*w.server) != "Succeeded"; ++i) {
        REQUIRE(w.step().has_value());
    }
    CHECK(phase_of(*w.server) == "Succeeded");
}

TEST_CASE("a request naming a canary that does not exist is refused") {
    World w;
    REQUIRE(w.step().has_value());
    Json request = {{"apiVersion", "serin.dev/v1alpha1"},
                    {"kind", "CanaryRequest"},
                    {"metadata", {{"name", "ghost-promote-a"}, {"namespace", kNs}}},
                    {"spec", {{"canaryRef", {{"name", "ghost"}}}, {"action", "promote"}}}};
    REQUIRE(w.server->seed(kube::types::canary_requests(), request).has_value());
    settle(w.io);
    // Just created: the canary's cache may lag behind, so it is looked at again first.
    auto young = w.process->reconcile("test/ghost");
    REQUIRE(young.has_value());
    CHECK(young->requeue_after.has_value());
    CHECK(request_status(w, "ghost-promote-a").value("phase", "") == "");
    w.clock.advance(10s);
    settle(w.io);
    REQUIRE(w.process->reconcile("test/ghost").has_value());
    const Json status = request_status(w, "ghost-promote-a");
    CHECK(status.value("phase", "") == "Refused");
    CHECK(status.value("message", "") == "canary ghost not found in namespace test");
}

TEST_CASE("exactly once: stopped between the canary's status and the request's, a fresh process completes the request without acting again") {
    // Each run stops the process after its k-th write while it handles an abort; a fresh one
    // finishes. Whatever k, the abort is acted on once and recorded once; when the stop fell
    // between the two status writes, the fresh process writes the request's status and the Event.
    bool between_seen = false;
    for (std::size_t k = 1; k <= 8; ++k) {
        INFO("stopped after write " << k);
        World w(Json{{"analysis", {{"iterations", 20}}}});
        start_release(w);
        create_request(w, "podinfo-abort-a", "abort");
        w.process->client().crash_after_writes(k);
        roll_out(*w.server);
        settle(w.io);
        w.process->reconcile();
        const bool crashed = w.process->client().crashed();
        const bool recorded = records_of(w, "podinfo-abort-a") == 1;
        const bool between =
            crashed && recorded &&
            request_status(w, "podinfo-abort-a").value("phase", "").empty();
        between_seen = between_seen || between;
        w.process.reset();
        w.process = std::make_unique<Process>(w.io, w.clock, *w.server, *w.http,
                                              std::vector<kube::ResourceType>{});
        for (int i = 0; i < 3; ++i) {
            REQUIRE(w.step().has_value());
        }
        CHECK(phase_of(*w.server) == "Failed");
        CHECK(primary_image(w) == "podinfo:1.0.0");
        CHECK(records_of(w, "podinfo-abort-a") == 1);
        const Json status = w.canary()->at("status");
        CHECK(status["requests"].back().value("result", "") == "Done");
        CHECK(request_status(w, "podinfo-abort-a").value("phase", "") == "Done");
        CHECK(request_status(w, "podinfo-abort-a").value("message", "") ==
              "Abort requested by alice: rolling back podinfo.test");
        CHECK(events_naming(w, "podinfo-abort-a") <= 1);
        if (between) {
            CHECK(events_naming(w, "podinfo-abort-a") == 1);
        }
    }
    CHECK(between_seen);
}

TEST_CASE("a request for a canary that cannot be acted on is refused with the canary's refusal") {
    World w(Json{{"targetRef", {{"name", "missing"}}}});
    REQUIRE(w.step().has_value());
    REQUIRE(w.accepted().first == "False");
    create_request(w, "podinfo-promote-a", "promote");
    REQUIRE(w.step().has_value());
    const Json status = request_status(w, "podinfo-promote-a");
    CHECK(status.value("phase", "") == "Refused");
    CHECK(status.value("message", "").rfind(
              "Promote requested by alice refused: podinfo cannot be acted on: spec.targetRef", 0) ==
          0);
}

TEST_CASE("a new controller on the stored objects waits out the rest of the interval (status.lastStepTime)") {
    World w(Json{{"analysis", {{"iterations", 5}}}});
    start_release(w);  // iteration 1, an interval ago
    // One reconcile (and one per background answer) at the clock's time, which stays.
    const auto reconcile_now = [&w] {
        roll_out(*w.server);
        settle(w.io);
        auto result = w.process->reconcile();
        while (result && w.process->woken()) {
            roll_out(*w.server);
            settle(w.io);
            result = w.process->reconcile();
        }
        REQUIRE(result.has_value());
        return *result;
    };
    const auto iterations = [&w] { return w.canary()->at("status").value("iterations", 0); };

    const canary::ReconcileResult stepped = reconcile_now();
    REQUIRE(iterations() == 2);
    CHECK(w.canary()->at("status").value("lastStepTime", "") ==
          serin::format_micro_time(w.clock.system_now()));
    CHECK(stepped.requeue_after == std::optional<serin::Duration>(kInterval));

    // Killed 4 s later: a fresh process starts on what the server stores.
    w.clock.advance(4s);
    w.process.reset();
    w.process = std::make_unique<Process>(w.io, w.clock, *w.server, *w.http,
                                          std::vector<kube::ResourceType>{});
    const canary::ReconcileResult early = reconcile_now();
    CHECK(iterations() == 2);
    CHECK(early.requeue_after == std::optional<serin::Duration>(6s));

    w.clock.advance(6s - 1ms);
    reconcile_now();
    CHECK(iterations() == 2);
    w.clock.advance(1ms);
    const canary::ReconcileResult due = reconcile_now();
    CHECK(iterations() == 3);
    CHECK(due.requeue_after == std::optional<serin::Duration>(kInterval));
}
