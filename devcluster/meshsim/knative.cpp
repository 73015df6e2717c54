#include "devcluster/meshsim/knative.hpp"

#include <spdlog/spdlog.h>

#include <cstdint>
#include <map>

#include "meshes/common/route_types.hpp"

namespace serin::meshsim {

namespace asio = boost::asio;

namespace {

const Json& at(const Json& object, std::initializer_list<const char*> path) {
    static const Json null;
    const Json* here = &object;
    for (const char* key : path) {
        if (!here->is_object() || !here->contains(key)) {
            return null;
        }
        here = &(*here)[key];
    }
    return *here;
}

std::string text(const Json& object, std::initializer_list<const char*> path) {
    const Json& value = at(object, path);
    return value.is_string() ? value.get<std::string>() : std::string();
}

std::string template_hash(const Json& service) {
    std::uint32_t hash = 2166136261U;
    for (unsigned char c : at(service, {"spec", "template"}).dump()) {
        hash = (hash ^ c) * 16777619U;
    }
    return std::to_string(hash);
}

int generation_of(const Json& revision) {
    try {
        return std::stoi(text(revision, {"metadata", "labels", kKnativeGenerationLabel}));
    } catch (const std::exception&) {
        return 0;
    }
}

bool ready(const Json& object) {
    const Json& conditions = at(object, {"status", "conditions"});
    if (!conditions.is_array()) {
        return false;
    }
    for (const Json& c : conditions) {
        if (text(c, {"type"}) == "Ready") {
            return text(c, {"status"}) == "True";
        }
    }
    return false;
}

Json condition(const char* type, bool ok, const std::string& message) {
    Json c{{"type", type}, {"status", ok ? "True" : "False"}};
    if (!message.empty()) {
        c["reason"] = "SimulatedNotReady";
        c["message"] = message;
    }
    return c;
}

/// The Revision number `n` of `service`, as Knative names and labels it.
Json make_revision(const Json& service, int n) {
    const std::string name = text(service, {"metadata", "name"});
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "%05d", n);
    const Json& tmpl = at(service, {"spec", "template"});
    Json metadata{{"name", name + "-" + suffix},
                  {"namespace", text(service, {"metadata", "namespace"})}};
    Json labels = at(tmpl, {"metadata", "labels"}).is_object() ? at(tmpl, {"metadata", "labels"})
                                                               : Json::object();
    labels[kKnativeServiceLabel] = name;
    labels["serving.knative.dev/configuration"] = name;
    labels[kKnativeGenerationLabel] = std::to_string(n);
    metadata["labels"] = std::move(labels);
    Json annotations = at(tmpl, {"metadata", "annotations"}).is_object()
                           ? at(tmpl, {"metadata", "annotations"})
                           : Json::object();
    annotations[kTemplateHashAnnotation] = template_hash(service);
    metadata["annotations"] = std::move(annotations);
    metadata["ownerReferences"] = Json::array({Json{{"apiVersion", "serving.knative.dev/v1"},
                                                    {"kind", "Service"},
                                                    {"name", name},
                                                    {"uid", text(service, {"metadata", "uid"})}}});
    const bool ok = text(tmpl, {"metadata", "annotations", kReadyAnnotation}) != "false";
    Json revision{{"apiVersion", "serving.knative.dev/v1"},
                  {"kind", "Revision"},
                  {"metadata", std::move(metadata)},
                  {"spec", at(tmpl, {"spec"}).is_object() ? at(tmpl, {"spec"}) : Json::object()}};
    revision["status"] =
        Json{{"observedGeneration", 1},
             {"conditions",
              Json::array({condition("Ready", ok, ok ? "" : "sim.serin.dev/ready is false")})}};
    return revision;
}

}  // namespace

