// Every router against the devcluster with the real Istio, SMI and Gateway API CRDs: each object
// a router writes is accepted and reads back with nothing pruned; a reconcile with nothing
// changed writes nothing; a change to a field Serin does not own is kept and does not reset the
// weights; a change to a field it owns is repaired, keeping the weights.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <vector>

#include "meshes/common/route_types.hpp"
#include "meshes/common/session_affinity.hpp"
#include "meshes/knative/knative_router.hpp"
#include "meshes/router.hpp"
#include "platform/kube/discovery.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/object_store.hpp"
#include "tests/e2e/e2e.hpp"
#include "tests/support/golden.hpp"

namespace {

namespace asio = boost::asio;
namespace kube = serin::kube;
namespace meshes = serin::meshes;
namespace route_types = serin::meshes::route_types;
using serin::Result;
using serin::analysis::Routes;
using serin::e2e::Scenario;
using Json = nlohmann::json;
using namespace std::chrono_literals;

/// A KubeClient that passes every call to the real one and keeps what was written and what the
/// server answered.
class RecordingClient final : public kube::KubeClient {
public:
    struct Write {
        std::string verb;
        kube::ResourceType type;
        Json sent;
        Json stored;  ///< the server's answer; null when the write failed
    };

    explicit RecordingClient(kube::KubeClient& inner) : inner_(inner) {}

    std::vector<Write> writes;

    asio::awaitable<Result<Json>> get(kube::ResourceType type, std::string ns,
                                      std::string name) override {
        co_return co_await inner_.get(std::move(type), std::move(ns), std::move(name));
    }
    asio::awaitable<Result<kube::ListPage>> list(kube::ResourceType type, std::string ns,
                                                 kube::ListOptions options) override {
        co_return co_await inner_.list(std::move(type), std::move(ns), std::move(options));
    }
    asio::awaitable<Result<Json>> create(kube::ResourceType type, std::string ns, Json object,
                                         kube::WriteOptions options) override {
        auto result = co_await inner_.create(type, std::move(ns), object, std::move(options));
        writes.push_back(Write{"create", type, object, result ? *result : Json()});
        co_return result;
    }
    asio::awaitable<Result<Json>> update(kube::ResourceType type, std::string ns, Json object,
                                         kube::WriteOptions options) override {
        auto result = co_await inner_.update(type, std::move(ns), object, std::move(options));
        writes.push_back(Write{"update", type, object, result ? *result : Json()});
        co_return result;
    }
    asio::awaitable<Result<Json>> patch(kube::ResourceType type, std::string ns,
                                        std::string name, kube::PatchType patch_type,
                                        std::string body, kube::WriteOptions options) override {
        auto result = co_await inner_.patch(type, std::move(ns), std::move(name), patch_type,
                                            body, std::move(options));
        writes.push_back(Write{"patch", type, Json(body), result ? *result : Json()});
        co_return result;
    }
    asio::awaitable<Result<void>> remove(kube::ResourceType type, std::string ns,
                                         std::string name, kube::DeleteOptions options) override {
        co_return co_await inner_.remove(std::move(type), std::move(ns), std::move(name),
                                         std::move(options));
    }
    asio::awaitable<Result<void>> watch(kube::ResourceType type, std::string ns,
                                        kube::WatchOptions options,
                                        kube::WatchHandler handler) override {
        co_return co_await inner_.watch(std::move(type), std::move(ns), std::move(options),
                                        std::move(handler));
    }
    asio::awaitable<Result<std::string>> get_raw(std::string path) override {
        co_return co_await inner_.get_raw(std::move(path));
    }

private:
    kube::KubeClient& inner_;
};

/// Routers of this build on informer caches of one namespace, as the controller runs them.
class RouteBench {
public:
    explicit RouteBench(Scenario& scenario)
        : s_(scenario),
          real_(serin::testing::make_admin_client(s_.io(), s_.cluster())),
          client_(*real_),
          store_(clock_),
          kube_(client_, store_),
          registry_(meshes::RouterDeps{kube_}) {
        meshes::register_builtin_routers(registry_);
        auto served = serin::testing::run(
            s_.io(), kube::served_types(client_, route_types::all()));
        REQUIRE(served.size() == route_types::all().size());  // the devcluster has every CRD
        kube::InformerOptions options;
        options.ns = s_.ns();
        for (const kube::ResourceType& type : served) {
            informers_.push_back(std::make_unique<kube::Informer>(client_, clock_, type, options));
            store_.add(*informers_.back());
            informers_.back()->start(s_.io().get_executor());
        }
        // Canaries of every namespace: the kuma router reads who claims a TrafficRoute.
        kube::InformerOptions all_namespaces;
        informers_.push_back(std::make_unique<kube::Informer>(client_, clock_, kube::types::canaries(),
                                                              all_namespaces));
        store_.add(*informers_.back());
        informers_.back()->start(s_.io().get_executor());
        wait_for([this] { return store_.synced(); }, "the informers to sync");
    }
    ~RouteBench() {
        for (auto& informer : informers_) {
            informer->stop();
        }
    }

    /// Creates the Canary of `file` (in this namespace, as `name`) so that owner references
    /// point at a real object, and returns the reconciler's RouteContext for it.
    meshes::RouteContext context(const std::string& file, const std::string& provider,
                                 const std::string& name) {
        Json manifest = serin::testing::load_document(file);
        manifest["metadata"] = Json{{"name", name}, {"namespace", s_.ns()}};
        manifest["spec"]["provider"] = provider;
        if (!manifest["spec"]["service"].contains("name")) {
            manifest["spec"]["service"]["name"] = name;
        }
        const Json created = s_.create(kube::types::canaries(), manifest);
        return serin::testing::route_context(created, provider);
    }

    meshes::MeshRouter& router(const meshes::RouteContext& context) {
        auto found = registry_.find(context.provider);
        REQUIRE(found.has_value());
        return **found;
    }

    Result<void> reconcile(const meshes::RouteContext& context) {
        return serin::testing::run(s_.io(), router(context).reconcile(context));
    }
    Result<void> finalize(const meshes::RouteContext& context) {
        return serin::testing::run(s_.io(), router(context).finalize(context));
    }
    Result<Routes> get_routes(const meshes::RouteContext& context) {
        return serin::testing::run(s_.io(), router(context).get_routes(context));
    }
    /// As the reconciler does it: cookies first (for routers that route by them), then routes.
    Result<void> set_routes(meshes::RouteContext& context, const Routes& routes) {
        const auto& analysis = context.canary.spec.analysis;
        if (router(context).supports_session_affinity() && analysis &&
            analysis->session_affinity) {
            meshes::update_session_cookies(context.canary.status, *analysis->session_affinity,
                                           routes, [this] { return meshes::random_cookie_value(random_); });
        }
        return serin::testing::run(s_.io(), router(context).set_routes(context, routes));
    }

    /// Writes made since `from`; each must have been stored exactly as sent (nothing pruned or
    /// defaulted in what Serin owns).
    std::size_t writes_since(std::size_t from) {
        for (std::size_t i = from; i < client_.writes.size(); ++i) {
            const RecordingClient::Write& w = client_.writes[i];
            INFO(w.verb << " " << w.type.kind << " " << w.sent.dump(2));
            REQUIRE(w.stored.is_object());
            CHECK(Json::diff(w.sent["spec"], w.stored["spec"]) == Json::array());
            for (const char* map : {"labels", "annotations"}) {
                const Json& sent = w.sent["metadata"].value(map, Json::object());
                for (auto it = sent.begin(); it != sent.end(); ++it) {
                    CHECK(w.stored["metadata"][map][it.key()] == *it);
                }
            }
            // And a read from the API server (not the cache) says the same.
            auto read = serin::testing::run(
                s_.io(), real_->get(w.type, s_.ns(), w.stored["metadata"]["name"].get<std::string>()));
            REQUIRE(read.has_value());
            CHECK(Json::diff(w.sent["spec"], (*read)["spec"]) == Json::array());
        }
        return client_.writes.size() - from;
    }
    std::size_t write_count() const { return client_.writes.size(); }

    /// Merge-patches an object as another tool would, and waits until the cache has it.
    void drift(const kube::ResourceType& type, const std::string& name, const Json& patch) {
        auto patched = serin::testing::run(
            s_.io(), real_->patch(type, scope(type), name, kube::PatchType::kMerge, patch.dump()));
        REQUIRE(patched.has_value());
        const std::string version = (*patched)["metadata"]["resourceVersion"];
        wait_for(
            [&] {
                kube::ObjectPtr cached = store_.get(type, scope(type), name);
                return cached != nullptr &&
                       kube::resource_version_at_least(
                           (*cached)["metadata"].value("resourceVersion", ""), version);
            },
            "the cache to see the drift of " + name);
    }

