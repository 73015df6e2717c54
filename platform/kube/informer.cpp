#include "platform/kube/informer.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <algorithm>
#include <mutex>

#include "platform/core/backoff.hpp"

namespace serin::kube {

namespace asio = boost::asio;

std::string object_key(const Json& object) {
    std::string ns = object_namespace(object);
    return ns.empty() ? object_name(object) : ns + "/" + object_name(object);
}

namespace {

/// The cache's key of `ns`/`name`, as object_key() makes it of an object.
std::string cache_key(std::string_view ns, std::string_view name) {
    return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

std::vector<std::string> namespace_index(const Json& object) {
    std::string ns = object_namespace(object);
    if (ns.empty()) {
        return {};
    }
    return {std::move(ns)};
}

}  // namespace

std::vector<std::string> owner_index(const Json& object) {
    std::vector<std::string> out;
    auto meta = object.find("metadata");
    if (meta == object.end()) {
        return out;
    }
    auto owners = meta->find("ownerReferences");
    if (owners == meta->end() || !owners->is_array()) {
        return out;
    }
    for (const auto& owner : *owners) {
        if (owner.is_object()) {
            std::string uid = owner.value("uid", "");
            if (!uid.empty()) {
                out.push_back(std::move(uid));
            }
        }
    }
    return out;
}

std::vector<std::string> label_index(const Json& object) {
    std::vector<std::string> out;
    auto meta = object.find("metadata");
    if (meta == object.end()) {
        return out;
    }
    auto labels = meta->find("labels");
    if (labels == meta->end() || !labels->is_object()) {
        return out;
    }
    for (const auto& [key, value] : labels->items()) {
        if (value.is_string()) {
            out.push_back(key + "=" + value.get<std::string>());
        }
    }
    return out;
}

std::int64_t draw_watch_timeout(std::mt19937_64& random, std::int64_t min_seconds,
                                std::int64_t max_seconds) {
    const std::int64_t low = std::max<std::int64_t>(1, std::min(min_seconds, max_seconds));
    const std::int64_t high = std::max(low, std::max(min_seconds, max_seconds));
    return std::uniform_int_distribution<std::int64_t>(low, high)(random);
}

Informer::Informer(KubeClient& client, Clock& clock, ResourceType type, InformerOptions options)
    : client_(client),
      clock_(clock),
      type_(std::move(type)),
      options_(std::move(options)),
      random_(options_.watch_timeout_seed != 0 ? options_.watch_timeout_seed
                                               : std::random_device{}()) {
    index_funcs_.emplace("namespace", namespace_index);
}

void Informer::add_handlers(EventHandlers handlers) { handlers_.push_back(std::move(handlers)); }

void Informer::add_index(std::string name, IndexFunc func) {
    index_funcs_.insert_or_assign(std::move(name), std::move(func));
}

bool Informer::has_synced() const {
    std::shared_lock lock(mutex_);
    return synced_;
}

std::string Informer::resource_version() const {
    std::shared_lock lock(mutex_);
    return resource_version_;
}

InformerStats Informer::stats() const {
    std::shared_lock lock(mutex_);
    return stats_;
}

std::int64_t Informer::last_watch_timeout() const {
    std::shared_lock lock(mutex_);
    return last_watch_timeout_;
}

ObjectPtr Informer::get(const std::string& key) const {
    std::shared_lock lock(mutex_);
    auto it = objects_.find(key);
    return it == objects_.end() ? nullptr : materialize(it->second);
}

ObjectPtr Informer::get(std::string_view ns, std::string_view name) const {
    return get(cache_key(ns, name));
}

std::optional<std::string> Informer::cached_version(std::string_view ns,
                                                    std::string_view name) const {
    const std::string key = cache_key(ns, name);
    std::shared_lock lock(mutex_);
    const auto it = objects_.find(key);
    if (it == objects_.end()) {
        return std::nullopt;
    }
    return it->second.resource_version;
}

std::vector<ObjectPtr> Informer::list() const {
    std::shared_lock lock(mutex_);
    std::vector<ObjectPtr> out;
    out.reserve(objects_.size());
    for (const auto& [key, stored] : objects_) {
        out.push_back(materialize(stored));
    }
    return out;
}

std::size_t Informer::size() const {
    std::shared_lock lock(mutex_);
    return objects_.size();
}

CacheSize Informer::cache_size() const {
    std::shared_lock lock(mutex_);
    return CacheSize{objects_.size(), encoded_bytes_};
}

std::vector<ObjectPtr> Informer::by_index(const std::string& index,
                                          const std::string& value) const {
    std::shared_lock lock(mutex_);
    std::vector<ObjectPtr> out;
    auto idx = indexes_.find(index);
    if (idx == indexes_.end()) {
        return out;
    }
    auto keys = idx->second.find(value);
    if (keys == idx->second.end()) {
        return out;
    }
    for (const auto& key : keys->second) {
        if (auto it = objects_.find(key); it != objects_.end()) {
            out.push_back(materialize(it->second));
        }
    }
    return out;
}

std::vector<std::string> Informer::keys_by_index(const std::string& index,
                                                 const std::string& value) const {
    std::shared_lock lock(mutex_);
    const auto idx = indexes_.find(index);
    if (idx == indexes_.end()) {
        return {};
    }
    const auto keys = idx->second.find(value);
    if (keys == idx->second.end()) {
        return {};
    }
    return {keys->second.begin(), keys->second.end()};
}

bool Informer::indexed(const std::string& index, const std::string& value,
                       const std::string& key) const {
    std::shared_lock lock(mutex_);
    const auto idx = indexes_.find(index);
    if (idx == indexes_.end()) {
        return false;
    }
    const auto keys = idx->second.find(value);
    return keys != idx->second.end() && keys->second.contains(key);
}

std::map<std::string, std::size_t> Informer::count_by_index(const std::string& index) const {
    std::shared_lock lock(mutex_);
    std::map<std::string, std::size_t> out;
    if (auto idx = indexes_.find(index); idx != indexes_.end()) {
        for (const auto& [value, keys] : idx->second) {
            out.emplace(value, keys.size());  // index_erase drops a value's last key with it
        }
    }
    return out;
}

void Informer::prepare(Json& object) const {
    if (!object.is_object()) {
        return;
    }
    if (options_.strip_managed_fields) {
        if (auto meta = object.find("metadata"); meta != object.end() && meta->is_object()) {
            meta->erase("managedFields");
        }
    }
    // Watch events carry apiVersion and kind already; LIST items were given theirs by the client.
    if (!object.contains("kind")) {
        object["apiVersion"] = type_.api_version();
        object["kind"] = type_.kind;
    }
}

Informer::Stored Informer::store(ObjectPtr object) const {
    Stored stored;
    stored.resource_version = object_resource_version(*object);
    if (!options_.compact) {
        stored.tree = std::move(object);
        return stored;
    }
    Json::to_cbor(*object, stored.encoded);
    // The encoder grows the string as it writes: keep only what it holds.
    stored.encoded.shrink_to_fit();
    stored.decoded = object;
    return stored;
}

// The caller holds mutex_, shared or unique.
ObjectPtr Informer::materialize(const Stored& stored) const {
    if (stored.tree) {
        return stored.tree;
    }
    std::lock_guard memo(memo_mutex_);
    if (ObjectPtr live = stored.decoded.lock()) {
        return live;
    }
    // Encoded here from a tree that was valid JSON, so decoding cannot fail.
    auto object = std::make_shared<const Json>(Json::from_cbor(stored.encoded));
    stored.decoded = object;
    return object;
}

// The caller holds the unique lock.
void Informer::index_insert(const std::string& key, const Json& object) {
    for (const auto& [name, func] : index_funcs_) {
        auto& index = indexes_[name];
        for (auto& value : func(object)) {
            index[value].insert(key);
        }
    }
}

// The caller holds the unique lock.
void Informer::index_erase(const std::string& key, const Json& object) {
    for (const auto& [name, func] : index_funcs_) {
        auto& index = indexes_[name];
        for (auto& value : func(object)) {
            auto it = index.find(value);
            if (it != index.end()) {
                it->second.erase(key);
                if (it->second.empty()) {
                    index.erase(it);
                }
            }
        }
    }
}

void Informer::notify_add(const ObjectPtr& object) {
    for (auto& h : handlers_) {
        if (h.on_add) {
            h.on_add(object);
        }
    }
}

void Informer::notify_update(const ObjectPtr& old_object, const ObjectPtr& new_object) {
    for (auto& h : handlers_) {
        if (h.on_update) {
            h.on_update(old_object, new_object);
        }
    }
}

void Informer::notify_delete(const ObjectPtr& object) {
    for (auto& h : handlers_) {
        if (h.on_delete) {
            h.on_delete(object);
        }
    }
}

void Informer::apply_upsert(ObjectPtr object) {
    std::string key = object_key(*object);
    Stored stored = store(object);
    apply_upsert(key, std::move(stored), object);
}

void Informer::apply_upsert(const std::string& key, Stored stored, const ObjectPtr& object) {
    ObjectPtr old;
    {
        std::unique_lock lock(mutex_);
        auto it = objects_.find(key);
        if (it != objects_.end()) {
            old = materialize(it->second);
            index_erase(key, *old);
            encoded_bytes_ -= it->second.encoded.size();
            it->second = std::move(stored);
            encoded_bytes_ += it->second.encoded.size();
        } else {
            encoded_bytes_ += stored.encoded.size();
            objects_.emplace(key, std::move(stored));
        }
        index_insert(key, *object);
    }
    if (old) {
        notify_update(old, object);
    } else {
        notify_add(object);
    }
}

void Informer::apply_delete(const std::string& key) {
    ObjectPtr old;
    {
        std::unique_lock lock(mutex_);
        auto it = objects_.find(key);
        if (it == objects_.end()) {
            return;
        }
        old = materialize(it->second);
        index_erase(key, *old);
        encoded_bytes_ -= it->second.encoded.size();
        objects_.erase(it);
    }
    notify_delete(old);
}

asio::awaitable<Result<void>> Informer::list_and_replace() {
    // Each item is stored (encoded) as its page arrives, so a LIST of many objects never holds
    // more than one page of them as trees.
    std::unordered_map<std::string, Stored> fresh;
    ListOptions list_options;
    list_options.label_selector = options_.label_selector;
    list_options.field_selector = options_.field_selector;
    list_options.limit = options_.page_size;
    list_options.metadata_only = options_.metadata_only;
    std::string resource_version;
    do {
        auto page = co_await client_.list(type_, options_.ns, list_options);
        if (!page) {
            co_return page.error();
        }
        for (auto& item : page->items) {
            prepare(item);
            std::string key = object_key(item);
            fresh.insert_or_assign(std::move(key),
                                   store(std::make_shared<const Json>(std::move(item))));
        }
        // The resourceVersion of the first page is the snapshot the whole list belongs to; later
        // pages repeat it.
        if (resource_version.empty()) {
            resource_version = page->resource_version;
        }
        list_options.continue_token = page->continue_token;
    } while (!list_options.continue_token.empty());

    // Diff the fresh list against the cache, so a re-list reports what changed while the watch
    // was down and nothing else.
    std::vector<std::string> gone;
    {
        std::shared_lock lock(mutex_);
        for (const auto& [key, stored] : objects_) {
            if (!fresh.contains(key)) {
                gone.push_back(key);
            }
        }
    }
    for (const auto& key : gone) {
        apply_delete(key);
    }
    for (auto& [key, stored] : fresh) {
        bool unchanged = false;
        {
            std::shared_lock lock(mutex_);
            auto it = objects_.find(key);
            unchanged = it != objects_.end() &&
                        it->second.resource_version == stored.resource_version;
        }
        if (!unchanged) {
            // The tree for the handlers, decoded one at a time.
            const ObjectPtr object = materialize(stored);
            apply_upsert(key, std::move(stored), object);
        }
    }
    {
        std::unique_lock lock(mutex_);
        resource_version_ = resource_version;
        synced_ = true;
        ++stats_.lists;
    }
    co_return Result<void>{};
}

asio::awaitable<Result<void>> Informer::watch_once() {
    WatchOptions watch_options;
    watch_options.resource_version = resource_version();
    watch_options.label_selector = options_.label_selector;
    watch_options.field_selector = options_.field_selector;
    watch_options.timeout_seconds = draw_watch_timeout(
        random_, options_.watch_timeout_min_seconds, options_.watch_timeout_max_seconds);
    watch_options.metadata_only = options_.metadata_only;
    {
        std::unique_lock lock(mutex_);
        ++stats_.watches;
        last_watch_timeout_ = watch_options.timeout_seconds;
    }
    co_return co_await client_.watch(type_, options_.ns, watch_options, [this](WatchEvent&& event) {
        prepare(event.object);
        std::string rv = object_resource_version(event.object);
        switch (event.type) {
            case WatchEvent::Type::kBookmark:
                break;
            case WatchEvent::Type::kAdded:
            case WatchEvent::Type::kModified:
                apply_upsert(std::make_shared<const Json>(std::move(event.object)));
                break;
            case WatchEvent::Type::kDeleted:
                apply_delete(object_key(event.object));
                break;
        }
        std::unique_lock lock(mutex_);
        if (!rv.empty()) {
            resource_version_ = std::move(rv);
        }
        if (event.type != WatchEvent::Type::kBookmark) {
            ++stats_.events;
        }
        return !stopped_;
    });
}

asio::awaitable<void> Informer::run() {
    // Cancellation ends the loop below through results and the state check, not as an exception.
    co_await asio::this_coro::throw_if_cancelled(false);
    Backoff backoff(options_.backoff_initial, options_.backoff_max);
    bool need_list = true;
    while (!stopped_) {
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) {
            break;
        }
        Result<void> result;
        if (need_list) {
            result = co_await list_and_replace();
        } else {
            result = co_await watch_once();
        }
        if (stopped_) {
            break;
        }
        if (result) {
            if (need_list) {
                need_list = false;
            }
            backoff.reset();
            continue;  // a watch that ended cleanly (server timeout) resumes at once
        }
        const Error& error = result.error();
        if (error.kind == ErrorKind::kCancelled) {
            break;
        }
        if (error.kind == ErrorKind::kGone) {
            spdlog::info("informer {}: resourceVersion expired, re-listing", type_.resource);
            std::unique_lock lock(mutex_);
            ++stats_.relists_after_gone;
            need_list = true;
            continue;
        }
        {
            std::unique_lock lock(mutex_);
            ++stats_.watch_failures;
        }
        auto delay = backoff.next();
        spdlog::warn("informer {}: {} failed: {}; retrying in {} ms", type_.resource,
                     need_list ? "list" : "watch", error.describe(), delay.count());
        // Not `if (!co_await ...)`: g++ 12 miscompiles a co_await inside a condition.
        const bool slept = co_await clock_.sleep_for(delay);
        if (!slept) {
            break;
        }
    }
}

void Informer::start(asio::any_io_executor executor) {
    asio::co_spawn(executor, run(),
                   asio::bind_cancellation_slot(stop_signal_.slot(), [this](std::exception_ptr e) {
                       if (e) {
                           try {
                               std::rethrow_exception(e);
                           } catch (const std::exception& ex) {
                               spdlog::error("informer {} stopped by an exception: {}",
                                             type_.resource, ex.what());
                           }
                       }
                   }));
}

void Informer::stop() {
    // Once: outside the io_context's thread the emit is posted, holding a pointer into the
    // slot's handler; a second emit after that handler has run would post another.
    if (stopped_) {
        return;
    }
    stopped_ = true;
    stop_signal_.emit(asio::cancellation_type::all);
}

}  // namespace serin::kube
