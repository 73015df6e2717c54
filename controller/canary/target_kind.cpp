#include "controller/canary/target_kind.hpp"

#include "crds/api/json_access.hpp"
#include "meshes/common/route_types.hpp"
#include "meshes/knative/knative_router.hpp"
#include "platform/core/json.hpp"
#include "platform/core/time_format.hpp"

#include <algorithm>
#include <cstdint>

namespace serin::canary {

namespace {

using Json = nlohmann::json;

/// What Deployments and DaemonSets share: the primary is built and promoted by the same
/// builders, which read the kind from the object.
class WorkloadKind : public TargetKind {
public:
    Json make_primary(const Json& target, const PrimaryOptions& options) const override {
        return canary::make_primary(target, options);
    }
    bool primary_matches(const Json& live_primary, const Json& target,
                         const PrimaryOptions& options, bool keep_replicas) const override {
        return canary::primary_matches(live_primary, target, options, keep_replicas);
    }
    Json promoted_primary(const Json& live_primary, const Json& target,
                          const PrimaryOptions& options, bool keep_replicas) const override {
        return canary::promoted_primary(live_primary, target, options, keep_replicas);
    }
    std::optional<std::string> scale_up_patch(const Json& target, const Json* primary,
                                              const Json* hpa) const override {
        return canary::scale_up_patch(target, primary, hpa);
    }
    std::optional<std::string> scale_to_zero_patch(const Json& target) const override {
        return canary::scale_to_zero_patch(target);
    }
};

class DeploymentKind final : public WorkloadKind {
public:
    const kube::ResourceType& type() const override { return kube::types::deployments(); }
    std::string_view noun() const override { return "deployment"; }

    analysis::Readiness readiness(const api::Canary& canary, const Json& workload,
                                  int threshold_percent, SystemTime now,
                                  std::string_view prefix) const override {
        return deployment_readiness(workload, threshold_percent,
                                    canary.spec.progress_deadline_seconds, now, prefix);
    }

    std::optional<std::string> revert_patch(const Json& target,
                                            const Json* primary) const override {
        // As many replicas as the primary ran (at least one), so the target carries its load.
        const Json* replicas = api::find_path(target, {"spec", "replicas"});
        const Json* primary_replicas =
            primary != nullptr ? api::find_path(*primary, {"spec", "replicas"}) : nullptr;
        const std::int64_t want =
            primary_replicas != nullptr && primary_replicas->is_number()
                ? std::max<std::int64_t>(1, primary_replicas->get<std::int64_t>())
                : 1;
        if (replicas != nullptr && replicas->is_number() && replicas->get<std::int64_t>() == want) {
            return std::nullopt;
        }
        return dump_json(Json{{"spec", {{"replicas", want}}}});
    }
};

class DaemonSetKind final : public WorkloadKind {
public:
    const kube::ResourceType& type() const override { return kube::types::daemon_sets(); }
    std::string_view noun() const override { return "daemonset"; }

    analysis::Readiness readiness(const api::Canary& canary, const Json& workload,
                                  int threshold_percent, SystemTime now,
                                  std::string_view prefix) const override {
        // A DaemonSet's deadline runs from the canary's last status change (flagger-spec §3.6).
        const SystemTime since = parse_time(canary.status.last_transition_time).value_or(now);
        return daemonset_readiness(workload, threshold_percent,
                                   canary.spec.progress_deadline_seconds, now, since, prefix);
    }

    std::optional<std::string> revert_patch(const Json& target,
                                            const Json* /*primary*/) const override {
        return canary::scale_up_patch(target, nullptr, nullptr);  // the node selector removed
    }
};

/// A serving.knative.dev/v1 Service (flagger-spec-providers §10): no primary workload. The
/// Service's annotation flagger.app/primary-revision names the primary Revision, the latest
/// created Revision is the canary; each is ready when its Ready condition is True.
class KnativeKind final : public TargetKind {
public:
    const kube::ResourceType& type() const override {
        return meshes::route_types::knative_services();
    }
    std::string_view noun() const override { return "service"; }