    Json cached(const kube::ResourceType& type, const std::string& name) {
        kube::ObjectPtr object = store_.get(type, scope(type), name);
        REQUIRE(object != nullptr);
        return *object;
    }
    /// Runs the io_context until the cached object `name` satisfies `condition` (30 s).
    Json wait_cached(const kube::ResourceType& type, const std::string& name,
                     const std::function<bool(const Json&)>& condition, const std::string& what) {
        wait_for(
            [&] {
                kube::ObjectPtr object = store_.get(type, scope(type), name);
                return object != nullptr && condition(*object);
            },
            what);
        return cached(type, name);
    }
    /// The object as the API server has it now; nullopt when it does not exist.
    std::optional<Json> read(const kube::ResourceType& type, const std::string& name) {
        auto got = serin::testing::run(s_.io(), real_->get(type, scope(type), name));
        if (!got && got.error().kind == serin::ErrorKind::kNotFound) {
            return std::nullopt;
        }
        REQUIRE(got.has_value());
        return *got;
    }
    /// What the reconciler calls on deletion without revertOnDeletion.
    Result<void> release(const meshes::RouteContext& context) {
        return serin::testing::run(s_.io(), router(context).release(context));
    }
    /// The namespace of objects of `type`: the scenario's, none for cluster-scoped ones.
    std::string scope(const kube::ResourceType& type) const { return type.namespaced ? s_.ns() : ""; }

    /// Deletes an object as another tool would, and waits until the cache has lost it.
    void remove(const kube::ResourceType& type, const std::string& name) {
        auto removed = serin::testing::run(s_.io(), real_->remove(type, scope(type), name, kube::DeleteOptions{}));
        REQUIRE(removed.has_value());
        wait_for([&] { return store_.get(type, scope(type), name) == nullptr; }, "the cache to lose " + name);
    }

private:
    /// Runs the io_context until `condition` holds, failing after 30 s.
    void wait_for(const std::function<bool()>& condition, const std::string& what) {
        auto task = [](asio::io_context& io, std::function<bool()> done) -> asio::awaitable<bool> {
            asio::steady_timer timer(io);
            const auto deadline = std::chrono::steady_clock::now() + 30s;
            while (!done()) {
                if (std::chrono::steady_clock::now() > deadline) {
                    co_return false;
                }
                timer.expires_after(5ms);
                co_await timer.async_wait(asio::use_awaitable);
            }
            co_return true;
        };
        INFO("waiting for " << what);
        REQUIRE(serin::testing::run(s_.io(), task(s_.io(), condition)));
    }

    Scenario& s_;
    serin::SystemClock clock_;
    std::unique_ptr<kube::RestKubeClient> real_;
    RecordingClient client_;
    kube::ObjectStore store_;
    kube::CachedClient kube_;
    meshes::RouterRegistry registry_;
    std::vector<std::unique_ptr<kube::Informer>> informers_;
    std::mt19937_64 random_{42};
};

/// One router case: a Canary, the routes a release moves through, and where its main routing
/// object lives.
struct RouteCase {
    std::string file;  ///< under tests/data/routes/
    std::string provider;
    std::vector<Routes> steps;
    kube::ResourceType type;  ///< of the object carrying the weights (named after the apex)
    Json owned_drift;         ///< a merge patch to a field Serin owns (other than the weights)
};

const std::vector<Routes> kCanarySteps{{90, 10, false}, {50, 50, false}, {0, 100, false},
                                       {100, 0, false}};

/// Runs a case end to end against the cluster.
void exercise(RouteBench& bench, const RouteCase& c, const std::string& name) {
    INFO("case " << c.file << " as " << c.provider);
    meshes::RouteContext context = bench.context("tests/data/routes/" + c.file, c.provider, name);
    const std::string apex = context.apex;

    // First reconcile creates; every object is stored as sent.
    std::size_t mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) >= 1);
    CHECK(bench.get_routes(context).value() == Routes{100, 0, false});

    // Nothing changed: nothing written.
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 0);

    for (const Routes& step : c.steps) {
        INFO("routes " << step.primary << "/" << step.canary << (step.mirrored ? " mirrored" : ""));
        mark = bench.write_count();
        REQUIRE(bench.set_routes(context, step).has_value());
        bench.writes_since(mark);
        CHECK(bench.get_routes(context).value() == step);
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 0);
    }

    // Mid-release again, then drift that Serin does not own: kept, weights kept, no write.
    const Routes mid = c.steps.front();
    REQUIRE(bench.set_routes(context, mid).has_value());
    bench.drift(c.type, apex,
                Json{{"metadata", {{"labels", {{"example.com/edited-by", "ops"}}},
                                   {"annotations", {{"example.com/note", "added by hand"}}}}}});
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 0);
    CHECK(bench.get_routes(context).value() == mid);
    CHECK(bench.cached(c.type, apex)["metadata"]["labels"]["example.com/edited-by"] == "ops");

    // Drift in a field Serin owns: repaired in one write, weights kept.
    if (!c.owned_drift.is_null()) {
        bench.drift(c.type, apex, c.owned_drift);
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 1);
        CHECK(bench.get_routes(context).value() == mid);
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 0);
        CHECK(bench.cached(c.type, apex)["metadata"]["annotations"]["example.com/note"] ==
              "added by hand");
    }
}

void exercise_all(const std::vector<RouteCase>& cases) {
    Scenario s;
    RouteBench bench(s);
    int n = 0;
    for (const RouteCase& c : cases) {
        exercise(bench, c, "c" + std::to_string(n++));
    }
}

}  // namespace

const std::vector<Routes> kAbSteps{{0, 100, false}, {100, 0, false}};
const std::vector<Routes> kMirrorSteps{{100, 0, true}, {0, 100, false}, {100, 0, false}};

TEST_CASE("Istio VirtualServices and DestinationRules are stored as written and kept without rewrites") {
    const auto vs = route_types::istio_virtual_services();
    const Json owned = {{"spec", {{"gateways", Json::array({"someone-elses-gateway"})}}}};
    std::vector<RouteCase> cases;
    for (const char* file : {"canary", "service-fields", "delegation", "mesh-wildcard", "tcp",
                             "session-affinity", "session-affinity-primary"}) {
        cases.push_back({std::string("istio/") + file + ".yaml", "istio", kCanarySteps, vs, owned});
    }
    cases.push_back({"istio/ab.yaml", "istio", kAbSteps, vs, owned});
    cases.push_back({"istio/mirror.yaml", "istio", kMirrorSteps, vs, owned});
    exercise_all(cases);
}

TEST_CASE("Gateway API HTTPRoutes of both versions are stored as written and kept without rewrites") {
    const Json owned = {{"spec", {{"hostnames", Json::array({"elsewhere.example.com"})}}}};
    std::vector<RouteCase> cases;
    for (const char* version : {"v1", "v1beta1"}) {
        const auto type = route_types::gateway_http_routes(version);
        const std::string provider = std::string("gatewayapi:") + version;
        for (const char* file : {"podinfo", "rewrite-full-path", "linkerd-gamma", "session-affinity",
                                 "session-affinity-canary-cookie"}) {
            cases.push_back({std::string("gatewayapi/") + file + ".yaml", provider, kCanarySteps, type, owned});
        }
        cases.push_back({"gatewayapi/ab-testing.yaml", provider, kAbSteps, type, owned});
        cases.push_back({"gatewayapi/ab-no-service-match.yaml", provider, kAbSteps, type, owned});
        cases.push_back({"gatewayapi/blue-green.yaml", provider, kMirrorSteps, type, owned});
    }
    // Every field but CORS, which v1beta1 does not write (see the next test for v1).
    cases.push_back({"gatewayapi/all-fields.yaml", "gatewayapi:v1beta1", kCanarySteps,
                     route_types::gateway_http_routes("v1beta1"), owned});
    exercise_all(cases);
}

TEST_CASE("Gateway API GRPCRoutes are stored as written and kept without rewrites") {
    const Json owned = {{"spec", {{"hostnames", Json::array({"elsewhere.example.com"})}}}};
    const auto& type = route_types::gateway_grpc_routes();
    exercise_all({{"gatewayapi/grpc.yaml", "gatewayapi:v1", kCanarySteps, type, owned},
                  {"gatewayapi/grpc-session-affinity.yaml", "gatewayapi:v1", kCanarySteps, type,
                   owned},
                  {"gatewayapi/grpc-ab.yaml", "gatewayapi:v1", kAbSteps, type, owned},
                  {"gatewayapi/grpc-blue-green.yaml", "gatewayapi:v1", kMirrorSteps, type, owned}});
}

