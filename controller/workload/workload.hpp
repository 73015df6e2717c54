#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "analysis/release.hpp"
#include "crds/api/canary.hpp"
#include "platform/core/time.hpp"
#include "platform/core/result.hpp"

/// Pure builders and readers of the Kubernetes objects a Canary owns (flagger-spec §2.2, §3):
/// the revision hash, config tracking, the `-primary` workload and configs, scaling patches,
/// readiness, the three Services and the primary HPA. JSON in, JSON out; no I/O, no clock.
namespace serin::canary {

using Json = nlohmann::json;

/// Annotations every generated object carries so Flux and Helm leave it alone.
inline constexpr std::string_view kFluxReconcileAnnotation = "kustomize.toolkit.fluxcd.io/reconcile";
inline constexpr std::string_view kHelmDriftAnnotation = "helm.toolkit.fluxcd.io/driftDetection";
/// DaemonSet "scaled to zero": this key in spec.template.spec.nodeSelector.
inline constexpr std::string_view kScaleToZeroNodeSelector = "flagger.app/scale-to-zero";
/// ConfigMaps and Secrets annotated with a value starting "disable" are not tracked.
inline constexpr std::string_view kConfigTrackingAnnotation = "flagger.app/config-tracking";
/// Template annotation whose change forces the primary to roll.
inline constexpr std::string_view kFlaggerIdAnnotation = "flagger-id";

/// The pod selector label (§3.1): the first of `candidates` present in the workload's
/// spec.selector.matchLabels, and its value.
struct SelectorLabel {
    std::string key;
    std::string value;
};

/// Errors: kInvalid "<kind lower-case> <name>.<ns> spec.selector.matchLabels must contain one of
/// [app name app.kubernetes.io/name]" (the candidates, space-separated).
Result<SelectorLabel> selector_label(const Json& workload,
                                     const std::vector<std::string>& candidates);

// ---- revision identity (§2.2) ----------------------------------------------------------------

/// JSON text with keys sorted, no whitespace, and null values, empty objects and empty arrays
/// removed recursively, so that absent, null and empty compare equal.
std::string canonical_dump(const Json& value);

/// Flagger's hash: FNV-32a of `text`, printed in decimal, each digit character c mapped to
/// "bcdfghjklmnpqrstvwxz2456789"[c % 27].
std::string flagger_hash(std::string_view text);

/// Serin's revision of a Deployment or DaemonSet: analysis::kRevisionPrefix ("s1:") and 16 hex
/// digits of SHA-256 over canonical_dump(spec.template), without what never reaches the primary:
/// the toolkit.fluxcd.io template labels and annotations, the flagger-id annotation and, for a
/// DaemonSet, the scale-to-zero node selector. The prefix tells Serin's values from Flagger's (§16.7).
std::string revision_hash(const Json& workload);

/// The revision (as revision_hash) of what the primary `primary` runs, taken back to the form of
/// its target: with the selector label `L: V-primary` back to
/// `L: V`, references to `<cfg>-primary` back to `<cfg>` for the configs in `config_keys`
/// ("configmap/x", "secret/y"), and the -primary rewrite of the topology-spread and
/// anti-affinity selectors undone (Flagger's by target name and Serin's by label value). Equal to
/// revision_hash(target) when the primary runs the target's template, whoever built it.
std::string primary_revision(const Json& primary, const SelectorLabel& label,
                             std::string_view target_name,
                             const std::set<std::string>& config_keys);

/// The `checksum` of webhook payloads, exactly as Flagger computes it (flagger-spec-providers
/// §16.4): flagger_hash of go-spew's dump of {TrackedConfigs *map[string]string;
/// LastAppliedSpec string}.
std::string canary_checksum(const api::CanaryStatus& status);

// ---- config tracking (§2.2, §3.3) -------------------------------------------------------------

struct ConfigRef {
    enum class Kind { kConfigMap, kSecret };
    Kind kind = Kind::kConfigMap;
    std::string name;
    bool optional = false;  ///< every reference to it says optional: true

