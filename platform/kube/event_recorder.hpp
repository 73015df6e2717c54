#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "platform/core/clock.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::kube {

enum class EventType { kNormal, kWarning };

struct EventRecorderOptions {
    std::string component = "flagger";  ///< source.component; Flagger's, so alert rules carry over
    std::string host;                   ///< source.host and reportingInstance
    std::size_t cache_size = 4096;      ///< distinct events remembered for aggregation
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
    boost::asio::awaitable<Result<void>> record(Json involved, EventType type, std::string reason,
                                                std::string message);

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

    KubeClient& client_;
    Clock& clock_;
    EventRecorderOptions options_;
    std::unordered_map<std::string, Seen> seen_;
    std::list<std::string> lru_;  ///< most recently used first
    std::uint64_t sequence_ = 0;
    std::uint64_t created_ = 0;
    std::uint64_t aggregated_ = 0;
};

}  // namespace serin::kube