TEST_CASE("gatewayapi keeps a user's HTTPRoute rules through a release and gives them back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::gateway_http_routes("v1");
    const Json original_spec = Json::parse(R"({
        "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                        "name": "gateway", "namespace": "istio-ingress"}],
        "hostnames": ["old.example.com"],
        "rules": [
          {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
           "backendRefs": [{"group": "", "kind": "Service", "name": "admin", "port": 8080,
                            "weight": 1}]},
          {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
           "backendRefs": [{"group": "", "kind": "Service", "name": "takeover", "port": 9898,
                            "weight": 1}]},
          {"matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
           "backendRefs": [{"group": "", "kind": "Service", "name": "docs", "port": 80,
                            "weight": 1}]}]})");
    const Json created = s.create(type, {{"apiVersion", type.api_version()},
                                         {"kind", type.kind},
                                         {"metadata", {{"name", "takeover"}}},
                                         {"spec", original_spec}});
    CHECK(created["spec"] == original_spec);  // the server keeps the user's rules as written
    bench.drift(type, "takeover", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    auto context = bench.context("tests/data/routes/gatewayapi/podinfo.yaml", "gatewayapi:v1", "takeover");
    const Json& user_rules = original_spec["rules"];
    const auto backends = [](const Json& rule) {
        std::vector<std::string> names;
        for (const Json& backend : rule["backendRefs"]) {
            names.push_back(backend["name"].get<std::string>());
        }
        return names;
    };

    std::size_t mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    Json taken = bench.cached(type, "takeover");
    REQUIRE(taken["spec"]["rules"].size() == 3);
    CHECK(taken["spec"]["rules"][0] == user_rules[0]);
    CHECK(backends(taken["spec"]["rules"][1]) ==
          std::vector<std::string>{"takeover-primary", "takeover-canary"});
    CHECK(taken["spec"]["rules"][2] == user_rules[2]);
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));
    CHECK(Json::parse(taken["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
                          .get<std::string>()) == original_spec);

    // A whole release: the user's rules stay where they are at every step.
    for (const Routes& step : kCanarySteps) {
        REQUIRE(bench.set_routes(context, step).has_value());
        CHECK(bench.get_routes(context).value() == step);
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 0);
        const Json now = bench.cached(type, "takeover")["spec"]["rules"];
        REQUIRE(now.size() == 3);
        CHECK(now[0] == user_rules[0]);
        CHECK(now[2] == user_rules[2]);
    }

    // Mid-release the user adds a rule: kept without a write, the weights kept.
    REQUIRE(bench.set_routes(context, Routes{60, 40, false}).has_value());
    Json added = bench.cached(type, "takeover")["spec"]["rules"];
    added.push_back(Json::parse(R"({"matches": [{"path": {"type": "Exact", "value": "/status"}}],
        "backendRefs": [{"group": "", "kind": "Service", "name": "status", "port": 80,
                         "weight": 1}]})"));
    bench.drift(type, "takeover", {{"spec", {{"rules", added}}}});
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 0);
    CHECK(bench.get_routes(context).value() == Routes{60, 40, false});
    REQUIRE(bench.set_routes(context, Routes{0, 100, false}).has_value());
    CHECK(bench.cached(type, "takeover")["spec"]["rules"].size() == 4);

    REQUIRE(bench.finalize(context).has_value());
    Json expected = original_spec;
    expected["rules"].push_back(added[3]);
    CHECK(bench.cached(type, "takeover")["spec"] == expected);
}

TEST_CASE("a CORS filter is refused by an API server with the standard Gateway API v1.2.1 CRDs") {
    // Flagger's contract writes corsPolicy as a CORS filter; the standard channel of v1.2.1 has
    // no such filter type, so the server rejects the route and the router reports it.
    Scenario s;
    RouteBench bench(s);
    const auto context = bench.context("tests/data/routes/gatewayapi/all-fields.yaml", "gatewayapi:v1", "cors");
    auto reconciled = bench.reconcile(context);
    REQUIRE_FALSE(reconciled.has_value());
    CHECK(reconciled.error().kind == serin::ErrorKind::kInvalid);
    CHECK(reconciled.error().message.find("CORS") != std::string::npos);
}

