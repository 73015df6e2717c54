#include "tests/support/cluster.hpp"

#include <fstream>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <random>
#include <thread>

namespace serin::testing {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::string random_suffix() {
    std::random_device rd;
    std::uniform_int_distribution<unsigned> dist(0, 0xffffffffU);
    char buffer[9];
    std::snprintf(buffer, sizeof buffer, "%08x", dist(rd));
    return buffer;
}

TestCluster make_process_cluster() {
    if (const char* dir = std::getenv("SERIN_DEVCLUSTER_DIR"); dir != nullptr && *dir != '\0') {
        fs::path kubeconfig = fs::path(dir) / "kubeconfig";
        std::error_code ec;
        if (fs::exists(kubeconfig, ec)) {
            return TestCluster::external(kubeconfig);
        }
        spdlog::warn("SERIN_DEVCLUSTER_DIR={} has no kubeconfig: starting a private cluster", dir);
    }
    auto cluster = devcluster::DevCluster::start({});
    if (!cluster) {
        throw std::runtime_error("cannot start a devcluster: " + cluster.error().message);
    }
    return TestCluster::owned(std::move(*cluster));
}

std::int64_t seconds_left(SteadyClock::time_point deadline) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    return std::max<std::int64_t>(1, (left.count() + 999) / 1000);
}

asio::awaitable<void> pause(std::chrono::milliseconds d) {
    asio::steady_timer timer(co_await asio::this_coro::executor, d);
    co_await timer.async_wait(asio::use_awaitable);
}

}  // namespace

TestCluster TestCluster::external(const fs::path& kubeconfig) {
    auto config = kube::load_kubeconfig(kubeconfig);
    if (!config) {
        throw std::runtime_error("cannot load " + kubeconfig.string() + ": " +
                                 config.error().describe());
    }
    TestCluster cluster;
    cluster.kubeconfig_ = kubeconfig;
    cluster.config_ = std::move(*config);
    return cluster;
}

TestCluster TestCluster::owned(std::unique_ptr<devcluster::DevCluster> dev) {
    TestCluster cluster;
    cluster.kubeconfig_ = dev->kubeconfig_path();
    cluster.config_ = dev->cluster_config();
    cluster.owned_ = std::move(dev);
    return cluster;
}

namespace {

std::string state_field(const fs::path& kubeconfig, const char* key) {
    std::ifstream in(kubeconfig.parent_path() / "state.json");
    const Json state = Json::parse(in, nullptr, false);
    return state.is_object() ? state.value(key, std::string()) : std::string();
}

}  // namespace

std::string TestCluster::prometheus_url() const {
    return owned_ ? owned_->prometheus_url() : state_field(kubeconfig_, "prometheus");
}

fs::path TestCluster::scrape_target_dir() const {
    return owned_ ? owned_->scrape_target_dir() : fs::path(state_field(kubeconfig_, "scrape_targets"));
}

std::string TestCluster::meshsim_url() const {
    return owned_ ? owned_->meshsim_url() : state_field(kubeconfig_, "meshsim");
}

TestCluster::TestCluster(TestCluster&&) noexcept = default;
TestCluster& TestCluster::operator=(TestCluster&&) noexcept = default;
TestCluster::~TestCluster() = default;

Json config_map(const std::string& ns, const std::string& name, Json data, Json labels) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", ns}, {"labels", std::move(labels)}}},
            {"data", std::move(data)}};
}

TestCluster& shared_cluster() {
    // One per test process, made on first use and stopped at exit (a static: tests have no
    // other owner for it, and the ctest fixture's cluster needs no stopping from here).
    static TestCluster cluster = make_process_cluster();
    return cluster;
}

std::unique_ptr<kube::RestKubeClient> make_admin_client(asio::io_context& io,
                                                        TestCluster& cluster) {
    kube::RestClientOptions options;
    options.write_qps = 1000;
    options.write_burst = 1000;
    auto client =
        kube::make_rest_client(io.get_executor(), cluster.config(), cluster.clock(), options);
    if (!client) {
        throw std::runtime_error("cannot make a client: " + client.error().describe());
    }
    return std::move(*client);
}

