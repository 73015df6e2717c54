#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

#include "platform/core/clock.hpp"
#include "platform/core/quiet_gate.hpp"
#include "platform/core/time.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::kube {

enum class EventType { kNormal, kWarning };

struct EventRecorderOptions {
    std::string component = "flagger";  ///< source.component; Flagger's, so alert rules carry over
    std::string host;                   ///< source.host and reportingInstance
    std::size_t cache_size = 4096;      ///< distinct events remembered for aggregation
    /// Events post() holds, not yet written; past it a new one is dropped (client-go's
    /// broadcaster keeps 1000).
    std::size_t queue_limit = 1000;
    /// When set, post()'s writer awaits its quiet() before each write, so posted Events wait
    /// while the controller's reconciles run (each keeps the time it was posted). Must outlive
    /// the recorder.
    QuietGate* hold_back = nullptr;
};

/// Posts core/v1 Events about an object. A repeat of the same event (same object, type, reason
/// and message) while it is still remembered bumps the existing Event's count and lastTimestamp
/// instead of creating another, as kubectl describe expects.
///
/// Errors are returned for the caller to log and count; an Event that cannot be posted must never
/// fail the work it describes. Thread safety: one io_context thread.
class EventRecorder {
public:
    EventRecorder(KubeClient& client, Clock& clock, EventRecorderOptions options);

    /// `involved` is the object the event is about (its apiVersion, kind and metadata are read).
    /// The Event's time is `at` (when what it reports happened), else now.
    boost::asio::awaitable<Result<void>> record(Json involved, EventType type, std::string reason,
                                                std::string message,
                                                std::optional<SystemTime> at = std::nullopt);

    /// What post() does when an Event could not be written (or was dropped).
    using OnError = std::function<void(const Error&)>;
    /// record() in the background: queues the Event and returns. One coroutine on `executor`
    /// writes the queued Events in the order they were posted, as client-go's broadcaster does,
    /// so no reconcile waits on the API server for an Event it only reports. Past
    /// `queue_limit` pending Events the new one is dropped and `on_error` told. Events still
    /// queued when the process exits are lost (they are best effort, as in client-go). The
    /// recorder must outlive the io_context's runs.
    /// Only what the Event names of `involved` is queued (apiVersion, kind, namespace, name,
    /// uid, resourceVersion), not the object: 1,000 queued Events about Canaries held ~8 MB
    /// of canary trees.
    void post(const boost::asio::any_io_executor& executor, const Json& involved, EventType type,
              std::string reason, std::string message, OnError on_error = nullptr);
    /// Events posted and not yet written.
    std::size_t pending() const { return queue_.size() + (in_flight_ ? 1 : 0); }
    std::uint64_t dropped() const { return dropped_; }

    std::uint64_t created() const { return created_; }
    std::uint64_t aggregated() const { return aggregated_; }

private:
    struct Seen {
        std::string ns;
        std::string name;
        std::int64_t count = 1;
        std::list<std::string>::iterator lru;
    };
    void remember(const std::string& key, Seen seen);
    struct Posted {
        Json involved;
        EventType type;
        std::string reason;
        std::string message;
        OnError on_error;
        SystemTime at;
    };
    /// Writes queue_ until it is empty.
    boost::asio::awaitable<void> write_posted();

    KubeClient& client_;
    Clock& clock_;
    EventRecorderOptions options_;
    std::unordered_map<std::string, Seen> seen_;
    std::list<std::string> lru_;  ///< most recently used first
    std::uint64_t sequence_ = 0;
    std::uint64_t created_ = 0;
    std::uint64_t aggregated_ = 0;
    std::deque<Posted> queue_;
    bool writing_ = false;    ///< write_posted() runs
    bool in_flight_ = false;  ///< it awaits the write of one it took from queue_
    std::uint64_t dropped_ = 0;
};

}  // namespace serin::kube
