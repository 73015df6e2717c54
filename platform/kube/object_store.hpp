#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "platform/core/clock.hpp"
#include "platform/kube/fetched_objects.hpp"
#include "platform/kube/informer.hpp"

namespace serin::kube {

/// Reads objects from informer caches, with read-your-writes: an object this process has just
/// written is returned as written until the cache has caught up with it.
///
/// Without that, a reconcile that runs right after a write (triggered by another event) would
/// decide on the version from before the write and could repeat it. An entry written here is
/// returned until the cache holds the same or a newer resourceVersion (Kubernetes versions are
/// etcd revisions, compared as integers; an unparsable version is trusted when equal), or until
/// `overlay_ttl` passes, whichever comes first. The informer's own event for that version lets
/// go of the entry at once, so the overlay holds only writes whose echo is still on its way
/// (at 1,000 canaries initializing it held ~28 MB of written objects for their 30 s).
///
/// Thread safety: one io_context thread, like the informers' handlers.
class ObjectStore {
public:
    explicit ObjectStore(Clock& clock, Duration overlay_ttl = std::chrono::seconds{30})
        : clock_(clock), overlay_ttl_(overlay_ttl) {}

    /// Serves `type` from `informer`, which must outlive the store (and deliver no event once
    /// the store is gone): the store adds handlers to it, so call before it runs. For an
    /// informer of metadata only, `full` serves the objects (those it has fetched) and learns
    /// of this process's writes through wrote(); it must outlive the store too.
    void add(Informer& informer, FetchedObjects* full = nullptr);
    /// Whether reads of `type` are served.
    bool serves(const ResourceType& type) const;
    /// Whether every informer has synced.
    bool synced() const;

    /// The object, or nullptr when it does not exist (or `type` is not served).
    ObjectPtr get(const ResourceType& type, std::string_view ns, std::string_view name) const;
    /// The objects of `type` in `ns`, from the cache (writes of this process not overlaid).
    std::vector<ObjectPtr> list(const ResourceType& type, std::string_view ns) const;
    /// The objects of `type` whose index `index` has `value`.
    std::vector<ObjectPtr> by_index(const ResourceType& type, const std::string& index,
                                    const std::string& value) const;

    /// Remembers what a create, update or patch returned (shared, not copied), unless the
    /// cache already holds that version.
    void wrote(const ResourceType& type, ObjectPtr object);
    void wrote(const ResourceType& type, Json object) {
        wrote(type, std::make_shared<const Json>(std::move(object)));
    }
    /// Remembers a delete.
    void deleted(const ResourceType& type, std::string_view ns, std::string_view name);

    /// Entries still overlaid, for tests.
    std::size_t overlaid() const { return overlay_.size(); }

private:
    using Key = std::tuple<std::string, std::string, std::string>;  // group/version/resource, ns, name
    struct Entry {
        ObjectPtr object;  ///< nullptr for a delete
        std::string resource_version;
        SteadyTime written_at;
    };
    static std::string type_key(const ResourceType& type);
    const Informer* informer(const ResourceType& type) const;
    /// The informer's event for `object`: a written entry of that or an older version (updated
    /// or deleted since), or a delete entry once the object is gone, has been caught up with.
    void caught_up(const std::string& type, const Json& object, bool deleted);
    /// Drops the entries written more than overlay_ttl ago: an object written and never read
    /// again would otherwise be held, as a tree, for as long as the process runs.
    void drop_expired() const;

    Clock& clock_;
    Duration overlay_ttl_;
    std::map<std::string, const Informer*> informers_;
    std::map<std::string, FetchedObjects*> fetched_;
    mutable std::map<Key, Entry> overlay_;
    /// The overlay's keys in the order they were written (a key written again appears again;
    /// drop_expired() skips the stale turns).
    mutable std::deque<std::pair<SteadyTime, Key>> written_order_;
};

/// Whether resourceVersion `a` is at least `b` (integers compared numerically).
bool resource_version_at_least(std::string_view a, std::string_view b);

}  // namespace serin::kube
