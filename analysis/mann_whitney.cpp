#include "analysis/mann_whitney.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

namespace serin::analysis::judge {
namespace {

// R's wilcox.test solves for the interval ends and the estimate with uniroot(tol = tol.root),
// whose default is 1e-4. The statistic is a step function of the shift, so the answer depends on
// where the search stops; using the same tolerance and the same iteration is what makes our
// numbers agree with R's.
constexpr double kRootTolerance = 1e-4;
constexpr int kRootMaxIterations = 1000;

struct BrentOutcome {
    double root;
    bool converged;
};

/// Brent's root finder (Brent 1973, "Algorithms for Minimization without Derivatives", ch. 4)
/// for f on [a, b] given fa = f(a), fb = f(b) of opposite signs (or one of them zero). Each step
/// tries inverse quadratic interpolation (or the secant when only two points are known) and
/// falls back to bisection when the interpolated point is outside the bracket or would not
/// shrink it fast enough. Stops when the bracket is within 2·ε·|b| + tol/2 of the best point.
template <class F>
BrentOutcome brent_root(F&& f, double a, double b, double fa, double fb, double tol,
                        int max_iterations) {
    if (fa == 0.0) {
        return {a, true};
    }
    if (fb == 0.0) {
        return {b, true};
    }
    // b is the best estimate so far, a the previous one, and c the point that brackets the
    // root together with b (f(b) and f(c) have opposite signs).
    double c = a;
    double fc = fa;
    for (int iteration = 0; iteration <= max_iterations; ++iteration) {
        const double previous_step = b - a;
        if (std::fabs(fc) < std::fabs(fb)) {
            a = b;
            fa = fb;
            b = c;
            fb = fc;
            c = a;
            fc = fa;
        }
        const double tolerance =
            2.0 * std::numeric_limits<double>::epsilon() * std::fabs(b) + tol / 2.0;
        double step = (c - b) / 2.0;  // bisection, unless interpolation does better
        if (std::fabs(step) <= tolerance || fb == 0.0) {
            return {b, true};
        }
        // Interpolate only if the last step was not tiny and it reduced |f|.
        if (std::fabs(previous_step) >= tolerance && std::fabs(fa) > std::fabs(fb)) {
            const double to_c = c - b;
            double p = 0.0;
            double q = 0.0;
            if (a == c) {
                const double s = fb / fa;
                p = to_c * s;
                q = 1.0 - s;
            } else {
                const double ratio_ac = fa / fc;
                const double ratio_bc = fb / fc;
                const double ratio_ba = fb / fa;
                p = ratio_ba *
                    (to_c * ratio_ac * (ratio_ac - ratio_bc) - (b - a) * (ratio_bc - 1.0));
                q = (ratio_ac - 1.0) * (ratio_bc - 1.0) * (ratio_ba - 1.0);
            }
            // Keep p ≥ 0 and move the sign into q, so the step is p / q.
            if (p > 0.0) {
                q = -q;
            } else {
                p = -p;
            }
            const bool inside_bracket = p < 0.75 * to_c * q - std::fabs(tolerance * q) / 2.0;
            const bool shrinks_fast = p < std::fabs(previous_step * q / 2.0);
            if (inside_bracket && shrinks_fast) {
                step = p / q;
            }
        }
        if (std::fabs(step) < tolerance) {
            step = step > 0.0 ? tolerance : -tolerance;
        }
        a = b;
        fa = fb;
        b += step;
        fb = f(b);
        if ((fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0)) {
            c = a;
            fc = fa;
        }
    }
    return {b, false};
}

/// The normal approximation of the rank-sum statistic of x − μ against y, as a function of μ:
/// (dz − sign(dz)/2) / σ, where dz = Σ rank(x − μ) − nx(nx+1)/2 − nx·ny/2 and σ carries the tie
/// correction; the continuity correction sign(dz)/2 can be switched off. Both samples are kept
/// sorted, so one evaluation is a linear merge.
class ShiftStatistic {
public:
    ShiftStatistic(std::vector<double> x_sorted, std::vector<double> y_sorted)
        : x_(std::move(x_sorted)), y_(std::move(y_sorted)) {}

