#include "controller/canary/history_store.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <chrono>
#include <exception>
#include <utility>
#include <vector>

#include "controller/workload/workload.hpp"
#include "crds/api/json_access.hpp"
#include "platform/core/log.hpp"
#include "platform/kube/discovery.hpp"

namespace serin::canary {

namespace asio = boost::asio;
using kube::Json;

namespace {

/// How long the store waits before it looks again for a CanaryHistory API it could not use.
constexpr Duration kLookAgain = std::chrono::minutes{5};
/// Conflicts in a row before a record is given up (another writer keeps changing the object).
constexpr int kAttempts = 3;

/// The first container's image of a workload, for people.
std::string image_of(const kube::ObjectPtr& target) {
    if (target == nullptr) {
        return "";
    }
    const Json* containers = api::find_path(*target, {"spec", "template", "spec", "containers"});
    if (containers == nullptr || !containers->is_array() || containers->empty()) {
        return "";
    }
    return api::string_at((*containers)[0], {"image"});
}

/// Whether the stored object belongs to this canary (and not to a deleted one of the same name
/// that the garbage collector has not caught up with).
bool owned_by_canary(const Json& metadata, const api::Canary& canary) {
    if (canary.metadata.uid.empty()) {
        return true;
    }
    const Json* refs = api::member(metadata, "ownerReferences");
    if (refs == nullptr || !refs->is_array()) {
        return false;
    }
    return std::any_of(refs->begin(), refs->end(), [&](const Json& ref) {
        return api::string_at(ref, {"uid"}) == canary.metadata.uid;
    });
}

bool has_open_release(const api::CanaryHistory& history) {
    return !history.releases.empty() && history.releases.back().outcome == api::outcome::kRunning;
}

}  // namespace

HistoryStore::HistoryStore(kube::KubeClient& api, Clock& clock, asio::any_io_executor executor,
                           HistoryStoreOptions options)
    : api_(api), clock_(clock), executor_(std::move(executor)), options_(options) {}

void HistoryStore::forget(const std::string& key) {
    entries_.erase(key);
    const auto queued = queued_.find(key);
    if (queued == queued_.end()) {
        return;
    }
    pending_ -= queued->second.size();
    if (writing_.count(key) > 0) {
        queued->second.clear();  // the writer ends after the write under way
        forgotten_.insert(key);
        return;
    }
    queued_.erase(queued);
    waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), key), waiting_.end());
}

void HistoryStore::record(const api::Canary& canary, const kube::ObjectPtr& target,
                          const analysis::Observations& observations,
                          const analysis::Decision& decision) {
    const std::string key = canary.metadata.ns + "/" + canary.metadata.name;
    const auto kept = entries_.find(key);
    const bool in_memory =
        queued_.count(key) > 0 ||
        (kept != entries_.end() && (kept->second.pending || has_open_release(kept->second.history)));
    if (!in_memory && !analysis::concerns_history(canary.status, decision)) {
        return;  // a canary at rest: nothing to read or write
    }
    if (pending_ >= options_.max_queued) {
        ++stats_.dropped;
        ++stats_.failures;
        if (stats_.dropped % 100 == 1) {  // the first of each hundred: the log must not flood
            CanaryLog(key).warn(
                "a release history record was dropped ({} so far): {} records wait to be written",
                stats_.dropped, pending_);
        }
        return;
    }
    auto [queued, fresh] = queued_.try_emplace(key);
    queued->second.push_back(
        Record{canary, decision, observations, image_of(target), clock_.system_now()});
    ++pending_;
    if (fresh) {
        waiting_.push_back(key);
        start_writers();
    }
}

void HistoryStore::start_writers() {
    const std::size_t limit = std::max<std::size_t>(1, options_.max_writers);
    while (writing_.size() < limit && !waiting_.empty()) {
        std::string key = std::move(waiting_.front());
        waiting_.pop_front();
        writing_.insert(key);
        asio::co_spawn(executor_, write_queued(std::move(key)), asio::detached);
    }
}

asio::awaitable<void> HistoryStore::write_queued(std::string key) {
    for (;;) {
        if (options_.hold_back != nullptr) {
            // Records report what the status says already: they wait while reconciles run.
            co_await options_.hold_back->quiet();
        }
        const auto queued = queued_.find(key);
        if (queued == queued_.end() || queued->second.empty()) {
            break;
        }
        Record next = std::move(queued->second.front());
        queued->second.pop_front();
        Update update = [&next](api::CanaryHistory& history) {
            return analysis::update_history(history, next.canary, next.decision,
                                            next.observations, next.image, next.at);
        };
        try {
            co_await apply(next.canary, std::move(update));
        } catch (const std::exception& e) {
            // A bug must not leave the canary's later records queued for ever.
            ++stats_.failures;
            CanaryLog(key).error("recording its release history failed: {}", e.what());
        }
        --pending_;
        if (forgotten_.erase(key) > 0) {
            entries_.erase(key);  // the canary is gone: what the write kept goes too
        }
    }
    if (forgotten_.erase(key) > 0) {
        entries_.erase(key);  // forgotten while the writer waited
    }
    queued_.erase(key);
    writing_.erase(key);
    start_writers();
}

