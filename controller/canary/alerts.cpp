#include "controller/canary/alerts.hpp"

#include "metrics/metric_judge.hpp"
#include "platform/core/text.hpp"
#include "platform/http/http_client.hpp"
#include "platform/kube/kube_client.hpp"

namespace serin::canary {

std::vector<notify::Field> alert_fields(const api::Canary& canary, bool with_metadata,
                                        const std::string& cluster_name) {
    std::vector<notify::Field> fields;
    if (!cluster_name.empty()) {
        fields.push_back({"Cluster", cluster_name});
    }
    if (!with_metadata) {
        return fields;
    }
    const api::CanarySpec& spec = canary.spec;
    fields.push_back({"Target", spec.target_ref.kind + "/" + spec.target_ref.name + "." +
                                    canary.metadata.ns});
    if (spec.analysis) {
        const api::CanaryAnalysis& a = *spec.analysis;
        fields.push_back({"Failed checks threshold", std::to_string(a.threshold)});
        fields.push_back({"Progress deadline", std::to_string(spec.progress_deadline_seconds) + "s"});
        std::string routing;
        if (a.iterations > 0) {
            routing = a.match.is_array() && !a.match.empty() ? "A/B Testing" : "Blue/Green";
        } else if (!a.step_weights.empty()) {
            for (const auto w : a.step_weights) {
                routing += (routing.empty() ? "" : ",") + std::to_string(w);
            }
            routing = "Weight steps: " + routing + " max: " + std::to_string(a.max_weight);
        } else {
            routing = "Weight step: " + std::to_string(a.step_weight) +
                      " max: " + std::to_string(a.max_weight);
        }
        fields.push_back({"Traffic routing", routing});
    }
    return fields;
}

Result<notify::Destination> alert_destination(const api::AlertProvider& provider,
                                              const kube::Json* secret) {
    const std::string id = provider.metadata.name + "." + provider.metadata.ns;
    const auto kind = notify::parse_kind(provider.spec.type);
    if (!kind) {
        return fail(ErrorKind::kInvalid, "AlertProvider " + id + " spec.type: \"" +
                                             provider.spec.type +
                                             "\" is not one of slack, discord, rocket, msteams, "
                                             "gchat");
    }
    if (!provider.spec.proxy.empty()) {
        if (auto proxy = http::Proxy::parse(provider.spec.proxy); !proxy) {
            return fail(ErrorKind::kInvalid,
                        "AlertProvider " + id + " spec.proxy: " + proxy.error().message);
        }
    }
    notify::Destination d;
    d.proxy = provider.spec.proxy;
    d.kind = *kind;
    d.label = "AlertProvider " + id;
    d.address = provider.spec.address;
    d.channel = provider.spec.channel;
    d.username = provider.spec.username;
    if (provider.spec.secret_ref) {
        if (secret == nullptr) {
            return fail(ErrorKind::kNotFound, "AlertProvider " + id + " secret " +
                                                  provider.spec.secret_ref->name + " not found");
        }
        // Saved with `--from-file`, values often end in a newline, which no URL or token holds.
        d.address = std::string(text::trim(kube::secret_data(*secret, "address")));
        d.token = std::string(text::trim(kube::secret_data(*secret, "token")));
        if (d.address.empty()) {
            return fail(ErrorKind::kInvalid, "AlertProvider " + id + " secret " +
                                                 provider.spec.secret_ref->name +
                                                 " has no data key address");
        }
    }
    return d;
}

std::vector<std::string> AlertDispatcher::send(const api::Canary& canary,
                                               const analysis::Alert& alert,
                                               const std::vector<notify::Field>& extra,
                                               const notify::Notifier::FailureHandler& on_failure) {
    std::vector<std::string> problems;
    notify::Message message;
    message.name = canary.metadata.name;
    message.ns = canary.metadata.ns;
    message.text = alert.message;
    message.severity = alert.severity;
    message.fields = alert_fields(canary, alert.with_metadata, options_.cluster_name);
    message.fields.insert(message.fields.end(), extra.begin(), extra.end());

    const std::vector<api::CanaryAlert>* entries =
        canary.spec.analysis ? &canary.spec.analysis->alerts : nullptr;
    if (entries == nullptr || entries->empty()) {
        if (options_.global) {
            notifier_.post(*options_.global, message, on_failure);
        }
        return problems;
    }
    for (std::size_t i = 0; i < entries->size(); ++i) {
        const api::CanaryAlert& entry = (*entries)[i];
        const auto matches = notify::severity_matches(entry.severity, alert.severity);
        if (!matches) {
            problems.push_back("spec.analysis.alerts[" + std::to_string(i) + "].severity: \"" +
                               entry.severity + "\" is not one of info, warn, error");
            continue;
        }
        if (!*matches) {
            continue;
        }
        const std::string ns =
            entry.provider_ref.ns.empty() ? canary.metadata.ns : entry.provider_ref.ns;
        kube::ObjectPtr object =
            store_.get(kube::types::alert_providers(), ns, entry.provider_ref.name);
        if (object == nullptr) {
            problems.push_back("Alert " + entry.name + ": AlertProvider " +
                               entry.provider_ref.name + "." + ns + " not found");
            continue;
        }
        auto provider = api::decode_alert_provider(*object);
        if (!provider) {
            problems.push_back("Alert " + entry.name + ": AlertProvider " +
                               entry.provider_ref.name + "." + ns + " " +
                               provider.error().message);
            continue;
        }
        kube::ObjectPtr secret =
            provider->spec.secret_ref
                ? store_.get(kube::types::secrets(), ns, provider->spec.secret_ref->name)
                : nullptr;
        auto destination = alert_destination(*provider, secret.get());
        if (!destination) {
            problems.push_back("Alert " + entry.name + ": " + destination.error().message);
            continue;
        }
        notifier_.post(std::move(*destination), message, on_failure);
    }
    return problems;
}

}  // namespace serin::canary
