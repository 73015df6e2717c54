// The devcluster itself: its kubeconfig works with Serin's client, it installs the CRDs, and a
// private cluster leaves nothing behind when it stops.
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "devcluster/dev_cluster.hpp"
#include "devcluster/process.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/manifest.hpp"
#include "platform/kube/rest_client.hpp"
#include "tests/support/cluster.hpp"

namespace kube = serin::kube;
namespace devcluster = serin::devcluster;
namespace testing = serin::testing;
using Json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

/// The names of every CRD document in the default CRD folders.
std::vector<std::string> default_crd_names() {
    std::vector<std::string> names;
    for (const auto& dir : devcluster::DevClusterOptions::default_crd_dirs()) {
        std::error_code ec;
        if (!std::filesystem::is_directory(dir, ec)) {
            continue;
        }
        for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
            auto ext = entry.path().extension();
            if (!entry.is_regular_file() || (ext != ".yaml" && ext != ".yml")) {
                continue;
            }
            std::ifstream in(entry.path());
            std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
            auto docs = kube::parse_manifests(text);
            if (!docs) {
                continue;
            }
            for (const auto& doc : *docs) {
                if (doc.is_object() && doc.value("kind", "") == "CustomResourceDefinition") {
                    names.push_back(kube::object_name(doc));
                }
            }
        }
    }
    return names;
}

}  // namespace

TEST_CASE("the cluster's kubeconfig works with load_kubeconfig and RestKubeClient",
          "[integration][devcluster]") {
    auto& cluster = testing::shared_cluster();
    auto config = kube::load_kubeconfig(cluster.kubeconfig_path());
    REQUIRE(config.has_value());
    CHECK(config->server.rfind("https://127.0.0.1:", 0) == 0);
    CHECK_FALSE(config->tls.ca_pem.empty());

    boost::asio::io_context io;
    serin::SystemClock clock;
    auto client = kube::make_rest_client(io.get_executor(), *config, clock);
    REQUIRE(client.has_value());
    auto ns = testing::run(io, (*client)->get(kube::types::namespaces(), "", "default"));
    REQUIRE(ns);
    CHECK(kube::object_name(*ns) == "default");
    auto ready = testing::run(io, (*client)->get_raw("/readyz"));
    REQUIRE(ready);
    CHECK(*ready == "ok");
}

TEST_CASE("the cluster has every CRD of the default folders Established",
          "[integration][devcluster]") {
    boost::asio::io_context io;
    auto client = testing::make_admin_client(io);
    for (const auto& name : default_crd_names()) {
        INFO("CRD " << name);
        auto crd =
            testing::run(io, (*client).get(kube::types::custom_resource_definitions(), "", name));
        REQUIRE(crd);
        const Json* established = testing::find_condition(*crd, "Established");
        REQUIRE(established != nullptr);
        CHECK(established->value("status", "") == "True");
    }
}

TEST_CASE("a cluster that cannot start says why", "[integration][devcluster]") {
    devcluster::DevClusterOptions options;
    options.k8s_bin_dir = "/nonexistent/serin-k8s";
    auto cluster = devcluster::DevCluster::start(options);
    REQUIRE_FALSE(cluster.has_value());
    CHECK_THAT(cluster.error().message,
               Catch::Contains("kube-apiserver is missing") && Catch::Contains("hack/setup"));
}

TEST_CASE("a private DevCluster survives API server restarts and leaves nothing behind",
          "[integration][devcluster]") {
    devcluster::DevClusterOptions options;
    options.crd_dirs = {};  // not needed here; keeps the start short
    auto started = devcluster::DevCluster::start(options);
    INFO((started ? std::string() : started.error().message));
    REQUIRE(started.has_value());
    auto cluster = std::move(*started);
    WARN("private devcluster started in " << cluster->startup_duration().count() << " ms");

    const auto components = cluster->components();
    REQUIRE(components.size() == 6);  // etcd, kube-apiserver, kube-controller-manager, podsim,
                                      // meshsim, prometheus
    std::vector<pid_t> pids;
    for (const auto& c : components) {
        INFO(c.name);
        CHECK(c.pid > 0);
        CHECK(devcluster::pid_alive(c.pid));
        pids.push_back(c.pid);
    }
    const auto ports = cluster->ports();
    for (auto port : ports) {
        CHECK_FALSE(devcluster::port_is_free(port));
    }
    const auto work_dir = cluster->work_dir();
    CHECK(std::filesystem::exists(cluster->kubeconfig_path()));

    {
        boost::asio::io_context io;
        serin::SystemClock clock;
        auto client = kube::make_rest_client(io.get_executor(), cluster->cluster_config(), clock);
        REQUIRE(client.has_value());
        Json config_map = {{"apiVersion", "v1"},
                           {"kind", "ConfigMap"},
                           {"metadata", {{"name", "survivor"}, {"namespace", "default"}}},
                           {"data", {{"k", "v"}}}};
        auto created = testing::run(
            io, (*client)->create(kube::types::config_maps(), "default", config_map, {}));
        REQUIRE(created);

        // Same port and data after a restart; the client reconnects by itself.
        auto restarted = cluster->restart_apiserver();
        INFO((restarted ? std::string() : restarted.error().message));
        REQUIRE(restarted.has_value());
        auto apiserver_pid = cluster->components()[1].pid;
        CHECK(apiserver_pid > 0);
        CHECK(apiserver_pid != pids[1]);
        pids.push_back(apiserver_pid);
        auto read =
            testing::run(io, (*client)->get(kube::types::config_maps(), "default", "survivor"));
        REQUIRE(read);
        CHECK(read->at("data").at("k") == "v");

        // Something newer than the ConfigMap, so compacting removes the ConfigMap's revision.
        config_map["metadata"]["name"] = "later";
        REQUIRE(testing::run(
            io, (*client)->create(kube::types::config_maps(), "default", config_map, {})));
        auto revision = cluster->compact_etcd();
        INFO((revision ? std::string() : revision.error().message));
        REQUIRE(revision.has_value());
        CHECK(*revision > 0);
        // A LIST at a compacted revision that must come from etcd fails with 410 Gone.
        kube::ListOptions old;
        old.resource_version = kube::object_resource_version(*created);
        old.limit = 1;  // paged lists at an exact revision bypass the watch cache
        auto listed = testing::run(io, (*client)->list(kube::types::config_maps(), "default", old));
        REQUIRE_FALSE(listed.has_value());
        CHECK(listed.error().kind == serin::ErrorKind::kGone);
    }

    cluster.reset();  // stops everything
    for (auto pid : pids) {
        INFO("pid " << pid);
        CHECK_FALSE(devcluster::pid_alive(pid));
    }
    for (auto port : ports) {
        INFO("port " << port);
        CHECK(devcluster::port_is_free(port));
    }
    CHECK_FALSE(std::filesystem::exists(work_dir));
}