    /// "configmap/<name>" or "secret/<name>", the key of status.trackedConfigs.
    std::string key() const;
};

/// Every ConfigMap and Secret a pod spec uses: volumes (configMap, secret, projected sources),
/// and env valueFrom / envFrom of containers and initContainers. Deduplicated, sorted by key;
/// a name referenced both optionally and mandatorily counts as mandatory.
std::vector<ConfigRef> config_refs(const Json& pod_spec);

/// Whether a ConfigMap or Secret is excluded from tracking: the config-tracking annotation
/// starts with "disable", or a Secret's type is not Opaque, kubernetes.io/basic-auth,
/// kubernetes.io/ssh-auth or kubernetes.io/tls.
bool tracking_disabled(const Json& config);

/// Hex of the first 8 bytes of SHA-256 over the JSON of `.data` with keys sorted (Secret values
/// stay base64 strings): 16 hex digits.
std::string config_checksum(const Json& config);

/// The `<name>-primary` copy of a tracked ConfigMap or Secret: data (Secret: type and data),
/// labels filtered by `include_label_prefixes`, this canary as controller owner plus the
/// config's other owner references downgraded to controller: false.
Json make_primary_config(const Json& config, const Json& owner_reference,
                         const std::vector<std::string>& include_label_prefixes);

// ---- the primary workload (§3.3, §3.7) --------------------------------------------------------

/// {apiVersion: flagger.app/v1beta1, kind: Canary, name, uid, controller: true,
/// blockOwnerDeletion: true}.
Json owner_reference(const api::Canary& canary);

/// Whether `object` has a controller ownerReference to the canary with this uid.
bool owned_by(const Json& object, std::string_view canary_uid);

struct PrimaryOptions {
    SelectorLabel label;
    /// Keys ("configmap/x", "secret/y") of the tracked configs whose references are renamed
    /// to `<name>-primary` in the primary's pod spec.
    std::set<std::string> tracked_configs;
    /// -include-label-prefix: labels/annotations copied to the primary; "*" = all; empty = none
    /// (for metadata labels; template labels are always copied).
    std::vector<std::string> include_label_prefixes;
    /// The flagger-id template annotation value.
    std::string flagger_id;
    Json owner_reference;
};

/// The `X-primary` Deployment or DaemonSet to create for target `X` (§3.3): replicas (Deployment)
/// = target's if > 0 else 1; progressDeadlineSeconds, minReadySeconds, revisionHistoryLimit,
/// strategy/updateStrategy copied; selector {L: V-primary}; template labels with L: V-primary;
/// template annotations plus flagger-id; pod spec with tracked config refs renamed and the
/// affinity / topology-spread label selectors rewritten; toolkit.fluxcd.io keys dropped; owner
/// reference set. A DaemonSet's scale-to-zero node selector is removed.
Json make_primary(const Json& target, const PrimaryOptions& options);

/// The live primary updated with the target's current spec (§3.7, Promote): the result of
/// make_primary with the live object's metadata (resourceVersion, uid, other labels and
/// annotations kept), and, when `keep_replicas`, the live replicas.
Json promoted_primary(const Json& live_primary, const Json& target, const PrimaryOptions& options,
                      bool keep_replicas);

/// Whether the live primary's spec already equals what promoted_primary would write (so a
/// repeated promote writes nothing).
bool primary_matches(const Json& live_primary, const Json& target, const PrimaryOptions& options,
                     bool keep_replicas);

// ---- scaling (§3.4) ----------------------------------------------------------------------------

/// A merge patch (JSON text) that scales the target to zero, or nullopt when it already is.
/// Deployment: {"spec":{"replicas":0}}. DaemonSet: the scale-to-zero node selector added.
std::optional<std::string> scale_to_zero_patch(const Json& target);

/// A merge patch that scales the target up for analysis, or nullopt when nothing changes.
/// Deployment replicas: the target's if > 0; else the primary's if > 0 (without autoscaler);
/// else HPA minReplicas if > 1; else 1. DaemonSet: the node selector removed.
/// `primary` and `hpa` may be null.
std::optional<std::string> scale_up_patch(const Json& target, const Json* primary,
                                          const Json* hpa);

// ---- readiness (§3.6) ---------------------------------------------------------------------------

/// Readiness of a Deployment with Flagger's messages, prefixed by `prefix` ("podinfo-primary.test
/// not ready: " or "canary deployment podinfo.test not ready: "). `threshold_percent` of the
/// updated replicas must be available. Not retriable once the Progressing condition says
/// ProgressDeadlineExceeded, or Available is False/MinimumReplicasUnavailable for longer than
/// `deadline_seconds` before `now`. Serin is stricter than Flagger in one point: a Deployment
/// scaled to zero replicas is not ready ("... scaled to zero").
analysis::Readiness deployment_readiness(const Json& deployment, int threshold_percent,
                                         int deadline_seconds, SystemTime now,
                                         std::string_view prefix);

/// Readiness of a DaemonSet: updatedNumberScheduled >= desiredNumberScheduled and numberAvailable
/// >= floor(desired * threshold%). Not retriable when `since + deadline_seconds < now` (`since`
/// is the canary's lastTransitionTime).
analysis::Readiness daemonset_readiness(const Json& daemonset, int threshold_percent,
                                        int deadline_seconds, SystemTime now, SystemTime since,
                                        std::string_view prefix);

// ---- services (§3.2) ----------------------------------------------------------------------------

struct ServiceSet {
    Json apex;     ///< S: selects {L: V-primary}
    Json primary;  ///< S-primary: selects {L: V-primary}
    Json canary;   ///< S-canary: selects {L: V}
};

/// The three ClusterIP Services of a canary whose target is `target`: names, selectors, labels
/// ({L: <service name>} plus spec.service.{apex,primary,canary}.labels), annotations (custom plus
/// the Flux/Helm anti-drift keys), ports (the main port, plus with portDiscovery every container
/// port but the main target port and istio-proxy/envoy ones), headless, trafficDistribution,
/// appProtocol, owner reference.
ServiceSet make_services(const api::Canary& canary, const Json& target, const SelectorLabel& label,
                         const Json& owner_reference);

/// The update to write to `live` so it matches `desired`, or nullopt when it already does.
/// Ports are compared ignoring order and keep live nodePorts by name; the selector is replaced
/// unless `keep_selector`; labels and annotations are managed only when `live` is owned by the
/// canary (owned_by), keeping the keys listed in spec.service.unmanagedMetadata as they are live.
/// clusterIP and other server-set fields are kept from `live`.
std::optional<Json> service_update(const Json& live, const Json& desired, const api::Canary& canary,
                                   bool keep_selector);

// ---- autoscaler (§3.5) ---------------------------------------------------------------------------

/// `<hpa name>-primary`: scaleTargetRef {apiVersion, kind of the original, name X-primary},
/// minReplicas/maxReplicas (overridden by autoscalerRef.primaryScalerReplicas), metrics and
/// behavior copied, labels without toolkit.fluxcd.io keys, owner reference. Same apiVersion as
/// `hpa`.
Json make_primary_hpa(const Json& hpa, const api::Canary& canary, const Json& owner_reference);

/// The update to write to the live primary HPA, or nullopt when min/max/metrics/behavior match.
std::optional<Json> hpa_update(const Json& live, const Json& desired);

}  // namespace serin::canary
