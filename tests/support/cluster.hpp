#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "devcluster/dev_cluster.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/config.hpp"
#include "platform/kube/kube_client.hpp"
#include "platform/kube/rest_client.hpp"

/// Helpers for tests against the real devcluster (tests/integration, tests/e2e).
///
/// Typical use:
///     auto& cluster = serin::testing::shared_cluster();
///     serin::testing::TestNamespace ns;            // t-xxxxxxxx, deleted at scope exit
///     boost::asio::io_context io;
///     auto client = serin::testing::make_admin_client(io);
///     auto created = serin::testing::run(io, client->create(type, ns.name(), obj, {}));
///     auto ready = serin::testing::run(io, serin::testing::wait_for_object(
///         *client, type, ns.name(), "name", [](const Json& o) { ... }, 60s));
namespace serin::testing {

using Json = nlohmann::json;
using namespace std::chrono_literals;

/// The cluster the tests of this process talk to.
class TestCluster {
public:
    /// Uses the cluster whose kubeconfig is at `kubeconfig` (started by someone else).
    static TestCluster external(const std::filesystem::path& kubeconfig);
    /// Takes ownership of a cluster this process started.
    static TestCluster owned(std::unique_ptr<devcluster::DevCluster> cluster);

    TestCluster(TestCluster&&) noexcept;
    TestCluster& operator=(TestCluster&&) noexcept;
    ~TestCluster();

    const std::filesystem::path& kubeconfig_path() const { return kubeconfig_; }
    /// The admin's configuration (server, CA, token).
    const kube::ClusterConfig& config() const { return config_; }
    const std::string& ca_pem() const { return config_.tls.ca_pem; }
    /// Prometheus (scraping meshsim) and meshsim's /metrics: http://127.0.0.1:<port>. From the
    /// cluster's state.json for a cluster started by someone else.
    std::string prometheus_url() const;
    std::string meshsim_url() const;
    /// Where a scrape target file makes that Prometheus scrape a process as job `serin`
    /// (devcluster::write_scrape_target); empty when the cluster has no Prometheus.
    std::filesystem::path scrape_target_dir() const;
    /// The process-owned cluster, for fault injection (restart_apiserver, compact_etcd, ...);
    /// nullptr when the cluster belongs to the ctest fixture. Tests that inject faults into the
    /// control plane should start a private DevCluster rather than disturb the shared one.
    devcluster::DevCluster* dev_cluster() { return owned_.get(); }
    /// A clock for clients made for this cluster; lives as long as the cluster.
    Clock& clock() { return *clock_; }

private:
    TestCluster() = default;
    std::unique_ptr<devcluster::DevCluster> owned_;
    std::filesystem::path kubeconfig_;
    kube::ClusterConfig config_;
    std::unique_ptr<SystemClock> clock_ = std::make_unique<SystemClock>();
};

/// The cluster of this test process, made on first use: the ctest fixture's when
/// $SERIN_DEVCLUSTER_DIR/kubeconfig exists, otherwise a private DevCluster started now and
/// stopped when the process exits. Throws std::runtime_error when no cluster can be had.
TestCluster& shared_cluster();

/// A RestKubeClient for the cluster, as the admin, bound to `io` (generous write limits).
std::unique_ptr<kube::RestKubeClient> make_admin_client(boost::asio::io_context& io,
                                                        TestCluster& cluster = shared_cluster());

/// A namespace for one test: `<prefix>-<8 random hex digits>`, labelled serin.dev/test=true,
/// created by the constructor (which throws on failure) and deleted by the destructor (without
/// waiting for the namespace controller to finish).
class TestNamespace {
public:
    explicit TestNamespace(TestCluster& cluster = shared_cluster(), std::string prefix = "t");
    TestNamespace(const TestNamespace&) = delete;
    TestNamespace& operator=(const TestNamespace&) = delete;
    ~TestNamespace();

    const std::string& name() const { return name_; }

private:
    TestCluster& cluster_;
    std::string name_;
};

/// Runs `task` on `io` until it completes and returns its value or rethrows its exception. If it
/// has not finished after `timeout`, it is cancelled and std::runtime_error is thrown.
template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task,
      std::chrono::steady_clock::duration timeout = 120s);

/// Polls `condition` every `interval` until it is true (returns true) or `timeout` passes
/// (returns false). For state outside the API server; for API objects prefer the watch-based
/// helpers below.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 60s,
                std::chrono::milliseconds interval = 50ms);

/// Gets the object and then watches it until `predicate` holds; returns that version of it.
/// Fails with kTransient after `timeout`, the message holding the last version seen (or
/// "never seen"). The object need not exist yet.
boost::asio::awaitable<Result<Json>> wait_for_object(kube::KubeClient& client,
                                                     kube::ResourceType type, std::string ns,
                                                     std::string name,
                                                     std::function<bool(const Json&)> predicate,
                                                     std::chrono::milliseconds timeout = 60s);

/// Objects by name, as wait_for_objects sees them.
using ObjectMap = std::map<std::string, Json>;

/// Lists the objects matching `label_selector` in `ns`, then watches them until `predicate`
/// holds for the set; returns that set. Fails with kTransient after `timeout`, the message
/// listing the names last seen.
boost::asio::awaitable<Result<ObjectMap>> wait_for_objects(
    kube::KubeClient& client, kube::ResourceType type, std::string ns, std::string label_selector,
    std::function<bool(const ObjectMap&)> predicate, std::chrono::milliseconds timeout = 60s);

/// A ConfigMap manifest, the tests' usual subject.
Json config_map(const std::string& ns, const std::string& name, Json data = Json::object(),
                Json labels = Json::object());

/// The value at a JSON pointer ("/status/availableReplicas"), or nullptr when absent.
const Json* find_pointer(const Json& object, const std::string& pointer);

/// The condition of `type` in status.conditions, or nullptr.
const Json* find_condition(const Json& object, const std::string& type);

// ---------------------------------------------------------------------------------------------

template <class T>
T run(boost::asio::io_context& io, boost::asio::awaitable<T> task,
      std::chrono::steady_clock::duration timeout) {
    namespace asio = boost::asio;
    std::exception_ptr thrown;
    std::optional<T> value;
    bool done = false;
    asio::cancellation_signal cancel;
    asio::co_spawn(io, std::move(task),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, T v) {
                       done = true;
                       thrown = e;
                       if (!e) {
                           value.emplace(std::move(v));
                       }
                   }));
    io.restart();
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done && io.run_one_until(deadline) > 0) {
    }
    if (!done) {
        cancel.emit(asio::cancellation_type::terminal);
        auto grace = std::chrono::steady_clock::now() + 5s;
        while (!done && io.run_one_until(grace) > 0) {
        }
        throw std::runtime_error("serin::testing::run: the task did not finish in time");
    }
    if (thrown) {
        std::rethrow_exception(thrown);
    }
    return std::move(*value);
}

/// The void flavour of run().
void run(boost::asio::io_context& io, boost::asio::awaitable<void> task,
         std::chrono::steady_clock::duration timeout = 120s);

}  // namespace serin::testing
