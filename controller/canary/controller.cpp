#include "controller/canary/controller.hpp"

#include "controller/canary/event_filter.hpp"
#include "controller/canary/requests.hpp"

#include "crds/api/json_access.hpp"
#include "platform/core/log.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

namespace serin::canary {

namespace asio = boost::asio;
using kube::Json;
using kube::ObjectPtr;
namespace types = kube::types;

namespace {

using api::find_path;
using api::member;
using api::string_at;

/// The Canaries' index of those that read their workloads' status: value "true" or none.
constexpr const char* kReadsWorkloadStatus = "reads-workload-status";

const Json& metadata(const Json& object) {
    static const Json kEmpty = Json::object();
    const Json* meta = member(object, "metadata");
    return meta != nullptr ? *meta : kEmpty;
}

/// A Canary change worth a reconcile: not our own status writes, which would only wake it up to
/// find nothing due.
bool canary_changed(const Json& before, const Json& after) {
    const Json& a = metadata(before);
    const Json& b = metadata(after);
    for (const char* key : {"generation", "deletionTimestamp", "finalizers", "labels", "annotations"}) {
        const Json* x = member(a, key);
        const Json* y = member(b, key);
        if ((x == nullptr) != (y == nullptr) || (x != nullptr && *x != *y)) {
            return true;
        }
    }
    return false;
}

/// The user's Ingress the nginx router copies (spec.ingressRef, "<ns>/<name>"): a change to it
/// is copied.
std::vector<std::string> ingress_index(const Json& canary) {
    const Json* ref = find_path(canary, {"spec", "ingressRef"});
    if (ref == nullptr || string_at(*ref, {"name"}).empty()) {
        return {};
    }
    return {kube::object_namespace(canary) + "/" + string_at(*ref, {"name"})};
}

/// The user's ApisixRoute the apisix router copies (spec.routeRef, "<ns>/<name>").
std::vector<std::string> apisix_route_index(const Json& canary) {
    const Json* ref = find_path(canary, {"spec", "routeRef"});
    if (ref == nullptr || string_at(*ref, {"name"}).empty()) {
        return {};
    }
    return {kube::object_namespace(canary) + "/" + string_at(*ref, {"name"})};
}

/// The canary a Kuma TrafficRoute names (annotation serin.dev/canary, "<ns>/<name>"): it has
/// no owner reference, being cluster-scoped.
std::string traffic_route_canary(const Json& route) {
    return string_at(route, {"metadata", "annotations", "serin.dev/canary"});
}

}  // namespace

Controller::Controller(ControllerDeps deps, ControllerOptions options)
    : deps_(deps), options_(std::move(options)) {
    Caches& caches = deps_.caches;
    kube::Informer& canaries = caches.canaries();
    canaries.add_index("config", [](const Json& canary) -> std::vector<std::string> {
        std::vector<std::string> out;
        const Json* status = member(canary, "status");
        const Json* tracked = status != nullptr ? member(*status, "trackedConfigs") : nullptr;
        if (tracked != nullptr && tracked->is_object()) {
            for (const auto& [key, checksum] : tracked->items()) {
                out.push_back(kube::object_namespace(canary) + "/" + key);
            }
        }
        return out;
    });
    canaries.add_index("autoscaler", [](const Json& canary) -> std::vector<std::string> {
        const Json* spec = member(canary, "spec");
        const Json* ref = spec != nullptr ? member(*spec, "autoscalerRef") : nullptr;
        if (ref == nullptr) {
            return {};
        }
        return {kube::object_namespace(canary) + "/" + string_at(*ref, {"name"})};
    });
    // The MetricTemplates a canary's metrics name: a template whose provider changes can lift
    // (or cause) the canary's refusal (Reconciler::admit).
    canaries.add_index("template", [](const Json& canary) -> std::vector<std::string> {
        std::vector<std::string> out;
        const Json* metrics = find_path(canary, {"spec", "analysis", "metrics"});
        if (metrics == nullptr || !metrics->is_array()) {
            return out;
        }
        for (const Json& metric : *metrics) {
            const Json* ref = member(metric, "templateRef");
            if (ref == nullptr || !ref->is_object()) {
                continue;
            }
            const std::string ns = string_at(*ref, {"namespace"});
            out.push_back((ns.empty() ? kube::object_namespace(canary) : ns) + "/" +
                          string_at(*ref, {"name"}));
        }
        return out;
    });
    canaries.add_index("ingress", ingress_index);
    // The canaries a workload's status change concerns (reads_workload_status), so that such a
    // change is routed without decoding the canary.
    canaries.add_index(kReadsWorkloadStatus, [](const Json& canary) -> std::vector<std::string> {
        if (reads_workload_status(canary)) {
            return {"true"};
        }
        return {};
    });
    canaries.add_index("apisixroute", apisix_route_index);
    canaries.add_handlers(kube::EventHandlers{
        [this](const ObjectPtr& object) { enqueue_canary(*object); },
        [this](const ObjectPtr& before, const ObjectPtr& after) {
            if (canary_changed(*before, *after)) {
                enqueue_canary(*after);
            }
        },
        [this](const ObjectPtr& object) { enqueue_canary(*object); }});

    for (const auto* type : {&types::deployments(), &types::daemon_sets()}) {
        watch_workloads(*caches.informer(*type), type->kind);
    }
    watch(*caches.informer(types::services()), nullptr);
    watch(*caches.informer(types::config_maps()), [this](const Json& config) {
        enqueue_indexed("config", kube::object_namespace(config) + "/configmap/" +
                                      kube::object_name(config));
    });
    watch(*caches.informer(types::secrets()), [this](const Json& config) {
        enqueue_indexed("config", kube::object_namespace(config) + "/secret/" +
                                      kube::object_name(config));
    });
    watch(*caches.informer(caches.options().hpa_type), [this](const Json& hpa) {
        enqueue_indexed("autoscaler", kube::object_namespace(hpa) + "/" + kube::object_name(hpa));
    });
    watch(*caches.informer(types::metric_templates()), [this](const Json& metric_template) {
        enqueue_indexed("template", kube::object_namespace(metric_template) + "/" +
                                        kube::object_name(metric_template));
    });
    // AlertProviders are read at each alert; a change needs no reconcile of its own. Routing
    // objects: a change to one the canary owns (drift) is reconciled at once.
    for (const kube::ResourceType& type : caches.options().route_types) {
        watch(*caches.informer(type), route_enqueue(type));
    }

    watch_requests();

    kube::WorkQueueOptions queue_options;
    queue_options.max_delay = std::chrono::seconds{30};
    queue_ = std::make_unique<kube::WorkQueue>(deps_.executor, deps_.clock, queue_options);
    if (deps_.telemetry != nullptr) {
        queue_->set_wait_observer([telemetry = deps_.telemetry](Duration waited) {
            telemetry->observe_queue_wait(std::chrono::duration<double>(waited).count());
        });
    }
    calls_ = std::make_unique<BackgroundCalls>(
        deps_.executor, deps_.clock, options_.background,
        [this](const std::string& key) { queue_->add(key); });
    routers_ = std::make_unique<meshes::RouterRegistry>(meshes::RouterDeps{caches.kube()});
    if (options_.register_routers) {
        options_.register_routers(*routers_);
    }
    if (deps_.notifier != nullptr) {
        alerts_ = std::make_unique<AlertDispatcher>(*deps_.notifier, caches.store(),
                                                    options_.alerts);
    }
    HistoryStoreOptions history_options;
    history_options.hold_back = deps_.quiet;
    history_ = std::make_unique<HistoryStore>(caches.client(), deps_.clock, deps_.executor,
                                              history_options);
    reconciler_ = std::make_unique<Reconciler>(
        ReconcilerDeps{deps_.executor, caches.kube(), deps_.clock, deps_.recorder,
                       deps_.webhooks, *routers_, deps_.metrics, alerts_.get(), *calls_,
                       caches.secrets(), deps_.telemetry, history_.get()},
        options_.reconciler);
}

Controller::~Controller() { deps_.caches.stop(); }

void Controller::watch(kube::Informer& informer,
                       std::function<void(const Json&)> enqueue_for) {
    auto on_change = [this, enqueue_for](const Json& object) {
        enqueue_owners(object);
        if (enqueue_for) {
            enqueue_for(object);
        }
    };
    informer.add_handlers(kube::EventHandlers{
        [on_change](const ObjectPtr& object) { on_change(*object); },
        [on_change](const ObjectPtr& /*before*/, const ObjectPtr& after) { on_change(*after); },
        [on_change](const ObjectPtr& object) { on_change(*object); }});
}

std::function<void(const kube::Json&)> Controller::route_enqueue(const kube::ResourceType& type) {
    if (type.kind == "Ingress") {
        return [this](const Json& i) { enqueue_indexed("ingress", kube::object_key(i)); };
    }
    if (type.kind == "ApisixRoute") {
        return [this](const Json& r) { enqueue_indexed("apisixroute", kube::object_key(r)); };
    }
    if (type.kind == "TrafficRoute") {
        return [this](const Json& r) {
            if (const std::string canary = traffic_route_canary(r); !canary.empty()) {
                queue_->add(canary);
            }
        };
    }
    if (type.group == "serving.knative.dev") {
        // A Knative Service is a target (its spec, annotation and status.traffic); a Revision
        // wakes the canary of its Service (its readiness is the primary's or the canary's).
        const std::string label = type.kind == "Service" ? "" : "serving.knative.dev/service";
        return [this, label](const Json& object) {
            const std::string service = label.empty()
                                            ? kube::object_name(object)
                                            : string_at(object, {"metadata", "labels", label});
            if (!service.empty()) {
                enqueue_indexed(Caches::kCanariesByTarget,
                                Caches::target_key(kube::object_namespace(object), "Service",
                                                   service));
            }
        };
    }
    return nullptr;
}

void Controller::watch_workloads(kube::Informer& informer, const std::string& kind) {
    auto on_change = [this, kind](const Json& workload, bool status_only, kube::Lane lane) {
        enqueue_owners(workload, status_only);
        const std::string target =
            Caches::target_key(kube::object_namespace(workload), kind, kube::object_name(workload));
        // From the indexes: a Deployment's status changes many times in a rollout, and no
        // canary need be decoded to route it.
        const kube::Informer& canaries = deps_.caches.canaries();
        for (const std::string& key : canaries.keys_by_index(Caches::kCanariesByTarget, target)) {
            if (!status_only || canaries.indexed(kReadsWorkloadStatus, "true", key)) {
                queue_->add(key, lane);
            }
        }
    };
    informer.add_handlers(kube::EventHandlers{
        [on_change](const ObjectPtr& object) { on_change(*object, false, kube::Lane::kNormal); },
        [on_change](const ObjectPtr& before, const ObjectPtr& after) {
            // A new pod template is a release to start: its canary goes ahead of the wake-ups
            // (rollout progress, echoes of serin's own writes) of releases already running.
            const kube::Lane lane = workload_template_changed(*before, *after)
                                        ? kube::Lane::kFirst
                                        : kube::Lane::kNormal;
            on_change(*after, !workload_changed_beyond_status(*before, *after), lane);
        },
        [on_change](const ObjectPtr& object) { on_change(*object, false, kube::Lane::kNormal); }});
}

void Controller::watch_requests() {
    kube::Informer* requests = deps_.caches.requests();
    options_.reconciler.requests = requests != nullptr;
    if (requests == nullptr) {
        return;
    }
    requests->add_index(std::string(kRequestsByCanary), request_canary_index);
    // A new request (or one still pending) wakes the canary it names; the status Serin writes
    // to a request does not.
    auto enqueue = [this](const Json& request) {
        if (request_pending(request)) {
            for (const std::string& key : request_canary_index(request)) {
                queue_->add(key);
            }
        }
    };
    requests->add_handlers(kube::EventHandlers{
        [enqueue](const ObjectPtr& object) { enqueue(*object); },
        [enqueue](const ObjectPtr& /*before*/, const ObjectPtr& after) { enqueue(*after); },
        [](const ObjectPtr& /*object*/) {}});
}

void Controller::enqueue_canary(const Json& canary) { queue_->add(kube::object_key(canary)); }

void Controller::enqueue_owners(const Json& object, bool status_only) {
    const Json* owners = member(metadata(object), "ownerReferences");
    if (owners == nullptr || !owners->is_array()) {
        return;
    }
    for (const Json& owner : *owners) {
        if (string_at(owner, {"kind"}) != "Canary" ||
            string_at(owner, {"apiVersion"}).rfind("flagger.app/", 0) != 0) {
            continue;
        }
        const std::string ns = kube::object_namespace(object);
        const std::string name = string_at(owner, {"name"});
        std::string key = ns + "/" + name;
        if (status_only) {
            const kube::Informer& canaries = deps_.caches.canaries();
            if (canaries.cached_version(ns, name).has_value() &&
                !canaries.indexed(kReadsWorkloadStatus, "true", key)) {
                continue;
            }
        }
        queue_->add(std::move(key));
    }
}

void Controller::enqueue_indexed(const std::string& index, const std::string& value) {
    for (const std::string& key : deps_.caches.canaries().keys_by_index(index, value)) {
        queue_->add(key);
    }
}

std::map<std::string, std::size_t> Controller::canaries_per_namespace() const {
    // Read at every scrape of /metrics: from the namespace index, not by decoding every Canary
    // (at 10,000 canaries that was ~70 MB of trees per scrape, which the heap then kept).
    return deps_.caches.canaries().count_by_index("namespace");
}

kube::InformerStats Controller::informer_stats() const { return deps_.caches.stats(); }

std::map<std::string, kube::CacheSize> Controller::cache_sizes() const {
    return deps_.caches.sizes();
}

std::size_t Controller::queue_depth() const { return queue_ ? queue_->depth() : 0; }

bool Controller::synced() const { return deps_.caches.synced(); }

asio::awaitable<void> Controller::worker(kube::Take take) {
    // Cancellation (SIGTERM after the drain grace, a lost lease) ends reconciles through their
    // results, so each is logged and the worker ends cleanly instead of by exception.
    co_await asio::this_coro::throw_if_cancelled(false);
    while (auto key = co_await queue_->get(take)) {
        if (draining_ && !drain_wait_.contains(*key)) {
            queue_->done(*key);  // draining: only the steps in flight are finished
            continue;
        }
        ++reconciles_;
        ++in_flight_;
        running_[*key] = deps_.clock.steady_now();
        if (deps_.quiet != nullptr) {
            deps_.quiet->begin();
        }
        Result<ReconcileResult> result = ReconcileResult{};
        try {
            result = co_await reconciler_->reconcile(*key);
        } catch (const std::exception& e) {
            // A bug must not take every other canary down with it.
            CanaryLog(*key).error("reconcile threw: {}", e.what());
            result = fail(ErrorKind::kInternal, e.what());
        }
        --in_flight_;
        running_.erase(*key);
        if (deps_.quiet != nullptr) {
            deps_.quiet->end();
        }
        const bool cancelled = !result && result.error().kind == ErrorKind::kCancelled;
        if (draining_ && !cancelled) {
            CanaryLog(*key).info("reconcile finished while draining");
        }
        if (cancelled) {
            CanaryLog(*key).debug("reconcile cancelled");
        } else if (!result) {
            CanaryLog(*key).warn("{}; retrying", result.error().describe());
            queue_->add_rate_limited(*key);
        } else {
            // This result says when to look again: a retry left from an earlier failure (one
            // per failure while a primary rolled out, up to minutes later) would wake a canary
            // with nothing to do.
            queue_->forget(*key);
            queue_->unschedule(*key);
            if (result->requeue_after) {
                queue_->add_after(*key, *result->requeue_after);
            }
        }
        queue_->done(*key);
        if (draining_ && !calls_->in_flight(*key)) {
            drain_wait_.erase(*key);
        }
        finish_drain_if_done();
    }
}

std::optional<std::string> Controller::unhealthy(Duration stuck_after) const {
    return stuck_reconcile(running_, deps_.clock.steady_now(), stuck_after);
}

std::size_t Controller::in_flight() const {
    return in_flight_ + (calls_ ? calls_->questions_in_flight() : 0);
}

void Controller::finish_drain_if_done() {
    if (draining_ && in_flight_ == 0 && drain_wait_.empty()) {
        queue_->shut_down();
    }
}

std::optional<std::string> stuck_reconcile(const std::map<std::string, SteadyTime>& running,
                                           SteadyTime now, Duration limit) {
    for (const auto& [key, started] : running) {
        if (now - started > limit) {
            return "the reconcile of " + key + " has run for " +
                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - started)
                                      .count()) +
                   " s";
        }
    }
    return std::nullopt;
}

