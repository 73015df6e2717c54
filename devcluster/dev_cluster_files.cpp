// The cluster's files: the work dir, the binaries, the PKI, the token file, the kubeconfigs and
// the state file.

#include "devcluster/dev_cluster.hpp"

#include "devcluster/dev_cluster_internal.hpp"
#include "devcluster/pki.hpp"
#include "devcluster/process.hpp"
#include "platform/core/base64.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <tuple>
#include <vector>

namespace serin::devcluster {

using kube::Json;
using namespace detail;  // the helpers the cluster's files share

namespace {

std::string quote_yaml(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

Result<void> DevCluster::prepare_work_dir() {
    std::error_code ec;
    if (options_.work_dir.empty()) {
        std::string pattern = (fs::temp_directory_path() / "serin-devcluster-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            return fail(ErrorKind::kInternal, "mkdtemp " + pattern + ": " + std::strerror(errno));
        }
        work_dir_ = pattern;
        owns_work_dir_ = true;
    } else {
        work_dir_ = fs::absolute(options_.work_dir, ec).lexically_normal();
        fs::create_directories(work_dir_, ec);
        if (ec) {
            return fail(ErrorKind::kInternal,
                        "cannot create " + work_dir_.string() + ": " + ec.message());
        }
        // Only what a previous cluster wrote: the folder may hold other things.
        for (const char* entry :
             {"etcd", "pki", "logs", "kubeconfig", "kubeconfig-controller-manager",
              "kubeconfig-podsim", "tokens.csv", "state.json"}) {
            fs::remove_all(work_dir_ / entry, ec);
        }
    }
    fs::create_directories(work_dir_ / "logs", ec);
    return {};
}

Result<void> DevCluster::resolve_binaries() {
    fs::path bin_dir = options_.k8s_bin_dir;
    if (bin_dir.empty()) {
        if (const char* env = std::getenv("SERIN_K8S_BIN"); env != nullptr && *env != '\0') {
            bin_dir = env;
        } else {
            const char* home = std::getenv("HOME");
            bin_dir = fs::path(home != nullptr ? home : "/root") / ".cache/serin/k8s-1.20.2";
        }
    }
    apiserver_bin_ = bin_dir / "kube-apiserver";
    controller_manager_bin_ = bin_dir / "kube-controller-manager";
    for (const auto& bin : {apiserver_bin_, controller_manager_bin_}) {
        if (::access(bin.c_str(), X_OK) != 0) {
            return fail(ErrorKind::kInternal,
                        bin.string() + " is missing: run hack/setup (or set SERIN_K8S_BIN)");
        }
    }
    auto etcd = find_executable(options_.etcd.string());
    auto etcdctl = find_executable(options_.etcdctl.string());
    if (!etcd) {
        return fail(ErrorKind::kInternal,
                    "etcd not found (" + options_.etcd.string() + "): run hack/setup");
    }
    etcd_bin_ = *etcd;
    etcdctl_bin_ = etcdctl.value_or(options_.etcdctl);
    if (options_.start_podsim) {
        podsim_bin_ = options_.podsim.empty() ? fs::path(SERIN_PODSIM_PATH) : options_.podsim;
        if (podsim_bin_.empty() || ::access(podsim_bin_.c_str(), X_OK) != 0) {
            return fail(ErrorKind::kInternal,
                        "serin-podsim not found at '" + podsim_bin_.string() + "': build it");
        }
    }
    if (options_.start_meshsim) {
        meshsim_bin_ = options_.meshsim.empty() ? fs::path(SERIN_MESHSIM_PATH) : options_.meshsim;
        if (meshsim_bin_.empty() || ::access(meshsim_bin_.c_str(), X_OK) != 0) {
            return fail(ErrorKind::kInternal,
                        "serin-meshsim not found at '" + meshsim_bin_.string() + "': build it");
        }
        if (options_.start_prometheus) {
            auto prometheus = find_executable(options_.prometheus.string());
            if (!prometheus) {
                return fail(ErrorKind::kInternal, "prometheus not found (" +
                                                      options_.prometheus.string() +
                                                      "): run hack/setup");
            }
            prometheus_bin_ = *prometheus;
        }
    }
    return {};
}

Result<void> DevCluster::write_pki() {
    const fs::path pki = work_dir_ / "pki";
    auto ca = make_ca("serin-devcluster-ca");
    if (!ca) {
        return ca.error();
    }
    CertificateRequest serving;
    serving.common_name = "kube-apiserver";
    serving.dns_names = {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                         "kubernetes.default.svc.cluster.local"};
    serving.ip_addresses = {"127.0.0.1", "10.0.0.1"};
    serving.server = true;
    auto apiserver = issue_certificate(*ca, serving);
    if (!apiserver) {
        return apiserver.error();
    }
    CertificateRequest admin;
    admin.common_name = "serin-admin";
    admin.organizations = {"system:masters"};
    admin.client = true;
    auto admin_cert = issue_certificate(*ca, admin);
    if (!admin_cert) {
        return admin_cert.error();
    }
    auto service_accounts = make_rsa_key_pair(2048);
    if (!service_accounts) {
        return service_accounts.error();
    }
    ca_pem_ = ca->cert_pem;
    ca_key_pem_ = ca->key_pem;
    const auto world_readable = fs::perms::owner_read | fs::perms::owner_write |
                                fs::perms::group_read | fs::perms::others_read;
    for (const auto& [file, content, perms] :
         std::vector<std::tuple<std::string, std::string, fs::perms>>{
             {"ca.crt", ca->cert_pem, world_readable},
             {"ca.key", ca->key_pem, fs::perms::owner_read | fs::perms::owner_write},
             {"apiserver.crt", apiserver->cert_pem, world_readable},
             {"apiserver.key", apiserver->key_pem, fs::perms::owner_read | fs::perms::owner_write},
             {"admin.crt", admin_cert->cert_pem, world_readable},
             {"admin.key", admin_cert->key_pem, fs::perms::owner_read | fs::perms::owner_write},
             {"sa.key", service_accounts->private_pem,
              fs::perms::owner_read | fs::perms::owner_write},
             {"sa.pub", service_accounts->public_pem, world_readable},
         }) {
        if (auto r = write_file(pki / file, content, perms); !r) {
            return r;
        }
    }
    return {};
}

Result<void> DevCluster::write_tokens() {
    admin_token_ = random_hex(16);
    controller_manager_token_ = random_hex(16);
    podsim_token_ = random_hex(16);
    meshsim_token_ = random_hex(16);
    // The static token file format: token,user,uid,"group1,group2".
    std::string content = admin_token_ + ",serin-admin,serin-admin,\"system:masters\"\n" +
                          controller_manager_token_ +
                          ",system:kube-controller-manager,kube-controller-manager,"
                          "\"system:masters\"\n" +
                          podsim_token_ + ",serin-podsim,serin-podsim,\"system:masters\"\n" +
                          meshsim_token_ + ",serin-meshsim,serin-meshsim,\"system:masters\"\n";
    return write_file(tokens_file(), content);
}

Result<std::vector<std::string>> DevCluster::audit_args() const {
    // Metadata: who did what to which object, with the answer's code, and no bodies. The stage
    // RequestReceived is dropped, so an ordinary request is one line (ResponseComplete) and a
    // watch two (ResponseStarted, then ResponseComplete when it ends).
    std::ostringstream policy;
    policy << "apiVersion: audit.k8s.io/v1\n"
           << "kind: Policy\n"
           << "omitStages: [RequestReceived]\n"
           << "rules:\n"
           << "- level: Metadata\n";
    if (!options_.audit_users.empty()) {
        policy << "  users:\n";
        for (const std::string& user : options_.audit_users) {
            policy << "  - " << quote_yaml(user) << "\n";
        }
        policy << "- level: None\n";
    }
    const fs::path file = work_dir_ / "audit-policy.yaml";
    if (auto r = write_file(file, policy.str()); !r) {
        return r.error();
    }
    return std::vector<std::string>{
        "--audit-policy-file=" + file.string(),
        "--audit-log-path=" + options_.audit_log.string(),
        "--audit-log-format=json",
        // One file, never rotated: a benchmark reads it whole.
        "--audit-log-maxsize=0",
        "--audit-log-maxbackup=0",
    };
}

std::string DevCluster::write_kubeconfig(const std::string& file, const std::string& user,
                                         const std::string& token) const {
    std::ostringstream out;
    out << "apiVersion: v1\n"
        << "kind: Config\n"
        << "clusters:\n"
        << "- name: serin-dev\n"
        << "  cluster:\n"
        << "    server: " << server_url() << "\n"
        << "    certificate-authority-data: " << encode_base64(ca_pem_) << "\n"
        << "users:\n"
        << "- name: " << user << "\n"
        << "  user:\n"
        << "    token: " << quote_yaml(token) << "\n"
        << "contexts:\n"
        << "- name: serin-dev\n"
        << "  context:\n"
        << "    cluster: serin-dev\n"
        << "    user: " << user << "\n"
        << "    namespace: default\n"
        << "current-context: serin-dev\n";
    fs::path path = work_dir_ / file;
    if (auto r = write_file(path, out.str()); !r) {
        spdlog::error("devcluster: {}", r.error().describe());
    }
    return path.string();
}

Result<void> DevCluster::write_kubeconfigs() {
    write_kubeconfig("kubeconfig", "serin-admin", admin_token_);
    write_kubeconfig("kubeconfig-controller-manager", "kube-controller-manager",
                     controller_manager_token_);
    write_kubeconfig("kubeconfig-podsim", "serin-podsim", podsim_token_);
    write_kubeconfig("kubeconfig-meshsim", "serin-meshsim", meshsim_token_);
    return {};
}

std::vector<std::uint16_t> DevCluster::ports() const {
    std::vector<std::uint16_t> out{etcd_client_port_, etcd_peer_port_, apiserver_port_};
    for (std::uint16_t port : {meshsim_port_, prometheus_port_}) {
        if (port != 0) {
            out.push_back(port);
        }
    }
    return out;
}

std::vector<ComponentInfo> DevCluster::components() const {
    auto info = [](const char* name, const std::optional<Process>& p, const fs::path& log) {
        pid_t pid = 0;
        if (p && p->is_running()) {
            pid = p->pid();
        }
        return ComponentInfo{name, pid, log};
    };
    const fs::path logs = work_dir_ / "logs";
    std::vector<ComponentInfo> out{
        info("etcd", impl_->etcd, logs / "etcd.log"),
        info("kube-apiserver", impl_->apiserver, logs / "kube-apiserver.log"),
        info("kube-controller-manager", impl_->controller_manager,
             logs / "kube-controller-manager.log"),
    };
    if (options_.start_podsim) {
        out.push_back(info("podsim", impl_->podsim, logs / "podsim.log"));
    }
    if (options_.start_meshsim) {
        out.push_back(info("meshsim", impl_->meshsim, logs / "meshsim.log"));
        if (options_.start_prometheus) {
            out.push_back(info("prometheus", impl_->prometheus, logs / "prometheus.log"));
        }
    }
    return out;
}

void DevCluster::write_state_file() const {
    if (work_dir_.empty() || (stopped_ && owns_work_dir_ && !options_.keep)) {
        return;
    }
    Json state = {{"server", server_url()},
                  {"kubeconfig", kubeconfig_path().string()},
                  {"etcd", etcd_endpoint()},
                  {"prometheus", prometheus_url()},
                  {"scrape_targets", scrape_target_dir().string()},
                  {"meshsim", meshsim_url()},
                  {"ports", ports()},
                  {"components", Json::array()}};
    for (const auto& c : components()) {
        state["components"].push_back(
            {{"name", c.name}, {"pid", c.pid}, {"log", c.log_file.string()}});
    }
    (void)write_file(work_dir_ / "state.json", state.dump(2) + "\n",
                     fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                         fs::perms::others_read);
}

Result<void> DevCluster::add_token_user(const std::string& token, const std::string& user,
                                        const std::vector<std::string>& groups) {
    if (token.find_first_of(",\"\n") != std::string::npos ||
        user.find_first_of(",\"\n") != std::string::npos) {
        return fail(ErrorKind::kInvalid, "tokens and user names cannot hold , \" or newlines");
    }
    std::string line = token + "," + user + "," + user;
    if (!groups.empty()) {
        line += ",\"";
        for (std::size_t i = 0; i < groups.size(); ++i) {
            line += (i == 0 ? "" : ",") + groups[i];
        }
        line += "\"";
    }
    std::ofstream out(tokens_file(), std::ios::app);
    out << line << "\n";
    out.close();
    if (!out) {
        return fail(ErrorKind::kInternal, "cannot append to " + tokens_file().string());
    }
    return restart_apiserver();
}

}  // namespace serin::devcluster