    // Never called: there is no primary workload.
    Json make_primary(const Json& target, const PrimaryOptions& /*options*/) const override {
        return target;
    }
    bool primary_matches(const Json& /*live*/, const Json& /*target*/,
                         const PrimaryOptions& /*options*/, bool /*keep*/) const override {
        return true;
    }
    Json promoted_primary(const Json& live_primary, const Json& /*target*/,
                          const PrimaryOptions& /*options*/, bool /*keep*/) const override {
        return live_primary;
    }

    /// `workload` is a Revision (or, when the canary is deleted, the Service): ready when its
    /// Ready condition is True. Always retriable (Knative keeps trying).
    analysis::Readiness readiness(const api::Canary& /*canary*/, const Json& workload,
                                  int /*threshold_percent*/, SystemTime /*now*/,
                                  std::string_view prefix) const override {
        const Json* conditions = api::find_path(workload, {"status", "conditions"});
        if (conditions != nullptr && conditions->is_array()) {
            for (const Json& condition : *conditions) {
                if (api::string_at(condition, {"type"}) != "Ready") {
                    continue;
                }
                if (api::string_at(condition, {"status"}) == "True") {
                    return analysis::Readiness{true, true, ""};
                }
                const std::string why = api::string_at(condition, {"message"});
                return analysis::Readiness{false, true,
                                           std::string(prefix) + "Ready condition is " +
                                               api::string_at(condition, {"status"}) +
                                               (why.empty() ? "" : ": " + why)};
            }
        }
        return analysis::Readiness{false, true, std::string(prefix) + "no Ready condition yet"};
    }

    std::optional<std::string> scale_up_patch(const Json& /*target*/, const Json* /*primary*/,
                                              const Json* /*hpa*/) const override {
        return std::nullopt;
    }
    std::optional<std::string> scale_to_zero_patch(const Json& /*target*/) const override {
        return std::nullopt;
    }
    std::optional<std::string> revert_patch(const Json& /*target*/,
                                            const Json* /*primary*/) const override {
        return std::nullopt;
    }

    bool has_primary_workload() const override { return false; }
    /// Flagger's own hash of status.latestCreatedRevisionName (go-spew's "(string)<name>",
    /// flagger-spec-providers §16.2) behind Serin's prefix, so that it is Serin's value.
    std::string revision(const Json& target) const override {
        return std::string(analysis::kRevisionPrefix) +
               flagger_hash("(string)" + meshes::knative_latest_revision(target));
    }
    const kube::ResourceType* revision_type() const override {
        return &meshes::route_types::knative_revisions();
    }
    std::string primary_revision_name(const Json& target) const override {
        return meshes::knative_primary_revision(target);
    }
    std::string canary_revision_name(const Json& target) const override {
        return meshes::knative_latest_revision(target);
    }
    std::optional<std::string> initialize_patch(const Json& target) const override {
        return meshes::knative_primary_patch(target, true);
    }
    std::optional<std::string> promote_patch(const Json& target) const override {
        return meshes::knative_primary_patch(target, false);
    }
    std::optional<std::string> metric_route(const Json& target) const override {
        std::string latest = meshes::knative_latest_revision(target);
        if (latest.empty()) {
            return std::nullopt;
        }
        return latest;
    }
};

constexpr std::string_view kKnativeKey = "Service (serving.knative.dev/v1)";

}  // namespace

TargetKinds::TargetKinds() {
    kinds_.emplace("Deployment", std::make_unique<DeploymentKind>());
    kinds_.emplace("DaemonSet", std::make_unique<DaemonSetKind>());
    kinds_.emplace(std::string(kKnativeKey), std::make_unique<KnativeKind>());
}

Result<const TargetKind*> TargetKinds::find(std::string_view kind,
                                            std::string_view api_version) const {
    if (kind == "Service" && api_version == "serving.knative.dev/v1") {
        kind = kKnativeKey;
    }
    if (auto it = kinds_.find(kind); it != kinds_.end()) {
        return it->second.get();
    }
    std::string known;
    for (const auto& [name, ignored] : kinds_) {
        known += (known.empty() ? "" : " and ") + name;
    }
    return fail(ErrorKind::kInvalid, "spec.targetRef.kind: \"" + std::string(kind) +
                                         "\" is not supported; Serin releases " + known +
                                         " targets");
}

}  // namespace serin::canary
