#include "tests/e2e/e2e.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "devcluster/dev_cluster.hpp"
#include "platform/kube/manifest.hpp"

namespace serin::e2e {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using testing::run;

// ---- SerinProcess ------------------------------------------------------------------------------

SerinProcess::SerinProcess(testing::TestCluster& cluster, std::string ns,
                           std::vector<std::string> extra_args)
    : SerinProcess(std::move(ns), cluster.kubeconfig_path(), std::move(extra_args)) {
    // The cluster's Prometheus scrapes it as job `serin`, told by a target file of its own.
    scrape_dir_ = cluster.scrape_target_dir();
    if (!scrape_dir_.empty()) {
        scrape_name_ = log_.stem().string();
        auto written = devcluster::write_scrape_target(
            scrape_dir_, scrape_name_, "127.0.0.1:" + std::to_string(port_),
            {{"serin_test", scrape_name_}});
        REQUIRE(written.has_value());
    }
}

SerinProcess::SerinProcess(std::string ns, fs::path kubeconfig, std::vector<std::string> extra_args)
    : ns_(std::move(ns)),
      kubeconfig_(std::move(kubeconfig)),
      extra_args_(std::move(extra_args)) {
    // Its /metrics port: a free one, kept across restarts (tests run serins side by side).
    auto port = devcluster::pick_free_port();
    REQUIRE(port.has_value());
    port_ = *port;
    // One log per process: several serins may watch one namespace (leader election tests).
    static int started = 0;
    log_ = fs::temp_directory_path() /
           ("serin-e2e-" + ns_ + (started++ == 0 ? "" : "-" + std::to_string(started)) + ".log");
    std::error_code ec;
    fs::remove(log_, ec);
    start();
}

SerinProcess::~SerinProcess() {
    if (!scrape_dir_.empty()) {
        std::error_code ec;
        fs::remove(scrape_dir_ / (scrape_name_ + ".json"), ec);
    }
    if (process_) {
        process_->stop(std::chrono::seconds{5});
    }
}

void SerinProcess::start() {
    devcluster::ProcessSpec spec;
    spec.name = "serin";
    spec.executable = SERIN_BINARY;
    spec.args = {"-kubeconfig=" + kubeconfig_.string(), "-namespace=" + ns_,
                 "-log-level=debug", "-port=" + std::to_string(port_)};
    spec.args.insert(spec.args.end(), extra_args_.begin(), extra_args_.end());
    spec.log_file = log_;
    auto process = devcluster::Process::spawn(std::move(spec));
    if (!process) {
        FAIL("cannot start serin: " << process.error().message);
    }
    process_.emplace(std::move(*process));
}

void SerinProcess::kill() {
    if (process_) {
        process_->kill();
    }
}

void SerinProcess::stop() {
    if (process_) {
        process_->stop(std::chrono::seconds{10});
    }
}

void SerinProcess::terminate() {
    if (process_ && process_->running()) {
        ::kill(process_->pid(), SIGTERM);
    }
}

bool SerinProcess::running() { return process_ && process_->running(); }

std::string SerinProcess::exit_status() const {
    return process_ ? process_->describe_exit() : "not started";
}

std::string SerinProcess::log_tail(std::size_t lines) const {
    return devcluster::tail_file(log_, lines);
}

// ---- GateServer --------------------------------------------------------------------------------

GateServer::GateServer(asio::io_context& io)
    : server_(io.get_executor(),
              [this](const test::TestRequest& request,
                     test::TestResponseWriter& writer) -> asio::awaitable<void> {
                  const std::string& path = request.target;
                  if (path == "/hang") {
                      co_await writer.hang();
                      co_return;
                  }
                  if (path.rfind("/slow/", 0) == 0) {
                      asio::steady_timer delay(co_await asio::this_coro::executor,
                                               std::chrono::milliseconds{std::stoi(path.substr(6))});
                      co_await delay.async_wait(asio::use_awaitable);
                      co_await writer.respond(200, "approved, slowly");
                      co_return;
                  }
                  bool ok = path == "/approve" || path.rfind("/ok/", 0) == 0;
                  if (path.rfind("/gate/", 0) == 0) {
                      ok = open_.contains(path.substr(6));
                  }
                  co_await writer.respond(ok ? 200 : 403, ok ? "approved" : "closed");
              }) {}

std::size_t GateServer::calls(const std::string& path) const {
    std::size_t n = 0;
    for (const auto& request : server_.requests()) {
        n += request.target == path ? 1 : 0;
    }
    return n;
}

std::vector<Json> GateServer::bodies(const std::string& path) const {
    std::vector<Json> out;
    for (const auto& request : server_.requests()) {
        if (request.target == path) {
            out.push_back(Json::parse(request.body, nullptr, false));
        }
    }
    return out;
}

// ---- Scenario ----------------------------------------------------------------------------------

Scenario::Scenario()
    : cluster_(testing::shared_cluster()),
      ns_(cluster_, "e2e"),
      client_(testing::make_admin_client(io_, cluster_)) {}

SerinProcess& Scenario::start_serin(std::optional<fs::path> kubeconfig) {
    serin_ = kubeconfig ? std::make_unique<SerinProcess>(ns(), *kubeconfig,
                                                         std::vector<std::string>{})
                        : std::make_unique<SerinProcess>(cluster_, ns());
    return *serin_;
}

SerinProcess& Scenario::start_serin_with_args(std::vector<std::string> extra_args) {
    serin_ = std::make_unique<SerinProcess>(cluster_, ns(), std::move(extra_args));
    return *serin_;
}

Json Scenario::deployment(const std::string& image, int replicas) const {
    Json d = Json::parse(R"({
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "podinfo", "labels": {"app": "podinfo"}},
      "spec": {
        "replicas": 2,
        "progressDeadlineSeconds": 60,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
        "selector": {"matchLabels": {"app": "podinfo"}},
        "template": {
          "metadata": {"labels": {"app": "podinfo"}},
          "spec": {"containers": [{"name": "podinfod", "image": "",
                                   "ports": [{"name": "http", "containerPort": 9898}]}]}
        }
      }
    })");
    d["metadata"]["namespace"] = ns();
    d["spec"]["replicas"] = replicas;
    d["spec"]["template"]["spec"]["containers"][0]["image"] = image;
    return d;
}

