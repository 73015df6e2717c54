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
};

/// The kinds this build releases, by spec.targetRef.kind.
class TargetKinds {
public:
    /// Deployment and DaemonSet.
    TargetKinds();

    /// The kind, or kInvalid naming spec.targetRef.kind and the kinds there are.
    Result<const TargetKind*> find(std::string_view kind) const;

private:
    std::map<std::string, std::unique_ptr<TargetKind>, std::less<>> kinds_;
};

}  // namespace serin::canary
