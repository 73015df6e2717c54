#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "platform/core/result.hpp"
#include "platform/kube/config.hpp"

namespace serin::devcluster {

struct DevClusterOptions {
    /// Where keys, tokens, kubeconfigs, etcd data and logs go. Empty: a fresh
    /// /tmp/serin-devcluster-XXXXXX, removed by stop() unless `keep`. A given folder is created
    /// if needed; what a previous cluster left in it (etcd data, keys, logs) is replaced, other
    /// files are left alone, and the folder itself is never removed.
    std::filesystem::path work_dir;
    /// kube-apiserver and kube-controller-manager. Empty: $SERIN_K8S_BIN, else
    /// ~/.cache/serin/k8s-1.20.2 (where hack/setup builds them).
    std::filesystem::path k8s_bin_dir;
    std::filesystem::path etcd = "etcd";  ///< a path, or a name looked up in $PATH
    std::filesystem::path etcdctl = "etcdctl";
    /// Folders whose *.yaml / *.yml documents of kind CustomResourceDefinition are installed
    /// (recursively; other documents are ignored). Default: <repo>/devcluster/thirdparty-crds and
    /// <repo>/crds; default folders that do not exist are skipped, given ones must exist.
    std::vector<std::filesystem::path> crd_dirs = default_crd_dirs();
    bool start_podsim = true;
    std::filesystem::path podsim;  ///< empty: the serin-podsim of this build
    /// meshsim (the data plane: synthetic traffic and the meshes' metrics) and Prometheus
    /// scraping it every `scrape_interval`.
    bool start_meshsim = true;
    std::filesystem::path meshsim;  ///< empty: the serin-meshsim of this build
    /// meshsim's --rate: requests per second per apex Service. Benchmarks with a thousand apexes
    /// lower it, so that meshsim's histograms cost little CPU beside what they measure.
    double meshsim_rate = 50;
    bool start_prometheus = true;   ///< needs start_meshsim
    std::filesystem::path prometheus = "prometheus";  ///< a path, or a name looked up in $PATH
    std::string scrape_interval = "1s";
    /// The API server's --service-cluster-ip-range, which ClusterIPs are allocated from (nothing
    /// routes to it). A /24 holds 254 Services; benchmarks with thousands of canaries (three
    /// Services each) widen it, e.g. to a /16 for 10,000.
    std::string service_cidr = "10.0.0.0/24";
    /// When set, the API server writes its audit log here: one JSON object a line, at the
    /// Metadata level (user, verb, resource, namespace, name, code; no bodies), for each request
    /// of `audit_users` (every user when empty) once answered (watches: once started).
    std::filesystem::path audit_log;
    std::vector<std::string> audit_users;
    /// For the whole of start(), and for each later start_apiserver().
    std::chrono::seconds start_timeout{60};
    /// Wait until the controller-manager has reconciled a probe Deployment before start()
    /// returns (about a second); without it the first Deployment a test makes may wait a bit.
    bool wait_for_controller_manager = true;
    /// Keep a temporary work_dir after stop(), and etcd's data in a given one (which otherwise
    /// keeps only logs, keys and kubeconfigs).
    bool keep = false;

    static std::vector<std::filesystem::path> default_crd_dirs();
};

/// One process of the cluster, as the state file and tests see it.
struct ComponentInfo {
    std::string name;  ///< "etcd", "kube-apiserver", "kube-controller-manager", "podsim", ...
    pid_t pid = 0;     ///< 0 when not running
    std::filesystem::path log_file;
};

/// A throwaway Kubernetes v1.20 control plane on loopback: etcd, kube-apiserver (TLS with a
/// generated CA, token auth, RBAC), kube-controller-manager (deployment, replicaset,
/// garbagecollector and namespace controllers), podsim (the kubelet stand-in), meshsim (the data
/// plane stand-in) and Prometheus scraping meshsim, plus the
/// CustomResourceDefinitions Serin and its meshes need. Nothing listens on a fixed port.
///
/// Authentication: a static token file (`tokens_file()`), one line per user in the format
///   token,user,uid,"group1,group2"
/// holds the admin (group system:masters), the controller-manager and podsim. Tests wanting a
/// less privileged identity can use a ServiceAccount: the TokenRequest API
/// (POST .../serviceaccounts/NAME/token) works, as the API server has a signing key. Client
/// certificates signed by the CA (`ca_pem()`) are accepted too.
///
/// Every child process dies with the thread that started the cluster (PR_SET_PDEATHSIG), so
/// even a crashed test run leaves no servers behind; create and destroy a DevCluster on a thread
/// that lives as long as it.
///
/// Thread safety: not thread-safe; all methods block. It is a test and demo tool, not for the
/// controller's event loop.
class DevCluster {
public:
    /// Starts everything and returns once the API server is ready, the CRDs are Established
    /// and (by default) the controller-manager works. On failure everything started is stopped
    /// again and the error says which component failed, how, and ends with its last log lines.
    static Result<std::unique_ptr<DevCluster>> start(DevClusterOptions options);

    DevCluster(const DevCluster&) = delete;
    DevCluster& operator=(const DevCluster&) = delete;
    /// stop().
    ~DevCluster();

    /// Stops podsim, the controller-manager, the API server and etcd, in that order (SIGTERM,
    /// then SIGKILL after a grace period), and removes a temporary work dir (or etcd's data in a
    /// given one) unless `keep`. Idempotent.
    void stop();
    /// From now on stop() leaves the work dir (logs, etcd's data) in place, as `keep` would:
    /// for a post-mortem of a run that ended badly.
    void keep_work_dir() { options_.keep = true; }

