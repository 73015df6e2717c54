#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "platform/core/result.hpp"

/// Plain C++ views of the flagger.app/v1beta1 custom resources (flagger-spec §1) and their JSON
/// codecs. Decoders never throw: bad input yields kInvalid naming the field path and the value.
namespace serin::api {

using Json = nlohmann::json;
using StringMap = std::map<std::string, std::string>;

/// The parts of `metadata` the controller reads.
struct ObjectMeta {
    std::string name;
    std::string ns;  ///< metadata.namespace
    std::string uid;
    std::int64_t generation = 0;
    std::string resource_version;
    StringMap labels;
    StringMap annotations;
    std::vector<std::string> finalizers;
    std::optional<std::string> deletion_timestamp;
};

/// A status condition (`type: Promoted` for canaries).
struct Condition {
    std::string type;
    std::string status;  ///< True, False or Unknown
    std::string last_update_time;
    std::string last_transition_time;
    std::string reason;
    std::string message;
};

/// `{name}` reference to a Secret in the object's namespace.
struct SecretRef {
    std::string name;
};

// ---- spec references ------------------------------------------------------------------------

struct TargetRef {
    std::string api_version;
    std::string kind;  ///< Deployment, DaemonSet or Service
    std::string name;
};

struct ScalerReplicas {
    std::optional<std::int32_t> min_replicas;
    std::optional<std::int32_t> max_replicas;
};

struct AutoscalerRef {
    std::string api_version;
    std::string kind;  ///< HorizontalPodAutoscaler or ScaledObject
    std::string name;
    StringMap primary_scaler_queries;
    std::optional<ScalerReplicas> primary_scaler_replicas;
};

/// ingressRef (kind Ingress) and routeRef (kind ApisixRoute).
struct LocalObjectRef {
    std::string api_version;
    std::string kind;
    std::string name;
};

struct UpstreamRef {
    std::string api_version;
    std::string kind;  ///< Upstream
    std::string name;
    std::string ns;  ///< empty = the canary's namespace
};

// ---- spec.service ---------------------------------------------------------------------------

struct CustomMetadata {
    StringMap labels;
    StringMap annotations;
};

struct UnmanagedMetadata {
    std::vector<std::string> annotations;
    std::vector<std::string> labels;
};

/// Gateway API ParentReference; group and kind defaulted.
struct GatewayRef {
    std::string group = "gateway.networking.k8s.io";
    std::string kind = "Gateway";
    std::string ns;
    std::string name;
    std::optional<std::string> section_name;
    std::optional<std::int32_t> port;
};

using IntOrString = std::variant<std::int32_t, std::string>;

struct CanaryService {
    std::string name;  ///< defaults to targetRef.name
    std::int32_t port = 0;
    std::string port_name = "http";
    IntOrString target_port = std::int32_t{0};  ///< defaults to port
    std::string app_protocol;
    std::string traffic_distribution;  ///< "", PreferClose, PreferSameZone, PreferSameNode
    bool port_discovery = false;
    bool headless = false;
    std::string timeout;
    std::string backend_timeout;
    std::vector<std::string> gateways;  ///< as given; the Istio router applies ["mesh"] when empty
    std::vector<GatewayRef> gateway_refs;
    std::vector<std::string> hosts;
    bool delegation = false;
    std::string mesh_name;
    std::vector<std::string> backends;
    std::optional<CustomMetadata> apex;
    std::optional<CustomMetadata> primary;
    std::optional<CustomMetadata> canary;
    std::optional<UnmanagedMetadata> unmanaged_metadata;
    // Istio / Gateway API objects copied verbatim by the routers; null when absent.
    Json traffic_policy;  ///< object
    Json match;           ///< array of HTTPMatchRequest
    Json rewrite;         ///< object
    Json retries;         ///< object
    Json headers;         ///< object
    Json cors_policy;     ///< object
    Json mirror;          ///< array of HTTPRequestMirrorFilter
};

// ---- spec.analysis --------------------------------------------------------------------------

struct SessionAffinity {
    std::string cookie_name;
    std::string primary_cookie_name;
    std::string domain;
    std::optional<bool> http_only;
    std::int32_t max_age = 86400;
    std::optional<bool> partitioned;
    std::string path;
    std::string same_site;  ///< "", Strict, Lax, None
    std::optional<bool> secure;
};

struct ThresholdRange {
    std::optional<double> min;
    std::optional<double> max;
};

struct TemplateRef {
    std::string name;
    std::string ns;  ///< empty = the canary's namespace
};

/// What a metric check that finds no data means (Serin's additive `noData`).
enum class NoDataPolicy {
    kFail,  ///< a failed check, as in Flagger (the default)
    kPass,  ///< the check passes
    kHold,  ///< the step holds: no progress, no failed check
};

/// Effect-size limits of a judged metric (`judge.effectSize`); nullopt: the measure's default
/// (1.0 for meanRatio, 0.5 for cles).
struct JudgeEffectSize {
    std::string measure = "meanRatio";  ///< meanRatio or cles
    std::optional<double> allowed_increase;
    std::optional<double> allowed_decrease;
    std::optional<double> critical_increase;
    std::optional<double> critical_decrease;
};

/// Serin's additive `judge`: compare the canary's series of this metric with the primary's over
/// the metric's interval (Mann-Whitney, scored like Kayenta; field-notes §3).
struct MetricJudge {
    std::string direction = "either";  ///< increase, decrease or either
    double tolerance = 0.25;
    double confidence = 0.98;
    JudgeEffectSize effect_size;
    bool critical = false;
    bool must_have_data = false;
    bool remove_outliers = false;
    double outlier_factor = 3.0;
    /// Resolution of the range queries; 0: the interval / 60, at least 1s.
    std::chrono::milliseconds step{0};
};

struct CanaryMetric {
    std::string name;
    std::string interval = "1m";
    std::chrono::milliseconds interval_duration{60000};
    std::optional<ThresholdRange> threshold_range;
    std::optional<double> threshold;  ///< deprecated
    std::string query;                ///< deprecated inline PromQL
    std::optional<TemplateRef> template_ref;
    StringMap template_variables;
    /// Serin's additive `noData` (fail when absent).
    NoDataPolicy no_data = NoDataPolicy::kFail;
    /// Serin's additive `errorLimit`: how many analysis steps in a row this metric's query may
    /// fail (Prometheus down, a bad answer) and only hold the step; later errors are failed
    /// checks. 0 (the default, Flagger's behaviour): every error is a failed check.
    std::int32_t error_limit = 0;
    /// Serin's additive `judge`; nullopt: the metric is judged against its thresholds.
    std::optional<MetricJudge> judge;
};

/// Serin's additive `analysis.judge`: how the judged metrics' score is read.
struct JudgeScoring {
    double pass = 95;  ///< a step scoring below this counts one failed check
    /// When set, a step scoring at or below it rolls back at once (Kayenta's terminal score).
    std::optional<double> marginal;
};

struct CanaryWebhook {
    std::string name;
    std::string type;  ///< "" means rollout
    std::string url;
    std::string timeout = "10s";
    std::chrono::milliseconds timeout_duration{10000};
    std::int32_t retries = 0;
    bool disable_tls = false;
    bool mute_alert = false;
    StringMap metadata;
};

struct ProviderRef {
    std::string name;
    std::string ns;  ///< empty = the canary's namespace
};

struct CanaryAlert {
    std::string name;
    std::string severity;  ///< "", info, warn, error
    ProviderRef provider_ref;
};

struct CanaryAnalysis {
    std::string interval;  ///< as written; empty when absent
    /// Tick period: 60s when absent, at least 1s (Flagger: 10s).
    std::chrono::milliseconds interval_duration{60000};
    std::int32_t threshold = 1;  ///< 1 when absent or <= 0
    std::int32_t iterations = 0;
    std::int32_t max_weight = 100;  ///< 100 when absent or 0
    std::int32_t step_weight = 0;
    std::vector<std::int32_t> step_weights;
    std::int32_t step_weight_promotion = 0;
    std::int32_t primary_ready_threshold = 100;
    std::int32_t canary_ready_threshold = 100;
    bool mirror = false;
    std::int32_t mirror_weight = 0;
    Json match;  ///< array of HTTPMatchRequest, null when absent
    std::optional<SessionAffinity> session_affinity;
    std::vector<CanaryMetric> metrics;
    JudgeScoring judge;
    std::vector<CanaryWebhook> webhooks;
    std::vector<CanaryAlert> alerts;
};

struct CanarySpec {
    std::string provider;
    std::string metrics_server;
    TargetRef target_ref;
    std::optional<AutoscalerRef> autoscaler_ref;
    std::optional<LocalObjectRef> ingress_ref;
    std::optional<LocalObjectRef> route_ref;
    std::optional<UpstreamRef> upstream_ref;
    CanaryService service;
    /// `analysis`, else the deprecated `canaryAnalysis`; nullopt when both are absent (skip
    /// analysis).
    std::optional<CanaryAnalysis> analysis;
    std::int32_t progress_deadline_seconds = 600;
    bool skip_analysis = false;
    bool revert_on_deletion = false;
    bool suspend = false;
};

/// One judged metric's verdict, as the status reports it.
struct JudgedMetricStatus {
    std::string name;
    std::string classification;  ///< Pass, High, Low, Nodata, NodataFailMetric, Error
    std::optional<double> ratio;  ///< mean(canary) / mean(primary)
    std::int32_t canary_samples = 0;
    std::int32_t primary_samples = 0;
};

/// Serin's additive `status.judge`: the last judged step.
struct JudgeStatus {
    double score = 0;
    std::string result;  ///< Pass, Marginal or Fail
    std::string reason;
    std::vector<JudgedMetricStatus> metrics;
    std::string last_update_time;
};

/// Serin's additive `status.paused`: present while a pause request holds the analysis clock
/// (docs/runtime-control.md).
struct PausedStatus {
    std::string since;    ///< RFC 3339
    std::string request;  ///< the CanaryRequest's name
};

/// Serin's additive `status.promotion`: a promote request accepted and not yet carried out
/// (its confirm-promotion gates are being asked); cleared when the release leaves
/// Progressing / WaitingPromotion.
struct RequestedPromotion {
    std::string request;  ///< the CanaryRequest's name
    bool full = false;    ///< the gates are skipped
};

/// One entry of Serin's additive `status.requests`: a CanaryRequest handled, keyed by its uid
/// (the exactly-once key).
struct HandledRequest {
    std::string name;
    std::string uid;
    std::string action;
    bool full = false;
    std::string requested_by;
    std::string result;  ///< Done or Refused
    std::string message;
    std::string time;
};

/// How many handled requests status.requests keeps (the newest).
inline constexpr std::size_t kMaxHandledRequests = 10;

struct CanaryStatus {
    std::string phase;  ///< "" or one of the phases of flagger-spec §1.5
    std::int32_t failed_checks = 0;
    /// Serin's additive `erroredChecks`: analysis steps in a row in which a metric with an
    /// errorLimit could not be queried.
    std::int32_t errored_checks = 0;
    std::optional<JudgeStatus> judge;
    std::int32_t canary_weight = 0;
    std::int32_t iterations = 0;
    std::optional<StringMap> tracked_configs;
    std::string last_applied_spec;
    std::string last_promoted_spec;
    std::string last_transition_time;
    /// Serin's additive `lastStepTime` (metav1.MicroTime): when the last paced step was taken,
    /// written with that step's status, so the analysis interval survives a restart or a change
    /// of leader (docs/release-engine.md, "Pacing"). Empty: none recorded.
    std::string last_step_time;
    std::vector<Condition> conditions;
    std::string session_affinity_cookie;
    std::string primary_session_affinity_cookie;
    std::string previous_session_affinity_cookie;
    std::optional<PausedStatus> paused;
    std::optional<RequestedPromotion> promotion;
    /// The last kMaxHandledRequests requests handled, newest last.
    std::vector<HandledRequest> requests;
};

struct Canary {
    ObjectMeta metadata;
    CanarySpec spec;
    CanaryStatus status;
};

/// Parses a Go duration ("500ms", "30s", "1m30s", "1h", "1.5h"). Errors: kInvalid.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// Decodes a Canary object and applies Flagger's defaults. Errors: kInvalid naming the field
/// path and the offending value. Never throws.
Result<Canary> decode_canary(const Json& object);

/// Encodes a status with Flagger's JSON field names (empty optional fields omitted). The
/// counters (canaryWeight included), `conditions` and each condition's `message` are always
/// written: Argo CD's health check reads the weight as a number and concatenates the messages.
Json encode_status(const CanaryStatus& status);

/// Decodes `.status` (null/absent fields take their zero values). Errors: kInvalid.
Result<CanaryStatus> decode_status(const Json& status);

namespace detail {

/// Reads typed fields while remembering the first error; shared by the decoders of this library.
/// `path` arguments name the object holding the field ("spec.analysis"); empty at the root.
class Reader {
public:
    bool ok() const { return !error_; }
    const Error& error() const { return *error_; }

