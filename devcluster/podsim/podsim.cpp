#include "devcluster/podsim/podsim.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <ctime>

namespace serin::podsim {

namespace asio = boost::asio;
using kube::Json;

namespace {

const Json* member(const Json& object, std::string_view name) {
    if (!object.is_object()) {
        return nullptr;
    }
    auto it = object.find(name);
    return it == object.end() ? nullptr : &*it;
}

std::string string_member(const Json& object, std::string_view name) {
    const Json* m = member(object, name);
    return m != nullptr && m->is_string() ? m->get<std::string>() : std::string{};
}

std::string annotation(const Json& pod, std::string_view key) {
    const Json* meta = member(pod, "metadata");
    const Json* annotations = meta != nullptr ? member(*meta, "annotations") : nullptr;
    return annotations != nullptr ? string_member(*annotations, key) : std::string{};
}

std::int64_t int_member(const Json& object, std::string_view name) {
    const Json* m = member(object, name);
    return m != nullptr && m->is_number_integer() ? m->get<std::int64_t>() : 0;
}

/// The entry of `list` (an array of objects) whose `name` is `name`, if any.
const Json* find_named(const Json* list, const std::string& name) {
    if (list == nullptr || !list->is_array()) {
        return nullptr;
    }
    for (const auto& item : *list) {
        if (string_member(item, "name") == name) {
            return &item;
        }
    }
    return nullptr;
}

std::uint32_t fnv1a(std::string_view text) {
    std::uint32_t h = 2166136261u;
    for (char c : text) {
        h ^= static_cast<unsigned char>(c);
        h *= 16777619u;
    }
    return h;
}

/// A stable fake pod address in 10.244.0.0/16 (only data: nothing connects to it).
std::string pod_ip(const Json& pod) {
    const Json* meta = member(pod, "metadata");
    std::string identity = meta != nullptr ? string_member(*meta, "uid") : std::string{};
    if (identity.empty() && meta != nullptr) {
        identity = string_member(*meta, "namespace") + "/" + string_member(*meta, "name");
    }
    std::uint32_t h = fnv1a(identity);
    return "10.244." + std::to_string((h >> 8) & 0xff) + "." + std::to_string(1 + h % 254);
}

SystemTime whole_seconds(SystemTime t) {
    return std::chrono::time_point_cast<std::chrono::seconds>(t);
}

Json condition(const std::string& type, bool ok, const std::string& reason,
               const std::string& message, const Json* existing_conditions, SystemTime now) {
    std::string status = ok ? "True" : "False";
    std::string since = format_time(now);
    if (existing_conditions != nullptr && existing_conditions->is_array()) {
        for (const auto& c : *existing_conditions) {
            if (string_member(c, "type") == type && string_member(c, "status") == status) {
                std::string previous = string_member(c, "lastTransitionTime");
                if (!previous.empty()) {
                    since = previous;
                }
            }
        }
    }
    Json out = {{"type", type},
                {"status", status},
                {"lastProbeTime", nullptr},
                {"lastTransitionTime", since}};
    if (!reason.empty()) {
        out["reason"] = reason;
        out["message"] = message;
    }
    return out;
}

kube::InformerOptions informer_options(const std::string& ns) {
    kube::InformerOptions options;
    options.ns = ns;
    return options;
}

}  // namespace

PodBehavior pod_behavior(const Json& pod) {
    if (annotation(pod, kCrashAnnotation) == "true") {
        return PodBehavior::kCrashLoop;
    }
    if (annotation(pod, kReadyAnnotation) == "false") {
        return PodBehavior::kNotReady;
    }
    return PodBehavior::kReady;
}

namespace {

/// What a pod's containers are, for container_status.
struct PodRun {
    PodBehavior behavior;
    SystemTime now;
    SystemTime start;  ///< the pod's startTime
    std::string pod_name;
    std::string container_prefix;  ///< of containerIDs
    const Json* old_statuses;      ///< the containerStatuses written before, or null
};

/// The status of one container of a pod that `run` describes; `*unready` set when it is not
/// ready.
Json container_status(const Json& container, const PodRun& run, const SimSettings& settings,
                      bool* unready) {
    const PodBehavior behavior = run.behavior;
    const SystemTime now = run.now;
    const SystemTime start = run.start;
    const std::string& pod_name = run.pod_name;
    const std::string& container_prefix = run.container_prefix;
    const Json* old_statuses = run.old_statuses;
    const std::string name = string_member(container, "name");
    const std::string image = string_member(container, "image");
    const Json* old = find_named(old_statuses, name);
    const std::int64_t old_restarts = old != nullptr ? int_member(*old, "restartCount") : 0;
    Json cs = {{"name", name},
               {"image", image},
               {"imageID", "sim://" + image},
               {"containerID", container_prefix + name}};
    if (behavior == PodBehavior::kCrashLoop) {
        auto interval = std::max<std::int64_t>(1, settings.crash_restart_interval.count());
        auto elapsed =
            std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
        std::int64_t restarts = std::max<std::int64_t>(
            old_restarts, 1 + std::max<std::int64_t>(0, elapsed) / interval);
        std::string last_run =
            format_time(start + std::chrono::seconds{(restarts - 1) * interval});
        cs["ready"] = false;
        cs["started"] = false;
        cs["restartCount"] = restarts;
        cs["state"] = {{"waiting",
                        {{"reason", "CrashLoopBackOff"},
                         {"message", "back-off restarting failed container=" + name +
                                         " pod=" + pod_name}}}};
        cs["lastState"] = {{"terminated",
                            {{"exitCode", 1},
                             {"reason", "Error"},
                             {"startedAt", last_run},
                             {"finishedAt", last_run},
                             {"containerID", container_prefix + name}}}};
        *unready = true;
    } else {
        std::string started_at = format_time(now);
        if (old != nullptr) {
            const Json* state = member(*old, "state");
            const Json* running = state != nullptr ? member(*state, "running") : nullptr;
            if (running != nullptr) {
                std::string previous = string_member(*running, "startedAt");
                if (!previous.empty()) {
                    started_at = previous;
                }
            }
        }
        const bool ready = behavior == PodBehavior::kReady;
        cs["ready"] = ready;
        cs["started"] = true;
        cs["restartCount"] = old_restarts;
        cs["state"] = {{"running", {{"startedAt", started_at}}}};
        if (!ready) {
            *unready = true;
        }
    }
    return cs;
}

}  // namespace

std::optional<Json> desired_pod_status(const Json& pod, SystemTime now,
                                       const SimSettings& settings) {
    const Json* meta = member(pod, "metadata");
    const Json* spec = member(pod, "spec");
    if (meta == nullptr || spec == nullptr || !meta->is_object() || !spec->is_object()) {
        return std::nullopt;
    }
    if (const Json* deleting = member(*meta, "deletionTimestamp");
        deleting != nullptr && !deleting->is_null()) {
        return std::nullopt;
    }
    Json status = Json::object();
    if (const Json* current = member(pod, "status"); current != nullptr && current->is_object()) {
        status = *current;
    }
    std::string phase = string_member(status, "phase");
    if (phase == "Succeeded" || phase == "Failed") {
        return std::nullopt;
    }
    const PodBehavior behavior = pod_behavior(pod);
    now = whole_seconds(now);
    SystemTime start = now;
    if (auto parsed = parse_time(string_member(status, "startTime")); parsed) {
        start = *parsed;
    }
    const std::string pod_name = string_member(*meta, "name");
    const std::string uid = string_member(*meta, "uid");
    const std::string container_prefix = "sim://" + (uid.empty() ? pod_name : uid) + "/";
    const Json* old_statuses = member(status, "containerStatuses");

    const PodRun run{behavior, now, start, pod_name, container_prefix, old_statuses};
    Json statuses = Json::array();
    std::vector<std::string> unready;
    const Json* containers = member(*spec, "containers");
    if (containers != nullptr && containers->is_array()) {
        for (const auto& container : *containers) {
            bool container_unready = false;
            statuses.push_back(container_status(container, run, settings, &container_unready));
            if (container_unready) {
                unready.push_back(string_member(container, "name"));
            }
        }
    }

    const Json* init_containers = member(*spec, "initContainers");
    if (init_containers != nullptr && init_containers->is_array() && !init_containers->empty()) {
        Json init_statuses = Json::array();
        for (const auto& container : *init_containers) {
            const std::string name = string_member(container, "name");
            const std::string image = string_member(container, "image");
            init_statuses.push_back({{"name", name},
                                     {"image", image},
                                     {"imageID", "sim://" + image},
                                     {"containerID", container_prefix + name},
                                     {"ready", true},
                                     {"restartCount", 0},
                                     {"state",
                                      {{"terminated",
                                        {{"exitCode", 0},
                                         {"reason", "Completed"},
                                         {"startedAt", format_time(start)},
                                         {"finishedAt", format_time(start)},
                                         {"containerID", container_prefix + name}}}}}});
        }
        status["initContainerStatuses"] = std::move(init_statuses);
    }

    std::string not_ready_reason;
    std::string not_ready_message;
    if (!unready.empty()) {
        not_ready_reason = "ContainersNotReady";
        not_ready_message = "containers with unready status: [";
        for (std::size_t i = 0; i < unready.size(); ++i) {
            not_ready_message += (i == 0 ? "" : " ") + unready[i];
        }
        not_ready_message += "]";
    }
    const bool all_ready = unready.empty();
    const Json* old_conditions = member(status, "conditions");
    status["conditions"] = Json::array({
        condition("Initialized", true, "", "", old_conditions, now),
        condition("Ready", all_ready, not_ready_reason, not_ready_message, old_conditions, now),
        condition("ContainersReady", all_ready, not_ready_reason, not_ready_message, old_conditions,
                  now),
        condition("PodScheduled", true, "", "", old_conditions, now),
    });
    const std::string ip = pod_ip(pod);
    status["phase"] = "Running";
    status["hostIP"] = "127.0.0.1";
    status["podIP"] = ip;
    status["podIPs"] = Json::array({{{"ip", ip}}});
    status["startTime"] = format_time(start);
    status["containerStatuses"] = std::move(statuses);
    return status;
}

bool status_satisfies(const Json& current, const Json& desired) {
    if (desired.is_object()) {
        if (!current.is_object()) {
            return false;
        }
        for (const auto& [key, value] : desired.items()) {
            auto it = current.find(key);
            if (it == current.end()) {
                if (!value.is_null()) {
                    return false;
                }
                continue;
            }
            if (!status_satisfies(*it, value)) {
                return false;
            }
        }
        return true;
    }
    if (desired.is_array()) {
        if (!current.is_array() || current.size() != desired.size()) {
            return false;
        }
        for (std::size_t i = 0; i < desired.size(); ++i) {
            if (!status_satisfies(current[i], desired[i])) {
                return false;
            }
        }
        return true;
    }
    return current == desired;
}

std::optional<Json> status_update(const Json& pod, SystemTime now, const SimSettings& settings) {
    auto desired = desired_pod_status(pod, now, settings);
    if (!desired) {
        return std::nullopt;
    }
    const Json* current = member(pod, "status");
    static const Json kEmpty = Json::object();
    if (status_satisfies(current != nullptr ? *current : kEmpty, *desired)) {
        return std::nullopt;
    }
    return desired;
}

PodSim::PodSim(kube::KubeClient& client, Clock& clock, PodSimOptions options)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      informer_(client, clock, kube::types::pods(), informer_options(options_.ns)) {
    informer_.add_handlers(kube::EventHandlers{
        .on_add = [this](const kube::ObjectPtr& pod) { on_seen(*pod); },
        .on_update = [this](const kube::ObjectPtr& /*old*/,
                            const kube::ObjectPtr& pod) { on_seen(*pod); },
        .on_delete =
            [this](const kube::ObjectPtr& pod) {
                const std::string key = kube::object_key(*pod);
                known_.erase(key);
                crashing_.erase(key);
            },
    });
}

void PodSim::on_seen(const Json& pod) {
    std::string key = kube::object_key(pod);
    if (pod_behavior(pod) == PodBehavior::kCrashLoop) {
        crashing_.insert(key);
    } else {
        crashing_.erase(key);
    }
    known_.insert(key);
    enqueue(key);
}

void PodSim::enqueue(const std::string& key) {
    if (queued_.insert(key).second) {
        queue_.push_back(key);
    }
    if (wake_) {
        wake_->cancel();
    }
}

asio::awaitable<void> PodSim::run() {
    using namespace asio::experimental::awaitable_operators;
    wake_.emplace(co_await asio::this_coro::executor, asio::steady_timer::time_point::max());
    spdlog::info("podsim: watching pods in {}",
                 options_.ns.empty() ? "all namespaces" : options_.ns);
    co_await (informer_.run() && run_worker() && run_ticker());
}

asio::awaitable<void> PodSim::run_worker() {
    while (true) {
        if (queue_.empty()) {
            wake_->expires_at(asio::steady_timer::time_point::max());
            co_await wake_->async_wait(asio::as_tuple(asio::use_awaitable));
            auto cs = co_await asio::this_coro::cancellation_state;
            if (cs.cancelled() != asio::cancellation_type::none) {
                co_return;
            }
            continue;
        }
        std::string key = std::move(queue_.front());
        queue_.pop_front();
        queued_.erase(key);
        co_await write_status(std::move(key));
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) {
            co_return;
        }
    }
}

