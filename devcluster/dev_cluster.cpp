#include "devcluster/dev_cluster.hpp"

#include "platform/core/base64.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "devcluster/pki.hpp"
#include "devcluster/process.hpp"
#include "platform/core/clock.hpp"
#include "platform/http/http_client.hpp"
#include "platform/kube/manifest.hpp"
#include "platform/kube/rest_client.hpp"

#ifndef SERIN_SOURCE_DIR
#error "SERIN_SOURCE_DIR must name the repository root"
#endif
#ifndef SERIN_PODSIM_PATH
#define SERIN_PODSIM_PATH ""
#endif

namespace serin::devcluster {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using kube::Json;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::string_view kAddressInUse = "address already in use";
constexpr int kPortAttempts = 4;
constexpr std::size_t kLogTailLines = 25;
constexpr auto kPollInterval = std::chrono::milliseconds{100};
constexpr const char* kFieldManager = "serin-devcluster";

/// Runs `task` on `io` until it completes; cancels it at `deadline` (it then gets a few seconds
/// to wind down) and reports a timeout naming `what`.
template <class T>
Result<T> run_sync(asio::io_context& io, asio::awaitable<Result<T>> task,
                   SteadyClock::time_point deadline, const std::string& what) {
    std::optional<Result<T>> out;
    std::exception_ptr thrown;
    bool done = false;
    asio::cancellation_signal cancel;
    asio::co_spawn(
        io, std::move(task),
        asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, Result<T> r) {
            done = true;
            thrown = e;
            if (!e) {
                out.emplace(std::move(r));
            }
        }));
    io.restart();
    while (!done) {
        if (io.run_one_until(deadline) == 0 && !done) {
            if (SteadyClock::now() < deadline && io.stopped()) {
                io.restart();
                continue;
            }
            cancel.emit(asio::cancellation_type::terminal);
            auto grace = SteadyClock::now() + std::chrono::seconds{5};
            while (!done && io.run_one_until(grace) > 0) {
            }
            return fail(ErrorKind::kTransient, what + ": timed out");
        }
    }
    if (thrown) {
        try {
            std::rethrow_exception(thrown);
        } catch (const std::exception& e) {
            return fail(ErrorKind::kInternal, what + ": " + e.what());
        }
    }
    return std::move(*out);
}

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

Result<void> write_file(const fs::path& path, const std::string& content,
                        fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    if (!out) {
        return fail(ErrorKind::kInternal, "cannot write " + path.string());
    }
    fs::permissions(path, perms, ec);
    return {};
}

std::string quote_yaml(const std::string& s) { return "\"" + s + "\""; }

bool has_established_condition(const Json& crd) {
    auto status = crd.find("status");
    if (status == crd.end() || !status->is_object()) {
        return false;
    }
    auto conditions = status->find("conditions");
    if (conditions == status->end() || !conditions->is_array()) {
        return false;
    }
    return std::any_of(conditions->begin(), conditions->end(), [](const Json& c) {
        return c.is_object() && c.value("type", "") == "Established" &&
               c.value("status", "") == "True";
    });
}

constexpr std::string_view kLogMarker = "--- serin-devcluster: ";

/// Appends a line that separates this start of a component from earlier ones in its log.
void mark_log(const fs::path& log, const std::string& what) {
    std::error_code ec;
    fs::create_directories(log.parent_path(), ec);
    std::ofstream out(log, std::ios::app);
    out << kLogMarker << what << " ---\n";
}

/// Whether the component's latest start (after the last marker) failed to bind its port.
bool lost_port_race(const Process& process) {
    std::string tail = process.log_tail(kLogTailLines);
    auto marker = tail.rfind(kLogMarker);
    if (marker != std::string::npos) {
        tail.erase(0, marker);
    }
    return tail.find(kAddressInUse) != std::string::npos;
}

std::string describe_failure(const std::string& component, const std::string& what,
                             const Process* process) {
    std::string message = component + " " + what;
    if (process != nullptr) {
        message += " (log: " + process->spec().log_file.string() + ")";
        std::string tail = process->log_tail(kLogTailLines);
        if (!tail.empty()) {
            message += "; last lines of its log:\n" + tail;
        }
    }
    return message;
}

