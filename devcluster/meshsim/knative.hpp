#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "devcluster/meshsim/traffic.hpp"
#include "platform/core/clock.hpp"
#include "platform/kube/informer.hpp"
#include "platform/kube/kube_client.hpp"

/// knativesim: the part of Knative Serving that Serin relies on, simulated in the devcluster
/// (there is no Knative controller in it). For each serving.knative.dev/v1 Service it
///  - creates a Revision `<name>-0000N` for every change of spec.template (N counts them, as
///    Knative's configuration generation does), carrying the template's annotations and spec and
///    a Ready condition (False when the template annotation sim.serin.dev/ready is "false");
///  - writes the Service's status: observedGeneration, latestCreatedRevisionName,
///    latestReadyRevisionName, Ready, and status.traffic = spec.traffic with latestRevision
///    entries resolved to the latest ready Revision (100% to it when spec.traffic is empty).
///    A spec.traffic naming a Revision that does not exist is not applied (Ready False).
/// Pure functions (unit-tested) and the loop that writes what they say.
namespace serin::meshsim {

/// Labels Knative puts on a Revision.
inline constexpr const char* kKnativeServiceLabel = "serving.knative.dev/service";
inline constexpr const char* kKnativeGenerationLabel =
    "serving.knative.dev/configurationGeneration";
/// The template a Revision was made from (an FNV-1a hash of its JSON): knativesim's own note.
inline constexpr const char* kTemplateHashAnnotation = "sim.serin.dev/template-hash";
/// A template annotation that makes its Revisions not Ready.
inline constexpr const char* kReadyAnnotation = "sim.serin.dev/ready";

/// What knativesim writes for one Service.
struct KnativeWrites {
    std::optional<nlohmann::json> revision;  ///< a Revision to create (its status included)
    nlohmann::json status;                   ///< the Service's status, as it should be
};

/// The writes for `service`, whose Revisions (by label) are `revisions`.
KnativeWrites knative_reconcile(const nlohmann::json& service,
                                const std::vector<nlohmann::json>& revisions);

/// The flows of every Knative Service by its status.traffic: each Revision it names with a
/// percent above 0, if Ready, gets that share of the Service's stream (apex = the Service's
/// name) through Envoy's upstream cluster `<ns>/<revision>`; error rate and latency from the
/// Revision's annotations (sim.serin.dev/error-rate, latency-ms).
std::vector<Flow> knative_flows(const std::vector<nlohmann::json>& services,
                                const std::vector<nlohmann::json>& revisions);

/// The loop's body, run by meshsim at each of its steps: watches Knative Services and Revisions
/// and writes what knative_reconcile says. Write failures (a stale cache, a Revision already
/// created) are left to the next step.
class KnativeSim {
public:
    KnativeSim(kube::KubeClient& client, Clock& clock, std::string ns);
    ~KnativeSim();
    KnativeSim(const KnativeSim&) = delete;
    KnativeSim& operator=(const KnativeSim&) = delete;

    /// The informers' objects, for meshsim's flows.
    std::vector<nlohmann::json> services() const;
    std::vector<nlohmann::json> revisions() const;

    void start(const boost::asio::any_io_executor& executor);
    void stop();
    /// One pass over the cached Services: the writes they need.
    boost::asio::awaitable<void> step();

private:
    boost::asio::awaitable<void> reconcile(const nlohmann::json& service,
                                           const std::vector<nlohmann::json>& revisions);

    kube::KubeClient& client_;
    std::unique_ptr<kube::Informer> services_;
    std::unique_ptr<kube::Informer> revisions_;
};

}  // namespace serin::meshsim
