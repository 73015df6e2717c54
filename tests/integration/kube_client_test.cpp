// The REST client against the real kube-apiserver of the shared devcluster.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "platform/kube/rest_client.hpp"
#include "tests/support/catch_result.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/test_certs.hpp"

namespace {

namespace asio = boost::asio;
using namespace serin;
using namespace serin::testing;
using kube::Json;
namespace types = kube::types;

Json canary(const std::string& ns, const std::string& name) {
    return {{"apiVersion", "flagger.app/v1beta1"},
            {"kind", "Canary"},
            {"metadata", {{"name", name}, {"namespace", ns}}},
            {"spec",
             {{"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", name}}},
              {"service", {{"port", 9898}}},
              {"analysis",
               {{"interval", "1m"}, {"threshold", 5}, {"maxWeight", 50}, {"stepWeight", 10}}}}}};
}

std::unique_ptr<kube::RestKubeClient> unthrottled_client(asio::io_context& io,
                                                         TestCluster& cluster = shared_cluster()) {
    kube::RestClientOptions options;
    options.write_qps = 0;  // no client-side limit: these tests measure the server, not the bucket
    auto client = kube::make_rest_client(io.get_executor(), cluster.config(), cluster.clock(),
                                         options);
    REQUIRE(client);
    return std::move(*client);
}

}  // namespace

TEST_CASE("CRUD on a core resource: create get update patch (merge JSON apply) delete") {
    asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    const auto& cm = types::config_maps();

    auto created = run(io, client->create(cm, ns.name(), config_map(ns.name(), "crud", {{"a", "1"}}),
                                          {}));
    REQUIRE(created);
    CHECK(created->at("data").at("a") == "1");
    CHECK_FALSE(kube::object_uid(*created).empty());

    auto got = run(io, client->get(cm, ns.name(), "crud"));
    REQUIRE(got);
    CHECK(kube::object_uid(*got) == kube::object_uid(*created));

    Json changed = *got;
    changed["data"]["a"] = "2";
    auto updated = run(io, client->update(cm, ns.name(), changed, {}));
    REQUIRE(updated);
    CHECK(updated->at("data").at("a") == "2");
    CHECK(kube::object_resource_version(*updated) != kube::object_resource_version(*got));

    auto merged = run(io, client->patch(cm, ns.name(), "crud", kube::PatchType::kMerge,
                                        R"({"data":{"b":"merge"}})", {}));
    REQUIRE(merged);
    CHECK(merged->at("data").at("b") == "merge");
    CHECK(merged->at("data").at("a") == "2");

    auto json_patched = run(io, client->patch(cm, ns.name(), "crud", kube::PatchType::kJson,
                                              R"([{"op":"remove","path":"/data/a"}])", {}));
    REQUIRE(json_patched);
    CHECK_FALSE(json_patched->at("data").contains("a"));

    kube::WriteOptions apply;
    apply.field_manager = "serin-test";
    apply.force = true;
    auto applied = run(io, client->patch(cm, ns.name(), "applied", kube::PatchType::kApply,
                                         config_map(ns.name(), "applied", {{"k", "v"}}).dump(),
                                         apply));
    REQUIRE(applied);
    CHECK(applied->at("data").at("k") == "v");

    REQUIRE(run(io, client->remove(cm, ns.name(), "crud", {})));
    auto gone = run(io, client->get(cm, ns.name(), "crud"));
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind == ErrorKind::kNotFound);
    CHECK(gone.error().http_status == 404);
}

TEST_CASE("CRUD on a custom resource with its status subresource") {
    asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    const auto& canaries = types::canaries();

    auto created = run(io, client->create(canaries, ns.name(), canary(ns.name(), "podinfo"), {}));
    REQUIRE(created);
    CHECK(created->at("spec").at("analysis").at("stepWeight") == 10);

    // The main resource ignores status; the status subresource ignores spec.
    Json with_status = *created;
    with_status["status"] = {{"phase", "Progressing"}, {"canaryWeight", 10}, {"failedChecks", 0}};
    kube::WriteOptions status_write;
    status_write.subresource = "status";
    auto status = run(io, client->update(canaries, ns.name(), with_status, status_write));
    REQUIRE(status);
    CHECK(status->at("status").at("phase") == "Progressing");
    CHECK(status->at("status").at("canaryWeight") == 10);

    auto page = run(io, client->list(canaries, ns.name(), {}));
    REQUIRE(page);
    REQUIRE(page->items.size() == 1);
    CHECK(page->items[0].at("kind") == "Canary");
    CHECK(page->items[0].at("status").at("phase") == "Progressing");

    REQUIRE(run(io, client->remove(canaries, ns.name(), "podinfo", {})));
    auto gone = run(io, client->get(canaries, ns.name(), "podinfo"));
    REQUIRE_FALSE(gone);
    CHECK(gone.error().kind == ErrorKind::kNotFound);
}

