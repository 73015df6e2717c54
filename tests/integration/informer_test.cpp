// The informer against the real API server: sync, events, indexes, an API server killed
// mid-stream, and a re-list after 410 Gone forced by etcd compaction.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <algorithm>
#include <map>

#include "platform/http/http_client.hpp"
#include "platform/kube/fetched_objects.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/rest_client.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/tcp_proxy.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using namespace serin::testing;
using kube::Json;
namespace types = kube::types;

std::unique_ptr<kube::RestKubeClient> client_for(asio::io_context& io,
                                                 const kube::ClusterConfig& config, Clock& clock) {
    kube::RestClientOptions options;
    options.write_qps = 0;
    options.request_timeout = std::chrono::seconds{5};
    auto client = kube::make_rest_client(io.get_executor(), config, clock, options);
    REQUIRE(client);
    return std::move(*client);
}

/// name -> resourceVersion, as the server has it now.
std::map<std::string, std::string> server_state(asio::io_context& io, kube::KubeClient& client,
                                                const std::string& ns) {
    auto page = run(io, client.list(types::config_maps(), ns, {}));
    REQUIRE(page);
    std::map<std::string, std::string> out;
    for (const auto& item : page->items) {
        out[kube::object_name(item)] = kube::object_resource_version(item);
    }
    return out;
}

std::map<std::string, std::string> cache_state(const kube::Informer& informer) {
    std::map<std::string, std::string> out;
    for (const auto& object : informer.list()) {
        out[kube::object_name(*object)] = kube::object_resource_version(*object);
    }
    return out;
}

/// Runs the io_context for a moment. run() leaves it stopped when it ran out of work, so restart
/// it first, or the informer's coroutines would never be run.
void pump(asio::io_context& io, std::chrono::milliseconds d) {
    io.restart();
    io.run_for(d);
}

/// Runs the io_context until the informer's cache equals the server's state.
bool converges(asio::io_context& io, kube::KubeClient& client, const kube::Informer& informer,
               const std::string& ns) {
    auto want = server_state(io, client, ns);
    return wait_until([&] {
        pump(io, std::chrono::milliseconds{20});
        return cache_state(informer) == want;
    }, std::chrono::seconds{60}, std::chrono::milliseconds{1});
}

struct Recorder {
    std::vector<std::string> added, updated, deleted;
    kube::EventHandlers handlers() {
        return {[this](const kube::ObjectPtr& o) { added.push_back(kube::object_name(*o)); },
                [this](const kube::ObjectPtr&, const kube::ObjectPtr& o) {
                    updated.push_back(kube::object_name(*o));
                },
                [this](const kube::ObjectPtr& o) { deleted.push_back(kube::object_name(*o)); }};
    }
};

/// A private cluster for the tests that stop its API server; no podsim or controller-manager wait.
std::unique_ptr<devcluster::DevCluster> private_cluster() {
    devcluster::DevClusterOptions options;
    options.start_podsim = false;
    options.wait_for_controller_manager = false;
    auto cluster = devcluster::DevCluster::start(options);
    if (!cluster) {
        FAIL("private devcluster did not start: " << cluster.error().describe());
    }
    return std::move(*cluster);
}

}  // namespace

