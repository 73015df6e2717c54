#pragma once

#include <string_view>

#include "analysis/release.hpp"
#include "crds/api/canary_history.hpp"
#include "platform/core/time.hpp"

/// The release history (docs/runtime-control.md, `CanaryHistory`) kept up to date from the
/// release engine's decisions. Pure: the controller reads and writes the object.
namespace serin::analysis {

/// Whether a decision may change a history: the canary was or is releasing (Waiting,
/// Progressing, WaitingPromotion, Promoting, Finalising), or it was promoted at once (no
/// analysis). A caller need not read the history for any other decision.
bool concerns_history(const api::CanaryStatus& before, const Decision& decision);

/// Updates `history` with one decision about `canary` (as it was before the decision), made on
/// `observations` (with the answers decide() filled in) at `now`:
/// - a new revision being released (a run starts or waits for confirm-rollout, a new revision
///   restarts the analysis, or a release without analysis) opens a release; one left Running
///   becomes Superseded. A canary releasing without an open release (the history was lost or
///   installed mid-release) opens one too;
/// - an analysis step (a decision that used the tick and ran checks or gates, or moved the
///   weight, the iteration, the failed checks or the phase) appends a step: weight, iteration,
///   failed checks (a rollback's step keeps the count that ended it), each metric check's value
///   against the spec's thresholdRange, the judge's score and classifications, the webhooks
///   asked and their answers;
/// - Succeeded and Failed close the release with the outcome, its end and the reason (the text
///   of the final Event: for a rollback, the one that says why). A canary at rest in one of them
///   with its release still open (the decision that ended it was not recorded) closes it too.
/// `image` is the target's first container image. The bounds of crds/api/canary_history.hpp are
/// applied. Returns whether `history` changed.
bool update_history(api::CanaryHistory& history, const api::Canary& canary,
                    const Decision& decision, const Observations& observations,
                    std::string_view image, SystemTime now);

/// A runtime request handled for the canary (docs/runtime-control.md).
using RequestRecord = api::HistoryRequest;

/// Appends a handled request to the newest release (the one it acted on); false when the
/// history has no release yet. The last kHistoryMaxRequests requests of a release are kept.
bool record_request(api::CanaryHistory& history, const RequestRecord& request);

}  // namespace serin::analysis
