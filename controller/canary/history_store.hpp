#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "analysis/history.hpp"
#include "analysis/release.hpp"
#include "crds/api/canary.hpp"
#include "crds/api/canary_history.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::canary {

/// What the store did since it was built.
struct HistoryStats {
    std::uint64_t writes = 0;     ///< creates and updates that succeeded
    std::uint64_t failures = 0;   ///< reads and writes that failed (the record waits or is lost)
    std::uint64_t conflicts = 0;  ///< writes that found the object changed and read it again
};

/// Keeps each canary's CanaryHistory object up to date with its releases (analysis/history).
///
/// The Reconciler calls record() after it has written a decision's status and before the
/// Reporter. The store reads the history of a canary once, when a release first needs it after a
/// start (so history survives restarts), and keeps it in memory while the release runs; a
/// release that has ended leaves memory after its last write, and the next one reads the object
/// again. It is never in an informer cache. Writes carry the resourceVersion; a Conflict reads
/// the object again and applies the same update to it. The object is created with an
/// ownerReference to the Canary, so it is deleted with it.
///
/// Best effort: nothing here fails a reconcile. A failed write is logged and counted, and its
/// record is kept in memory and written with the next change; a controller stopped in between
/// loses it. When the API server does not serve CanaryHistory (its CRD is not installed), or
/// forbids it, the store logs once and records nothing; it looks again after five minutes.
///
/// Thread safety: one io_context thread; calls for one canary must not overlap (the work queue
/// never hands one key out twice at once).
class HistoryStore {
public:
    HistoryStore(kube::KubeClient& api, Clock& clock);

    /// Records one decision about `canary` (as it was before it), made on `observations`, whose
    /// target is `target` (for its image; may be null).
    boost::asio::awaitable<void> record(const api::Canary& canary, kube::ObjectPtr target,
                                        const analysis::Observations& observations,
                                        const analysis::Decision& decision);
    /// Records a runtime request handled for `canary` in its newest release.
    boost::asio::awaitable<void> record_request(const api::Canary& canary,
                                                analysis::RequestRecord request);
    /// Drops what is kept about a canary that no longer exists.
    void forget(const std::string& key);

    const HistoryStats& stats() const { return stats_; }
    /// How many canaries' histories are kept in memory now.
    std::size_t kept() const { return entries_.size(); }

private:
    struct Entry {
        kube::Json metadata;  ///< of the stored object; null when there is none yet
        api::CanaryHistory history;
        bool pending = false;  ///< holds a change whose write failed
    };
    using Update = std::function<bool(api::CanaryHistory&)>;

    boost::asio::awaitable<void> apply(const api::Canary& canary, Update update);
    /// Whether CanaryHistory is served (discovery, cached for five minutes when it is not).
    boost::asio::awaitable<bool> served();
    /// Reads the object into entries_; false when the read failed.
    boost::asio::awaitable<bool> load(const api::Canary& canary, const std::string& key);
    boost::asio::awaitable<Result<kube::Json>> write(const api::Canary& canary, const Entry& entry,
                                                     const api::CanaryHistory& next);
    /// Stops recording for a while after a Forbidden answer.
    void not_allowed(const Error& error);

    kube::KubeClient& api_;
    Clock& clock_;
    std::map<std::string, Entry> entries_;
    std::optional<bool> served_;
    SteadyTime look_again_{};
    HistoryStats stats_;
};

}  // namespace serin::canary