    /// Records kInvalid "<path>: <message>" unless an error is already recorded.
    void invalid(const std::string& path, const std::string& message);

    static std::string join(const std::string& path, std::string_view key);
    static std::string index(const std::string& path, std::size_t i);
    /// The value for messages: JSON text, shortened.
    static std::string show(const Json& value);

    /// The field, or nullptr when absent or null. `object` must be a JSON object.
    static const Json* field(const Json& object, std::string_view key);
    /// A nested object; nullptr when absent; error when not an object.
    const Json* object(const Json& parent, std::string_view key, const std::string& path);
    /// A nested array; nullptr when absent; error when not an array.
    const Json* array(const Json& parent, std::string_view key, const std::string& path);

    std::optional<std::string> string(const Json& parent, std::string_view key,
                                      const std::string& path);
    std::optional<bool> boolean(const Json& parent, std::string_view key, const std::string& path);
    std::optional<std::int64_t> integer(const Json& parent, std::string_view key,
                                        const std::string& path);
    std::optional<std::int32_t> int32(const Json& parent, std::string_view key,
                                      const std::string& path);
    /// An integer value itself (an array element); `path` names it.
    std::optional<std::int64_t> integer_value(const Json& value, const std::string& path);
    std::optional<std::int32_t> int32_value(const Json& value, const std::string& path);
    std::optional<double> number(const Json& parent, std::string_view key, const std::string& path);
    std::optional<StringMap> string_map(const Json& parent, std::string_view key,
                                        const std::string& path);
    std::optional<std::vector<std::string>> string_list(const Json& parent, std::string_view key,
                                                        const std::string& path);
    /// A string that must be one of `allowed`.
    std::optional<std::string> one_of(const Json& parent, std::string_view key,
                                      const std::string& path,
                                      std::initializer_list<std::string_view> allowed);
    /// A required string: error when absent or empty.
    std::string required_string(const Json& parent, std::string_view key, const std::string& path);

    ObjectMeta metadata(const Json& object);
    std::vector<Condition> conditions(const Json& parent, const std::string& path);

private:
    std::optional<Error> error_;
};

}  // namespace detail

}  // namespace serin::api