asio::awaitable<void> PodSim::write_status(std::string key) {
    kube::ObjectPtr pod = informer_.get(key);
    if (!pod) {
        co_return;  // deleted meanwhile
    }
    auto status = status_update(*pod, clock_.system_now(), options_.sim);
    if (!status) {
        co_return;
    }
    Json updated = *pod;
    updated["status"] = std::move(*status);
    kube::WriteOptions write_options;
    write_options.field_manager = options_.field_manager;
    write_options.subresource = "status";
    auto result = co_await client_.update(kube::types::pods(), kube::object_namespace(*pod),
                                          std::move(updated), write_options);
    if (result) {
        ++stats_.status_writes;
        spdlog::debug("podsim: wrote status of {}", key);
        co_return;
    }
    const Error& error = result.error();
    switch (error.kind) {
        case ErrorKind::kConflict:
            // The newer pod is on its way through the watch; it will be judged again then.
            ++stats_.conflicts;
            break;
        case ErrorKind::kNotFound:
        case ErrorKind::kCancelled:
            break;
        default:
            ++stats_.failures;
            retry_.insert(key);
            spdlog::warn("podsim: writing the status of {} failed: {}", key, error.describe());
            break;
    }
}

asio::awaitable<void> PodSim::run_ticker() {
    int ticks = 0;
    while (co_await clock_.sleep_for(options_.tick)) {
        ++ticks;
        const bool full = options_.full_resync_ticks > 0 && ticks % options_.full_resync_ticks == 0;
        // Crash-looping pods every tick (their restartCount grows with time), failed writes
        // again, and every pod now and then; enqueue() de-duplicates.
        for (const auto* keys : {full ? &known_ : &retry_, &crashing_}) {
            for (const std::string& key : *keys) {
                enqueue(key);
            }
        }
        retry_.clear();
    }
}

}  // namespace serin::podsim
