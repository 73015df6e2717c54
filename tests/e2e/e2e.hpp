#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "devcluster/process.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/test_http_server.hpp"

/// Helpers for the end-to-end tests: whole releases on the devcluster, driven by the real `serin`
/// binary, with a loopback webhook receiver standing in for the Flagger load tester.
namespace serin::e2e {

using Json = nlohmann::json;
using namespace std::chrono_literals;

/// The serin binary of this build, run as a child process that watches one namespace, so tests
/// in parallel do not see each other's canaries.
class SerinProcess {
public:
    /// Starts serin; its log goes to a file named after the namespace.
    SerinProcess(testing::TestCluster& cluster, std::string ns,
                 std::vector<std::string> extra_args = {});
    /// The same with another kubeconfig (another identity).
    SerinProcess(std::string ns, std::filesystem::path kubeconfig,
                 std::vector<std::string> extra_args);
    ~SerinProcess();

    void start();
    /// SIGKILL: no chance to finish anything.
    void kill();
    /// SIGTERM and wait.
    void stop();
    /// SIGTERM, without waiting (wait on running() while serving what it still calls).
    void terminate();
    bool running();
    /// "exited with status 0", "killed by signal 9", "running" (or "not started").
    std::string exit_status() const;
    /// The last lines of its log, for failure messages.
    std::string log_tail(std::size_t lines = 40) const;
    const std::filesystem::path& log_file() const { return log_; }
    /// The port of its /metrics, /healthz and /readyz.
    std::uint16_t port() const { return port_; }
    /// The label `serin_test` the cluster's Prometheus gives its series (job `serin`): one per
    /// process, since tests run side by side. Started with a TestCluster, it is scraped from
    /// construction until destruction.
    const std::string& scrape_label() const { return scrape_name_; }

private:
    std::string ns_;
    std::filesystem::path kubeconfig_;
    std::vector<std::string> extra_args_;
    std::uint16_t port_ = 0;
    std::filesystem::path log_;
    std::filesystem::path scrape_dir_;  ///< where its scrape target file is, if it has one
    std::string scrape_name_;
    std::optional<devcluster::Process> process_;
};

/// A webhook receiver with named gates, like flagger-loadtester's /gate and /rollback APIs:
/// POST /approve answers 200, /deny 403, /hang never answers, /slow/<ms> 200 after <ms>
/// milliseconds, /gate/<name> 200 while the gate is open and 403 while it is closed (closed at
/// first), and /ok/<anything> 200 (a chat service's incoming webhook). Every request is recorded
/// when it arrives.
class GateServer {
public:
    explicit GateServer(boost::asio::io_context& io);

    std::string url(const std::string& path) const { return server_.base_url() + path; }
    void open(const std::string& gate) { open_.insert(gate); }
    void close(const std::string& gate) { open_.erase(gate); }
    /// How many requests reached `path`.
    std::size_t calls(const std::string& path) const;
    /// The JSON bodies posted to `path`, in order.
    std::vector<Json> bodies(const std::string& path) const;

private:
    std::set<std::string> open_;
    test::TestHttpServer server_;
};

/// The value of the first sample of instant query `promql` on the Prometheus at `url`, or
/// nullopt (no data, an error).
std::optional<double> prometheus_value(const std::string& url, const std::string& promql);

/// A Prometheus of one test's own, scraping `url` (http://host:port, path /metrics) every
/// second as job `job`, that the test can stop and start again on the same port and the same data
/// (the cluster's Prometheus is shared).
class OwnPrometheus {
public:
    OwnPrometheus(const std::string& url, const std::string& job, const std::string& name);
    ~OwnPrometheus();
    OwnPrometheus(const OwnPrometheus&) = delete;
    OwnPrometheus& operator=(const OwnPrometheus&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    /// Starts it and waits (up to 60 s) until it has scraped its target.
    void start();
    void stop();
    /// The value of the first sample of instant query `promql`, or nullopt (no data, an error).
    std::optional<double> value(const std::string& promql) const {
        return prometheus_value(url(), promql);
    }

private:
    std::filesystem::path dir_;
    std::string job_;
    std::uint16_t port_ = 0;
    std::optional<devcluster::Process> process_;
};

/// One test's world: a namespace, an admin client and helpers to build and wait for objects.
class Scenario {
public:
    Scenario();

