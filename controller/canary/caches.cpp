#include "controller/canary/caches.hpp"

#include "controller/canary/requests.hpp"
#include "crds/api/json_access.hpp"

namespace serin::canary {

namespace types = kube::types;
using api::find_path;
using api::string_at;

Caches::Caches(kube::KubeClient& client, Clock& clock, CacheOptions options)
    : client_(client), clock_(clock), options_(std::move(options)), store_(clock),
      kube_(client, store_) {
    canaries_ = &add(types::canaries());
    canaries_->add_index(kCanariesByTarget, [](const kube::Json& canary) {
        std::vector<std::string> out;
        const kube::Json* ref = find_path(canary, {"spec", "targetRef"});
        if (ref != nullptr && ref->is_object()) {
            out.push_back(target_key(kube::object_namespace(canary), string_at(*ref, {"kind"}),
                                     string_at(*ref, {"name"})));
        }
        return out;
    });
    add(types::deployments());
    add(types::daemon_sets());
    add(types::services());
    add(types::config_maps());
    // Secrets are watched by metadata; the values of those a canary uses are fetched.
    add(types::secrets(), true);
    add(options_.hpa_type);
    add(types::metric_templates());
    add(types::alert_providers());
    for (const kube::ResourceType& type : options_.route_types) {
        add(type);
    }
    if (options_.requests) {
        requests_ = &add(kube::types::canary_requests());
    }
}

Caches::~Caches() { stop(); }

std::string Caches::target_key(const std::string& ns, const std::string& kind,
                               const std::string& name) {
    return ns + "/" + kind + "/" + name;
}

kube::Informer& Caches::add(const kube::ResourceType& type, bool metadata_only) {
    kube::InformerOptions informer_options;
    informer_options.ns = options_.ns;
    // Each watch asks to be ended after 5 to 10 minutes, drawn per request (client-go's
    // choice), and the informer then resumes from the last version it saw: at rest, 13 types
    // renew about two watches a minute between them.
    informer_options.metadata_only = metadata_only;
    informers_.push_back(
        std::make_unique<kube::Informer>(client_, clock_, type, informer_options));
    kube::Informer& informer = *informers_.back();
    if (metadata_only) {
        secrets_ = std::make_unique<kube::FetchedObjects>(client_, informer);
        store_.add(informer, secrets_.get());
    } else {
        store_.add(informer);
    }
    return informer;
}

void Caches::start(const boost::asio::any_io_executor& executor) {
    for (auto& informer : informers_) {
        informer->start(executor);
    }
}

void Caches::stop() {
    for (auto& informer : informers_) {
        informer->stop();
    }
}

kube::Informer* Caches::informer(const kube::ResourceType& type) {
    for (auto& informer : informers_) {
        const kube::ResourceType& served = informer->type();
        if (served.group == type.group && served.version == type.version &&
            served.resource == type.resource) {
            return informer.get();
        }
    }
    return nullptr;
}

kube::InformerStats Caches::stats() const {
    kube::InformerStats sum;
    for (const auto& informer : informers_) {
        const kube::InformerStats one = informer->stats();
        sum.lists += one.lists;
        sum.relists_after_gone += one.relists_after_gone;
        sum.watches += one.watches;
        sum.watch_failures += one.watch_failures;
        sum.events += one.events;
    }
    return sum;
}

}  // namespace serin::canary

namespace serin::canary {

std::map<std::string, kube::CacheSize> Caches::sizes() const {
    std::map<std::string, kube::CacheSize> out;
    for (const auto& informer : informers_) {
        const kube::ResourceType& type = informer->type();
        // Qualified by group but for the core API: Knative's "services" are not the core ones.
        out[type.group.empty() ? type.resource : type.resource + "." + type.group] =
            informer->cache_size();
    }
    return out;
}

}  // namespace serin::canary
