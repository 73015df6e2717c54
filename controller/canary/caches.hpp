#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "platform/core/clock.hpp"
#include "platform/kube/cached_client.hpp"
#include "platform/kube/fetched_objects.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/object_store.hpp"

namespace serin::canary {

struct CacheOptions {
    std::string ns;  ///< -namespace: "" watches every namespace
    /// The HPA API the server has (autoscaling/v2, else v2beta2).
    kube::ResourceType hpa_type = kube::types::horizontal_pod_autoscalers();
    /// The routing objects' types the API server serves (main finds them with
    /// kube::served_types over meshes::route_types::all()).
    std::vector<kube::ResourceType> route_types;
    /// Whether the server serves serin.dev's CanaryRequests (runtime requests); main finds out
    /// with kube::served_types.
    bool requests = false;
};

/// The informer caches of everything a canary touches (Canaries, Deployments, DaemonSets,
/// Services, ConfigMaps, Secrets by metadata with the values in use fetched on demand, HPAs,
/// MetricTemplates, AlertProviders and the served routing objects), the store that reads them
/// with read-your-writes, and the CachedClient on top. Built by the composition root and handed
/// to the controller, which adds its indexes and event handlers before start().
///
/// Thread safety: one io_context thread. The client and clock must outlive the caches.
class Caches {
public:
    Caches(kube::KubeClient& client, Clock& clock, CacheOptions options);
    ~Caches();
    Caches(const Caches&) = delete;
    Caches& operator=(const Caches&) = delete;

    /// Starts every informer (LIST, then WATCH); stop() ends them for good (a leader that loses
    /// its lease exits). stop() may be called again: it does nothing more. Called outside the
    /// io_context's thread, stop() posts the cancellations: run the io_context before the
    /// caches go, or not at all.
    void start(const boost::asio::any_io_executor& executor);
    void stop();
    /// Whether every informer has synced.
    bool synced() const { return store_.synced(); }

    kube::CachedClient& kube() { return kube_; }
    /// The API client itself, for objects kept in no cache (CanaryHistory).
    kube::KubeClient& client() { return client_; }
    const kube::ObjectStore& store() const { return store_; }
    kube::FetchedObjects& secrets() { return *secrets_; }
    /// The Canaries' index by target: "<ns>/<kind>/<name>" of spec.targetRef, built here so every
    /// reader (the controller's event routing, the reconciler's look for a canary competing for
    /// the same target) agrees on it.
    static constexpr const char* kCanariesByTarget = "target";
    static std::string target_key(const std::string& ns, const std::string& kind,
                                  const std::string& name);
    /// The informer of `type`; nullptr when none runs for it.
    kube::Informer* informer(const kube::ResourceType& type);
    kube::Informer& canaries() { return *canaries_; }
    /// The CanaryRequests' informer; nullptr when the server does not serve them.
    kube::Informer* requests() { return requests_; }
    const CacheOptions& options() const { return options_; }
    /// The informers' counters, summed.
    kube::InformerStats stats() const;
    /// What each informer holds, by resource and group ("services", "deployments.apps",
    /// "canaries.flagger.app", ...).
    std::map<std::string, kube::CacheSize> sizes() const;

private:
    kube::Informer& add(const kube::ResourceType& type, bool metadata_only = false);

    kube::KubeClient& client_;
    Clock& clock_;
    CacheOptions options_;
    std::vector<std::unique_ptr<kube::Informer>> informers_;
    kube::Informer* canaries_ = nullptr;
    kube::Informer* requests_ = nullptr;
    std::unique_ptr<kube::FetchedObjects> secrets_;  ///< before store_, which reads through it
    kube::ObjectStore store_;
    kube::CachedClient kube_;
};

}  // namespace serin::canary