    boost::asio::io_context& io() { return io_; }
    kube::KubeClient& client() { return *client_; }
    const std::string& ns() const { return ns_.name(); }
    testing::TestCluster& cluster() { return cluster_; }

    /// The podinfo Deployment the examples use: `replicas` pods of `image` with label app=podinfo.
    Json deployment(const std::string& image, int replicas = 2) const;
    /// A Canary for Deployment podinfo on the kubernetes provider with `analysis` as given.
    Json canary(Json analysis, Json spec_extra = Json::object()) const;

    Json create(const kube::ResourceType& type, Json object);
    Json get(const kube::ResourceType& type, const std::string& name);
    /// Merge-patches an object.
    Json patch(const kube::ResourceType& type, const std::string& name, const Json& patch);
    void remove(const kube::ResourceType& type, const std::string& name);
    /// Sets the image of podinfo's container (a new revision).
    void bump_image(const std::string& image);

    /// Waits until the Canary satisfies `predicate`; fails the test with the serin log otherwise.
    Json wait_canary(const std::function<bool(const Json&)>& predicate, std::string what,
                     std::chrono::milliseconds timeout = 90s);
    Json wait_phase(const std::string& phase, std::chrono::milliseconds timeout = 90s);
    Json wait_object(const kube::ResourceType& type, const std::string& name,
                     const std::function<bool(const Json&)>& predicate, std::string what,
                     std::chrono::milliseconds timeout = 60s);
    /// Waits until the podinfo Deployment (the target) asks for `replicas`.
    void wait_target_replicas(int replicas);
    /// Whether the Canary keeps failing `changed` for the whole `window` (it is watched; nothing
    /// sleeps). For asserting that something does not happen.
    bool canary_stays(const std::function<bool(const Json&)>& changed, std::chrono::milliseconds window);

    /// The messages of the Events recorded about the canary, oldest first.
    std::vector<std::string> events();
    /// Runs the scenario's io_context (and so its GateServers) until `done`, or fails the test
    /// after `timeout` with `what` and the serin log.
    void wait_until(const std::function<bool()>& done, const std::string& what,
                    std::chrono::milliseconds timeout = 30s);
    /// Waits until an Event about the canary contains `text`.
    void wait_event(const std::string& text, std::chrono::milliseconds timeout = 60s);

    /// Starts serin on this scenario's namespace, as the admin or with `kubeconfig`; failure
    /// messages then carry its log. It stops before the namespace goes.
    SerinProcess& start_serin(std::optional<std::filesystem::path> kubeconfig = std::nullopt);
    /// Starts serin as the admin with extra flags.
    SerinProcess& start_serin_with_args(std::vector<std::string> extra_args);

private:
    [[noreturn]] void fail_with(const std::string& what, const std::string& detail);

    testing::TestCluster& cluster_;
    testing::TestNamespace ns_;
    boost::asio::io_context io_;
    std::unique_ptr<kube::RestKubeClient> client_;
    std::unique_ptr<SerinProcess> serin_;  // last: stopped first
};

/// A kubeconfig for the existing ServiceAccount `name` in the scenario's namespace, with a token
/// from the TokenRequest API and the cluster's CA: that account's identity and RBAC.
std::filesystem::path service_account_kubeconfig(Scenario& scenario, const std::string& name);

/// A kubeconfig for ServiceAccount `name` in the scenario's namespace, bound to the ClusterRole
/// of crds/base/rbac.yaml and nothing else: what serin may do in a real cluster.
std::filesystem::path least_privilege_kubeconfig(Scenario& scenario, const std::string& name);

/// Field access for assertions: the value at a JSON pointer, or null.
Json at(const Json& object, const std::string& pointer);
std::string phase(const Json& canary);
std::string image_of(const Json& workload);

}  // namespace serin::e2e