Json Scenario::canary(Json analysis, Json spec_extra) const {
    Json canary = {
        {"apiVersion", "flagger.app/v1beta1"},
        {"kind", "Canary"},
        {"metadata", {{"name", "podinfo"}, {"namespace", ns()}}},
        {"spec",
         {{"provider", "kubernetes"},
          {"targetRef", {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"name", "podinfo"}}},
          {"progressDeadlineSeconds", 60},
          {"service", {{"port", 80}, {"targetPort", "http"}}},
          {"analysis", std::move(analysis)}}}};
    canary["spec"].merge_patch(spec_extra);
    return canary;
}

Json Scenario::create(const kube::ResourceType& type, Json object) {
    object["metadata"]["namespace"] = ns();
    auto created = run(io_, client_->create(type, ns(), std::move(object)));
    if (!created) {
        fail_with("create " + type.resource, created.error().describe());
    }
    return *created;
}

Json Scenario::get(const kube::ResourceType& type, const std::string& name) {
    auto got = run(io_, client_->get(type, ns(), name));
    if (!got) {
        fail_with("get " + type.resource + "/" + name, got.error().describe());
    }
    return *got;
}

Json Scenario::patch(const kube::ResourceType& type, const std::string& name, const Json& body) {
    auto patched = run(io_, client_->patch(type, ns(), name, kube::PatchType::kMerge, body.dump()));
    if (!patched) {
        fail_with("patch " + type.resource + "/" + name, patched.error().describe());
    }
    return *patched;
}

void Scenario::remove(const kube::ResourceType& type, const std::string& name) {
    auto removed = run(io_, client_->remove(type, ns(), name));
    if (!removed) {
        fail_with("delete " + type.resource + "/" + name, removed.error().describe());
    }
}

void Scenario::bump_image(const std::string& image) {
    patch(kube::types::deployments(), "podinfo",
          {{"spec",
            {{"template",
              {{"spec", {{"containers", {{{"name", "podinfod"}, {"image", image}}}}}}}}}}});
}

void Scenario::fail_with(const std::string& what, const std::string& detail) {
    std::string log = serin_ != nullptr ? serin_->log_tail() : std::string("(no serin)");
    FAIL(what << ": " << detail << "\n--- serin log ---\n" << log);
    throw std::logic_error("unreachable");
}

Json Scenario::wait_object(const kube::ResourceType& type, const std::string& name,
                           const std::function<bool(const Json&)>& predicate, std::string what,
                           std::chrono::milliseconds timeout) {
    auto found = run(io_, testing::wait_for_object(*client_, type, ns(), name, predicate, timeout),
                     timeout + 30s);
    if (!found) {
        fail_with("waiting for " + what, found.error().message);
    }
    return *found;
}