TEST_CASE("typed errors: a stale resourceVersion is a Conflict a second create AlreadyExists "
          "a bad name Invalid with the server's causes") {
    asio::io_context io;
    auto client = make_admin_client(io);
    TestNamespace ns;
    const auto& cm = types::config_maps();

    auto first = run(io, client->create(cm, ns.name(), config_map(ns.name(), "stale"), {}));
    REQUIRE(first);
    Json newer = *first;
    newer["data"]["x"] = "1";
    REQUIRE(run(io, client->update(cm, ns.name(), newer, {})));

    Json stale = *first;  // still carries the first resourceVersion
    stale["data"]["x"] = "2";
    auto conflict = run(io, client->update(cm, ns.name(), stale, {}));
    REQUIRE_FALSE(conflict);
    CHECK(conflict.error().kind == ErrorKind::kConflict);
    CHECK(conflict.error().http_status == 409);

    auto again = run(io, client->create(cm, ns.name(), config_map(ns.name(), "stale"), {}));
    REQUIRE_FALSE(again);
    CHECK(again.error().kind == ErrorKind::kAlreadyExists);

    auto invalid = run(io, client->create(cm, ns.name(), config_map(ns.name(), "Not_A_Name"), {}));
    REQUIRE_FALSE(invalid);
    CHECK(invalid.error().kind == ErrorKind::kInvalid);
    REQUIRE_FALSE(invalid.error().causes.empty());
    CHECK(invalid.error().causes[0].field == "metadata.name");
    CHECK_THAT(invalid.error().describe(), Catch::Contains("Not_A_Name"));
}

TEST_CASE("a watch sees every one of 1000 rapid updates in order") {
    asio::io_context io;
    auto client = unthrottled_client(io);
    TestNamespace ns;
    const auto& cm = types::config_maps();
    constexpr int kUpdates = 1000;

    auto created = run(io, client->create(cm, ns.name(), config_map(ns.name(), "counter",
                                                                     {{"n", "0"}}),
                                          {}));
    REQUIRE(created);

    std::vector<int> seen;
    bool writer_done = false;
    kube::WatchOptions options;
    options.resource_version = kube::object_resource_version(*created);
    options.field_selector = "metadata.name=counter";
    options.allow_bookmarks = false;
    asio::co_spawn(
        io,
        client->watch(cm, ns.name(), options,
                      [&](kube::WatchEvent&& event) {
                          if (event.type == kube::WatchEvent::Type::kModified) {
                              seen.push_back(std::stoi(event.object.at("data").at("n").get<std::string>()));
                          }
                          return static_cast<int>(seen.size()) < kUpdates;
                      }),
        [&](std::exception_ptr, Result<void> result) {
            if (!result) {
                FAIL_CHECK("watch ended with " << result.error().describe());
            }
        });

    run(io, [&]() -> asio::awaitable<void> {
        Json object = *created;
        for (int i = 1; i <= kUpdates; ++i) {
            object["data"]["n"] = std::to_string(i);
            auto updated = co_await client->update(cm, ns.name(), object);
            REQUIRE(updated);
            object = std::move(*updated);
        }
        writer_done = true;
    }());
    REQUIRE(writer_done);
    REQUIRE(wait_until([&] {
        io.poll();
        return static_cast<int>(seen.size()) >= kUpdates;
    }, std::chrono::seconds{60}, std::chrono::milliseconds{1}));

    REQUIRE(seen.size() == kUpdates);
    for (int i = 0; i < kUpdates; ++i) {
        REQUIRE(seen[static_cast<std::size_t>(i)] == i + 1);
    }
}

TEST_CASE("LIST pages through 2000 objects with limit and continue") {
    asio::io_context io;
    auto client = unthrottled_client(io);
    TestNamespace ns;
    const auto& cm = types::config_maps();
    constexpr int kObjects = 2000;
    constexpr int kWriters = 8;

    run(io, [&]() -> asio::awaitable<void> {
        // A few writers in parallel, each over its own keep-alive connection.
        using namespace asio::experimental::awaitable_operators;
        auto writer = [&](int first) -> asio::awaitable<void> {
            for (int i = first; i < kObjects; i += kWriters) {
                auto created = co_await client->create(
                    cm, ns.name(), config_map(ns.name(), "cm-" + std::to_string(i)));
                REQUIRE(created);
            }
        };
        co_await ((writer(0) && writer(1) && writer(2) && writer(3)) &&
                  (writer(4) && writer(5) && writer(6) && writer(7)));
    }(), std::chrono::minutes{5});

    std::set<std::string> names;
    int pages = 0;
    kube::ListOptions options;
    options.limit = 300;
    std::string first_version;
    do {
        auto page = run(io, client->list(cm, ns.name(), options));
        REQUIRE(page);
        ++pages;
        CHECK(page->items.size() <= 300);
        for (const auto& item : page->items) {
            names.insert(kube::object_name(item));
        }
        options.continue_token = page->continue_token;
    } while (!options.continue_token.empty());

    // 2,000 ConfigMaps plus the namespace's kube-root-ca.crt, if the server made one.
    CHECK(pages == 7);
    int made = 0;
    for (int i = 0; i < kObjects; ++i) {
        made += names.contains("cm-" + std::to_string(i)) ? 1 : 0;
    }
    CHECK(made == kObjects);
}