/// Creates (or updates) one CRD and waits until it is Established.
asio::awaitable<Result<void>> install_crd(kube::KubeClient& client, Json crd,
                                          SteadyClock::time_point until) {
    const auto& type = kube::types::custom_resource_definitions();
    kube::WriteOptions write;
    write.field_manager = kFieldManager;
    const std::string name = kube::object_name(crd);
    auto created = co_await client.create(type, "", crd, write);
    if (!created && created.error().kind == ErrorKind::kAlreadyExists) {
        auto current = co_await client.get(type, "", name);
        if (!current) {
            co_return current.error();
        }
        crd["metadata"]["resourceVersion"] = kube::object_resource_version(*current);
        auto updated = co_await client.update(type, "", crd, write);
        if (!updated) {
            co_return fail(updated.error().kind,
                           "updating CRD " + name + ": " + updated.error().describe());
        }
    } else if (!created) {
        co_return fail(created.error().kind,
                       "creating CRD " + name + ": " + created.error().describe());
    }
    // Established: the API server serves the new resource.
    while (true) {
        auto current = co_await client.get(type, "", name);
        if (current && has_established_condition(*current)) {
            co_return Result<void>{};
        }
        if (SteadyClock::now() >= until) {
            co_return fail(ErrorKind::kTransient, "CRD " + name + " not Established in time");
        }
        co_await sleep_for(std::chrono::milliseconds{50});
    }
}

/// Installs all CRDs concurrently (each one costs the API server a few hundred milliseconds of
/// storage set-up, mostly spent waiting); returns how many, or the first error.
asio::awaitable<Result<std::size_t>> install_all_crds(kube::KubeClient& client,
                                                      std::vector<Json> crds,
                                                      SteadyClock::time_point until) {
    auto executor = co_await asio::this_coro::executor;
    // Shared with the children, so a parent that is cancelled and gone leaves them valid state.
    struct State {
        explicit State(asio::any_io_executor ex)
            : all_done(std::move(ex), asio::steady_timer::time_point::max()) {}
        std::size_t pending = 0;
        std::optional<Error> first_error;
        asio::steady_timer all_done;
    };
    auto state = std::make_shared<State>(executor);
    state->pending = crds.size();
    for (auto& crd : crds) {
        asio::co_spawn(executor, install_crd(client, std::move(crd), until),
                       [state](std::exception_ptr e, Result<void> r) {
                           if (!state->first_error && (e || !r)) {
                               state->first_error =
                                   e ? fail(ErrorKind::kInternal, "exception") : r.error();
                           }
                           if (--state->pending == 0) {
                               state->all_done.cancel();
                           }
                       });
    }
    while (state->pending > 0) {
        co_await state->all_done.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (state->first_error) {
        co_return *state->first_error;
    }
    co_return crds.size();
}

}  // namespace

struct DevCluster::Impl {
    asio::io_context io;
    SystemClock clock;
    // Declared after io: destroyed first, while the io_context still exists.
    std::unique_ptr<kube::RestKubeClient> client;
    http::HttpClientPtr plain_http;
    std::optional<Process> etcd;
    std::optional<Process> apiserver;
    std::optional<Process> controller_manager;
    std::optional<Process> podsim;
    std::optional<Process> meshsim;
    std::optional<Process> prometheus;

    ~Impl() {
        client.reset();
        plain_http.reset();
    }
};

std::vector<fs::path> DevClusterOptions::default_crd_dirs() {
    fs::path source{SERIN_SOURCE_DIR};
    // The mesh CRDs are vendored (devcluster/thirdparty-crds/README.md), so that a checkout
    // anywhere has them.
    return {source / "devcluster" / "thirdparty-crds", source / "crds"};
}

DevCluster::DevCluster(DevClusterOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {}

DevCluster::~DevCluster() { stop(); }

Result<std::unique_ptr<DevCluster>> DevCluster::start(DevClusterOptions options) {
    std::unique_ptr<DevCluster> cluster(new DevCluster(std::move(options)));
    auto started = SteadyClock::now();
    if (auto r = cluster->start_all(); !r) {
        cluster->stop();
        return r.error();
    }
    cluster->startup_duration_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started);
    spdlog::info("devcluster: ready in {:.1f} s at {} (kubeconfig {})",
                 static_cast<double>(cluster->startup_duration_.count()) / 1000.0,
                 cluster->server_url(), cluster->kubeconfig_path().string());
    return cluster;
}

Result<void> DevCluster::start_all() {
    if (auto r = prepare_work_dir(); !r) {
        return r;
    }
    if (auto r = resolve_binaries(); !r) {
        return r;
    }
    if (auto r = write_pki(); !r) {
        return r;
    }
    if (auto r = write_tokens(); !r) {
        return r;
    }
    if (auto r = start_etcd(); !r) {
        return r;
    }
    if (auto r = start_apiserver_on_new_ports(); !r) {
        return r;
    }
    // The controller-manager and podsim start while the CRDs install.
    if (auto r = start_controller_manager(); !r) {
        return r;
    }
    if (options_.start_podsim) {
        if (auto r = start_podsim(); !r) {
            return r;
        }
    }
    if (auto r = install_crds(); !r) {
        return r;
    }
    if (options_.wait_for_controller_manager) {
        if (auto r = wait_controller_manager(); !r) {
            return r;
        }
    }
    // meshsim discovers the routing APIs, so it starts once the CRDs are served.
    if (options_.start_meshsim) {
        if (auto r = start_meshsim(); !r) {
            return r;
        }
        if (options_.start_prometheus) {
            if (auto r = start_prometheus(); !r) {
                return r;
            }
        }
    }
    return check_still_running();
}

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