TEST_CASE("istio takes over an existing VirtualService and gives its spec back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto vs = route_types::istio_virtual_services();
    const Json original_spec = {
        {"hosts", Json::array({"takeover"})},
        {"http", Json::array({{{"route", Json::array({{{"destination", {{"host", "takeover"}}}}})}}})}};
    s.create(vs, {{"apiVersion", vs.api_version()},
                  {"kind", vs.kind},
                  {"metadata", {{"name", "takeover"}, {"labels", {{"app.kubernetes.io/managed-by", "team"}}}}},
                  {"spec", original_spec}});
    // Wait until the cache has it, as the controller would see it.
    bench.drift(vs, "takeover", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    const auto context = bench.context("tests/data/routes/istio/canary.yaml", "istio", "takeover");

    REQUIRE(bench.reconcile(context).has_value());
    Json taken = bench.cached(vs, "takeover");
    CHECK(Json::parse(taken["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
                          .get<std::string>()) == original_spec);
    CHECK(taken["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "team");
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));  // not garbage-collected with the canary
    CHECK(taken["spec"]["http"][0]["route"][0]["destination"]["host"] == "takeover-primary");
    CHECK(bench.get_routes(context).value() == Routes{100, 0, false});

    REQUIRE(bench.finalize(context).has_value());
    CHECK(bench.cached(vs, "takeover")["spec"] == original_spec);
}

TEST_CASE("SMI TrafficSplits of every version are stored as written and kept without rewrites") {
    const Json owned = {{"spec", {{"service", "somewhere-else"}}}};
    exercise_all({
        {"smi/podinfo.yaml", "linkerd", kCanarySteps, route_types::smi_traffic_splits("v1alpha1"), owned},
        {"smi/podinfo.yaml", "smi:v1alpha2", kCanarySteps, route_types::smi_traffic_splits("v1alpha2"), owned},
        {"smi/podinfo.yaml", "smi:v1alpha3:linkerd", kCanarySteps, route_types::smi_traffic_splits("v1alpha3"), owned},
        {"smi/istio-gateways.yaml", "smi:v1alpha2:istio", kCanarySteps, route_types::smi_traffic_splits("v1alpha2"), owned},
    });
}

namespace {

/// The user's Ingress of tests/data/routes/nginx/ingress.yaml as `name` in the scenario's
/// namespace, its backends `podinfo` sending to `apex` instead; created and seen by the cache.
Json create_user_ingress(Scenario& s, RouteBench& bench, const std::string& name,
                         const std::string& apex) {
    Json ingress = serin::testing::load_document("tests/data/routes/nginx/ingress.yaml");
    ingress["metadata"] = Json{{"name", name},
                               {"labels", ingress["metadata"]["labels"]},
                               {"annotations", ingress["metadata"]["annotations"]}};
    for (Json& rule : ingress["spec"]["rules"]) {
        for (Json& path : rule["http"]["paths"]) {
            if (path["backend"]["service"]["name"] == "podinfo") {
                path["backend"]["service"]["name"] = apex;
            }
        }
    }
    s.create(route_types::ingresses(), ingress);
    bench.drift(route_types::ingresses(), name, {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    return bench.cached(route_types::ingresses(), name);
}

/// A Canary of `file` for the nginx router whose spec.ingressRef names `ingress`.
meshes::RouteContext nginx_context(RouteBench& bench, const std::string& file, const std::string& name,
                                   const std::string& ingress) {
    meshes::RouteContext context = bench.context("tests/data/routes/nginx/" + file, "nginx", name);
    context.canary.spec.ingress_ref->name = ingress;
    return context;
}

}  // namespace

TEST_CASE("nginx canary Ingresses are stored as written, follow the user's Ingress and keep their weights") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::ingresses();
    int n = 0;
    for (const auto& [file, steps] : std::vector<std::pair<std::string, std::vector<Routes>>>{
             {"canary.yaml", kCanarySteps}, {"ab.yaml", kAbSteps}}) {
        INFO("case " << file);
        const std::string name = "n" + std::to_string(n++);
        const std::string user = name + "-web";
        const std::string canary = user + "-canary";
        const Json user_ingress = create_user_ingress(s, bench, user, name);
        meshes::RouteContext context = nginx_context(bench, file, name, user);

        std::size_t mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 1);
        CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
        Json created = bench.cached(type, canary);
        CHECK(created["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == name + "-canary");
        CHECK(created["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["name"] == "static");
        CHECK(created["metadata"]["ownerReferences"][0]["name"] == name);
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 0);

        for (const Routes& step : steps) {
            INFO("routes " << step.primary << "/" << step.canary);
            mark = bench.write_count();
            REQUIRE(bench.set_routes(context, step).has_value());
            CHECK(bench.writes_since(mark) == 1);
            CHECK(bench.get_routes(context).value() == step);
            mark = bench.write_count();
            REQUIRE(bench.reconcile(context).has_value());
            CHECK(bench.writes_since(mark) == 0);
        }
        if (file == "ab.yaml") {
            // After the A/B release (100/0) the header and cookie rules are gone.
            const Json after = bench.cached(type, canary);  // a copy: keep it alive
            const Json& annotations = after.at("metadata").at("annotations");
            CHECK_FALSE(annotations.contains("nginx.ingress.kubernetes.io/canary-by-header"));
            CHECK_FALSE(annotations.contains("nginx.ingress.kubernetes.io/canary-by-cookie"));
            REQUIRE(bench.set_routes(context, Routes{0, 100, false}).has_value());
            CHECK(bench.cached(type, canary)["metadata"]["annotations"]
                      ["nginx.ingress.kubernetes.io/canary-by-header-value"] == "insider");
        }

        // Mid-release: drift Serin does not own is kept, no write, weights kept.
        const Routes mid = steps.front();
        REQUIRE(bench.set_routes(context, mid).has_value());
        bench.drift(type, canary, {{"metadata", {{"labels", {{"example.com/edited-by", "ops"}}}}}});
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 0);
        CHECK(bench.get_routes(context).value() == mid);

        // An edit of the canary Ingress's spec is repaired, the weights kept.
        bench.drift(type, canary, {{"spec", {{"ingressClassName", "other"}}}});
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 1);
        CHECK(bench.cached(type, canary)["spec"]["ingressClassName"] == "nginx");
        CHECK(bench.get_routes(context).value() == mid);

        // The user edits their Ingress: the copy follows, the weights stay.
        bench.drift(type, user, {{"spec", {{"tls", Json::array({{{"hosts", {"app.example.com"}}, {"secretName", "new-tls"}}})}}}});
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 1);
        CHECK(bench.cached(type, canary)["spec"]["tls"][0]["secretName"] == "new-tls");
        CHECK(bench.get_routes(context).value() == mid);

        // Serin never wrote the user's Ingress: only this test's two edits changed it.
        const Json now = bench.cached(type, user);
        CHECK(now["metadata"]["generation"] == user_ingress["metadata"]["generation"].get<int>() + 1);
        CHECK(now["metadata"]["annotations"] == user_ingress["metadata"]["annotations"]);
        CHECK(now["metadata"]["labels"] == user_ingress["metadata"]["labels"]);
    }
}

TEST_CASE("nginx refuses a user Ingress without the canary's backend and A/B matches it cannot route") {
    Scenario s;
    RouteBench bench(s);
    create_user_ingress(s, bench, "elsewhere", "someone-else");
    const auto missing = nginx_context(bench, "canary.yaml", "m0", "elsewhere");
    auto refused = bench.reconcile(missing);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == serin::ErrorKind::kInvalid);
    CHECK(refused.error().message ==
          "spec.ingressRef: Ingress elsewhere." + s.ns() + ": backend m0 not found in ingress elsewhere");

    create_user_ingress(s, bench, "m1-web", "m1");
    auto ab = nginx_context(bench, "ab.yaml", "m1", "m1-web");
    ab.canary.spec.analysis->match = Json::parse(R"([{"sourceLabels": {"app": "frontend"}}])");
    auto no_source_labels = bench.reconcile(ab);
    REQUIRE_FALSE(no_source_labels.has_value());
    CHECK(no_source_labels.error().kind == serin::ErrorKind::kInvalid);
    CHECK(no_source_labels.error().message.starts_with("spec.analysis.match[0].sourceLabels: not supported by NGINX"));
}

TEST_CASE("nginx takes over an existing canary Ingress and gives it back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::ingresses();
    create_user_ingress(s, bench, "t-web", "t");
    // A canary Ingress someone left (e.g. another controller's), with its own spec and weight.
    Json left = serin::testing::load_document("tests/data/routes/nginx/ingress.yaml");
    left["metadata"] = Json{{"name", "t-web-canary"},
                            {"annotations", {{"nginx.ingress.kubernetes.io/canary", "true"},
                                             {"nginx.ingress.kubernetes.io/canary-weight", "5"},
                                             {"example.com/owner", "ops"}}}};
    left["spec"]["rules"].erase(1);
    left["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "t-canary";
    const Json left_spec = s.create(type, left)["spec"];
    bench.drift(type, "t-web-canary", {{"metadata", {{"labels", {{"example.com/seen", "yes"}}}}}});

    auto context = nginx_context(bench, "canary.yaml", "t", "t-web");
    CHECK(bench.get_routes(context).value() == Routes{95, 5, false});
    REQUIRE(bench.reconcile(context).has_value());  // the spec becomes the user's, weight kept
    Json taken = bench.cached(type, "t-web-canary");
    CHECK(taken["spec"]["rules"].size() == 2);
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));
    CHECK(bench.get_routes(context).value() == Routes{95, 5, false});
    REQUIRE(bench.set_routes(context, Routes{40, 60, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{40, 60, false});

    REQUIRE(bench.finalize(context).has_value());
    const Json given_back = bench.cached(type, "t-web-canary");
    CHECK(given_back["spec"] == left_spec);
    const Json& annotations = given_back["metadata"]["annotations"];
    CHECK(annotations["nginx.ingress.kubernetes.io/canary-weight"] == "5");
    CHECK(annotations["example.com/owner"] == "ops");
    CHECK_FALSE(annotations.contains("flagger.kubernetes.io/original-configuration"));
    CHECK_FALSE(annotations.contains("serin.dev/original-canary-annotations"));
    // A second finalize (a retry) changes nothing.
    REQUIRE(bench.finalize(context).has_value());
    CHECK(bench.cached(type, "t-web-canary")["metadata"]["annotations"] == annotations);

    // A canary Ingress Serin created goes back to weight 0 (the garbage collector removes it).
    create_user_ingress(s, bench, "o-web", "o");
    auto owned = nginx_context(bench, "canary.yaml", "o", "o-web");
    REQUIRE(bench.reconcile(owned).has_value());
    REQUIRE(bench.set_routes(owned, Routes{70, 30, false}).has_value());
    REQUIRE(bench.finalize(owned).has_value());
    CHECK(bench.get_routes(owned).value() == Routes{100, 0, false});
}

TEST_CASE("examples/nginx: the Ingress and each Canary apply, and the canary Ingress is built from them") {
    for (const char* file : {"canary.yaml", "ab-testing.yaml", "blue-green.yaml"}) {
        INFO(file);
        Scenario s;
        RouteBench bench(s);
        const auto type = route_types::ingresses();
        Json ingress = serin::testing::load_document("examples/nginx/ingress.yaml");
        ingress["metadata"].erase("namespace");
        s.create(type, ingress);
        bench.drift(type, "podinfo", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
        // The example as Canary podinfo: the apex the example Ingress routes.
        auto context = bench.context(std::string("examples/nginx/") + file, "nginx", "podinfo");
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
        const Routes on = context.canary.spec.analysis->iterations > 0 ? Routes{0, 100, false}
                                                                        : Routes{95, 5, false};
        REQUIRE(bench.set_routes(context, on).has_value());
        CHECK(bench.get_routes(context).value() == on);
        REQUIRE(bench.set_routes(context, Routes{100, 0, false}).has_value());
        CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
        CHECK(bench.cached(type, "podinfo-canary")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
                          ["service"]["name"] == "podinfo-canary");
    }
}

TEST_CASE("Contour HTTPProxies are stored as written and kept without rewrites") {
    const Json owned = {{"spec", {{"ingressClassName", "someone-elses"}}}};
    const auto type = route_types::contour_http_proxies();
    exercise_all({
        {"contour/canary.yaml", "contour", kCanarySteps, type, owned},
        {"contour/service-fields.yaml", "contour", kCanarySteps, type, owned},
        {"contour/ab.yaml", "contour", kAbSteps, type, owned},
    });
}

TEST_CASE("contour takes over a user's HTTPProxy, keeps its virtualhost, and gives its spec back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::contour_http_proxies();
    const Json original_spec = Json::parse(R"({
        "virtualhost": {"fqdn": "app.example.com"},
        "routes": [{"conditions": [{"prefix": "/"}], "services": [{"name": "takeover", "port": 9898}]}]})");
    s.create(type, {{"apiVersion", type.api_version()},
                    {"kind", type.kind},
                    {"metadata", {{"name", "takeover"}}},
                    {"spec", original_spec}});
    bench.drift(type, "takeover", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    auto context = bench.context("tests/data/routes/contour/canary.yaml", "contour", "takeover");

    REQUIRE(bench.reconcile(context).has_value());
    Json taken = bench.cached(type, "takeover");
    CHECK(taken["spec"]["virtualhost"]["fqdn"] == "app.example.com");
    CHECK(taken["spec"]["routes"][0]["services"][0]["name"] == "takeover-primary");
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));
    CHECK(Json::parse(taken["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
                          .get<std::string>()) == original_spec);
    REQUIRE(bench.set_routes(context, Routes{60, 40, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{60, 40, false});
    auto zero = bench.set_routes(context, Routes{0, 0, false});
    REQUIRE_FALSE(zero.has_value());
    CHECK(zero.error().message == "HTTPProxy takeover." + s.ns() + " update failed: no valid weights");

    REQUIRE(bench.finalize(context).has_value());
    CHECK(bench.cached(type, "takeover")["spec"] == original_spec);
}

TEST_CASE("examples/contour: the root HTTPProxy and each Canary apply, and HTTPProxy podinfo is built from them") {
    for (const char* file : {"canary.yaml", "ab-testing.yaml"}) {
        INFO(file);
        Scenario s;
        RouteBench bench(s);
        const auto type = route_types::contour_http_proxies();
        Json root = serin::testing::load_document("examples/contour/root-proxy.yaml");
        root["metadata"].erase("namespace");
        root["spec"]["includes"][0]["namespace"] = s.ns();
        s.create(type, root);
        auto context = bench.context(std::string("examples/contour/") + file, "contour", "podinfo");
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
        const Routes on = context.canary.spec.analysis->iterations > 0 ? Routes{0, 100, false}
                                                                        : Routes{90, 10, false};
        REQUIRE(bench.set_routes(context, on).has_value());
        CHECK(bench.get_routes(context).value() == on);
        CHECK_FALSE(bench.cached(type, "podinfo")["spec"].contains("virtualhost"));
    }
}

TEST_CASE("Gloo RouteTables and Upstreams are stored as written and kept without rewrites") {
    const auto type = route_types::gloo_route_tables();
    exercise_all({
        {"gloo/canary.yaml", "gloo", kCanarySteps, type, Json()},
        {"gloo/ab.yaml", "gloo", kAbSteps, type, Json()},
    });
}

TEST_CASE("gloo Upstreams follow spec.upstreamRef and the Services, and are repaired when edited") {
    Scenario s;
    RouteBench bench(s);
    const auto upstreams = route_types::gloo_upstreams();
    s.create(upstreams, Json::parse(R"({
        "apiVersion": "gloo.solo.io/v1", "kind": "Upstream", "metadata": {"name": "podinfo-settings"},
        "spec": {"kube": {"serviceName": "podinfo", "servicePort": 80},
                 "loadBalancerConfig": {"roundRobin": {}},
                 "connectionConfig": {"maxRequestsPerConnection": 10}}})"));
    bench.drift(upstreams, "podinfo-settings", {{"metadata", {{"labels", {{"synced", "yes"}}}}}});
    auto context = bench.context("tests/data/routes/gloo/upstream-ref.yaml", "gloo", "podinfo");
    std::size_t mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 3);  // two Upstreams, the RouteTable
    const std::string primary = s.ns() + "-podinfo-primaryupstream-9898";
    const std::string canary = s.ns() + "-podinfo-canaryupstream-9898";
    Json stored = bench.cached(upstreams, canary);
    CHECK(stored["spec"]["kube"] == Json{{"serviceName", "podinfo-canary"},
                                         {"serviceNamespace", s.ns()},
                                         {"servicePort", 9898},
                                         {"selector", {{"app", "podinfo"}}}});
    CHECK(stored["spec"]["loadBalancerConfig"] == Json{{"roundRobin", Json::object()}});
    CHECK(bench.cached(upstreams, primary)["spec"]["kube"]["selector"] == Json{{"app", "podinfo-primary"}});

    // An edit of the referenced Upstream reaches both (Flagger follows loadBalancerConfig only).
    bench.drift(upstreams, "podinfo-settings",
                {{"spec", {{"connectionConfig", {{"maxRequestsPerConnection", 20}}}, {"useHttp2", true}}}});
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 2);
    CHECK(bench.cached(upstreams, primary)["spec"]["connectionConfig"]["maxRequestsPerConnection"] == 20);
    CHECK(bench.cached(upstreams, canary)["spec"]["useHttp2"] == true);

    // A hand edit of a generated Upstream's service is repaired; the weights are not touched.
    REQUIRE(bench.set_routes(context, Routes{70, 30, false}).has_value());
    bench.drift(upstreams, canary, {{"spec", {{"kube", {{"serviceName", "podinfo-primary"}}}}}});
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    CHECK(bench.cached(upstreams, canary)["spec"]["kube"]["serviceName"] == "podinfo-canary");
    CHECK(bench.get_routes(context).value() == Routes{70, 30, false});

    // A reference that does not exist is named.
    context.canary.spec.upstream_ref->name = "missing";
    auto missing = bench.reconcile(context);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message == "spec.upstreamRef: Upstream missing." + s.ns() + " not found");
}

TEST_CASE("gloo takes over a user's RouteTable, keeps its weight, and gives its spec back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::gloo_route_tables();
    const Json original_spec = Json::parse(R"({"weight": 5,
        "routes": [{"matchers": [{"prefix": "/"}],
                    "routeAction": {"single": {"upstream": {"name": "mine", "namespace": "default"}}}}]})");
    s.create(type, {{"apiVersion", type.api_version()},
                    {"kind", type.kind},
                    {"metadata", {{"name", "takeover"}}},
                    {"spec", original_spec}});
    bench.drift(type, "takeover", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    auto context = bench.context("tests/data/routes/gloo/canary.yaml", "gloo", "takeover");

    REQUIRE(bench.reconcile(context).has_value());
    Json taken = bench.cached(type, "takeover");
    CHECK(taken["spec"]["weight"] == 5);
    CHECK(taken["spec"]["routes"][0]["routeAction"]["multi"]["destinations"][0]["destination"]["upstream"]["name"] ==
          s.ns() + "-takeover-primaryupstream-9898");
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));
    CHECK(Json::parse(taken["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
                          .get<std::string>()) == original_spec);
    REQUIRE(bench.set_routes(context, Routes{60, 40, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{60, 40, false});
    auto zero = bench.set_routes(context, Routes{0, 0, false});
    REQUIRE_FALSE(zero.has_value());
    CHECK(zero.error().message == "RouteTable takeover." + s.ns() + " update failed: no valid weights");

    REQUIRE(bench.finalize(context).has_value());
    CHECK(bench.cached(type, "takeover")["spec"] == original_spec);
}

TEST_CASE("Traefik TraefikServices are stored as written and kept without rewrites") {
    const Json owned = {{"spec", {{"mirroring", {{"name", "someone-elses"}, {"port", 80}}}}}};
    const auto type = route_types::traefik_services();
    exercise_all({
        {"traefik/canary.yaml", "traefik", kCanarySteps, type, owned},
        {"traefik/blue-green.yaml", "traefik", kCanarySteps, type, owned},
    });
}

TEST_CASE("traefik takes over a user's TraefikService, keeps its sticky sessions, and gives its spec back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::traefik_services();
    const Json original_spec = Json::parse(R"({"weighted": {
        "services": [{"name": "takeover", "port": 9898}],
        "sticky": {"cookie": {"name": "lvl1"}}}})");
    s.create(type, {{"apiVersion", type.api_version()},
                    {"kind", type.kind},
                    {"metadata", {{"name", "takeover"}}},
                    {"spec", original_spec}});
    bench.drift(type, "takeover", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    auto context = bench.context("tests/data/routes/traefik/canary.yaml", "traefik", "takeover");

    REQUIRE(bench.reconcile(context).has_value());
    Json taken = bench.cached(type, "takeover");
    CHECK(taken["spec"]["weighted"]["sticky"]["cookie"]["name"] == "lvl1");
    CHECK(taken["spec"]["weighted"]["services"] ==
          Json::array({{{"name", "takeover-primary"}, {"namespace", s.ns()}, {"port", 9898}, {"weight", 100}}}));
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));
    CHECK(Json::parse(taken["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
                          .get<std::string>()) == original_spec);
    REQUIRE(bench.set_routes(context, Routes{60, 40, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{60, 40, false});
    auto zero = bench.set_routes(context, Routes{0, 0, false});
    REQUIRE_FALSE(zero.has_value());
    CHECK(zero.error().message == "TraefikService takeover." + s.ns() + " update failed: no valid weights");

    REQUIRE(bench.finalize(context).has_value());
    CHECK(bench.cached(type, "takeover")["spec"] == original_spec);
}

TEST_CASE("examples/gloo and examples/traefik: each Canary applies and its routing objects are built from it") {
    for (const char* file : {"gloo/canary.yaml", "gloo/ab-testing.yaml", "traefik/canary.yaml",
                             "traefik/blue-green.yaml"}) {
        INFO(file);
        Scenario s;
        RouteBench bench(s);
        const std::string path = std::string("examples/") + file;
        const std::string provider = serin::testing::load_document(path)["spec"]["provider"];
        if (provider == "gloo") {
            Json settings = serin::testing::load_document("examples/gloo/upstream-settings.yaml");
            settings["metadata"].erase("namespace");
            settings["spec"]["kube"]["serviceNamespace"] = s.ns();
            s.create(route_types::gloo_upstreams(), settings);
        }
        auto context = bench.context(path, provider, "podinfo");
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
        const Routes on = context.canary.spec.analysis->iterations > 0 ? Routes{0, 100, false}
                                                                        : Routes{90, 10, false};
        REQUIRE(bench.set_routes(context, on).has_value());
        CHECK(bench.get_routes(context).value() == on);
    }
}

TEST_CASE(
    "knative writes the primary-revision annotation and spec.traffic, and reads back what Knative "
    "applied") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::knative_services();
    Json service = serin::testing::load_document("examples/knative/service.yaml");
    service["metadata"].erase("namespace");
    s.create(type, service);
    // knativesim (meshsim) plays Knative: the first Revision, Ready, in the Service's status.
    auto latest_is = [](const char* revision) {
        return [revision](const Json& ksvc) {
            return ksvc.value("status", Json::object()).value("latestCreatedRevisionName", "") ==
                   revision;
        };
    };
    bench.wait_cached(type, "podinfo", latest_is("podinfo-00001"), "Revision podinfo-00001");
    auto context = bench.context("examples/knative/canary.yaml", "knative", "podinfo");

    // Reconcile adds the annotation only when absent.
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(
        bench.cached(type, "podinfo")["metadata"]["annotations"]["flagger.app/primary-revision"] ==
        "podinfo-00001");
    std::size_t mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.write_count() == mark);

    // A new template is a new Revision; the router splits between it and the primary.
    bench.drift(
        type, "podinfo",
        {{"spec", {{"template", {{"metadata", {{"annotations", {{"example.com/v", "2"}}}}}}}}}});
    bench.wait_cached(type, "podinfo", latest_is("podinfo-00002"), "Revision podinfo-00002");
    for (const Routes& routes :
         {Routes{60, 40, false}, Routes{0, 100, false}, Routes{100, 0, false}}) {
        INFO("routes " << routes.primary << "/" << routes.canary);
        REQUIRE(bench.set_routes(context, routes).has_value());
        // Stored as sent: spec.traffic is not pruned or defaulted by the real CRD.
        const Json stored = bench.cached(type, "podinfo");
        CHECK(stored["spec"]["traffic"] == meshes::knative_traffic("podinfo-00001", routes));
        // get_routes reads status.traffic: it waits until Knative has applied the spec.
        const Json applied = bench.wait_cached(
            type, "podinfo",
            [](const Json& ksvc) {
                return ksvc["metadata"]["generation"] ==
                       ksvc["status"].value("observedGeneration", Json());
            },
            "Knative to apply the traffic");
        CHECK(applied["status"]["traffic"][0]["revisionName"] == "podinfo-00002");
        CHECK(bench.get_routes(context).value() == routes);
        mark = bench.write_count();
        REQUIRE(bench.set_routes(context, routes).has_value());
        CHECK(bench.write_count() == mark);  // nothing changed, nothing written
    }

    // Finalize removes the annotation and leaves the traffic.
    REQUIRE(bench.finalize(context).has_value());
    const Json final_state = bench.cached(type, "podinfo");
    CHECK_FALSE(final_state["metadata"]
                    .value("annotations", Json::object())
                    .contains("flagger.app/primary-revision"));
    CHECK(final_state["spec"]["traffic"] ==
          meshes::knative_traffic("podinfo-00001", Routes{100, 0, false}));
}

