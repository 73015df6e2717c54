#pragma once

#include <optional>

#include "crds/api/canary.hpp"
#include "platform/core/time.hpp"

/// Pacing of analysis steps (docs/release-engine.md, "Pacing"): when the last paced step was
/// taken and how long until the next may be. Pure; wall-clock times, because the record crosses
/// processes (a restarted controller, a new leader) through the Canary's status.
namespace serin::analysis {

/// The time of the last paced step: the later of the status' record (status.lastStepTime, which
/// survives a restart or a change of leader) and this process's own (`own`, for paced steps whose
/// status was not written). nullopt when neither holds one; an unreadable record counts as none.
std::optional<SystemTime> last_paced_step(const api::CanaryStatus& status,
                                          std::optional<SystemTime> own);

/// How long from `now` until the next paced step may be taken; zero when it may be now.
///
/// A step time ahead of `now` comes from a clock ahead of this one (the previous leader's). It
/// is believed up to one interval ahead, so the wait is never longer than two intervals; one
/// further ahead is not believed at all and the step is due, so no skew stalls a canary.
Duration until_next_step(std::optional<SystemTime> last_step, SystemTime now, Duration interval);

/// The analysis interval of `canary` (Flagger's default 1m without an analysis).
Duration interval_of(const api::Canary& canary);

}  // namespace serin::analysis
