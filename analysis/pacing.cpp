#include "analysis/pacing.hpp"

#include "platform/core/time_format.hpp"

#include <algorithm>

namespace serin::analysis {

std::optional<SystemTime> last_paced_step(const api::CanaryStatus& status,
                                          std::optional<SystemTime> own) {
    const std::optional<SystemTime> recorded = status.last_step_time.empty()
                                                   ? std::nullopt
                                                   : parse_micro_time(status.last_step_time);
    if (recorded && own) {
        return std::max(*recorded, *own);
    }
    return recorded ? recorded : own;
}

Duration until_next_step(std::optional<SystemTime> last_step, SystemTime now, Duration interval) {
    if (!last_step) {
        return Duration::zero();
    }
    const auto ahead = std::chrono::duration_cast<Duration>(*last_step - now);
    if (ahead > interval) {
        return Duration::zero();  // not believed: see the header
    }
    return std::max(Duration::zero(), ahead + interval);
}

Duration interval_of(const api::Canary& canary) {
    return canary.spec.analysis ? Duration(canary.spec.analysis->interval_duration)
                                : Duration(std::chrono::seconds{60});
}

}  // namespace serin::analysis
