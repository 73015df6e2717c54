#pragma once

#include <cstddef>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

/// Kayenta-style statistical judgement of a canary (field-notes §3, NetflixACAJudge): each metric's
/// canary samples are compared with the primary's by a Mann-Whitney test, labelled Pass, High,
/// Low, Nodata, NodataFailMetric or Error, and the labels are scored 0-100. Pure: no I/O, no
/// globals, deterministic. Thread safety: every function here is reentrant.
namespace serin::analysis::judge {

/// Which change of a metric counts against the canary.
enum class Direction {
    kEither,    ///< flag a canary that is higher or lower than the primary
    kIncrease,  ///< flag only a canary that is higher (latency, error counts)
    kDecrease,  ///< flag only a canary that is lower (throughput, success rate)
};

/// How the size of a difference is measured, to gate High and Low (§3.3 step 6).
enum class EffectMeasure {
    kMeanRatio,  ///< mean(canary) / mean(primary); 1.0 means no change
    kCles,       ///< common-language effect size P(canary > primary) (Vargha-Delaney A); 0.5 = none
};

/// The verdict on one metric.
enum class Label {
    kPass,              ///< no significant difference in the flagged direction
    kHigh,              ///< the canary is significantly higher
    kLow,               ///< the canary is significantly lower
    kNodata,            ///< a side had no (finite) samples; not counted in the score
    kNodataFailMetric,  ///< no data for a metric that must have data; counts as a failure
    kError,             ///< the test could not be computed; not counted in the score
};

/// "Pass", "High", "Low", "Nodata", "NodataFailMetric" or "Error" (Kayenta's spelling).
std::string_view to_string(Label label);

/// "either", "increase" or "decrease" (Kayenta's `direction`); nullopt for anything else.
std::optional<Direction> parse_direction(std::string_view text);

/// "meanRatio" or "cles" (Kayenta's `effectSize.measure`); nullopt for anything else.
std::optional<EffectMeasure> parse_effect_measure(std::string_view text);

/// How one metric is judged. Defaults are the NetflixACAJudge's (§3.1, §3.3). NaN and ±infinity
/// samples are always removed (Kayenta's nanStrategy `remove`).
struct MetricConfig {
    Direction direction = Direction::kEither;
    /// Half-width of the "no change" band around 0, as a fraction of |estimate| (§3.3 step 5).
    double tolerance = 0.25;
    /// Confidence level of the Mann-Whitney interval, in (0, 1).
    double confidence = 0.98;
    EffectMeasure measure = EffectMeasure::kMeanRatio;
    /// Effect size a High needs (effect ≥ it) / a Low needs (effect ≤ it). nullopt: 1.0 for
    /// kMeanRatio, 0.5 for kCles, i.e. any significant change counts.
    std::optional<double> allowed_increase;
    std::optional<double> allowed_decrease;
    /// Effect size at which a High / Low of a critical metric fails the whole canary. nullopt:
    /// 1.0 for kMeanRatio, 0.5 for kCles.
    std::optional<double> critical_increase;
    std::optional<double> critical_decrease;
    /// A failing critical metric fails the canary (score 0).
    bool critical = false;
    /// Missing data labels the metric NodataFailMetric (a failure) instead of Nodata.
    bool must_have_data = false;
    /// Drop outliers on each side before the test with an IQR fence (§3.2 step 2).
    bool remove_outliers = false;
    /// IQR multiplier of the outlier fences.
    double outlier_factor = 3.0;
};

/// The verdict on one metric and the numbers behind it. Values are in the metric's units unless
/// stated; NaN marks a number that was not computed (e.g. no test ran).
struct Classification {
    Label label = Label::kError;
    /// This result fails the whole canary (a critical metric that is High/Low beyond its critical
    /// effect size, or Nodata/Error).
    bool critical = false;
    /// One human-readable sentence saying why (for Events and status).
    std::string reason;
    /// Location shift canary − primary and its confidence interval (mann_whitney()).
    double estimate = std::numeric_limits<double>::quiet_NaN();
    double ci_lower = std::numeric_limits<double>::quiet_NaN();
    double ci_upper = std::numeric_limits<double>::quiet_NaN();
    /// The configured effect measure (dimensionless).
    double effect_size = std::numeric_limits<double>::quiet_NaN();
    /// mean(canary) / mean(primary); NaN if a side is empty or a mean is 0.
    double ratio = std::numeric_limits<double>::quiet_NaN();
    /// Samples left after NaN and outlier removal.
    std::size_t canary_count = 0;
    std::size_t primary_count = 0;
    /// Means of those samples; NaN for an empty side.
    double canary_mean = std::numeric_limits<double>::quiet_NaN();
    double primary_mean = std::numeric_limits<double>::quiet_NaN();
};

/// Judges one metric (§3.2, §3.3): `canary` is the experiment (x), `primary` the control (y),
/// each sample an independent observation. Removes non-finite samples and, if configured,
/// outliers; then: a side empty → Nodata (NodataFailMetric if must_have_data and not critical);
/// identical samples or a single distinct value overall → Pass; each side constant → a tiny
/// deterministic Gaussian jitter (σ = 1e-5 × value) before the test; otherwise High/Low/Pass from
/// the Mann-Whitney interval against ±tolerance × |estimate| and the effect size. A failure of
/// the test is Label::kError with the reason, never an exception.
Classification classify(std::vector<double> canary, std::vector<double> primary,
                        const MetricConfig& config);

/// A metric's name with its verdict, the input to score().
struct NamedClassification {
    std::string name;
    Classification result;
};

/// The overall verdict of one analysis run.
enum class Summary { kPass, kMarginal, kFail };

/// "Pass", "Marginal" or "Fail".
std::string_view to_string(Summary summary);

/// The result of scoring a set of metric verdicts.
struct Score {
    /// 0-100, rounded to 2 decimals.
    double score;
    Summary summary;
    /// Human-readable: why the score was overridden, and which metrics were High, Low or
    /// without data.
    std::string reason;
};

/// Scores metric verdicts as one Kayenta group (§3.4): numPass / (numPass + numHigh + numLow +
/// numNodataFailMetric) × 100 rounded to 2 decimals, or 100 when that denominator is 0 (Nodata
/// and Error are not counted). The score is forced to 0 when a metric has `critical` set and is
/// not Pass, or when at least half the metrics are Nodata. Summary: score ≥ pass_threshold →
/// kPass; else score > marginal_threshold → kMarginal; else kFail (at the marginal threshold is
/// a Fail, as Kayenta's interval check stops there); a failed critical metric is always kFail.
/// Thresholds are on the same 0-100 scale.
Score score(std::span<const NamedClassification> metrics, double pass_threshold,
            double marginal_threshold);

}  // namespace serin::analysis::judge
