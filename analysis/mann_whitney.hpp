#pragma once

#include <span>

#include "platform/core/result.hpp"

/// The two-sample Wilcoxon rank-sum (Mann-Whitney U) location estimate and confidence interval
/// that Kayenta's NetflixACAJudge uses (field-notes §3.3 step 4). Pure: no I/O, no globals.
/// Thread safety: every function here is reentrant.
namespace serin::analysis::judge {

/// The location shift between two samples (x − y), in the units of the samples.
struct MannWhitney {
    double estimate;  ///< the Hodges-Lehmann-type shift: the root of the normal statistic at z = 0
    double lower;     ///< lower end of the two-sided confidence interval
    double upper;     ///< upper end of the two-sided confidence interval
};

/// The same numbers as R's `wilcox.test(x, y, conf.int = TRUE, conf.level = confidence,
/// exact = FALSE, correct = TRUE)` (two-sided): the normal approximation of the rank-sum
/// statistic of x − μ against y, with tie correction, solved for the shift μ with Brent's method
/// on [min(x) − max(y), max(x) − min(y)] to R's root tolerance of 1e-4 (in the units of the
/// samples). The interval ends are the roots at z = ±Φ⁻¹(1 − (1 − confidence)/2) with the
/// continuity correction; an end whose equation has no sign change on the range is clamped to
/// the range's end. The estimate is the root at z = 0 *without* the continuity correction, as R
/// computes it (R turns `correct` off before solving for the estimate).
///
/// `x` is the experiment (canary), `y` the control (primary); `confidence` is in (0, 1),
/// e.g. 0.98. Errors (ErrorKind::kInvalid): an empty sample, a non-finite sample value, a
/// confidence outside (0, 1), every observation tied (σ = 0, e.g. both samples constant), or a
/// statistic that has no root on the search range.
Result<MannWhitney> mann_whitney(std::span<const double> x, std::span<const double> y,
                                 double confidence);

/// The standard normal quantile Φ⁻¹(p) for p in (0, 1), accurate to a few ulps; ±infinity at 0
/// and 1, NaN outside [0, 1]. Exposed for tests.
double normal_quantile(double p);

}  // namespace serin::analysis::judge
