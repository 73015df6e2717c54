#include "platform/kube/object_store.hpp"

#include <charconv>

namespace serin::kube {

bool resource_version_at_least(std::string_view a, std::string_view b) {
    auto parse = [](std::string_view text, std::uint64_t& out) {
        const auto* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(text.data(), end, out);
        return ec == std::errc{} && ptr == end && !text.empty();
    };
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    if (parse(a, x) && parse(b, y)) {
        return x >= y;
    }
    return a == b;
}

std::string ObjectStore::type_key(const ResourceType& type) {
    return type.group + "/" + type.version + "/" + type.resource;
}

void ObjectStore::add(Informer& informer, FetchedObjects* full) {
    const std::string type = type_key(informer.type());
    informers_[type] = &informer;
    informer.add_handlers(EventHandlers{
        [this, type](const ObjectPtr& object) { caught_up(type, *object, false); },
        [this, type](const ObjectPtr& /*before*/, const ObjectPtr& after) {
            caught_up(type, *after, false);
        },
        [this, type](const ObjectPtr& object) { caught_up(type, *object, true); }});
    if (full != nullptr) {
        fetched_[type] = full;
    }
}

bool ObjectStore::serves(const ResourceType& type) const { return informer(type) != nullptr; }

bool ObjectStore::synced() const {
    for (const auto& [key, informer] : informers_) {
        if (!informer->has_synced()) {
            return false;
        }
    }
    return true;
}

const Informer* ObjectStore::informer(const ResourceType& type) const {
    auto it = informers_.find(type_key(type));
    return it == informers_.end() ? nullptr : it->second;
}

ObjectPtr ObjectStore::get(const ResourceType& type, std::string_view ns,
                           std::string_view name) const {
    const Informer* source = informer(type);
    if (source == nullptr) {
        return nullptr;
    }
    const auto full = fetched_.find(type_key(type));
    ObjectPtr cached = full != fetched_.end() ? full->second->get(ns, name) : source->get(ns, name);
    drop_expired();
    auto it = overlay_.find(Key{type_key(type), std::string(ns), std::string(name)});
    if (it == overlay_.end()) {
        return cached;
    }
    const Entry& entry = it->second;
    const bool expired = clock_.steady_now() - entry.written_at > overlay_ttl_;
    bool caught_up = false;
    if (entry.object == nullptr) {
        caught_up = cached == nullptr;  // the delete has reached the cache
    } else if (cached != nullptr) {
        caught_up = resource_version_at_least(object_resource_version(*cached),
                                              entry.resource_version);
    }
    if (expired || caught_up) {
        overlay_.erase(it);
        return cached;
    }
    return entry.object;
}

std::vector<ObjectPtr> ObjectStore::list(const ResourceType& type, std::string_view ns) const {
    const Informer* source = informer(type);
    if (source == nullptr) {
        return {};
    }
    return source->by_index("namespace", std::string(ns));
}

std::vector<ObjectPtr> ObjectStore::by_index(const ResourceType& type, const std::string& index,
                                             const std::string& value) const {
    const Informer* source = informer(type);
    if (source == nullptr) {
        return {};
    }
    return source->by_index(index, value);
}

void ObjectStore::wrote(const ResourceType& type, ObjectPtr object) {
    const Informer* source = informer(type);
    if (source == nullptr || object == nullptr || !object->is_object()) {
        return;
    }
    if (const auto full = fetched_.find(type_key(type)); full != fetched_.end()) {
        // Held in full from now on, so the informer's echo of this write costs no GET.
        full->second->wrote(*object);
    }
    Key key{type_key(type), object_namespace(*object), object_name(*object)};
    std::string version = object_resource_version(*object);
    drop_expired();
    // The watch may have delivered this version before the write's answer was read.
    const std::optional<std::string> cached =
        source->cached_version(std::get<1>(key), std::get<2>(key));
    if (cached && resource_version_at_least(*cached, version)) {
        overlay_.erase(key);
        return;
    }
    const SteadyTime now = clock_.steady_now();
    written_order_.emplace_back(now, key);
    overlay_[std::move(key)] = Entry{std::move(object), std::move(version), now};
}

void ObjectStore::caught_up(const std::string& type, const Json& object, bool deleted) {
    const auto it = overlay_.find(Key{type, object_namespace(object), object_name(object)});
    if (it == overlay_.end()) {
        return;
    }
    const Entry& entry = it->second;
    // A delete event carries the object's last version: deleted after this write, it is gone.
    const bool done = entry.object == nullptr
                          ? deleted
                          : resource_version_at_least(object_resource_version(object),
                                                      entry.resource_version);
    if (done) {
        overlay_.erase(it);  // written_order_'s turn for it finds nothing to drop
    }
}

void ObjectStore::deleted(const ResourceType& type, std::string_view ns, std::string_view name) {
    if (!serves(type)) {
        return;
    }
    drop_expired();
    const SteadyTime now = clock_.steady_now();
    Key key{type_key(type), std::string(ns), std::string(name)};
    written_order_.emplace_back(now, key);
    overlay_[std::move(key)] = Entry{nullptr, {}, now};
}

void ObjectStore::drop_expired() const {
    const SteadyTime now = clock_.steady_now();
    while (!written_order_.empty() && now - written_order_.front().first > overlay_ttl_) {
        const auto& [written_at, key] = written_order_.front();
        // Only the turn that wrote the entry now there drops it: a key written again since
        // stays until its own turn.
        const auto it = overlay_.find(key);
        if (it != overlay_.end() && it->second.written_at == written_at) {
            overlay_.erase(it);
        }
        written_order_.pop_front();
    }
}

}  // namespace serin::kube
