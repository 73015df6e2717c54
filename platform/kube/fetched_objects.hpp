#pragma once

#include <boost/asio/awaitable.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "platform/kube/informer.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::kube {

/// Full copies of the few objects Serin uses of a type it watches by metadata only: Secrets.
///
/// A cluster holds many Secrets (Helm keeps every release in one), and their values are none of
/// Serin's business unless a Canary uses them (configs its target mounts, a MetricTemplate's or
/// an AlertProvider's credentials). The informer (InformerOptions::metadata_only) tells what
/// exists and when it changes; fetch() GETs an object the first time it is needed and again only
/// after the informer has seen it change, so a steady state costs no reads.
///
/// Thread safety: one io_context thread, like the informer's handlers.
class FetchedObjects {
public:
    /// `metadata` must be a metadata-only informer of the type; both must outlive this.
    FetchedObjects(KubeClient& client, Informer& metadata);

    /// Makes sure the named objects of `ns` that exist are held in full and current. Objects the
    /// informer does not have are skipped (get() then says they do not exist).
    /// Errors: the client's, for a GET that failed other than with kNotFound.
    boost::asio::awaitable<Result<void>> fetch(std::string ns, std::vector<std::string> names);

    /// The full object, or nullptr when the informer does not have it or it was not fetched.
    ObjectPtr get(std::string_view ns, std::string_view name) const;

    /// Remembers what this process wrote (a create, update or patch returned it).
    void wrote(const Json& object);

    /// Objects held in full.
    std::size_t size() const { return objects_.size(); }
    /// GETs made since construction.
    std::uint64_t fetches() const { return fetches_; }

private:
    using Key = std::pair<std::string, std::string>;  // namespace, name

    KubeClient& client_;
    Informer& metadata_;
    std::map<Key, ObjectPtr> objects_;
    std::uint64_t fetches_ = 0;
};

}  // namespace serin::kube