TEST_CASE("the informer syncs follows adds updates and deletes and keeps its indexes") {
    asio::io_context io;
    auto& cluster = shared_cluster();
    auto client = client_for(io, cluster.config(), cluster.clock());
    TestNamespace ns;
    const auto& cm = types::config_maps();
    for (int i = 0; i < 20; ++i) {
        auto labels = Json{{"app", i % 2 == 0 ? "even" : "odd"}};
        REQUIRE(run(io, client->create(cm, ns.name(), config_map(ns.name(), "cm-" + std::to_string(i),
                                                                  {{"v", "0"}}, labels), {})));
    }

    kube::InformerOptions options;
    options.ns = ns.name();
    options.page_size = 7;  // several pages
    kube::Informer informer(*client, cluster.clock(), cm, options);
    informer.add_index("owner", kube::owner_index);
    informer.add_index("label", kube::label_index);
    Recorder recorder;
    informer.add_handlers(recorder.handlers());
    informer.start(io.get_executor());
    REQUIRE(wait_until([&] {
        pump(io, std::chrono::milliseconds{10});
        return informer.has_synced();
    }));
    CHECK(recorder.added.size() >= 20);
    CHECK(informer.by_index("label", "app=even").size() == 10);
    CHECK(informer.by_index("namespace", ns.name()).size() == informer.size());
    auto cached = informer.get(ns.name(), "cm-3");
    REQUIRE(cached);
    CHECK_FALSE(cached->at("metadata").contains("managedFields"));

    auto owner = run(io, client->get(cm, ns.name(), "cm-0"));
    REQUIRE(owner);
    Json owned = config_map(ns.name(), "owned");
    owned["metadata"]["ownerReferences"] = Json::array(
        {{{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"name", "cm-0"},
          {"uid", kube::object_uid(*owner)}}});
    REQUIRE(run(io, client->create(cm, ns.name(), owned, {})));
    REQUIRE(run(io, client->patch(cm, ns.name(), "cm-1", kube::PatchType::kMerge,
                                  R"({"metadata":{"labels":{"app":"even"}}})", {})));
    REQUIRE(run(io, client->remove(cm, ns.name(), "cm-2", {})));

    REQUIRE(converges(io, *client, informer, ns.name()));
    CHECK(std::count(recorder.added.begin(), recorder.added.end(), "owned") == 1);
    CHECK(std::count(recorder.updated.begin(), recorder.updated.end(), "cm-1") == 1);
    CHECK(recorder.deleted == std::vector<std::string>{"cm-2"});
    CHECK(informer.by_index("owner", kube::object_uid(*owner)).size() == 1);
    // cm-1 moved from odd to even; cm-2 (even) is gone.
    CHECK(informer.by_index("label", "app=even").size() == 10);
    CHECK(informer.by_index("label", "app=odd").size() == 9);
    // The same from the index alone: the keys, and one key's membership.
    const std::vector<std::string> odd = informer.keys_by_index("label", "app=odd");
    CHECK(odd.size() == 9);
    CHECK(std::count(odd.begin(), odd.end(), ns.name() + "/cm-1") == 0);
    CHECK(std::count(odd.begin(), odd.end(), ns.name() + "/cm-3") == 1);
    CHECK(informer.indexed("label", "app=even", ns.name() + "/cm-1"));
    CHECK_FALSE(informer.indexed("label", "app=odd", ns.name() + "/cm-1"));
    CHECK_FALSE(informer.indexed("label", "app=even", ns.name() + "/cm-2"));
    CHECK_FALSE(informer.indexed("no-such-index", "app=even", ns.name() + "/cm-0"));
    CHECK(informer.get(ns.name(), "cm-2") == nullptr);
    informer.stop();
}

TEST_CASE("the informer survives the API server being killed and restarted mid-stream") {
    auto cluster = private_cluster();
    asio::io_context io;
    SystemClock clock;
    auto client = client_for(io, cluster->cluster_config(), clock);
    const auto& cm = types::config_maps();
    const std::string ns = "default";
    for (int i = 0; i < 30; ++i) {
        REQUIRE(run(io, client->create(cm, ns, config_map(ns, "cm-" + std::to_string(i)), {})));
    }

    kube::InformerOptions options;
    options.ns = ns;
    options.backoff_initial = std::chrono::milliseconds{50};
    options.backoff_max = std::chrono::milliseconds{500};
    kube::Informer informer(*client, clock, cm, options);
    informer.start(io.get_executor());
    REQUIRE(converges(io, *client, informer, ns));
    auto watches_before = informer.stats().watches;

    // Changes the watch sees, then the server dies under the open stream.
    for (int i = 0; i < 10; ++i) {
        REQUIRE(run(io, client->patch(cm, ns, "cm-" + std::to_string(i), kube::PatchType::kMerge,
                                      R"({"data":{"v":"1"}})", {})));
    }
    REQUIRE(cluster->kill_apiserver());
    pump(io, std::chrono::milliseconds{200});  // let the informer notice and start retrying
    REQUIRE(cluster->start_apiserver());

    // Changes after the restart: updates, deletes and creates.
    for (int i = 10; i < 20; ++i) {
        REQUIRE(run(io, client->patch(cm, ns, "cm-" + std::to_string(i), kube::PatchType::kMerge,
                                      R"({"data":{"v":"2"}})", {})));
    }
    for (int i = 20; i < 25; ++i) {
        REQUIRE(run(io, client->remove(cm, ns, "cm-" + std::to_string(i), {})));
    }
    REQUIRE(run(io, client->create(cm, ns, config_map(ns, "after-restart"), {})));

    REQUIRE(converges(io, *client, informer, ns));
    CHECK(informer.stats().watches > watches_before);
    CHECK(informer.get(ns, "cm-20") == nullptr);
    REQUIRE(informer.get(ns, "cm-15"));
    CHECK(informer.get(ns, "cm-15")->at("data").at("v") == "2");
    informer.stop();
}

