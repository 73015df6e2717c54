#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "platform/core/clock.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::kube {

/// An object as the cache holds it: immutable once published, so readers never need a lock
/// beyond the one that hands them the pointer.
using ObjectPtr = std::shared_ptr<const Json>;

/// "namespace/name", or "name" for cluster-scoped objects: the key of the cache and work queue.
std::string object_key(const Json& object);

/// Callbacks run on the informer's thread, in the order the server's changes happened.
struct EventHandlers {
    std::function<void(const ObjectPtr&)> on_add;
    std::function<void(const ObjectPtr& old_object, const ObjectPtr& new_object)> on_update;
    std::function<void(const ObjectPtr&)> on_delete;
};

/// Computes the index values of an object (e.g. its owners' uids).
using IndexFunc = std::function<std::vector<std::string>(const Json& object)>;

/// Index functions for add_index(): the uids in an object's ownerReferences, and its labels as
/// "key=value".
std::vector<std::string> owner_index(const Json& object);
std::vector<std::string> label_index(const Json& object);

struct InformerOptions {
    std::string ns;  ///< "" = all namespaces
    std::string label_selector;
    std::string field_selector;
    std::int64_t page_size = 500;  ///< LIST pages
    /// Each watch request asks the server to end it after a number of seconds drawn uniformly
    /// from [watch_timeout_min_seconds, watch_timeout_max_seconds], as client-go's reflector
    /// does (5 to 10 minutes), so that many informers do not renew their watches in step. The
    /// HTTP read of a watch gives up only a margin past that (RestClientOptions), so a quiet
    /// watch is not taken for dead before the server ends it.
    std::int64_t watch_timeout_min_seconds = 300;
    std::int64_t watch_timeout_max_seconds = 600;
    /// Seeds the draws (tests pass one); 0: a seed from std::random_device.
    std::uint64_t watch_timeout_seed = 0;
    bool strip_managed_fields = true;  ///< managedFields are large and Serin never reads them
    /// Keep each cached object as its CBOR encoding (about the size of its JSON text) and decode
    /// it when read, instead of as a JSON tree (about eight times larger: a node, a map entry and
    /// a heap string for most fields). A decoded object is shared while anyone holds it, so a
    /// reconcile that reads it twice decodes it once. Off: trees, as read (tests that compare).
    bool compact = true;
    /// Cache metadata only (PartialObjectMetadata): for Secrets, whose values Serin reads only
    /// for the few it uses (see FetchedObjects).
    bool metadata_only = false;
    std::chrono::milliseconds backoff_initial{200};
    std::chrono::milliseconds backoff_max{30'000};
};

struct InformerStats {
    std::uint64_t lists = 0;          ///< full LISTs (each may be several pages)
    std::uint64_t relists_after_gone = 0;
    std::uint64_t watches = 0;        ///< watch requests started
    std::uint64_t watch_failures = 0; ///< watches that ended in an error
    std::uint64_t events = 0;         ///< watch events applied (bookmarks excluded)
};

/// What a cache holds now.
struct CacheSize {
    std::size_t objects = 0;
    /// Bytes of the objects' encodings (0 for an informer that is not compact): the payload, not
    /// the map entries and keys around it.
    std::size_t encoded_bytes = 0;
};

/// The timeoutSeconds of one watch request: uniform in [min_seconds, max_seconds] (a reversed
/// range is read in order; at least 1).
std::int64_t draw_watch_timeout(std::mt19937_64& random, std::int64_t min_seconds,
                                std::int64_t max_seconds);

/// A cache of one resource type fed by LIST then WATCH.
///
/// The watch resumes from the last resourceVersion it saw (events and bookmarks), reconnects with
/// backoff and jitter after failures, and re-lists after 410 Gone; a re-list is diffed against the
/// cache so handlers see exactly the adds, updates and deletes that happened meanwhile.
///
/// Built-in index: "namespace". Others are added with add_index() (owner_index, label_index
/// below, or the caller's own): each index costs memory per object, so only what is queried.
/// Thread safety: run() and the handlers run on one thread (or strand); the read methods may be
/// called from any thread. Cancellation: stop(), or cancelling run()'s coroutine, ends run().
class Informer {
public:
    Informer(KubeClient& client, Clock& clock, ResourceType type, InformerOptions options = {});
    Informer(const Informer&) = delete;
    Informer& operator=(const Informer&) = delete;