    /// NaN (and all_tied() = true) when every observation is tied at this shift.
    double evaluate(double shift, bool continuity_correction) {
        const std::size_t nx = x_.size();
        const std::size_t ny = y_.size();
        double rank_sum_x = 0.0;
        double tie_term = 0.0;  // Σ (t³ − t) over groups of t tied observations
        std::size_t i = 0;
        std::size_t j = 0;
        std::size_t position = 0;  // observations already ranked
        while (i < nx || j < ny) {
            // Subtracting the same shift keeps x sorted (rounding is monotone), so merging the
            // two sorted sequences visits the pooled sample in order.
            double value = 0.0;
            if (j == ny || (i < nx && x_[i] - shift <= y_[j])) {
                value = x_[i] - shift;
            } else {
                value = y_[j];
            }
            std::size_t in_x = 0;
            while (i < nx && x_[i] - shift == value) {
                ++in_x;
                ++i;
            }
            std::size_t in_y = 0;
            while (j < ny && y_[j] == value) {
                ++in_y;
                ++j;
            }
            const auto group = static_cast<double>(in_x + in_y);
            // The group takes ranks position+1 … position+group; each gets their average.
            const double average_rank = static_cast<double>(position) + (group + 1.0) / 2.0;
            rank_sum_x += static_cast<double>(in_x) * average_rank;
            tie_term += group * group * group - group;
            position += in_x + in_y;
        }
        const auto dnx = static_cast<double>(nx);
        const auto dny = static_cast<double>(ny);
        const double dn = dnx + dny;
        const double dz = rank_sum_x - dnx * (dnx + 1.0) / 2.0 - dnx * dny / 2.0;
        double correction = 0.0;
        if (continuity_correction) {
            correction = dz > 0.0 ? 0.5 : (dz < 0.0 ? -0.5 : 0.0);
        }
        const double sigma =
            std::sqrt((dnx * dny / 12.0) * ((dn + 1.0) - tie_term / (dn * (dn - 1.0))));
        if (sigma == 0.0) {
            all_tied_ = true;
            return std::numeric_limits<double>::quiet_NaN();
        }
        return (dz - correction) / sigma;
    }

    bool all_tied() const { return all_tied_; }

private:
    std::vector<double> x_;
    std::vector<double> y_;
    bool all_tied_ = false;
};

/// Φ⁻¹(1 − q) for q in (0, 0.5]: the upper-tail quantile, computed from q itself so that small
/// tail probabilities keep their precision.
double upper_tail_quantile(double q) {
    if (q == 0.5) {
        return 0.0;
    }
    // Start from Abramowitz & Stegun 26.2.23 (|error| < 4.5e-4), then polish with Halley's
    // method on Q(z) = erfc(z/√2)/2 = q; three or four steps reach full double precision.
    const double t = std::sqrt(-2.0 * std::log(q));
    double z = t - (2.515517 + t * (0.802853 + t * 0.010328)) /
                       (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308)));
    for (int step = 0; step < 8; ++step) {
        // Near the centre, Q(z) − q = (0.5 − q) − erf(z/√2)/2 avoids cancelling two values close
        // to 0.5 (0.5 − q is exact there).
        const double residual = q > 0.25 ? (0.5 - q) - 0.5 * std::erf(z / std::numbers::sqrt2)
                                         : 0.5 * std::erfc(z / std::numbers::sqrt2) - q;
        // residual / φ(z), with φ(z) = exp(−z²/2)/√(2π).
        const double u = residual * std::sqrt(2.0 * std::numbers::pi) * std::exp(z * z / 2.0);
        const double delta = u / (1.0 - z * u / 2.0);
        z += delta;
        if (std::fabs(delta) <= 1e-17 * std::fabs(z)) {
            break;
        }
    }
    return z;
}

bool all_finite(std::span<const double> v) {
    return std::all_of(v.begin(), v.end(), [](double d) { return std::isfinite(d); });
}

}  // namespace