TEST_CASE("Kuma TrafficRoutes are cluster-scoped, stored as written, kept without rewrites and deleted with their canary") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::kuma_traffic_routes();
    const Json owned = {{"spec", {{"sources", Json::array({{{"match", {{"kuma.io/service", "elsewhere_x_svc_80"}}}}})}}}};
    // Named after the namespace: a TrafficRoute is cluster-scoped, so names are shared by every test.
    const std::string name = s.ns() + "-kuma";
    exercise(bench, {"kuma/canary.yaml", "kuma", kCanarySteps, type, owned}, name);
    const Json stored = bench.cached(type, name);
    CHECK(stored["mesh"] == "default");  // the bench's canaries carry no kuma.io/mesh annotation
    CHECK_FALSE(stored["metadata"].contains("namespace"));
    CHECK(stored["metadata"]["annotations"]["serin.dev/canary"] == s.ns() + "/" + name);
    // Deleted (Serin created it) when the canary goes, revertOnDeletion or not.
    auto context = bench.context("tests/data/routes/kuma/canary.yaml", "kuma", name + "-again");
    REQUIRE(bench.reconcile(context).has_value());
    REQUIRE(bench.release(context).has_value());
    CHECK_FALSE(bench.read(type, name + "-again").has_value());
    const auto first = serin::testing::route_context(s.get(kube::types::canaries(), name), "kuma");
    REQUIRE(bench.finalize(first).has_value());
    CHECK_FALSE(bench.read(type, name).has_value());
}

