#include "platform/kube/event_recorder.hpp"

#include "platform/core/json.hpp"
#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cstdio>
#include <ctime>

namespace serin::kube {

namespace asio = boost::asio;

namespace {

constexpr std::size_t kMaxMessage = 1024;

std::string metadata_field(const Json& object, const char* field) {
    auto meta = object.find("metadata");
    if (meta == object.end() || !meta->is_object()) {
        return {};
    }
    return json_string(*meta, field);
}

}  // namespace

EventRecorder::EventRecorder(KubeClient& client, Clock& clock, EventRecorderOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

void EventRecorder::post(const asio::any_io_executor& executor, const Json& involved,
                         EventType type, std::string reason, std::string message,
                         OnError on_error) {
    if (queue_.size() >= options_.queue_limit) {
        ++dropped_;
        if (on_error) {
            on_error(fail(ErrorKind::kTooManyRequests,
                          "dropped: " + std::to_string(queue_.size()) + " Events wait already"));
        }
        return;
    }
    Json reference = Json::object();
    for (const char* field : {"apiVersion", "kind"}) {
        if (const auto it = involved.find(field); it != involved.end()) {
            reference[field] = *it;
        }
    }
    if (const auto meta = involved.find("metadata"); meta != involved.end() && meta->is_object()) {
        Json& out = reference["metadata"];
        for (const char* field : {"name", "namespace", "uid", "resourceVersion"}) {
            if (const auto it = meta->find(field); it != meta->end()) {
                out[field] = *it;
            }
        }
    }
    queue_.push_back(Posted{std::move(reference), type, std::move(reason), std::move(message),
                            std::move(on_error), clock_.system_now()});
    if (!writing_) {
        writing_ = true;
        asio::co_spawn(executor, write_posted(), asio::detached);
    }
}

asio::awaitable<void> EventRecorder::write_posted() {
    while (!queue_.empty()) {
        if (options_.hold_back != nullptr) {
            co_await options_.hold_back->quiet();
        }
        Posted next = std::move(queue_.front());
        queue_.pop_front();
        in_flight_ = true;
        auto recorded = co_await record(std::move(next.involved), next.type,
                                        std::move(next.reason), std::move(next.message), next.at);
        in_flight_ = false;
        if (!recorded && next.on_error) {
            next.on_error(recorded.error());
        }
    }
    writing_ = false;
}

void EventRecorder::remember(const std::string& key, Seen seen) {
    lru_.push_front(key);
    seen.lru = lru_.begin();
    seen_[key] = std::move(seen);
    while (seen_.size() > options_.cache_size && !lru_.empty()) {
        seen_.erase(lru_.back());
        lru_.pop_back();
    }
}

asio::awaitable<Result<void>> EventRecorder::record(Json involved, EventType type,
                                                    std::string reason, std::string message,
                                                    std::optional<SystemTime> at) {
    // Cut at a character boundary and made valid UTF-8: the message quotes what users and
    // remote servers wrote, and an Event with broken UTF-8 could not be sent at all.
    message = text::clip(message, kMaxMessage);
    reason = text::clip(reason, 128);
    const std::string type_name = type == EventType::kWarning ? "Warning" : "Normal";
    const std::string ns = object_namespace(involved).empty() ? "default"
                                                              : object_namespace(involved);
    const std::string uid = object_uid(involved);
    const std::string object = object_name(involved);
    const std::string now = format_time(at.value_or(clock_.system_now()));
    const std::string key = uid + "\n" + ns + "/" + object + "\n" + type_name + "\n" + reason +
                            "\n" + message;

    if (auto it = seen_.find(key); it != seen_.end()) {
        Seen& seen = it->second;
        lru_.splice(lru_.begin(), lru_, seen.lru);
        const std::int64_t count = seen.count + 1;
        Json patch = {{"count", count}, {"lastTimestamp", now}};
        const std::string event_ns = seen.ns;
        const std::string event_name = seen.name;
        auto patched = co_await client_.patch(types::events(), event_ns, event_name,
                                              PatchType::kMerge, dump_json(patch));
        if (patched) {
            // Look the entry up again: the cache may have changed while the patch was in flight.
            if (auto again = seen_.find(key); again != seen_.end()) {
                again->second.count = count;
            }
            ++aggregated_;
            co_return Result<void>{};
        }
        if (patched.error().kind != ErrorKind::kNotFound) {
            co_return patched.error();
        }
        // The Event expired on the server (events live an hour): post a new one.
        if (auto again = seen_.find(key); again != seen_.end()) {
            lru_.erase(again->second.lru);
            seen_.erase(again);
        }
    }

    char suffix[24];
    std::snprintf(suffix, sizeof suffix, "%llx",
                  static_cast<unsigned long long>(
                      std::chrono::duration_cast<std::chrono::nanoseconds>(
                          clock_.system_now().time_since_epoch())
                          .count()) +
                      sequence_++);
    const std::string event_name = object + "." + suffix;
    Json event = {
        {"apiVersion", "v1"},
        {"kind", "Event"},
        {"metadata", {{"name", event_name}, {"namespace", ns}}},
        {"involvedObject",
         {{"apiVersion", json_string(involved, "apiVersion")},
          {"kind", json_string(involved, "kind")},
          {"name", object},
          {"namespace", ns},
          {"uid", uid},
          {"resourceVersion", metadata_field(involved, "resourceVersion")}}},
        {"reason", reason},
        {"message", message},
        {"type", type_name},
        {"source", {{"component", options_.component}, {"host", options_.host}}},
        {"firstTimestamp", now},
        {"lastTimestamp", now},
        {"count", 1},
        {"reportingComponent", options_.component},
        {"reportingInstance", options_.host},
    };
    auto created = co_await client_.create(types::events(), ns, std::move(event));
    if (!created) {
        co_return created.error();
    }
    ++created_;
    remember(key, Seen{ns, event_name, 1, {}});
    co_return Result<void>{};
}

}  // namespace serin::kube
