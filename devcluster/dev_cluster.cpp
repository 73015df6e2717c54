#include "devcluster/dev_cluster.hpp"

#include "devcluster/dev_cluster_internal.hpp"
#include "devcluster/process.hpp"
#include "platform/http/http_client.hpp"
#include "platform/kube/rest_client.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fstream>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace serin::devcluster {

using kube::Json;
using namespace detail;  // the helpers the cluster's files share

namespace {

constexpr std::string_view kAddressInUse = "address already in use";
constexpr std::size_t kLogTailLines = 25;
constexpr auto kPollInterval = std::chrono::milliseconds{100};
constexpr std::string_view kLogMarker = "--- serin-devcluster: ";

}  // namespace

namespace detail {

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

Result<void> write_file(const fs::path& path, const std::string& content, fs::perms perms) {
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

void mark_log(const fs::path& log, const std::string& what) {
    std::error_code ec;
    fs::create_directories(log.parent_path(), ec);
    std::ofstream out(log, std::ios::app);
    out << kLogMarker << what << " ---\n";
}

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

}  // namespace detail

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
        "--service-cluster-ip-range=" + options_.service_cidr,
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
    if (!options_.audit_log.empty()) {
        auto audit = audit_args();
        if (!audit) {
            return audit.error();
        }
        spec.args.insert(spec.args.end(), audit->begin(), audit->end());
    }
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

}  // namespace serin::devcluster

namespace serin::devcluster {

namespace {

/// Starts `slot`'s process again with the spec it last ran with (same ports, same data), and
/// waits until `url` answers 200 with `body_part`.
Result<void> respawn(asio::io_context& io, http::HttpClient& http, std::optional<Process>& slot,
                     const std::string& name, const std::string& url, const std::string& body_part,
                     std::chrono::seconds timeout) {
    if (!slot) {
        return fail(ErrorKind::kInternal, name + " was never started");
    }
    if (slot->running()) {
        return {};
    }
    ProcessSpec spec = slot->spec();
    spdlog::info("devcluster: starting {} again ({})", name, slot->describe_exit());
    mark_log(spec.log_file, "starting " + name + " again, same ports and data");
    auto process = Process::spawn(std::move(spec));
    if (!process) {
        return process.error();
    }
    slot.emplace(std::move(*process));
    const auto deadline = SteadyClock::now() + timeout;
    auto ready = run_sync<bool>(io, wait_http_ok(*slot, http, url, body_part, deadline),
                                deadline + std::chrono::seconds{1}, name);
    if (ready && *ready) {
        return {};
    }
    return fail(ErrorKind::kInternal,
                describe_failure(name,
                                 ready ? "exited on restart: " + slot->describe_exit()
                                       : "was not ready in time after a restart",
                                 &*slot));
}

}  // namespace

Result<void> DevCluster::stop_etcd() {
    if (impl_->etcd) {
        impl_->etcd->stop(std::chrono::seconds{5});
    }
    write_state_file();
    return {};
}

Result<void> DevCluster::resume_etcd() {
    auto r = respawn(impl_->io, *impl_->plain_http, impl_->etcd, "etcd", etcd_endpoint() + "/health",
                     "\"true\"", options_.start_timeout);
    write_state_file();
    return r;
}

Result<void> DevCluster::restart_etcd() {
    if (auto r = stop_etcd(); !r) {
        return r;
    }
    return resume_etcd();
}

Result<void> DevCluster::stop_prometheus() {
    if (impl_->prometheus) {
        impl_->prometheus->stop(std::chrono::seconds{5});
    }
    write_state_file();
    return {};
}

Result<void> DevCluster::resume_prometheus() {
    auto r = respawn(impl_->io, *impl_->plain_http, impl_->prometheus, "prometheus",
                     prometheus_url() + "/-/ready", "", options_.start_timeout);
    write_state_file();
    return r;
}

}  // namespace serin::devcluster