Json Scenario::wait_canary(const std::function<bool(const Json&)>& predicate, std::string what,
                           std::chrono::milliseconds timeout) {
    return wait_object(kube::types::canaries(), "podinfo", predicate, std::move(what), timeout);
}

Json Scenario::wait_phase(const std::string& want, std::chrono::milliseconds timeout) {
    return wait_canary([&](const Json& c) { return phase(c) == want; }, "phase " + want, timeout);
}

void Scenario::wait_target_replicas(int replicas) {
    wait_object(
        kube::types::deployments(), "podinfo",
        [replicas](const Json& d) { return at(d, "/spec/replicas") == replicas; },
        "podinfo at " + std::to_string(replicas) + " replicas");
}

bool Scenario::canary_stays(const std::function<bool(const Json&)>& changed,
                            std::chrono::milliseconds window) {
    auto found = run(io_,
                     testing::wait_for_object(*client_, kube::types::canaries(), ns(), "podinfo",
                                              changed, window),
                     window + 30s);
    return !found.has_value();
}

std::vector<std::string> Scenario::events() {
    kube::ListOptions options;
    options.field_selector = "involvedObject.name=podinfo,involvedObject.kind=Canary";
    auto page = run(io_, client_->list(kube::types::events(), ns(), options));
    if (!page) {
        fail_with("list events", page.error().describe());
    }
    std::vector<std::pair<std::string, std::string>> timed;
    for (const Json& e : page->items) {
        timed.emplace_back(e.value("firstTimestamp", "") + e.value("metadata", Json::object())
                                                               .value("creationTimestamp", ""),
                           e.value("message", ""));
    }
    std::stable_sort(timed.begin(), timed.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> out;
    for (auto& [time, message] : timed) {
        out.push_back(std::move(message));
    }
    return out;
}

void Scenario::wait_until(const std::function<bool()>& done, const std::string& what,
                          std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            fail_with("waiting for " + what, "not after " + std::to_string(timeout.count()) + " ms");
        }
        io_.restart();
        io_.run_for(20ms);
    }
}

void Scenario::wait_event(const std::string& text, std::chrono::milliseconds timeout) {
    auto found = run(
        io_,
        testing::wait_for_objects(
            *client_, kube::types::events(), ns(), "",
            [&](const testing::ObjectMap& events) {
                for (const auto& [name, e] : events) {
                    if (e.value("message", "").find(text) != std::string::npos) {
                        return true;
                    }
                }
                return false;
            },
            timeout),
        timeout + 30s);
    if (!found) {
        fail_with("waiting for an event containing \"" + text + "\"", found.error().message);
    }
}

// ---- a Prometheus of one's own ---------------------------------------------------------------