TestNamespace::TestNamespace(TestCluster& cluster, std::string prefix) : cluster_(cluster) {
    asio::io_context io;
    auto client = make_admin_client(io, cluster_);
    for (int attempt = 0; attempt < 5; ++attempt) {
        name_ = prefix + "-" + random_suffix();
        Json ns = {{"apiVersion", "v1"},
                   {"kind", "Namespace"},
                   {"metadata", {{"name", name_}, {"labels", {{"serin.dev/test", "true"}}}}}};
        auto created = run(io, client->create(kube::types::namespaces(), "", ns, {}), 30s);
        if (created) {
            return;
        }
        if (created.error().kind != ErrorKind::kAlreadyExists) {
            throw std::runtime_error("cannot create namespace " + name_ + ": " +
                                     created.error().describe());
        }
    }
    throw std::runtime_error("no free namespace name with prefix " + prefix);
}

TestNamespace::~TestNamespace() {
    try {
        asio::io_context io;
        auto client = make_admin_client(io, cluster_);
        auto removed = run(io, client->remove(kube::types::namespaces(), "", name_, {}), 30s);
        if (!removed && removed.error().kind != ErrorKind::kNotFound) {
            spdlog::warn("cannot delete namespace {}: {}", name_, removed.error().describe());
        }
    } catch (const std::exception& e) {
        spdlog::warn("cannot delete namespace {}: {}", name_, e.what());
    }
}