asio::awaitable<bool> HistoryStore::served() {
    if (served_.has_value() && (*served_ || clock_.steady_now() < look_again_)) {
        co_return *served_;
    }
    std::vector<kube::ResourceType> wanted{kube::types::canary_histories()};
    const std::vector<kube::ResourceType> found =
        co_await kube::served_types(api_, std::move(wanted));
    const bool now_served = !found.empty();
    if (!now_served && served_ != false) {
        spdlog::warn(
            "the API server does not serve canaryhistories.serin.dev/v1alpha1 (its CRD "
            "is not installed): release history is not recorded");
    } else if (now_served && served_ == false) {
        spdlog::info("canaryhistories.serin.dev/v1alpha1 is served now: recording release history");
    }
    served_ = now_served;
    look_again_ = clock_.steady_now() + kLookAgain;
    co_return now_served;
}

void HistoryStore::not_allowed(const Error& error) {
    if (served_ != false) {
        spdlog::warn("release history is not recorded: {}", error.message);
    }
    served_ = false;
    look_again_ = clock_.steady_now() + kLookAgain;
}

asio::awaitable<bool> HistoryStore::load(const api::Canary& canary, const std::string& key) {
    auto got = co_await api_.get(kube::types::canary_histories(), canary.metadata.ns, canary.metadata.name);
    Entry entry;
    if (got) {
        Json metadata = got->contains("metadata") ? (*got)["metadata"] : Json::object();
        if (owned_by_canary(metadata, canary)) {
            auto decoded = api::decode_canary_history(*got);
            if (decoded) {
                entry.history = std::move(*decoded);
            }
        }
        entry.metadata = std::move(metadata);
    } else if (got.error().kind != ErrorKind::kNotFound) {
        ++stats_.failures;
        if (got.error().kind == ErrorKind::kForbidden) {
            not_allowed(got.error());
        } else {
            CanaryLog(key).warn("could not read its release history: {}", got.error().message);
        }
        co_return false;
    }
    entries_[key] = std::move(entry);
    co_return true;
}

asio::awaitable<Result<Json>> HistoryStore::write(const api::Canary& canary, const Entry& entry,
                                                  const api::CanaryHistory& next) {
    const Json owner = owner_reference(canary);
    Json body = {{"apiVersion", kube::types::canary_histories().api_version()},
                 {"kind", kube::types::canary_histories().kind},
                 {"spec", api::encode_canary_history_spec(next)}};
    if (entry.metadata.is_null()) {
        body["metadata"] = {{"name", canary.metadata.name},
                            {"namespace", canary.metadata.ns},
                            {"labels", {{"app.kubernetes.io/managed-by", "serin"}}},
                            {"ownerReferences", Json::array({owner})}};
        co_return co_await api_.create(kube::types::canary_histories(), canary.metadata.ns, std::move(body));
    }
    body["metadata"] = entry.metadata;
    if (!owned_by_canary(entry.metadata, canary)) {
        body["metadata"]["ownerReferences"] = Json::array({owner});
    }
    body["metadata"].erase("managedFields");
    co_return co_await api_.update(kube::types::canary_histories(), canary.metadata.ns, std::move(body));
}

asio::awaitable<void> HistoryStore::apply(const api::Canary& canary, Update update) {
    // Not `if (!co_await ...)`: g++ 12 miscompiles a co_await inside a condition.
    const bool available = co_await served();
    if (!available) {
        co_return;
    }
    const std::string key = canary.metadata.ns + "/" + canary.metadata.name;
    for (int attempt = 0; attempt < kAttempts; ++attempt) {
        if (entries_.count(key) == 0) {
            const bool loaded = co_await load(canary, key);
            if (!loaded) {
                co_return;
            }
        }
        api::CanaryHistory next = entries_[key].history;
        const bool changed = update(next);
        if (!changed && !entries_[key].pending) {
            if (!has_open_release(next)) {
                entries_.erase(key);
            }
            co_return;
        }
        const Entry snapshot = entries_[key];
        Result<Json> written = co_await write(canary, snapshot, next);
        if (written) {
            ++stats_.writes;
            if (!has_open_release(next)) {
                entries_.erase(key);  // read again when the next release starts
                co_return;
            }
            Entry& entry = entries_[key];
            entry.metadata =
                written->contains("metadata") ? (*written)["metadata"] : Json::object();
            entry.history = std::move(next);
            entry.pending = false;
            co_return;
        }
        const ErrorKind kind = written.error().kind;
        if (kind == ErrorKind::kConflict || kind == ErrorKind::kAlreadyExists ||
            kind == ErrorKind::kNotFound) {
            // Changed or created by someone else, or deleted: read it again and apply the same
            // update to what is stored now.
            ++stats_.conflicts;
            entries_.erase(key);
            continue;
        }
        ++stats_.failures;
        if (kind == ErrorKind::kForbidden) {
            not_allowed(written.error());
        } else {
            CanaryLog(key).warn("could not write its release history (kept for the next write): {}",
                                written.error().message);
        }
        Entry& entry = entries_[key];
        entry.history = std::move(next);
        entry.pending = true;
        co_return;
    }
    ++stats_.failures;
    CanaryLog(key).warn("gave up recording its release history after {} conflicts", kAttempts);
}

}  // namespace serin::canary