TEST_CASE("the informer re-lists after 410 Gone and reports exactly what changed meanwhile") {
    auto cluster = private_cluster();
    asio::io_context io;
    SystemClock clock;
    auto admin = client_for(io, cluster->cluster_config(), clock);
    const auto& cm = types::config_maps();
    const std::string ns = "default";
    for (int i = 0; i < 10; ++i) {
        REQUIRE(run(io, admin->create(cm, ns, config_map(ns, "cm-" + std::to_string(i)), {})));
    }

    // The informer reaches the server through a proxy the test can cut.
    serin::test::TcpProxy proxy(io.get_executor(), "127.0.0.1", cluster->apiserver_port());
    auto via_proxy = cluster->cluster_config();
    via_proxy.server = "https://127.0.0.1:" + std::to_string(proxy.port());
    auto client = client_for(io, via_proxy, clock);
    kube::InformerOptions options;
    options.ns = ns;
    options.backoff_initial = std::chrono::milliseconds{50};
    options.backoff_max = std::chrono::milliseconds{200};
    kube::Informer informer(*client, clock, cm, options);
    Recorder recorder;
    informer.add_handlers(recorder.handlers());
    informer.start(io.get_executor());
    REQUIRE(converges(io, *admin, informer, ns));
    recorder = Recorder{};
    const auto lists_before = informer.stats().lists;

    // Cut the informer off, change things it cannot see, and compact etcd past its version.
    proxy.set_blocked(true);
    proxy.cut();
    for (int i = 0; i < 3; ++i) {
        REQUIRE(run(io, admin->patch(cm, ns, "cm-" + std::to_string(i), kube::PatchType::kMerge,
                                     R"({"data":{"v":"changed"}})", {})));
    }
    REQUIRE(run(io, admin->remove(cm, ns, "cm-9", {})));
    REQUIRE(run(io, admin->create(cm, ns, config_map(ns, "new-one"), {})));
    auto compacted = cluster->compact_etcd();
    REQUIRE(compacted);
    // A fresh watch cache starts at the current revision, so the old version is gone there too.
    REQUIRE(cluster->restart_apiserver());
    proxy.set_blocked(false);

    REQUIRE(converges(io, *admin, informer, ns));
    CHECK(informer.stats().relists_after_gone >= 1);
    CHECK(informer.stats().lists > lists_before);
    std::sort(recorder.updated.begin(), recorder.updated.end());
    CHECK(recorder.updated == std::vector<std::string>{"cm-0", "cm-1", "cm-2"});
    CHECK(recorder.deleted == std::vector<std::string>{"cm-9"});
    CHECK(recorder.added == std::vector<std::string>{"new-one"});
    informer.stop();
}

TEST_CASE("Secrets: the informer holds metadata only, and only the Secrets fetched are held whole") {
    asio::io_context io;
    auto& cluster = shared_cluster();
    auto client = client_for(io, cluster.config(), cluster.clock());
    TestNamespace ns;
    const auto& secrets = types::secrets();
    auto secret = [&](const std::string& name, const std::string& value) {
        return Json{{"apiVersion", "v1"},
                    {"kind", "Secret"},
                    {"metadata", {{"name", name}, {"namespace", ns.name()}}},
                    {"stringData", {{"token", value}}}};
    };
    for (int i = 0; i < 30; ++i) {
        REQUIRE(run(io, client->create(secrets, ns.name(),
                                       secret("helm-release-" + std::to_string(i), "big"), {})));
    }
    REQUIRE(run(io, client->create(secrets, ns.name(), secret("used", "v1"), {})));

    kube::InformerOptions options;
    options.ns = ns.name();
    options.metadata_only = true;
    kube::Informer informer(*client, cluster.clock(), secrets, options);
    kube::FetchedObjects fetched(*client, informer);
    informer.start(io.get_executor());
    REQUIRE(wait_until([&] {
        pump(io, std::chrono::milliseconds{10});
        return informer.has_synced();
    }));
    // What the informer holds says which Secrets exist, not what they hold.
    REQUIRE(informer.size() >= 31);
    for (const auto& object : informer.list()) {
        CHECK_FALSE(object->contains("data"));
        CHECK_FALSE(object->contains("stringData"));
    }
    CHECK(fetched.get(ns.name(), "used") == nullptr);  // not fetched yet

    REQUIRE(run(io, fetched.fetch(ns.name(), {"used", "missing"})));
    CHECK(fetched.fetches() == 1);  // "missing" does not exist: no GET
    CHECK(fetched.size() == 1);
    auto used = fetched.get(ns.name(), "used");
    REQUIRE(used);
    CHECK(kube::secret_data(*used, "token") == "v1");
    REQUIRE(run(io, fetched.fetch(ns.name(), {"used"})));
    CHECK(fetched.fetches() == 1);  // unchanged: no second GET

    // A change drops the copy; the next fetch reads the new value.
    REQUIRE(run(io, client->patch(secrets, ns.name(), "used", kube::PatchType::kMerge,
                                  R"({"stringData":{"token":"v2"}})", {})));
    REQUIRE(wait_until([&] {
        pump(io, std::chrono::milliseconds{10});
        return fetched.get(ns.name(), "used") == nullptr;
    }));
    REQUIRE(run(io, fetched.fetch(ns.name(), {"used"})));
    CHECK(fetched.fetches() == 2);
    CHECK(kube::secret_data(*fetched.get(ns.name(), "used"), "token") == "v2");

    // A delete drops it for good.
    REQUIRE(run(io, client->remove(secrets, ns.name(), "used", {})));
    REQUIRE(wait_until([&] {
        pump(io, std::chrono::milliseconds{10});
        return informer.get(ns.name(), "used") == nullptr;
    }));
    CHECK(fetched.get(ns.name(), "used") == nullptr);
    CHECK(fetched.size() == 0);
    informer.stop();
}