    /// Adds handlers; call before run().
    void add_handlers(EventHandlers handlers);
    /// Adds a custom index; call before run().
    void add_index(std::string name, IndexFunc func);

    /// LISTs, then WATCHes until stopped.
    boost::asio::awaitable<void> run();
    /// Spawns run() on `executor`; stop() ends it for good (again: a no-op).
    void start(boost::asio::any_io_executor executor);
    void stop();

    bool has_synced() const;
    const ResourceType& type() const { return type_; }
    /// The resourceVersion the cache reflects.
    std::string resource_version() const;
    InformerStats stats() const;
    /// The timeoutSeconds of the watch request made last (0 before the first).
    std::int64_t last_watch_timeout() const;

    ObjectPtr get(const std::string& key) const;
    ObjectPtr get(std::string_view ns, std::string_view name) const;
    /// The resourceVersion of the cached object, without decoding it; nullopt when not cached.
    std::optional<std::string> cached_version(std::string_view ns, std::string_view name) const;
    std::vector<ObjectPtr> list() const;
    std::size_t size() const;
    CacheSize cache_size() const;
    /// Objects whose index `index` has value `value`.
    std::vector<ObjectPtr> by_index(const std::string& index, const std::string& value) const;
    /// The keys of those objects, in key order, without decoding any.
    std::vector<std::string> keys_by_index(const std::string& index,
                                           const std::string& value) const;
    /// Whether the object under `key` has value `value` in index `index` (nothing decoded).
    bool indexed(const std::string& index, const std::string& value, const std::string& key) const;
    /// How many objects each value of index `index` has (values with none left out), from the
    /// index alone: nothing is decoded. by_index("namespace", ...) counted per namespace, say.
    std::map<std::string, std::size_t> count_by_index(const std::string& index) const;

private:
    /// One cached object: its encoding, or the tree itself when the informer is not compact.
    struct Stored {
        ObjectPtr tree;                        ///< set when !options_.compact
        std::string encoded;                   ///< CBOR, when options_.compact
        std::string resource_version;          ///< compared by a re-list without decoding
        mutable std::weak_ptr<const Json> decoded;  ///< guarded by memo_mutex_
    };
    Stored store(ObjectPtr object) const;
    /// The object as a tree: the one a reader still holds, else decoded. For an entry of
    /// objects_, the caller holds mutex_ (shared or unique).
    ObjectPtr materialize(const Stored& stored) const;

    boost::asio::awaitable<Result<void>> list_and_replace();
    boost::asio::awaitable<Result<void>> watch_once();
    void prepare(Json& object) const;
    void apply_upsert(ObjectPtr object);
    /// Stores `object` (as `stored`, its encoding) under `key` and tells the handlers.
    void apply_upsert(const std::string& key, Stored stored, const ObjectPtr& object);
    void apply_delete(const std::string& key);
    void index_insert(const std::string& key, const Json& object);
    void index_erase(const std::string& key, const Json& object);
    void notify_add(const ObjectPtr& object);
    void notify_update(const ObjectPtr& old_object, const ObjectPtr& new_object);
    void notify_delete(const ObjectPtr& object);

    KubeClient& client_;
    Clock& clock_;
    ResourceType type_;
    InformerOptions options_;
    std::vector<EventHandlers> handlers_;
    std::map<std::string, IndexFunc> index_funcs_;
    boost::asio::cancellation_signal stop_signal_;
    bool stopped_ = false;
    std::mt19937_64 random_;  ///< watch timeouts

    mutable std::shared_mutex mutex_;  // guards everything below
    std::unordered_map<std::string, Stored> objects_;
    std::size_t encoded_bytes_ = 0;
    mutable std::mutex memo_mutex_;  // guards Stored::decoded
    std::map<std::string, std::unordered_map<std::string, std::set<std::string>>> indexes_;
    std::string resource_version_;
    bool synced_ = false;
    InformerStats stats_;
    std::int64_t last_watch_timeout_ = 0;
};

}  // namespace serin::kube