    // Fault injection. The API server keeps its port and flags across a restart, so clients
    // reconnect to the same URL.
    /// SIGTERM, and SIGKILL after 2 s: with watches open, 1.20 would otherwise wait a minute.
    Result<void> stop_apiserver();
    /// SIGKILL: the API server dies at once, under open connections and watches.
    Result<void> kill_apiserver();
    /// Starts a stopped API server again and waits until it is ready.
    Result<void> start_apiserver();
    Result<void> restart_apiserver();
    /// Compacts etcd's history up to its current revision, so watches and lists from older
    /// resourceVersions that reach etcd fail with 410 Gone. Returns that revision.
    Result<std::int64_t> compact_etcd();
    /// etcd stopped (SIGTERM) and started again on the same ports with the same data: the API
    /// server keeps running and reconnects. resume_etcd() waits until etcd is healthy.
    Result<void> stop_etcd();
    Result<void> resume_etcd();
    Result<void> restart_etcd();
    /// Prometheus stopped (an outage) and started again on the same port with the same data
    /// (resume_prometheus() waits until it answers /-/ready).
    Result<void> stop_prometheus();
    Result<void> resume_prometheus();
    Result<void> stop_podsim();
    Result<void> start_podsim();
    /// Adds a line to the token file and restarts the API server (1.20 reads it only at start).
    /// `groups` may be empty.
    Result<void> add_token_user(const std::string& token, const std::string& user,
                                const std::vector<std::string>& groups);

    const std::filesystem::path& work_dir() const { return work_dir_; }
    /// The admin kubeconfig: cluster, CA data, token, context "serin-dev".
    std::filesystem::path kubeconfig_path() const { return work_dir_ / "kubeconfig"; }
    std::filesystem::path tokens_file() const { return work_dir_ / "tokens.csv"; }
    /// How to reach the API server as the admin, for make_rest_client().
    kube::ClusterConfig cluster_config() const;
    /// The same server and CA with another bearer token.
    kube::ClusterConfig cluster_config_for_token(const std::string& token) const;
    std::string server_url() const;
    const std::string& admin_token() const { return admin_token_; }
    const std::string& ca_pem() const { return ca_pem_; }
    /// The CA's certificate and key, to issue client certificates in tests.
    const std::string& ca_key_pem() const { return ca_key_pem_; }
    std::string etcd_endpoint() const;
    std::uint16_t apiserver_port() const { return apiserver_port_; }
    /// http://127.0.0.1:<port> of Prometheus and of meshsim's /metrics; "" when not started.
    std::string prometheus_url() const;
    std::string meshsim_url() const;
    /// Prometheus's file-based discovery directory for job `serin`: a `<name>.json` written
    /// there (see write_scrape_target below) is scraped within a few seconds, and no longer once it is
    /// removed. "" when Prometheus is not started.
    std::filesystem::path scrape_target_dir() const;
    /// Every port the cluster listens on.
    std::vector<std::uint16_t> ports() const;
    std::vector<ComponentInfo> components() const;
    /// How long start() took.
    std::chrono::milliseconds startup_duration() const { return startup_duration_; }

private:
    struct Impl;
    explicit DevCluster(DevClusterOptions options);

    Result<void> start_all();
    Result<void> prepare_work_dir();
    Result<void> resolve_binaries();
    Result<void> write_pki();
    Result<void> write_tokens();
    Result<void> write_kubeconfigs();
    Result<void> start_etcd();
    Result<void> start_apiserver_on_new_ports();
    Result<void> spawn_apiserver();
    /// Writes the audit policy and returns the API server's flags for options_.audit_log.
    Result<std::vector<std::string>> audit_args() const;
    Result<void> wait_apiserver_ready();
    Result<void> start_controller_manager();
    Result<void> install_crds();
    Result<void> wait_controller_manager();
    Result<void> start_meshsim();
    Result<void> start_prometheus();
    Result<void> check_still_running();
    void write_state_file() const;
    std::string write_kubeconfig(const std::string& file, const std::string& user,
                                 const std::string& token) const;

    DevClusterOptions options_;
    std::unique_ptr<Impl> impl_;
    std::filesystem::path work_dir_;
    bool owns_work_dir_ = false;
    bool stopped_ = false;
    std::filesystem::path apiserver_bin_;
    std::filesystem::path controller_manager_bin_;
    std::filesystem::path etcd_bin_;
    std::filesystem::path etcdctl_bin_;
    std::filesystem::path podsim_bin_;
    std::filesystem::path meshsim_bin_;
    std::filesystem::path prometheus_bin_;
    std::uint16_t meshsim_port_ = 0;
    std::uint16_t prometheus_port_ = 0;
    std::string meshsim_token_;
    std::string ca_pem_;
    std::string ca_key_pem_;
    std::string admin_token_;
    std::string controller_manager_token_;
    std::string podsim_token_;
    std::uint16_t etcd_client_port_ = 0;
    std::uint16_t etcd_peer_port_ = 0;
    std::uint16_t apiserver_port_ = 0;
    std::chrono::milliseconds startup_duration_{0};
};

/// Writes `<dir>/<name>.json`, Prometheus's file discovery format, naming `host_port` as one
/// target with `labels`. Written to a temporary name and renamed, so Prometheus never reads half
/// a file.
Result<void> write_scrape_target(const std::filesystem::path& dir, const std::string& name,
                                 const std::string& host_port,
                                 const std::map<std::string, std::string>& labels);

}  // namespace serin::devcluster
