#include "controller/canary/history_store.hpp"

#include <algorithm>
#include <chrono>
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

HistoryStore::HistoryStore(kube::KubeClient& api, Clock& clock) : api_(api), clock_(clock) {}

void HistoryStore::forget(const std::string& key) { entries_.erase(key); }

asio::awaitable<void> HistoryStore::record(const api::Canary& canary, kube::ObjectPtr target,
                                           const analysis::Observations& observations,
                                           const analysis::Decision& decision) {
    const std::string key = canary.metadata.ns + "/" + canary.metadata.name;
    const auto kept = entries_.find(key);
    const bool in_memory =
        kept != entries_.end() && (kept->second.pending || has_open_release(kept->second.history));
    if (!in_memory && !analysis::concerns_history(canary.status, decision)) {
        co_return;  // a canary at rest: nothing to read or write
    }
    const std::string image = image_of(target);
    const SystemTime now = clock_.system_now();
    Update update = [&](api::CanaryHistory& history) {
        return analysis::update_history(history, canary, decision, observations, image, now);
    };
    co_await apply(canary, std::move(update));
}

asio::awaitable<void> HistoryStore::record_request(const api::Canary& canary,
                                                   analysis::RequestRecord request) {
    Update update = [&](api::CanaryHistory& history) {
        return analysis::record_request(history, request);
    };
    co_await apply(canary, std::move(update));
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
