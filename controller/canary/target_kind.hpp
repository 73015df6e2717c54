#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "analysis/release.hpp"
#include "controller/workload/workload.hpp"
#include "crds/api/canary.hpp"
#include "platform/core/result.hpp"
#include "platform/kube/resource.hpp"

namespace serin::canary {

/// What differs between the kinds of workload a Canary can release (spec.targetRef.kind): the
/// API type, how the primary is built and promoted, when a workload is ready, how the target is
/// scaled for analysis and given back when the canary goes. Pure: the reconciler reads and writes,
/// a TargetKind only says what to write. One implementation per kind; a new kind is a new class
/// and a line in TargetKinds.
class TargetKind {
public:
    virtual ~TargetKind() = default;

    /// The API type of the target and of its primary.
    virtual const kube::ResourceType& type() const = 0;
    /// The kind as Flagger names it in messages: "deployment", "daemonset".
    virtual std::string_view noun() const = 0;

    /// The primary to create for `target`.
    virtual nlohmann::json make_primary(const nlohmann::json& target,
                                    const PrimaryOptions& options) const = 0;
    /// Whether the live primary already runs what promoting `target` would write.
    virtual bool primary_matches(const nlohmann::json& live_primary, const nlohmann::json& target,
                                 const PrimaryOptions& options, bool keep_replicas) const = 0;
    /// The live primary with the target's template promoted into it.
    virtual nlohmann::json promoted_primary(const nlohmann::json& live_primary, const nlohmann::json& target,
                                        const PrimaryOptions& options,
                                        bool keep_replicas) const = 0;

    /// Whether `workload` is ready for `canary`, `threshold_percent` of it available; the
    /// message starts with `prefix`.
    virtual analysis::Readiness readiness(const api::Canary& canary, const nlohmann::json& workload,
                                          int threshold_percent, SystemTime now,
                                          std::string_view prefix) const = 0;

    /// The merge patch that scales the target up for analysis, or nullopt when it is.
    virtual std::optional<std::string> scale_up_patch(const nlohmann::json& target,
                                                      const nlohmann::json* primary,
                                                      const nlohmann::json* hpa) const = 0;
    /// The merge patch that takes the target out of service, or nullopt when it is.
    virtual std::optional<std::string> scale_to_zero_patch(const nlohmann::json& target) const = 0;
    /// The merge patch that lets the target serve on its own again when its canary is deleted
    /// (spec.revertOnDeletion), sized like the primary it replaces; nullopt when it does.
    virtual std::optional<std::string> revert_patch(const nlohmann::json& target,
                                                    const nlohmann::json* primary) const = 0;

    // ---- kinds without a primary workload (Knative) -------------------------------------------
    // Such a target is its own primary: no Services, primary, HPA, config tracking or scaling.
    // Its primary and its canary are revisions of it (objects of revision_type()), and its
    // initialization and promotion are patches to the target itself.

    /// Whether the kind has a primary workload (Deployment, DaemonSet: yes; Knative: no).
    virtual bool has_primary_workload() const { return true; }
    /// The target's revision identity (status.lastAppliedSpec, flagger-spec-providers §16).
    virtual std::string revision(const nlohmann::json& target) const {
        return revision_hash(target);
    }
    /// The API type of the revisions; nullptr for kinds with a primary workload.
    virtual const kube::ResourceType* revision_type() const { return nullptr; }
    /// The names of the revisions standing for the primary and for the canary ("" = none yet).
    virtual std::string primary_revision_name(const nlohmann::json& /*target*/) const { return {}; }
    virtual std::string canary_revision_name(const nlohmann::json& /*target*/) const { return {}; }
    /// The merge patch that initializes the target while the canary is Initializing, or nullopt
    /// when it is (or cannot be yet).
    virtual std::optional<std::string> initialize_patch(const nlohmann::json& /*target*/) const {
        return std::nullopt;
    }
    /// The merge patch that promotes the canary revision, or nullopt when it is promoted.
    virtual std::optional<std::string> promote_patch(const nlohmann::json& /*target*/) const {
        return std::nullopt;
    }
    /// The `route` variable of metric queries when the kind sets it (Knative: the latest created
    /// revision, flagger-spec §5.3); nullopt keeps routeRef.name or the target's name.
    virtual std::optional<std::string> metric_route(const nlohmann::json& /*target*/) const {
        return std::nullopt;
    }
};

/// The kinds this build releases, by spec.targetRef.kind.
class TargetKinds {
public:
    /// Deployment, DaemonSet and the Knative Service.
    TargetKinds();

    /// The kind, or kInvalid naming spec.targetRef.kind and the kinds there are. A Service of
    /// `api_version` serving.knative.dev/v1 is the Knative kind.
    Result<const TargetKind*> find(std::string_view kind, std::string_view api_version = {}) const;

private:
    std::map<std::string, std::unique_ptr<TargetKind>, std::less<>> kinds_;
};

}  // namespace serin::canary