TEST_CASE("kuma refuses a TrafficRoute of another namespace's canary, takes over a user's and gives it back") {
    Scenario s;
    Scenario other;
    RouteBench bench(s);
    const auto type = route_types::kuma_traffic_routes();
    const std::string name = s.ns() + "-shared";
    // Another namespace's canary claims TrafficRoute `name`.
    other.create(kube::types::canaries(),
                 Json{{"apiVersion", "flagger.app/v1beta1"},
                      {"kind", "Canary"},
                      {"metadata", {{"name", "podinfo"}, {"namespace", other.ns()}}},
                      {"spec", {{"provider", "kuma"},
                                {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "podinfo"}}},
                                {"service", {{"name", name}, {"port", 9898}}},
                                {"analysis", {{"interval", "1m"}, {"threshold", 5}, {"stepWeight", 10}, {"maxWeight", 50}}}}}});
    const Json theirs = Json::parse(R"({"sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": "x"}}],
        "conf": {"split": [{"weight": 100, "destination": {"kuma.io/service": "y"}}]}})");
    s.create(type, {{"apiVersion", type.api_version()},
                    {"kind", type.kind},
                    {"mesh", "default"},
                    {"metadata", {{"name", name}, {"annotations", {{"serin.dev/canary", other.ns() + "/podinfo"}}}}},
                    {"spec", theirs}});
    bench.drift(type, name, {{"metadata", {{"labels", {{"example.com/seen", "yes"}}}}}});
    auto context = bench.context("tests/data/routes/kuma/canary.yaml", "kuma", name);
    auto refused = bench.reconcile(context);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == serin::ErrorKind::kInvalid);
    CHECK(refused.error().message ==
          "TrafficRoute " + name + " (cluster-scoped) belongs to canary podinfo." + other.ns() +
              " (annotation serin.dev/canary): a TrafficRoute is named after spec.service.name "
              "alone, so give this canary another spec.service.name");
    CHECK(bench.read(type, name).value()["spec"] == theirs);  // not fought over

    // A user's TrafficRoute for this namespace's service: taken over, and given back.
    const Json user_spec = Json::parse(R"({"sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": ")" + name + "_" + s.ns() + R"(_svc_9898"}}],
        "conf": {"destination": {"kuma.io/service": ")" + name + "_" + s.ns() + R"(_svc_9898"}}})");
    bench.drift(type, name, {{"metadata", {{"annotations", {{"serin.dev/canary", nullptr}}}}}, {"spec", {{"conf", nullptr}}}});
    bench.drift(type, name, {{"spec", user_spec}});
    REQUIRE(bench.reconcile(context).has_value());
    Json taken = bench.cached(type, name);
    CHECK(taken["spec"]["conf"]["split"][0]["destination"]["kuma.io/service"] == name + "-primary_" + s.ns() + "_svc_9898");
    CHECK(taken["metadata"]["annotations"]["serin.dev/canary"] == s.ns() + "/" + name);
    REQUIRE(bench.set_routes(context, Routes{60, 40, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{60, 40, false});
    REQUIRE(bench.finalize(context).has_value());
    const Json given_back = bench.read(type, name).value();
    CHECK(given_back["spec"] == user_spec);
    CHECK_FALSE(given_back["metadata"]["annotations"].contains("serin.dev/canary"));
    CHECK(given_back["metadata"]["labels"]["example.com/seen"] == "yes");
    s.remove(type, name);
}

TEST_CASE("APISIX canary routes are stored as written, follow the user's route and keep their weights") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::apisix_routes();
    Json user = serin::testing::load_document("tests/data/routes/apisix/route.yaml");
    user["metadata"]["namespace"] = s.ns();
    user["metadata"]["annotations"].erase("kubectl.kubernetes.io/last-applied-configuration");
    user["spec"]["http"][1]["backends"][0]["serviceName"] = "c0";
    s.create(type, user);
    const Json user_before = bench.read(type, "podinfo").value();
    // The canary route is podinfo-c0-canary; drift of a field Serin owns: the entry's priority.
    const Json owned = {{"spec", {{"http", Json::array({{{"name", "method"}, {"priority", 1},
                                                          {"match", {{"paths", {"/*"}}}},
                                                          {"backends", {{{"serviceName", "c0-primary"}, {"servicePort", 9898}, {"weight", 90}},
                                                                        {{"serviceName", "c0-canary"}, {"servicePort", 9898}, {"weight", 10}}}}}})}}}};
    meshes::RouteContext context = bench.context("tests/data/routes/apisix/canary.yaml", "apisix", "c0");
    std::size_t mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
    for (const Routes& step : kCanarySteps) {
        REQUIRE(bench.set_routes(context, step).has_value());
        CHECK(bench.get_routes(context).value() == step);
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 0);
    }
    REQUIRE(bench.set_routes(context, Routes{90, 10, false}).has_value());
    bench.drift(type, "podinfo-c0-canary", owned);
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    CHECK(bench.cached(type, "podinfo-c0-canary")["spec"]["http"][0]["priority"] == 10000);
    CHECK(bench.get_routes(context).value() == Routes{90, 10, false});
    // An edit of the user's route reaches the copy, weights kept; the user's route is never written.
    bench.drift(type, "podinfo", {{"spec", {{"ingressClassName", "apisix-internal"}}}});
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.cached(type, "podinfo-c0-canary")["spec"]["ingressClassName"] == "apisix-internal");
    CHECK(bench.get_routes(context).value() == Routes{90, 10, false});
    CHECK(bench.read(type, "podinfo").value()["spec"]["http"] == user_before["spec"]["http"]);
    auto zero = bench.set_routes(context, Routes{0, 0, false});
    REQUIRE_FALSE(zero.has_value());
    CHECK(zero.error().message == "ApisixRoute podinfo-c0-canary." + s.ns() + " update failed: no valid weights");
}