namespace {

/// Runs `n` workers (none when `n` is 0) until they all end.
asio::awaitable<void> run_workers(int n, std::function<asio::awaitable<void>()> worker) {
    using namespace asio::experimental::awaitable_operators;
    if (n <= 0) {
        co_return;
    }
    if (n == 1) {
        co_await worker();
        co_return;
    }
    co_await (worker() && run_workers(n - 1, worker));
}

}  // namespace

void Controller::drain() {
    draining_ = true;
    // The steps waiting on a webhook or a metric check get their answer and one reconcile to
    // act on it; nothing new is asked or begun.
    calls_->stop_asking();
    drain_wait_ = calls_->keys_in_flight();
    finish_drain_if_done();
}

asio::awaitable<void> Controller::run() {
    deps_.caches.start(deps_.executor);
    const auto started = deps_.clock.steady_now();
    // Drained before the caches synced, the workers below find the queue shut and end at once.
    while (!deps_.caches.synced() && !draining_) {
        const bool slept = co_await deps_.clock.sleep_for(std::chrono::milliseconds{20});
        if (!slept) {
            co_return;  // cancelled
        }
    }
    if (!draining_) {
        spdlog::info("informers synced in {} ms; {} canaries",
                     std::chrono::duration_cast<std::chrono::milliseconds>(
                         deps_.clock.steady_now() - started)
                         .count(),
                     deps_.caches.canaries().size());
    }
    using namespace asio::experimental::awaitable_operators;
    const std::function<asio::awaitable<void>()> any_lane = [this] {
        return worker(kube::Take::kAny);
    };
    const std::function<asio::awaitable<void>()> first_lane = [this] {
        return worker(kube::Take::kFirstLane);
    };
    co_await (run_workers(std::max(1, options_.workers), any_lane) &&
              run_workers(options_.release_start_workers, first_lane));
    calls_->cancel_all();  // cancelled (a lost lease, the end of the grace): nothing goes on
    queue_->shut_down();
    // Drained: the Events and history records the last reconciles made are written before
    // serin exits (within the shutdown grace, which cancels this wait).
    while (draining_ && (deps_.recorder.pending() > 0 || history_->pending() > 0)) {
        const bool slept = co_await deps_.clock.sleep_for(std::chrono::milliseconds{20});
        if (!slept) {
            break;
        }
    }
    deps_.caches.stop();
}

}  // namespace serin::canary