std::string DevCluster::server_url() const {
    return "https://127.0.0.1:" + std::to_string(apiserver_port_);
}

std::string DevCluster::etcd_endpoint() const {
    return "http://127.0.0.1:" + std::to_string(etcd_client_port_);
}

kube::ClusterConfig DevCluster::cluster_config_for_token(const std::string& token) const {
    kube::ClusterConfig config;
    config.server = server_url();
    config.tls.ca_pem = ca_pem_;
    config.token = token;
    return config;
}

kube::ClusterConfig DevCluster::cluster_config() const {
    return cluster_config_for_token(admin_token_);
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

namespace {

/// Polls `url` until it answers 200 (with `body_part` in the body, when given) while `process`
/// runs; false when the process exits first.
asio::awaitable<Result<bool>> wait_http_ok(Process& process, http::HttpClient& client,
                                           std::string url, std::string body_part,
                                           SteadyClock::time_point until) {
    while (SteadyClock::now() < until) {
        if (!process.running()) {
            co_return false;
        }
        http::Request request;
        request.url = url;
        request.timeout = std::chrono::seconds{2};
        auto response = co_await client.send(std::move(request));
        if (response && response->status == 200 &&
            response->body.find(body_part) != std::string::npos) {
            co_return true;
        }
        co_await sleep_for(std::chrono::milliseconds{50});
    }
    co_return fail(ErrorKind::kTransient, "not ready");
}

}  // namespace

Result<void> DevCluster::start_etcd() {
    auto deadline = SteadyClock::now() + options_.start_timeout;
    if (!impl_->plain_http) {
        auto http = http::make_beast_client(impl_->io.get_executor(), {});
        if (!http) {
            return http.error();
        }
        impl_->plain_http = std::move(*http);
    }
    for (int attempt = 1;; ++attempt) {
        auto client_port = pick_free_port();
        auto peer_port = pick_free_port();
        if (!client_port || !peer_port) {
            return client_port ? peer_port.error() : client_port.error();
        }
        etcd_client_port_ = *client_port;
        etcd_peer_port_ = *peer_port;
        const std::string client_url = etcd_endpoint();
        const std::string peer_url = "http://127.0.0.1:" + std::to_string(etcd_peer_port_);
        std::error_code ec;
        fs::remove_all(work_dir_ / "etcd", ec);
        ProcessSpec spec;
        spec.name = "etcd";
        spec.executable = etcd_bin_;
        spec.log_file = work_dir_ / "logs" / "etcd.log";
        mark_log(spec.log_file, "starting etcd on ports " + std::to_string(etcd_client_port_) +
                                    " and " + std::to_string(etcd_peer_port_));
        spec.args = {"--name=default", "--data-dir=" + (work_dir_ / "etcd").string(),
                     "--listen-client-urls=" + client_url, "--advertise-client-urls=" + client_url,
                     "--listen-peer-urls=" + peer_url, "--initial-advertise-peer-urls=" + peer_url,
                     "--initial-cluster=default=" + peer_url, "--initial-cluster-state=new",
                     // Throwaway data: skipping fsync makes every API write several times faster.
                     "--unsafe-no-fsync", "--logger=zap", "--log-outputs=stderr"};
        auto process = Process::spawn(std::move(spec));
        if (!process) {
            return process.error();
        }
        impl_->etcd.emplace(std::move(*process));
        Process& etcd = *impl_->etcd;
        http::HttpClient& http = *impl_->plain_http;
        auto ready = run_sync<bool>(
            impl_->io, wait_http_ok(etcd, http, client_url + "/health", "\"true\"", deadline),
            deadline + std::chrono::seconds{1}, "etcd");
        if (ready && *ready) {
            spdlog::info("devcluster: etcd ready at {}", client_url);
            write_state_file();
            return {};
        }
        etcd.stop(std::chrono::seconds{2});
        if (attempt < kPortAttempts && lost_port_race(etcd)) {
            spdlog::warn("devcluster: etcd's port was taken, trying others");
            continue;
        }
        std::string what = ready ? "exited during start-up: " + etcd.describe_exit()
                                 : "did not become healthy in time";
        return fail(ErrorKind::kInternal, describe_failure("etcd", what, &etcd));
    }
}

Result<void> DevCluster::spawn_apiserver() {
    const fs::path pki = work_dir_ / "pki";
    ProcessSpec spec;
    spec.name = "kube-apiserver";
    spec.executable = apiserver_bin_;
    spec.log_file = work_dir_ / "logs" / "kube-apiserver.log";
    mark_log(spec.log_file, "starting kube-apiserver on port " + std::to_string(apiserver_port_));
    spec.args = {
        "--etcd-servers=" + etcd_endpoint(),
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        "--secure-port=" + std::to_string(apiserver_port_),
        "--insecure-port=0",
        "--tls-cert-file=" + (pki / "apiserver.crt").string(),
        "--tls-private-key-file=" + (pki / "apiserver.key").string(),
        "--client-ca-file=" + (pki / "ca.crt").string(),
        "--token-auth-file=" + tokens_file().string(),
        "--anonymous-auth=false",
        "--authorization-mode=Node,RBAC",
        "--service-account-key-file=" + (pki / "sa.pub").string(),
        "--service-account-signing-key-file=" + (pki / "sa.key").string(),
        "--service-account-issuer=https://kubernetes.default.svc",
        // Only a range to allocate Service ClusterIPs from; nothing routes to it.
        "--service-cluster-ip-range=10.0.0.0/24",
        "--allow-privileged=true",
        // No kubelet and no serviceaccount/token controllers run here: the ServiceAccount
        // admission plugin would reject every pod for lack of a "default" ServiceAccount and
        // token Secret that nothing creates.
        "--disable-admission-plugins=ServiceAccount",
        "--enable-priority-and-fairness=false",
        "--watch-cache=true",
        "--profiling=false",
        "--cert-dir=" + (work_dir_ / "pki" / "apiserver-generated").string(),
        // Tests create and delete many objects quickly; events need not live long.
        "--event-ttl=30m",
        "--max-requests-inflight=1000",
        "--max-mutating-requests-inflight=500",
        // The "kubernetes" Service would point at 127.0.0.1, which Endpoints reject (loopback);
        // nothing in the cluster needs it.
        "--endpoint-reconciler-type=none",
    };
    auto process = Process::spawn(std::move(spec));
    if (!process) {
        return process.error();
    }
    impl_->apiserver.emplace(std::move(*process));
    write_state_file();
    return {};
}

Result<void> DevCluster::wait_apiserver_ready() {
    auto deadline = SteadyClock::now() + options_.start_timeout;
    kube::RestClientOptions client_options;
    client_options.request_timeout = std::chrono::seconds{5};
    client_options.max_retries = 0;
    auto probe = kube::make_rest_client(impl_->io.get_executor(), cluster_config(), impl_->clock,
                                        client_options);
    if (!probe) {
        return probe.error();
    }
    Process& apiserver = *impl_->apiserver;
    std::string last_answer;
    auto ready = run_sync<bool>(
        impl_->io,
        [](Process& p, kube::KubeClient& client, std::string& last,
           SteadyClock::time_point until) -> asio::awaitable<Result<bool>> {
            while (SteadyClock::now() < until) {
                if (!p.running()) {
                    co_return false;
                }
                auto answer = co_await client.get_raw("/readyz");
                if (answer && *answer == "ok") {
                    co_return true;
                }
                last = answer ? *answer : answer.error().describe();
                co_await sleep_for(kPollInterval);
            }
            co_return fail(ErrorKind::kTransient, "not ready");
        }(apiserver, **probe, last_answer, deadline),
        deadline + std::chrono::seconds{1}, "kube-apiserver");
    probe->reset();
    if (ready && *ready) {
        kube::RestClientOptions admin_options;
        admin_options.write_qps = 1000;
        admin_options.write_burst = 1000;
        auto client = kube::make_rest_client(impl_->io.get_executor(), cluster_config(),
                                             impl_->clock, admin_options);
        if (!client) {
            return client.error();
        }
        impl_->client = std::move(*client);
        spdlog::info("devcluster: kube-apiserver ready at {}", server_url());
        return {};
    }
    if (!ready) {
        apiserver.stop(std::chrono::seconds{2});
        return fail(ErrorKind::kTransient,
                    describe_failure("kube-apiserver",
                                     "was not ready within " +
                                         std::to_string(options_.start_timeout.count()) +
                                         " s; /readyz said: " + last_answer,
                                     &apiserver));
    }
    return fail(
        ErrorKind::kInternal,
        describe_failure("kube-apiserver", "exited during start-up: " + apiserver.describe_exit(),
                         &apiserver));
}

Result<void> DevCluster::start_apiserver_on_new_ports() {
    for (int attempt = 1;; ++attempt) {
        auto port = pick_free_port();
        if (!port) {
            return port.error();
        }
        apiserver_port_ = *port;
        if (auto r = write_kubeconfigs(); !r) {
            return r;
        }
        if (auto r = spawn_apiserver(); !r) {
            return r;
        }
        auto ready = wait_apiserver_ready();
        if (ready) {
            write_state_file();
            return {};
        }
        if (attempt < kPortAttempts && !impl_->apiserver->running() &&
            lost_port_race(*impl_->apiserver)) {
            spdlog::warn("devcluster: kube-apiserver's port was taken, trying another");
            continue;
        }
        return ready;
    }
}

Result<void> DevCluster::start_controller_manager() {
    const fs::path pki = work_dir_ / "pki";
    ProcessSpec spec;
    spec.name = "kube-controller-manager";
    spec.executable = controller_manager_bin_;
    spec.log_file = work_dir_ / "logs" / "kube-controller-manager.log";
    mark_log(spec.log_file, "starting kube-controller-manager");
    spec.args = {
        "--kubeconfig=" + (work_dir_ / "kubeconfig-controller-manager").string(),
        // The controllers that compute Deployment status and clean up; serviceaccount-token and
        // the node/pod lifecycle controllers stay off (there are no nodes).
        "--controllers=deployment,replicaset,garbagecollector,namespace",
        "--leader-elect=false",
        "--use-service-account-credentials=false",
        "--secure-port=0",
        "--port=0",
        "--service-account-private-key-file=" + (pki / "sa.key").string(),
        "--root-ca-file=" + (pki / "ca.crt").string(),
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
    };
    auto process = Process::spawn(std::move(spec));
    if (!process) {
        return process.error();
    }
    impl_->controller_manager.emplace(std::move(*process));
    write_state_file();
    return {};
}

Result<void> DevCluster::start_podsim() {
    if (impl_->podsim && impl_->podsim->running()) {
        return {};
    }
    if (podsim_bin_.empty()) {
        podsim_bin_ = options_.podsim.empty() ? fs::path(SERIN_PODSIM_PATH) : options_.podsim;
    }
    ProcessSpec spec;
    spec.name = "podsim";
    spec.executable = podsim_bin_;
    spec.log_file = work_dir_ / "logs" / "podsim.log";
    mark_log(spec.log_file, "starting podsim");
    spec.args = {"--kubeconfig=" + (work_dir_ / "kubeconfig-podsim").string()};
    auto process = Process::spawn(std::move(spec));
    if (!process) {
        return process.error();
    }
    impl_->podsim.emplace(std::move(*process));
    write_state_file();
    return {};
}

Result<void> write_scrape_target(const fs::path& dir, const std::string& name,
                                 const std::string& host_port,
                                 const std::map<std::string, std::string>& labels) {
    const Json targets = Json::array({{{"targets", {host_port}}, {"labels", labels}}});
    const fs::path temporary = dir / ("." + name + ".json.tmp");
    if (auto r = write_file(temporary, targets.dump() + "\n",
                            fs::perms::owner_read | fs::perms::owner_write |
                                fs::perms::group_read | fs::perms::others_read);
        !r) {
        return r;
    }
    std::error_code ec;
    fs::rename(temporary, dir / (name + ".json"), ec);
    if (ec) {
        return fail(ErrorKind::kInternal,
                    "cannot write " + (dir / (name + ".json")).string() + ": " + ec.message());
    }
    return {};
}

fs::path DevCluster::scrape_target_dir() const {
    return prometheus_port_ == 0 ? fs::path() : work_dir_ / "scrape-targets";
}

std::string DevCluster::prometheus_url() const {
    return prometheus_port_ == 0 ? std::string()
                                 : "http://127.0.0.1:" + std::to_string(prometheus_port_);
}

std::string DevCluster::meshsim_url() const {
    return meshsim_port_ == 0 ? std::string() : "http://127.0.0.1:" + std::to_string(meshsim_port_);
}


Result<void> DevCluster::start_meshsim() {
    const auto deadline = SteadyClock::now() + options_.start_timeout;
    const fs::path port_file = work_dir_ / "meshsim.port";
    std::error_code ec;
    fs::remove(port_file, ec);
    ProcessSpec spec;
    spec.name = "meshsim";
    spec.executable = meshsim_bin_;
    spec.log_file = work_dir_ / "logs" / "meshsim.log";
    mark_log(spec.log_file, "starting meshsim");
    spec.args = {"--kubeconfig=" + (work_dir_ / "kubeconfig-meshsim").string(),
                 "--listen=127.0.0.1:0", "--port-file=" + port_file.string(),
                 "--rate=" + std::to_string(options_.meshsim_rate)};
    auto process = Process::spawn(std::move(spec));
    if (!process) {
        return process.error();
    }
    impl_->meshsim.emplace(std::move(*process));
    Process& meshsim = *impl_->meshsim;
    // meshsim listens on a port of its own choosing and writes it to the port file.
    auto port = run_sync<int>(
        impl_->io,
        [](Process& p, fs::path file, SteadyClock::time_point until) -> asio::awaitable<Result<int>> {
            while (SteadyClock::now() < until && p.running()) {
                std::ifstream in(file);
                int value = 0;
                if (in >> value && value > 0) {
                    co_return value;
                }
                co_await sleep_for(std::chrono::milliseconds{20});
            }
            co_return fail(ErrorKind::kTransient, "no port file");
        }(meshsim, port_file, deadline),
        deadline + std::chrono::seconds{1}, "meshsim");
    if (!port) {
        return fail(ErrorKind::kInternal,
                    describe_failure("meshsim", meshsim.running() ? "wrote no port in time"
                                                                  : "exited during start-up: " +
                                                                        meshsim.describe_exit(),
                                     &meshsim));
    }
    meshsim_port_ = static_cast<std::uint16_t>(*port);
    auto ready = run_sync<bool>(impl_->io,
                                wait_http_ok(meshsim, *impl_->plain_http, meshsim_url() + "/metrics",
                                             "", deadline),
                                deadline + std::chrono::seconds{1}, "meshsim");
    if (!ready || !*ready) {
        return fail(ErrorKind::kInternal,
                    describe_failure("meshsim", "did not serve /metrics", &meshsim));
    }
    spdlog::info("devcluster: meshsim serving {}/metrics", meshsim_url());
    write_state_file();
    return {};
}

Result<void> DevCluster::start_prometheus() {
    const auto deadline = SteadyClock::now() + options_.start_timeout;
    for (int attempt = 1;; ++attempt) {
        auto port = pick_free_port();
        if (!port) {
            return port.error();
        }
        prometheus_port_ = *port;
        const fs::path config = work_dir_ / "prometheus.yml";
        const std::string target = "127.0.0.1:" + std::to_string(meshsim_port_);
        std::error_code dir_error;
        fs::create_directories(work_dir_ / "scrape-targets", dir_error);
        if (dir_error) {
            return fail(ErrorKind::kInternal, "cannot create " +
                                                  (work_dir_ / "scrape-targets").string() + ": " +
                                                  dir_error.message());
        }
        // meshsim is known now; the serin processes come and go, so they are found in files
        // (Prometheus notices a file written or removed there, and re-reads them all each
        // scrape interval besides).
        if (auto r = write_file(
                config, "global:\n  scrape_interval: " + options_.scrape_interval +
                            "\n  evaluation_interval: " + options_.scrape_interval +
                            "\nscrape_configs:\n  - job_name: meshsim\n"
                            "    static_configs:\n      - targets: [\"" + target + "\"]\n"
                            "  - job_name: serin\n"
                            "    file_sd_configs:\n      - files: [\"" +
                            (work_dir_ / "scrape-targets").string() + "/*.json\"]\n"
                            "        refresh_interval: " + options_.scrape_interval + "\n");
            !r) {
            return r;
        }
        std::error_code ec;
        fs::remove_all(work_dir_ / "prometheus", ec);
        ProcessSpec spec;
        spec.name = "prometheus";
        spec.executable = prometheus_bin_;
        spec.log_file = work_dir_ / "logs" / "prometheus.log";
        mark_log(spec.log_file, "starting prometheus on port " + std::to_string(prometheus_port_));
        spec.args = {"--config.file=" + config.string(),
                     "--storage.tsdb.path=" + (work_dir_ / "prometheus").string(),
                     "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port_),
                     "--log.level=warn"};
        auto process = Process::spawn(std::move(spec));
        if (!process) {
            return process.error();
        }
        impl_->prometheus.emplace(std::move(*process));
        Process& prometheus = *impl_->prometheus;
        auto ready = run_sync<bool>(
            impl_->io,
            wait_http_ok(prometheus, *impl_->plain_http, prometheus_url() + "/-/ready", "", deadline),
            deadline + std::chrono::seconds{1}, "prometheus");
        if (ready && *ready) {
            // Ready means scraping: Prometheus starts its scrape loops a few seconds after it
            // answers /-/ready, and tests should not see that gap.
            ready = run_sync<bool>(
                impl_->io,
                wait_http_ok(prometheus, *impl_->plain_http,
                             prometheus_url() + "/api/v1/query?query=up%7Bjob%3D%22meshsim%22%7D",
                             "\"1\"]", deadline),
                deadline + std::chrono::seconds{1}, "prometheus");
        }
        if (ready && *ready) {
            spdlog::info("devcluster: prometheus ready at {}, scraping meshsim every {}",
                         prometheus_url(), options_.scrape_interval);
            write_state_file();
            return {};
        }
        prometheus.stop(std::chrono::seconds{2});
        if (attempt < kPortAttempts && lost_port_race(prometheus)) {
            spdlog::warn("devcluster: prometheus's port was taken, trying another");
            continue;
        }
        prometheus_port_ = 0;
        return fail(ErrorKind::kInternal,
                    describe_failure("prometheus",
                                     ready ? "exited during start-up: " + prometheus.describe_exit()
                                           : "did not become ready in time",
                                     &prometheus));
    }
}

Result<void> DevCluster::stop_podsim() {
    if (impl_->podsim) {
        impl_->podsim->stop(std::chrono::seconds{5});
    }
    write_state_file();
    return {};
}

Result<void> DevCluster::install_crds() {
    const auto began = SteadyClock::now();
    std::vector<Json> crds;
    const auto defaults = DevClusterOptions::default_crd_dirs();
    for (const auto& dir : options_.crd_dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            if (std::find(defaults.begin(), defaults.end(), dir) != defaults.end()) {
                continue;
            }
            return fail(ErrorKind::kInvalid, "CRD folder " + dir.string() + " does not exist");
        }
        std::vector<fs::path> files;
        for (auto it = fs::recursive_directory_iterator(dir, ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            auto ext = it->path().extension();
            if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
                files.push_back(it->path());
            }
        }
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            std::ifstream in(file, std::ios::binary);
            std::string text((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
            auto docs = kube::parse_manifests(text);
            if (!docs) {
                if (text.find("CustomResourceDefinition") != std::string::npos) {
                    return fail(ErrorKind::kInvalid,
                                file.string() + ": " + docs.error().describe());
                }
                spdlog::debug("devcluster: skipping {}: {}", file.string(),
                              docs.error().describe());
                continue;
            }
            for (auto& doc : *docs) {
                if (doc.is_object() && doc.value("kind", "") == "CustomResourceDefinition") {
                    if (doc.value("apiVersion", "") != "apiextensions.k8s.io/v1") {
                        return fail(ErrorKind::kInvalid, file.string() + ": CRD " +
                                                             kube::object_name(doc) +
                                                             " is not apiextensions.k8s.io/v1");
                    }
                    crds.push_back(std::move(doc));
                }
            }
        }
    }
    if (crds.empty()) {
        return {};
    }
    const auto parsed = SteadyClock::now();
    auto deadline = SteadyClock::now() + options_.start_timeout;
    auto installed = run_sync<std::size_t>(
        impl_->io, install_all_crds(*impl_->client, std::move(crds), deadline),
        deadline + std::chrono::seconds{1}, "installing CRDs");
    if (!installed) {
        return installed.error();
    }
    auto ms = [](auto d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    spdlog::info("devcluster: {} CRDs installed in {} ms ({} ms reading the files)", *installed,
                 ms(SteadyClock::now() - began), ms(parsed - began));
    return {};
}

Result<void> DevCluster::wait_controller_manager() {
    // A Deployment of zero replicas gets a ReplicaSet only if the deployment controller runs;
    // deleting it exercises the garbage collector too. Nothing needs a pod for this.
    const std::string name = "serin-devcluster-probe";
    Json deployment = {
        {"apiVersion", "apps/v1"},
        {"kind", "Deployment"},
        {"metadata", {{"name", name}, {"namespace", "kube-system"}}},
        {"spec",
         {{"replicas", 0},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template",
           {{"metadata", {{"labels", {{"app", name}}}}},
            {"spec", {{"containers", {{{"name", "probe"}, {"image", "probe"}}}}}}}}}}};
    auto deadline = SteadyClock::now() + options_.start_timeout;
    Process& cm = *impl_->controller_manager;
    auto ok = run_sync<bool>(
        impl_->io,
        [](kube::KubeClient& client, Process& p, Json object, std::string probe_name,
           SteadyClock::time_point until) -> asio::awaitable<Result<bool>> {
            kube::WriteOptions write;
            write.field_manager = kFieldManager;
            auto created =
                co_await client.create(kube::types::deployments(), "kube-system", object, write);
            if (!created && created.error().kind != ErrorKind::kAlreadyExists) {
                co_return created.error();
            }
            kube::ListOptions list;
            list.label_selector = "app=" + probe_name;
            while (true) {
                if (!p.running()) {
                    co_return false;
                }
                auto sets = co_await client.list(kube::types::replica_sets(), "kube-system", list);
                if (sets && !sets->items.empty()) {
                    break;
                }
                if (SteadyClock::now() >= until) {
                    co_return fail(ErrorKind::kTransient, "no ReplicaSet for the probe");
                }
                co_await sleep_for(std::chrono::milliseconds{50});
            }
            kube::DeleteOptions remove;
            remove.propagation_policy = "Background";
            auto removed = co_await client.remove(kube::types::deployments(), "kube-system",
                                                  probe_name, remove);
            if (!removed && removed.error().kind != ErrorKind::kNotFound) {
                co_return removed.error();
            }
            co_return true;
        }(*impl_->client, cm, std::move(deployment), name, deadline),
        deadline + std::chrono::seconds{1}, "kube-controller-manager");
    if (ok && *ok) {
        spdlog::info("devcluster: kube-controller-manager works");
        return {};
    }
    if (ok) {
        return fail(ErrorKind::kInternal,
                    describe_failure("kube-controller-manager",
                                     "exited during start-up: " + cm.describe_exit(), &cm));
    }
    return fail(
        ok.error().kind,
        describe_failure("kube-controller-manager",
                         "did not reconcile a probe Deployment: " + ok.error().describe(), &cm));
}

Result<void> DevCluster::check_still_running() {
    std::vector<std::pair<const char*, std::optional<Process>*>> all = {
        {"etcd", &impl_->etcd},
        {"kube-apiserver", &impl_->apiserver},
        {"kube-controller-manager", &impl_->controller_manager}};
    if (options_.start_podsim) {
        all.emplace_back("podsim", &impl_->podsim);
    }
    if (options_.start_meshsim) {
        all.emplace_back("meshsim", &impl_->meshsim);
        if (options_.start_prometheus) {
            all.emplace_back("prometheus", &impl_->prometheus);
        }
    }
    for (auto& [name, process] : all) {
        if (!*process || !(*process)->running()) {
            const Process* p = *process ? &**process : nullptr;
            return fail(ErrorKind::kInternal,
                        describe_failure(name,
                                         "exited during start-up: " +
                                             (p != nullptr ? p->describe_exit() : "not started"),
                                         p));
        }
    }
    write_state_file();
    return {};
}

void DevCluster::stop() {
    if (stopped_) {
        return;
    }
    stopped_ = true;
    impl_->client.reset();
    impl_->plain_http.reset();
    if (impl_->prometheus) {
        impl_->prometheus->stop(std::chrono::seconds{5});
    }
    if (impl_->meshsim) {
        impl_->meshsim->stop(std::chrono::seconds{5});
    }
    if (impl_->podsim) {
        impl_->podsim->stop(std::chrono::seconds{5});
    }
    if (impl_->controller_manager) {
        impl_->controller_manager->stop(std::chrono::seconds{5});
    }
    if (impl_->apiserver) {
        impl_->apiserver->stop(std::chrono::seconds{5});
    }
    if (impl_->etcd) {
        impl_->etcd->stop(std::chrono::seconds{5});
    }
    if (!work_dir_.empty()) {
        std::error_code ec;
        if (owns_work_dir_ && !options_.keep) {
            fs::remove_all(work_dir_, ec);
        } else {
            // Logs, keys and the kubeconfig stay for the post-mortem; etcd's data (tens of MB,
            // useless without the cluster) goes unless asked to keep it.
            if (!options_.keep) {
                fs::remove_all(work_dir_ / "etcd", ec);
            }
            write_state_file();
        }
    }
}

Result<void> DevCluster::stop_apiserver() {
    impl_->client.reset();
    if (impl_->apiserver) {
        // A 1.20 API server with open watches (the controller-manager's, podsim's) waits up to
        // a minute for them on SIGTERM; it keeps no state of its own, so cut that short.
        impl_->apiserver->stop(std::chrono::seconds{2});
    }
    write_state_file();
    return {};
}

Result<void> DevCluster::kill_apiserver() {
    impl_->client.reset();
    if (impl_->apiserver) {
        impl_->apiserver->kill();
    }
    write_state_file();
    return {};
}

Result<void> DevCluster::start_apiserver() {
    if (impl_->apiserver && impl_->apiserver->running()) {
        return {};
    }
    // The same port as before. Go servers bind with SO_REUSEADDR, so connections of the old
    // process lingering in TIME_WAIT do not keep it from binding; another program taking the
    // port meanwhile would, and is reported as such.
    if (auto r = spawn_apiserver(); !r) {
        return r;
    }
    auto ready = wait_apiserver_ready();
    write_state_file();
    return ready;
}

Result<void> DevCluster::restart_apiserver() {
    if (auto r = stop_apiserver(); !r) {
        return r;
    }
    return start_apiserver();
}

Result<std::int64_t> DevCluster::compact_etcd() {
    const std::vector<std::pair<std::string, std::string>> env = {{"ETCDCTL_API", "3"}};
    const std::string endpoints = "--endpoints=" + etcd_endpoint();
    auto status = run_command(etcdctl_bin_, {endpoints, "endpoint", "status", "-w", "json"},
                              std::chrono::seconds{10}, env);
    if (!status) {
        return status.error();
    }
    if (status->exit_code != 0) {
        return fail(ErrorKind::kTransient, "etcdctl endpoint status: " + status->output);
    }
    Json parsed = Json::parse(status->output, nullptr, false);
    std::int64_t revision = 0;
    if (parsed.is_array() && !parsed.empty()) {
        const Json& first = parsed.front();
        auto st = first.find("Status");
        if (st != first.end() && st->contains("header")) {
            revision = st->at("header").value("revision", std::int64_t{0});
        }
    }
    if (revision <= 0) {
        return fail(ErrorKind::kInternal, "no revision in etcdctl's answer: " + status->output);
    }
    auto compact = run_command(etcdctl_bin_, {endpoints, "compact", std::to_string(revision)},
                               std::chrono::seconds{10}, env);
    if (!compact) {
        return compact.error();
    }
    if (compact->exit_code != 0) {
        return fail(ErrorKind::kTransient, "etcdctl compact: " + compact->output);
    }
    return revision;
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