void run(asio::io_context& io, asio::awaitable<void> task,
         std::chrono::steady_clock::duration timeout) {
    std::exception_ptr thrown;
    bool done = false;
    asio::cancellation_signal cancel;
    asio::co_spawn(io, std::move(task),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e) {
                       done = true;
                       thrown = e;
                   }));
    io.restart();
    auto deadline = SteadyClock::now() + timeout;
    while (!done && io.run_one_until(deadline) > 0) {
    }
    if (!done) {
        cancel.emit(asio::cancellation_type::terminal);
        auto grace = SteadyClock::now() + 5s;
        while (!done && io.run_one_until(grace) > 0) {
        }
        throw std::runtime_error("serin::testing::run: the task did not finish in time");
    }
    if (thrown) {
        std::rethrow_exception(thrown);
    }
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval) {
    auto deadline = SteadyClock::now() + timeout;
    while (true) {
        if (condition()) {
            return true;
        }
        if (SteadyClock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(interval);
    }
}

asio::awaitable<Result<Json>> wait_for_object(kube::KubeClient& client, kube::ResourceType type,
                                              std::string ns, std::string name,
                                              std::function<bool(const Json&)> predicate,
                                              std::chrono::milliseconds timeout) {
    auto deadline = SteadyClock::now() + timeout;
    std::optional<Json> last;
    std::optional<Json> found;
    const std::string selector = "metadata.name=" + name;
    while (true) {
        bool failed = false;
        // LIST (not GET) so there is a resourceVersion to watch from even before it exists.
        kube::ListOptions list_options;
        list_options.field_selector = selector;
        auto page = co_await client.list(type, ns, list_options);
        if (page) {
            last.reset();
            for (auto& item : page->items) {
                if (predicate(item)) {
                    co_return Result<Json>(boost::system::in_place_value, std::move(item));
                }
                last = item;
            }
            kube::WatchOptions watch_options;
            watch_options.resource_version = page->resource_version;
            watch_options.field_selector = selector;
            watch_options.timeout_seconds = seconds_left(deadline);
            auto watched =
                co_await client.watch(type, ns, watch_options, [&](kube::WatchEvent&& event) {
                    if (event.type == kube::WatchEvent::Type::kBookmark) {
                        return true;
                    }
                    if (event.type == kube::WatchEvent::Type::kDeleted) {
                        last.reset();
                        return true;
                    }
                    if (predicate(event.object)) {
                        found = std::move(event.object);
                        return false;
                    }
                    last = std::move(event.object);
                    return true;
                });
            if (found) {
                co_return Result<Json>(boost::system::in_place_value, std::move(*found));
            }
            if (!watched && watched.error().kind == ErrorKind::kCancelled) {
                co_return watched.error();
            }
            failed = !watched;
        } else if (page.error().kind == ErrorKind::kCancelled) {
            co_return page.error();
        }
        if (SteadyClock::now() >= deadline) {
            co_return fail(ErrorKind::kTransient,
                           "timed out waiting for " + type.resource + " " + ns + "/" + name +
                               "; last seen: " + (last ? last->dump() : std::string("never seen")));
        }
        if (!page || failed) {
            co_await pause(100ms);
        }
    }
}

asio::awaitable<Result<ObjectMap>> wait_for_objects(kube::KubeClient& client,
                                                    kube::ResourceType type, std::string ns,
                                                    std::string label_selector,
                                                    std::function<bool(const ObjectMap&)> predicate,
                                                    std::chrono::milliseconds timeout) {
    auto deadline = SteadyClock::now() + timeout;
    ObjectMap objects;
    bool done = false;
    while (true) {
        bool failed = false;
        kube::ListOptions list_options;
        list_options.label_selector = label_selector;
        auto page = co_await client.list(type, ns, list_options);
        if (page) {
            objects.clear();
            for (auto& item : page->items) {
                // The name first: `m[name(x)] = std::move(x)` moves x before evaluating m[...].
                std::string name = kube::object_name(item);
                objects[name] = std::move(item);
            }
            if (predicate(objects)) {
                co_return objects;
            }
            kube::WatchOptions watch_options;
            watch_options.resource_version = page->resource_version;
            watch_options.label_selector = label_selector;
            watch_options.timeout_seconds = seconds_left(deadline);
            auto watched =
                co_await client.watch(type, ns, watch_options, [&](kube::WatchEvent&& event) {
                    switch (event.type) {
                        case kube::WatchEvent::Type::kBookmark:
                            return true;
                        case kube::WatchEvent::Type::kDeleted:
                            objects.erase(kube::object_name(event.object));
                            break;
                        default: {
                            std::string name = kube::object_name(event.object);
                            objects[name] = std::move(event.object);
                            break;
                        }
                    }
                    done = predicate(objects);
                    return !done;
                });
            if (done) {
                co_return objects;
            }
            if (!watched && watched.error().kind == ErrorKind::kCancelled) {
                co_return watched.error();
            }
            failed = !watched;
        } else if (page.error().kind == ErrorKind::kCancelled) {
            co_return page.error();
        }
        if (SteadyClock::now() >= deadline) {
            std::string names;
            for (const auto& [name, object] : objects) {
                names += (names.empty() ? "" : ", ") + name;
            }
            co_return fail(ErrorKind::kTransient, "timed out waiting for " + type.resource +
                                                      " in " + ns + " (" + label_selector +
                                                      "); last seen: [" + names + "]");
        }
        if (!page || failed) {
            co_await pause(100ms);
        }
    }
}

const Json* find_pointer(const Json& object, const std::string& pointer) {
    try {
        Json::json_pointer p(pointer);
        if (!object.contains(p)) {
            return nullptr;
        }
        return &object.at(p);
    } catch (const std::exception&) {
        return nullptr;
    }
}

const Json* find_condition(const Json& object, const std::string& type) {
    const Json* conditions = find_pointer(object, "/status/conditions");
    if (conditions == nullptr || !conditions->is_array()) {
        return nullptr;
    }
    for (const auto& c : *conditions) {
        if (c.is_object() && c.value("type", "") == type) {
            return &c;
        }
    }
    return nullptr;
}

}  // namespace serin::testing