double normal_quantile(double p) {
    if (std::isnan(p) || p < 0.0 || p > 1.0) {
        return std::numeric_limits<double>::quiet_NaN();
    }
    if (p == 0.0) {
        return -std::numeric_limits<double>::infinity();
    }
    if (p == 1.0) {
        return std::numeric_limits<double>::infinity();
    }
    // 1 − p is exact for p ≥ 0.5, so the upper half loses nothing by reflecting.
    return p < 0.5 ? -upper_tail_quantile(p) : upper_tail_quantile(1.0 - p);
}

Result<MannWhitney> mann_whitney(std::span<const double> x, std::span<const double> y,
                                 double confidence) {
    if (x.empty() || y.empty()) {
        return fail(ErrorKind::kInvalid,
                    "mann-whitney: a sample is empty (x: " + std::to_string(x.size()) +
                        ", y: " + std::to_string(y.size()) + ")");
    }
    if (!all_finite(x) || !all_finite(y)) {
        return fail(ErrorKind::kInvalid, "mann-whitney: a sample holds NaN or infinity");
    }
    if (!(confidence > 0.0 && confidence < 1.0)) {
        return fail(ErrorKind::kInvalid, "mann-whitney: confidence must be in (0, 1), got " +
                                             std::to_string(confidence));
    }
    std::vector<double> xs(x.begin(), x.end());
    std::vector<double> ys(y.begin(), y.end());
    std::sort(xs.begin(), xs.end());
    std::sort(ys.begin(), ys.end());
    const double shift_min = xs.front() - ys.back();
    const double shift_max = xs.back() - ys.front();
    const Error all_tied = fail(ErrorKind::kInvalid,
                                "mann-whitney: cannot compute a confidence interval when all "
                                "observations are tied (sigma = 0)");
    if (!(shift_min < shift_max)) {
        // Only possible when both samples are constant: every shift ties everything.
        return all_tied;
    }

    ShiftStatistic statistic(std::move(xs), std::move(ys));
    const double at_min = statistic.evaluate(shift_min, true);
    const double at_max = statistic.evaluate(shift_max, true);
    if (statistic.all_tied()) {
        return all_tied;
    }

    // The statistic falls as the shift grows. An interval end whose equation has no sign change
    // on the range is clamped to the range's end (e.g. one canary sample against many).
    auto solve = [&](double z) {
        const double f_min = at_min - z;
        if (f_min <= 0.0) {
            return shift_min;
        }
        const double f_max = at_max - z;
        if (f_max >= 0.0) {
            return shift_max;
        }
        auto f = [&](double shift) { return statistic.evaluate(shift, true) - z; };
        return brent_root(f, shift_min, shift_max, f_min, f_max, kRootTolerance, kRootMaxIterations)
            .root;
    };
    const double alpha = 1.0 - confidence;
    const double z = -normal_quantile(alpha / 2.0);  // > 0
    MannWhitney out{};
    out.lower = solve(z);
    out.upper = solve(-z);

    // R solves for the estimate with the continuity correction switched off (wilcox.test sets
    // `correct <- FALSE` before it), and without clamping: the uncorrected statistic must change
    // sign (or reach zero) on the range.
    auto uncorrected = [&](double shift) { return statistic.evaluate(shift, false); };
    const double plain_min = uncorrected(shift_min);
    const double plain_max = uncorrected(shift_max);
    const auto sign = [](double v) { return v > 0.0 ? 1 : (v < 0.0 ? -1 : 0); };
    if (statistic.all_tied() || sign(plain_min) * sign(plain_max) > 0) {
        return fail(ErrorKind::kInvalid,
                    "mann-whitney: the location statistic has no root on the search range");
    }
    out.estimate = brent_root(uncorrected, shift_min, shift_max, plain_min, plain_max,
                              kRootTolerance, kRootMaxIterations)
                       .root;
    if (statistic.all_tied()) {
        return all_tied;
    }
    // Like R's uniroot (which only warns), an unconverged search keeps its last point. On a
    // bracketed root Brent's method needs at most a few times log2(range / tolerance) steps, far
    // fewer than kRootMaxIterations, so this is not reached in practice.
    return out;
}

}  // namespace serin::analysis::judge