KnativeWrites knative_reconcile(const Json& service, const std::vector<Json>& revisions) {
    KnativeWrites out;
    // The latest Revision; a new one when the template changed since.
    const Json* latest = nullptr;
    for (const Json& r : revisions) {
        if (latest == nullptr || generation_of(r) > generation_of(*latest)) {
            latest = &r;
        }
    }
    std::map<std::string, const Json*> by_name;
    for (const Json& r : revisions) {
        by_name[text(r, {"metadata", "name"})] = &r;
    }
    if (latest == nullptr || text(*latest, {"metadata", "annotations", kTemplateHashAnnotation}) !=
                                 template_hash(service)) {
        out.revision = make_revision(service, latest == nullptr ? 1 : generation_of(*latest) + 1);
        latest = &*out.revision;
        by_name[text(*latest, {"metadata", "name"})] = latest;
    }
    // The latest ready Revision: the newest one whose Ready condition is True.
    const Json* latest_ready = nullptr;
    for (const auto& [name, r] : by_name) {
        if (ready(*r) &&
            (latest_ready == nullptr || generation_of(*r) > generation_of(*latest_ready))) {
            latest_ready = r;
        }
    }
    const std::string ready_name =
        latest_ready != nullptr ? text(*latest_ready, {"metadata", "name"}) : "";
    // status.traffic: spec.traffic resolved, unless it names a Revision that does not exist.
    Json traffic = Json::array();
    std::string problem;
    const Json& spec_traffic = at(service, {"spec", "traffic"});
    if (!spec_traffic.is_array() || spec_traffic.empty()) {
        traffic.push_back(
            Json{{"revisionName", ready_name}, {"latestRevision", true}, {"percent", 100}});
    } else {
        for (const Json& entry : spec_traffic) {
            Json resolved = entry;
            const Json& latest_flag = at(entry, {"latestRevision"});
            if (latest_flag.is_boolean() && latest_flag.get<bool>()) {
                resolved["revisionName"] = ready_name;
            } else {
                resolved["latestRevision"] = false;
                if (by_name.count(text(entry, {"revisionName"})) == 0) {
                    problem = "Revision \"" + text(entry, {"revisionName"}) +
                              "\" referenced in traffic not found";
                }
            }
            traffic.push_back(std::move(resolved));
        }
    }
    if (ready_name.empty()) {
        problem = "no Revision is ready";
    }
    const Json& live = at(service, {"status"});
    out.status = Json{{"observedGeneration", at(service, {"metadata", "generation"})},
                      {"latestCreatedRevisionName", text(*latest, {"metadata", "name"})},
                      {"latestReadyRevisionName", ready_name},
                      {"url", "http://" + text(service, {"metadata", "name"}) + "." +
                                  text(service, {"metadata", "namespace"}) + ".svc.cluster.local"}};
    out.status["traffic"] = problem.empty()                    ? traffic
                            : at(live, {"traffic"}).is_array() ? at(live, {"traffic"})
                                                               : Json::array();
    out.status["conditions"] = Json::array({condition("Ready", problem.empty(), problem),
                                            condition("RoutesReady", problem.empty(), problem)});
    return out;
}

std::vector<Flow> knative_flows(const std::vector<Json>& services,
                                const std::vector<Json>& revisions) {
    std::map<std::pair<std::string, std::string>, const Json*> by_name;  // (ns, name)
    for (const Json& r : revisions) {
        by_name[{text(r, {"metadata", "namespace"}), text(r, {"metadata", "name"})}] = &r;
    }
    std::vector<Flow> flows;
    for (const Json& service : services) {
        const std::string ns = text(service, {"metadata", "namespace"});
        const Json& traffic = at(service, {"status", "traffic"});
        if (!traffic.is_array()) {
            continue;
        }
        std::map<std::string, double> shares;  // one flow per Revision, however many entries
        for (const Json& entry : traffic) {
            const Json& percent = at(entry, {"percent"});
            if (percent.is_number() && percent.get<double>() > 0) {
                shares[text(entry, {"revisionName"})] += percent.get<double>() / 100;
            }
        }
        for (const auto& [name, share] : shares) {
            auto found = by_name.find({ns, name});
            if (found == by_name.end() || !ready(*found->second)) {
                continue;
            }
            const Json& revision = *found->second;
            auto annotation = [&](const char* key, double fallback) {
                try {
                    const std::string value = text(revision, {"metadata", "annotations", key});
                    return value.empty() ? fallback : std::stod(value);
                } catch (const std::exception&) {
                    return fallback;
                }
            };
            Flow flow;
            flow.ns = ns;
            flow.apex = text(service, {"metadata", "name"});
            flow.version.ns = ns;
            flow.version.workload = name;
            flow.version.pod = name + "-deployment-sim";
            const double rate = annotation(kErrorRateAnnotation, 0);
            flow.version.error_rate = rate > 1 ? rate / 100 : rate;
            flow.version.latency_ms = annotation(kLatencyAnnotation, 10);
            flow.share = share;
            flow.envoy_cluster = ns + "/" + name;
            flows.push_back(std::move(flow));
        }
    }
    return flows;
}

