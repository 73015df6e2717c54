#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

/// The chaos campaign (issue 18, item 2): releases on a private devcluster, driven by two serin
/// binaries with leader election, while a seeded schedule injects faults; invariants checked
/// from outside serin (objects polled from the API server, alerts received by the driver,
/// serin's own request counters).
namespace serin::chaos {

struct CampaignOptions {
    std::uint64_t seed = 1;
    int canaries = 4;
    /// At most this many releases in all (they run side by side, one per canary at a time).
    int releases = 12;
    /// Faults are injected and releases started for this long; then the ones running finish.
    double minutes = 2.5;
    /// "early-step" (two analysis steps closer than the interval allows) counts as a failure.
    /// Pacing is persisted in the Canary's status (docs/release-engine.md), so a restarted or
    /// newly leading serin waits out the interval; without this such steps are only reported.
    bool enforce_pacing = true;
    /// Everything fails the run, "alert-lost-at-serin-exit" too: an alert whose status change
    /// was written just before a serin exited (killed, stopped, or gone with its lease) and that
    /// never arrived. Serin keeps unsent alerts in memory, so delivery across an exit is at most
    /// once today; without this such losses are reported, not failed. Alerts lost with no exit
    /// near them ("alert-lost") always fail.
    bool strict = false;
};

/// SERIN_CHAOS_SEED, SERIN_CHAOS_CANARIES, SERIN_CHAOS_RELEASES, SERIN_CHAOS_MINUTES and
/// SERIN_CHAOS_ENFORCE_PACING=1,
/// SERIN_CHAOS_STRICT=1 over the defaults (hack/chaos sets them).
CampaignOptions options_from_environment();

struct CampaignReport {
    CampaignOptions options;
    int releases_started = 0;
    int releases_ended = 0;
    int healthy = 0;
    int failing = 0;
    std::map<std::string, int> faults;        ///< injected, by kind
    std::map<std::string, int> violations;    ///< by invariant, every kind listed (0 too)
    std::set<std::string> report_only;        ///< kinds counted but not failing the run
    std::vector<std::string> details;         ///< one line per violation
    double api_requests = 0;
    double api_seconds = 0;
    double api_max_rate = 0;                  ///< requests/s over the busiest sampling window
    double api_bound = 0;
    double seconds = 0;
    int alerts_received = 0;
    int webhook_calls = 0;
    int leader_kills_skipped = 0;
    int early_step_unjudged = 0;
    int slow_restarts = 0;
    int serin_exits_by_itself = 0;            ///< e.g. a leader that could not renew its lease
    /// Why the campaign stopped before its end (a component that never came back), or empty.
    /// The table is still printed, and the devcluster's folder kept at `cluster_dir`.
    std::string stopped_early;
    std::string cluster_dir;

    /// Violations of kinds that fail the run.
    int failures() const;
    /// The table hack/chaos prints.
    std::string table() const;
};

/// Runs a whole campaign: starts its own devcluster (the faults restart its control plane),
/// returns when every release has ended (or timed out) and the alerts have been counted.
/// Throws std::runtime_error when the set-up itself fails (no cluster, no serin); a failure
/// after the faults began ends the campaign with `stopped_early` set instead.
CampaignReport run_campaign(const CampaignOptions& options);

}  // namespace serin::chaos