TEST_CASE("apisix takes over a canary route left from before and gives it back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::apisix_routes();
    Json user = serin::testing::load_document("tests/data/routes/apisix/route.yaml");
    user["metadata"]["namespace"] = s.ns();
    s.create(type, user);
    const Json left_spec = Json::parse(R"({"http": [{"name": "old", "priority": 5, "match": {"paths": ["/old"]},
        "backends": [{"serviceName": "podinfo", "servicePort": 9898}]}]})");
    s.create(type, {{"apiVersion", type.api_version()},
                    {"kind", type.kind},
                    {"metadata", {{"name", "podinfo-podinfo-canary"}}},
                    {"spec", left_spec}});
    bench.drift(type, "podinfo-podinfo-canary", {{"metadata", {{"labels", {{"example.com/seen", "yes"}}}}}});
    auto context = bench.context("tests/data/routes/apisix/canary.yaml", "apisix", "podinfo");
    REQUIRE(bench.reconcile(context).has_value());
    Json taken = bench.cached(type, "podinfo-podinfo-canary");
    CHECK(taken["spec"]["http"][0]["backends"][0]["serviceName"] == "podinfo-primary");
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));
    REQUIRE(bench.set_routes(context, Routes{70, 30, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{70, 30, false});
    REQUIRE(bench.finalize(context).has_value());
    CHECK(bench.read(type, "podinfo-podinfo-canary").value()["spec"] == left_spec);
}

TEST_CASE("apisix refuses a canary without routeRef and a route without the canary's backend") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::apisix_routes();
    Json user = serin::testing::load_document("tests/data/routes/apisix/route.yaml");
    user["metadata"]["namespace"] = s.ns();
    s.create(type, user);
    auto context = bench.context("tests/data/routes/apisix/canary.yaml", "apisix", "frontend");
    auto refused = bench.reconcile(context);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message ==
          "spec.routeRef: ApisixRoute podinfo." + s.ns() + ": no spec.http entry has the backend frontend");
    context.canary.spec.route_ref.reset();
    refused = bench.reconcile(context);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message ==
          "spec.routeRef: apisix route selector is empty (provider apisix needs the ApisixRoute to copy)");
}