KnativeSim::KnativeSim(kube::KubeClient& client, Clock& clock, std::string ns) : client_(client) {
    kube::InformerOptions options;
    options.ns = std::move(ns);
    services_ = std::make_unique<kube::Informer>(client, clock,
                                                 meshes::route_types::knative_services(), options);
    revisions_ = std::make_unique<kube::Informer>(
        client, clock, meshes::route_types::knative_revisions(), options);
}

KnativeSim::~KnativeSim() = default;

namespace {

std::vector<Json> values(const kube::Informer& informer) {
    std::vector<Json> out;
    for (const kube::ObjectPtr& object : informer.list()) {
        out.push_back(*object);
    }
    return out;
}

}  // namespace

std::vector<Json> KnativeSim::services() const { return values(*services_); }
std::vector<Json> KnativeSim::revisions() const { return values(*revisions_); }

namespace {

/// What one Service needs written, worked out outside the coroutine (g++ 12 cannot keep the
/// braced key lists of `text` and `at` in a coroutine frame).
struct Planned {
    std::string ns;
    std::string name;
    std::string revision_name;
    std::optional<Json> revision;
    std::optional<std::string> revision_status;  ///< merge patch body
    std::optional<std::string> service_status;   ///< merge patch body, when it differs
};

Planned plan_writes(const Json& service, const std::vector<Json>& revisions) {
    KnativeWrites writes = knative_reconcile(service, revisions);
    Planned out;
    out.ns = text(service, {"metadata", "namespace"});
    out.name = text(service, {"metadata", "name"});
    if (writes.revision) {
        out.revision_name = text(*writes.revision, {"metadata", "name"});
        out.revision_status = Json{{"status", writes.revision->at("status")}}.dump();
        out.revision = std::move(writes.revision);
    }
    bool same = true;  // only the keys knativesim writes
    for (const auto& [key, value] : writes.status.items()) {
        same = same && at(service, {"status", key.c_str()}) == value;
    }
    if (!same) {
        out.service_status = Json{{"status", std::move(writes.status)}}.dump();
    }
    return out;
}

}  // namespace

asio::awaitable<void> KnativeSim::reconcile(const Json& service,
                                            const std::vector<Json>& revisions) {
    Planned planned = plan_writes(service, revisions);
    kube::WriteOptions status_options;
    status_options.subresource = "status";
    if (planned.revision) {
        auto created = co_await client_.create(meshes::route_types::knative_revisions(), planned.ns,
                                               std::move(*planned.revision));
        if (created) {
            spdlog::info("knativesim: created Revision {}/{}", planned.ns, planned.revision_name);
        }
        // The status subresource is written apart (create ignores it); again after a create
        // that found the Revision made by an earlier step.
        auto written = co_await client_.patch(meshes::route_types::knative_revisions(), planned.ns,
                                              planned.revision_name, kube::PatchType::kMerge,
                                              *planned.revision_status, status_options);
        if (!written) {
            spdlog::debug("knativesim: Revision {}/{} status: {}", planned.ns,
                          planned.revision_name, written.error().describe());
        }
    }
    if (planned.service_status) {
        auto written = co_await client_.patch(meshes::route_types::knative_services(), planned.ns,
                                              planned.name, kube::PatchType::kMerge,
                                              *planned.service_status, status_options);
        if (!written) {
            spdlog::debug("knativesim: Service {}/{} status: {}", planned.ns, planned.name,
                          written.error().describe());
        }
    }
}

void KnativeSim::start(const asio::any_io_executor& executor) {
    services_->start(executor);
    revisions_->start(executor);
}

void KnativeSim::stop() {
    services_->stop();
    revisions_->stop();
}

namespace {

/// The Revisions of `service` (by namespace and the service label).
std::vector<Json> revisions_of(const Json& service, const std::vector<Json>& revisions) {
    std::vector<Json> own;
    for (const Json& r : revisions) {
        if (text(r, {"metadata", "namespace"}) == text(service, {"metadata", "namespace"}) &&
            text(r, {"metadata", "labels", kKnativeServiceLabel}) ==
                text(service, {"metadata", "name"})) {
            own.push_back(r);
        }
    }
    return own;
}

}  // namespace

asio::awaitable<void> KnativeSim::step() {
    const std::vector<Json> revisions = this->revisions();
    for (const Json& service : services()) {
        const std::vector<Json> own = revisions_of(service, revisions);
        co_await reconcile(service, own);
    }
}

}  // namespace serin::meshsim