namespace {

/// The Beast client with every watch request's URL and read deadline recorded on the way.
class RecordingHttp final : public http::HttpClient {
public:
    struct Sent {
        std::string url;
        std::chrono::milliseconds timeout;
    };

    explicit RecordingHttp(http::HttpClientPtr inner) : inner_(std::move(inner)) {}

    asio::awaitable<Result<http::Response>> send(http::Request request) override {
        co_return co_await inner_->send(std::move(request));
    }
    asio::awaitable<Result<http::Response>> stream(http::Request request,
                                                   http::LineHandler on_line) override {
        watches_->push_back(Sent{request.url, request.timeout});
        co_return co_await inner_->stream(std::move(request), std::move(on_line));
    }
    /// Shared, so the test reads it after the client took ownership of this object.
    std::shared_ptr<std::vector<Sent>> watches() const { return watches_; }

private:
    http::HttpClientPtr inner_;
    std::shared_ptr<std::vector<Sent>> watches_ = std::make_shared<std::vector<Sent>>();
};

/// The value of `key` in a URL's query, or -1.
std::int64_t query_number(const std::string& url, const std::string& key) {
    const auto at = url.find(key + "=");
    if (at == std::string::npos) {
        return -1;
    }
    return std::stoll(url.substr(at + key.size() + 1));
}

}  // namespace

TEST_CASE("an informer's watch asks for 5 to 10 minutes, outlives a quiet spell and still sees events") {
    asio::io_context io;
    auto& cluster = shared_cluster();
    http::ClientOptions http_options;
    http_options.tls = cluster.config().tls;
    auto beast = http::make_beast_client(io.get_executor(), http_options);
    REQUIRE(beast);
    auto recording = std::make_unique<RecordingHttp>(std::move(*beast));
    const auto watches = recording->watches();
    kube::RestClientOptions rest_options;
    rest_options.write_qps = 0;
    // Shorter than any quiet spell below: only the deadline past timeoutSeconds keeps the watch.
    rest_options.watch_idle_timeout = std::chrono::seconds{1};
    auto client = kube::make_rest_client(std::move(recording), cluster.config(), cluster.clock(),
                                         rest_options);
    TestNamespace ns;
    const auto& cm = types::config_maps();

    kube::InformerOptions options;
    options.ns = ns.name();
    kube::Informer informer(*client, cluster.clock(), cm, options);
    Recorder recorder;
    informer.add_handlers(recorder.handlers());
    informer.start(io.get_executor());
    REQUIRE(wait_until([&] {
        pump(io, std::chrono::milliseconds{10});
        return informer.has_synced() && informer.stats().watches >= 1;
    }));
    // kube-apiserver 1.20 sends nothing on a quiet watch: 3 s of silence, three times the idle
    // timeout, and the watch is still the first one.
    pump(io, std::chrono::seconds{3});
    CHECK(informer.stats().watches == 1);
    CHECK(informer.stats().watch_failures == 0);

    REQUIRE(run(io, client->create(cm, ns.name(), config_map(ns.name(), "after-quiet"), {})));
    REQUIRE(converges(io, *client, informer, ns.name()));
    CHECK(std::count(recorder.added.begin(), recorder.added.end(), "after-quiet") == 1);
    CHECK(informer.stats().watches == 1);

    REQUIRE(watches->size() == 1);
    const auto& sent = watches->front();
    INFO(sent.url);
    CHECK(sent.url.find("watch=true") != std::string::npos);
    const std::int64_t timeout = query_number(sent.url, "timeoutSeconds");
    CHECK(timeout >= 300);
    CHECK(timeout <= 600);
    CHECK(timeout == informer.last_watch_timeout());
    CHECK(sent.timeout == std::chrono::seconds{timeout} + std::chrono::seconds{30});
    informer.stop();
    pump(io, std::chrono::milliseconds{50});
}