OwnPrometheus::OwnPrometheus(const std::string& url, const std::string& job,
                             const std::string& name)
    : job_(job) {
    dir_ = fs::temp_directory_path() / ("serin-e2e-prometheus-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string target = url.substr(url.find("//") + 2);
    std::ofstream(dir_ / "prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           "scrape_configs:\n  - job_name: " << job << "\n    static_configs:\n"
           "      - targets: [\"" << target << "\"]\n";
    auto port = devcluster::pick_free_port();
    REQUIRE(port.has_value());
    port_ = *port;
    start();
}

OwnPrometheus::~OwnPrometheus() {
    stop();
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

void OwnPrometheus::start() {
    devcluster::ProcessSpec spec;
    spec.name = "prometheus";
    spec.executable = "prometheus";
    spec.log_file = dir_ / "prometheus.log";
    spec.args = {"--config.file=" + (dir_ / "prometheus.yml").string(),
                 "--storage.tsdb.path=" + (dir_ / "data").string(),
                 "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
    auto process = devcluster::Process::spawn(std::move(spec));
    REQUIRE(process.has_value());
    process_.emplace(std::move(*process));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
    while (value("up{job=\"" + job_ + "\"}") != 1.0) {
        REQUIRE(process_->running());
        REQUIRE(std::chrono::steady_clock::now() < deadline);
        std::this_thread::sleep_for(std::chrono::milliseconds{250});  // the poll period
    }
}

void OwnPrometheus::stop() {
    if (process_) {
        process_->stop(std::chrono::seconds{10});
        process_.reset();
    }
}

std::optional<double> prometheus_value(const std::string& url, const std::string& promql) {
    auto answer = devcluster::run_command(
        "curl", {"-s", "-m", "2", "-G", url + "/api/v1/query", "--data-urlencode", "query=" + promql},
        std::chrono::seconds{5});
    if (!answer) {
        return std::nullopt;
    }
    const Json body = Json::parse(answer->output, nullptr, false);
    const Json sample = at(body, "/data/result/0/value/1");
    if (!sample.is_string()) {
        return std::nullopt;
    }
    try {
        return std::stod(sample.get<std::string>());
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// ---- least privilege -------------------------------------------------------------------------

fs::path service_account_kubeconfig(Scenario& s, const std::string& name) {
    // POST .../serviceaccounts/NAME/token: the TokenRequest subresource, as a collection.
    kube::ResourceType token_requests = kube::types::service_accounts();
    token_requests.resource = "serviceaccounts/" + name + "/token";
    auto token = run(s.io(), s.client().create(token_requests, s.ns(),
                                               {{"apiVersion", "authentication.k8s.io/v1"},
                                                {"kind", "TokenRequest"},
                                                {"spec", {{"expirationSeconds", 3600}}}}));
    REQUIRE(token.has_value());
    const fs::path dir = fs::temp_directory_path() / ("serin-e2e-" + s.ns() + "-" + name);
    fs::create_directories(dir);
    std::ofstream(dir / "ca.crt") << s.cluster().ca_pem();
    const fs::path kubeconfig = dir / "kubeconfig";
    std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\n"
                              << "clusters:\n- name: dev\n  cluster:\n    server: "
                              << s.cluster().config().server << "\n    certificate-authority: "
                              << (dir / "ca.crt").string() << "\n"
                              << "users:\n- name: " << name << "\n  user:\n    token: "
                              << at(*token, "/status/token").get<std::string>() << "\n"
                              << "contexts:\n- name: sa\n  context:\n    cluster: dev\n    user: "
                              << name << "\ncurrent-context: sa\n";
    return kubeconfig;
}

fs::path least_privilege_kubeconfig(Scenario& s, const std::string& name) {
    std::ifstream in(fs::path(SERIN_SOURCE_DIR) / "crds" / "base" / "rbac.yaml");
    std::stringstream text;
    text << in.rdbuf();
    auto manifests = kube::parse_manifests(text.str());
    REQUIRE(manifests.has_value());
    for (const Json& m : *manifests) {
        if (m.value("kind", "") != "ClusterRole") {
            continue;
        }
        // Shared by every test of the run: the first one creates it, the others bring it up to
        // date (a long-lived cluster may hold an older version).
        auto created = run(s.io(), s.client().create(kube::types::cluster_roles(), "", m));
        if (!created && created.error().kind == ErrorKind::kAlreadyExists) {
            auto live = run(s.io(), s.client().get(kube::types::cluster_roles(), "", "serin"));
            REQUIRE(live.has_value());
            Json update = *live;
            update["rules"] = m.at("rules");
            auto updated = run(s.io(), s.client().update(kube::types::cluster_roles(), "", update));
            REQUIRE((updated || updated.error().kind == ErrorKind::kConflict));
        } else {
            REQUIRE(created.has_value());
        }
    }
    s.create(kube::types::service_accounts(),
             {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", name}}}});
    Json binding = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                    {"kind", "ClusterRoleBinding"},
                    {"metadata", {{"name", "serin-" + s.ns()}}},
                    {"roleRef",
                     {{"apiGroup", "rbac.authorization.k8s.io"},
                      {"kind", "ClusterRole"},
                      {"name", "serin"}}},
                    {"subjects", {{{"kind", "ServiceAccount"}, {"name", name}, {"namespace", s.ns()}}}}};
    auto bound = run(s.io(), s.client().create(kube::types::cluster_role_bindings(), "", binding));
    REQUIRE(bound.has_value());
    return service_account_kubeconfig(s, name);
}

// ---- accessors ---------------------------------------------------------------------------------

Json at(const Json& object, const std::string& pointer) {
    const Json* value = testing::find_pointer(object, pointer);
    return value != nullptr ? *value : Json();
}

std::string phase(const Json& canary) {
    Json p = at(canary, "/status/phase");
    return p.is_string() ? p.get<std::string>() : std::string();
}

std::string image_of(const Json& workload) {
    Json image = at(workload, "/spec/template/spec/containers/0/image");
    return image.is_string() ? image.get<std::string>() : std::string();
}

}  // namespace serin::e2e