TEST_CASE("new connections to the API server resume the TLS session of an earlier one") {
    asio::io_context io;
    auto client = unthrottled_client(io);
    TestNamespace ns;
    const auto& cm = types::config_maps();
    REQUIRE(run(io, client->create(cm, ns.name(), config_map(ns.name(), "tls", {{"a", "1"}}))));
    const kube::RestClientStats before = client->stats();
    REQUIRE(before.connections_opened >= 1);

    run(io, [&]() -> asio::awaitable<void> {
        // Reads at once: one may take the kept-alive connection, the others open their own.
        using namespace asio::experimental::awaitable_operators;
        auto read = [&]() -> asio::awaitable<void> {
            auto got = co_await client->get(cm, ns.name(), "tls");
            REQUIRE(got);
        };
        co_await ((read() && read()) && (read() && read()));
    }());

    const kube::RestClientStats after = client->stats();
    const std::uint64_t opened = after.connections_opened - before.connections_opened;
    CHECK(opened >= 3);
    // kube-apiserver (Go's crypto/tls) takes the session back: no certificate sent or verified.
    CHECK(after.tls_sessions_resumed - before.tls_sessions_resumed == opened);
}

TEST_CASE("a server certificate from an unknown CA fails with a clear TLS error") {
    asio::io_context io;
    auto config = shared_cluster().config();
    // A CA that did not sign the API server's certificate.
    config.tls.ca_pem = serin::test::test_pki().other_ca.cert_pem;
    auto client = kube::make_rest_client(io.get_executor(), config, shared_cluster().clock());
    REQUIRE(client);
    auto result = run(io, (*client)->get(types::namespaces(), "", "default"));
    REQUIRE_FALSE(result);
    CHECK(result.error().kind == ErrorKind::kTls);
    CHECK_THAT(result.error().message, Catch::Contains("certificate verify failed"));
}

namespace {

std::filesystem::path temp_file(const std::string& stem) {
    static int counter = 0;
    return std::filesystem::temp_directory_path() /
           (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
}

void write_file(const std::filesystem::path& path, const std::string& text) {
    // Write beside and rename, as the kubelet does, so a reader never sees half a token.
    auto tmp = path;
    tmp += ".tmp";
    {
        std::ofstream out(tmp);
        out << text;
    }
    std::filesystem::rename(tmp, path);
}

}  // namespace

TEST_CASE("a rotated token file is picked up without a new client") {
    asio::io_context io;
    auto token_file = temp_file("serin-token");
    write_file(token_file, "not-a-valid-token\n");
    auto config = shared_cluster().config();
    config.token.clear();
    config.token_file = token_file;
    auto client = kube::make_rest_client(io.get_executor(), config, shared_cluster().clock());
    REQUIRE(client);

    auto before = run(io, (*client)->get(types::namespaces(), "", "default"));
    REQUIRE_FALSE(before);
    CHECK(before.error().kind == ErrorKind::kUnauthorized);

    write_file(token_file, shared_cluster().config().token + "\n");
    auto after = run(io, (*client)->get(types::namespaces(), "", "default"));
    REQUIRE(after);
    CHECK(kube::object_name(*after) == "default");

    write_file(token_file, "revoked-token\n");
    auto revoked = run(io, (*client)->get(types::namespaces(), "", "default"));
    REQUIRE_FALSE(revoked);
    CHECK(revoked.error().kind == ErrorKind::kUnauthorized);
    std::filesystem::remove(token_file);
}

TEST_CASE("in-cluster configuration: service-account token and CA files host and port from "
          "the environment") {
    asio::io_context io;
    const auto& cluster = shared_cluster().config();
    auto dir = temp_file("serin-sa");
    std::filesystem::create_directories(dir);
    write_file(dir / "token", cluster.token);
    write_file(dir / "ca.crt", cluster.tls.ca_pem);
    write_file(dir / "namespace", "serin-system");
    auto url = http::Url::parse(cluster.server);
    REQUIRE(url);
    ::setenv("SERIN_TEST_SERVICE_HOST", url->host.c_str(), 1);
    ::setenv("SERIN_TEST_SERVICE_PORT", url->port.c_str(), 1);

    kube::InClusterPaths paths;
    paths.token_file = dir / "token";
    paths.ca_file = dir / "ca.crt";
    paths.namespace_file = dir / "namespace";
    paths.host_env = "SERIN_TEST_SERVICE_HOST";
    paths.port_env = "SERIN_TEST_SERVICE_PORT";
    auto config = kube::load_in_cluster(paths);
    REQUIRE(config);
    CHECK(config->default_namespace == "serin-system");
    CHECK(config->tls.insecure_skip_verify == false);

    auto client = kube::make_rest_client(io.get_executor(), *config, shared_cluster().clock());
    REQUIRE(client);
    auto result = run(io, (*client)->get(types::namespaces(), "", "kube-system"));
    REQUIRE(result);
    CHECK(kube::object_name(*result) == "kube-system");
    std::filesystem::remove_all(dir);
}