TEST_CASE("examples/kuma and examples/apisix: each applies, and its routing object is built from it") {
    Scenario s;
    RouteBench bench(s);
    const auto apisix = route_types::apisix_routes();
    Json route = serin::testing::load_document("examples/apisix/route.yaml");
    route["metadata"].erase("namespace");
    s.create(apisix, route);
    auto context = bench.context("examples/apisix/canary.yaml", "apisix", "podinfo");
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
    REQUIRE(bench.set_routes(context, Routes{90, 10, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{90, 10, false});
    CHECK(bench.cached(apisix, "podinfo-podinfo-canary")["spec"]["http"][0]["match"]["hosts"][0] == "app.example.com");

    const auto kuma = route_types::kuma_traffic_routes();
    const std::string name = s.ns() + "-example";
    auto mesh = bench.context("examples/kuma/canary.yaml", "kuma", name);
    REQUIRE(bench.reconcile(mesh).has_value());
    REQUIRE(bench.set_routes(mesh, Routes{90, 10, false}).has_value());
    CHECK(bench.get_routes(mesh).value() == Routes{90, 10, false});
    REQUIRE(bench.finalize(mesh).has_value());
    CHECK_FALSE(bench.read(kuma, name).has_value());
}

TEST_CASE("App Mesh VirtualNodes, VirtualRouters and VirtualServices are stored as written and kept without rewrites") {
    const Json owned = {{"spec", {{"listeners", Json::array({{{"portMapping", {{"port", 1234}, {"protocol", "http"}}}}})}}}};
    const auto type = route_types::appmesh_virtual_routers();
    exercise_all({
        {"appmesh/canary.yaml", "appmesh:v1beta2", kCanarySteps, type, owned},
        {"appmesh/service-fields.yaml", "appmesh:v1beta2", kCanarySteps, type, owned},
        {"appmesh/ab.yaml", "appmesh:v1beta2", kAbSteps, type, owned},
    });
}

TEST_CASE("appmesh keeps its VirtualServices in shape, takes over a user's objects and gives their specs back") {
    Scenario s;
    RouteBench bench(s);
    const auto nodes = route_types::appmesh_virtual_nodes();
    const auto routers = route_types::appmesh_virtual_routers();
    const auto services = route_types::appmesh_virtual_services();

    // Serin's own objects: the gateway annotations follow service.hosts, a VirtualService edited
    // by hand is repaired (Flagger never updates them).
    auto context = bench.context("tests/data/routes/appmesh/service-fields.yaml", "appmesh:v1beta2", "own");
    REQUIRE(bench.reconcile(context).has_value());
    for (const char* name : {"own-primary", "own-canary"}) {
        CHECK(bench.cached(nodes, name)["metadata"]["ownerReferences"][0]["name"] == "own");
    }
    CHECK(bench.cached(routers, "own-canary")["spec"]["routes"][0]["httpRoute"]["action"]["weightedTargets"][0]
              ["weight"] == 100);
    CHECK(bench.cached(services, "own")["metadata"]["annotations"]["gateway.appmesh.k8s.aws/domain"] ==
          "app.example.com,www.example.com,");
    bench.drift(services, "own", {{"spec", {{"provider", {{"virtualRouter", {{"virtualRouterRef", {{"name", "elsewhere"}}}}}}}}}});
    std::size_t mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    CHECK(bench.cached(services, "own")["spec"]["provider"]["virtualRouter"]["virtualRouterRef"]["name"] == "own");
    context.canary.spec.service.hosts.clear();
    REQUIRE(bench.reconcile(context).has_value());
    const Json annotations = bench.cached(services, "own")["metadata"]["annotations"];
    CHECK_FALSE(annotations.contains("gateway.appmesh.k8s.aws/expose"));
    CHECK_FALSE(annotations.contains("gateway.appmesh.k8s.aws/domain"));

    // A user's VirtualRouter and VirtualNode: Serin's fields written, the rest (and the App Mesh
    // controller's awsName) kept, the specs given back by finalize.
    const Json router_spec = Json::parse(R"({"awsName": "takeover_team",
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "routes": [{"name": "all", "httpRoute": {"match": {"prefix": "/"},
                    "action": {"weightedTargets": [{"virtualNodeRef": {"name": "takeover-v1"}, "weight": 1}]}}}]})");
    const Json node_spec = Json::parse(R"({"awsName": "takeover-primary_team",
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
        "serviceDiscovery": {"dns": {"hostname": "takeover-v1.example.svc.cluster.local."}},
        "backendDefaults": {"clientPolicy": {"tls": {"enforce": false, "validation": {"trust": {"file": {"certificateChain": "/ca.pem"}}}}}}})");
    s.create(routers, {{"apiVersion", routers.api_version()}, {"kind", routers.kind},
                       {"metadata", {{"name", "takeover"}}}, {"spec", router_spec}});
    s.create(nodes, {{"apiVersion", nodes.api_version()}, {"kind", nodes.kind},
                     {"metadata", {{"name", "takeover-primary"}}}, {"spec", node_spec}});
    bench.drift(routers, "takeover", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    bench.drift(nodes, "takeover-primary", {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    auto taken = bench.context("tests/data/routes/appmesh/canary.yaml", "appmesh:v1beta2", "takeover");
    REQUIRE(bench.reconcile(taken).has_value());
    const Json router = bench.cached(routers, "takeover");
    CHECK(router["spec"]["awsName"] == "takeover_team");
    CHECK(router["spec"]["routes"][0]["name"] == "takeover");
    CHECK_FALSE(router["metadata"].contains("ownerReferences"));
    CHECK(Json::parse(router["metadata"]["annotations"]["flagger.kubernetes.io/original-configuration"]
                          .get<std::string>()) == router_spec);
    const Json node = bench.cached(nodes, "takeover-primary");
    CHECK(node["spec"]["backendDefaults"] == node_spec["backendDefaults"]);
    CHECK(node["spec"]["podSelector"]["matchLabels"]["app"] == "podinfo-primary");
    CHECK(bench.get_routes(taken).value() == Routes{100, 0, false});
    REQUIRE(bench.set_routes(taken, Routes{60, 40, false}).has_value());
    CHECK(bench.get_routes(taken).value() == Routes{60, 40, false});

    REQUIRE(bench.finalize(taken).has_value());
    CHECK(bench.cached(routers, "takeover")["spec"] == router_spec);
    CHECK(bench.cached(nodes, "takeover-primary")["spec"] == node_spec);
    CHECK_FALSE(bench.cached(routers, "takeover")["metadata"]["annotations"].contains(
        "flagger.kubernetes.io/original-configuration"));
    // Objects Serin created are left for the garbage collector.
    CHECK(bench.cached(routers, "takeover-canary")["metadata"]["ownerReferences"][0]["name"] == "takeover");
}

namespace {

/// The user's Ingress of tests/data/routes/skipper/ingress.yaml as `name`, its backends podinfo
/// sending to `apex` instead; created and seen by the cache.
Json create_skipper_ingress(Scenario& s, RouteBench& bench, const std::string& name, const std::string& apex) {
    Json ingress = serin::testing::load_document("tests/data/routes/skipper/ingress.yaml");
    ingress["metadata"] = Json{{"name", name},
                               {"labels", ingress["metadata"]["labels"]},
                               {"annotations", ingress["metadata"]["annotations"]}};
    for (Json& rule : ingress["spec"]["rules"]) {
        for (Json& path : rule["http"]["paths"]) {
            if (path["backend"]["service"]["name"] == "podinfo") {
                path["backend"]["service"]["name"] = apex;
            }
        }
    }
    s.create(route_types::ingresses(), ingress);
    bench.drift(route_types::ingresses(), name, {{"metadata", {{"annotations", {{"example.com/seen", "yes"}}}}}});
    return bench.cached(route_types::ingresses(), name);
}

meshes::RouteContext skipper_context(RouteBench& bench, const std::string& file, const std::string& name,
                                     const std::string& ingress) {
    meshes::RouteContext context = bench.context("tests/data/routes/skipper/" + file, "skipper", name);
    context.canary.spec.ingress_ref->name = ingress;
    return context;
}

}  // namespace

TEST_CASE("skipper canary Ingresses are stored as written, follow the user's Ingress and keep their weights") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::ingresses();
    const Json user_ingress = create_skipper_ingress(s, bench, "k-web", "k");
    auto context = skipper_context(bench, "canary.yaml", "k", "k-web");
    const std::string canary = "k-web-canary";

    std::size_t mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
    const Json created = bench.cached(type, canary);
    const Json& paths = created["spec"]["rules"][0]["http"]["paths"];
    CHECK(paths[0]["backend"]["service"]["name"] == "k-primary");
    CHECK(paths[2]["backend"]["service"]["name"] == "k-canary");
    CHECK(created["metadata"]["annotations"]["zalando.org/skipper-predicate"] ==
          R"(False() && Method("GET") && Header("X-Team", "web"))");
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 0);

    for (const Routes& step : kCanarySteps) {
        INFO("routes " << step.primary << "/" << step.canary);
        mark = bench.write_count();
        REQUIRE(bench.set_routes(context, step).has_value());
        CHECK(bench.writes_since(mark) == 1);
        CHECK(bench.get_routes(context).value() == step);
        CHECK(bench.cached(type, canary)["metadata"]["annotations"]["zalando.org/skipper-predicate"]
                  .get<std::string>()
                  .starts_with(step.canary == 0 ? "False() && " : "Weight(100) && "));
        mark = bench.write_count();
        REQUIRE(bench.reconcile(context).has_value());
        CHECK(bench.writes_since(mark) == 0);
    }

    // Mid-release: an edit of the canary Ingress's spec is repaired with the weights kept
    // (Flagger resets them to 100/0), and the user's edits are followed.
    const Routes mid{90, 10, false};
    REQUIRE(bench.set_routes(context, mid).has_value());
    bench.drift(type, canary, {{"spec", {{"ingressClassName", "other"}}}});
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    CHECK(bench.cached(type, canary)["spec"]["ingressClassName"] == "skipper");
    CHECK(bench.get_routes(context).value() == mid);
    bench.drift(type, "k-web", {{"spec", {{"tls", Json::array({{{"hosts", {"app.example.com"}}, {"secretName", "new-tls"}}})}}}});
    mark = bench.write_count();
    REQUIRE(bench.reconcile(context).has_value());
    CHECK(bench.writes_since(mark) == 1);
    CHECK(bench.cached(type, canary)["spec"]["tls"][0]["secretName"] == "new-tls");
    CHECK(bench.get_routes(context).value() == mid);
    CHECK(bench.cached(type, "k-web")["metadata"]["annotations"] == user_ingress["metadata"]["annotations"]);

    // finalize sends everything back to the user's Ingress; a canary Ingress deleted by hand
    // is done (Flagger's finalize fails on it forever).
    REQUIRE(bench.finalize(context).has_value());
    CHECK(bench.get_routes(context).value() == Routes{100, 0, false});
    bench.remove(type, canary);
    REQUIRE(bench.finalize(context).has_value());
}

TEST_CASE("skipper refuses A/B, takes over an existing canary Ingress and gives it back on finalize") {
    Scenario s;
    RouteBench bench(s);
    const auto type = route_types::ingresses();
    create_skipper_ingress(s, bench, "t-web", "t");
    auto ab = skipper_context(bench, "canary.yaml", "t", "t-web");
    ab.canary.spec.analysis->match = Json::parse(R"([{"headers": {"x-canary": {"exact": "insider"}}}])");
    auto refused = bench.reconcile(ab);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == serin::ErrorKind::kInvalid);
    CHECK(refused.error().message.starts_with("spec.analysis.match: A/B testing is not supported by provider skipper"));

    Json left = serin::testing::load_document("tests/data/routes/skipper/ingress.yaml");
    left["metadata"] = Json{{"name", "t-web-canary"},
                            {"annotations", {{"zalando.org/backend-weights", R"({"t-canary":5,"t-primary":95})"},
                                             {"zalando.org/skipper-predicate", "Weight(100)"},
                                             {"example.com/owner", "ops"}}}};
    left["spec"]["rules"].erase(1);
    left["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "t-canary";
    const Json left_spec = s.create(type, left)["spec"];
    bench.drift(type, "t-web-canary", {{"metadata", {{"labels", {{"example.com/seen", "yes"}}}}}});
    auto context = ab;  // the same Canary t, now without A/B
    context.canary.spec.analysis->match = Json();
    CHECK(bench.get_routes(context).value() == Routes{95, 5, false});
    REQUIRE(bench.reconcile(context).has_value());  // the user's spec copied, the weights kept
    const Json taken = bench.cached(type, "t-web-canary");
    CHECK(taken["spec"]["rules"].size() == 2);
    CHECK_FALSE(taken["metadata"].contains("ownerReferences"));
    CHECK(bench.get_routes(context).value() == Routes{95, 5, false});
    REQUIRE(bench.set_routes(context, Routes{40, 60, false}).has_value());
    CHECK(bench.get_routes(context).value() == Routes{40, 60, false});

    REQUIRE(bench.finalize(context).has_value());
    const Json given_back = bench.cached(type, "t-web-canary");
    CHECK(given_back["spec"] == left_spec);
    CHECK(given_back["metadata"]["annotations"]["zalando.org/backend-weights"] == R"({"t-canary":5,"t-primary":95})");
    CHECK(given_back["metadata"]["annotations"]["zalando.org/skipper-predicate"] == "Weight(100)");
    CHECK_FALSE(given_back["metadata"]["annotations"].contains("serin.dev/original-skipper-annotations"));
    CHECK_FALSE(given_back["metadata"]["annotations"].contains("flagger.kubernetes.io/original-configuration"));
}
