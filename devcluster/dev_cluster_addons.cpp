// What runs beside the control plane: podsim, meshsim, Prometheus and its scrape targets, and
// the CustomResourceDefinitions.

#include "devcluster/dev_cluster.hpp"

#include "devcluster/dev_cluster_internal.hpp"
#include "devcluster/process.hpp"
#include "platform/kube/manifest.hpp"
#include "platform/kube/rest_client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fstream>
#include <iterator>
#include <optional>
#include <vector>

namespace serin::devcluster {

using kube::Json;
using namespace detail;  // the helpers the cluster's files share

namespace {

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
            : all_done(ex, asio::steady_timer::time_point::max()) {}
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

std::vector<fs::path> DevClusterOptions::default_crd_dirs() {
    fs::path source{SERIN_SOURCE_DIR};
    // The mesh CRDs are vendored (devcluster/thirdparty-crds/README.md), so that a checkout
    // anywhere has them.
    return {source / "devcluster" / "thirdparty-crds", source / "crds"};
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

}  // namespace serin::devcluster
