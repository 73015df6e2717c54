#pragma once

#include <map>
#include <string>
#include <vector>

#include "crds/api/canary.hpp"

namespace serin::api {

/// MetricTemplate `.spec.provider` (flagger-spec §1.6).
struct MetricTemplateProvider {
    /// prometheus, influxdb, datadog, externalmetrics, stackdriver, cloudwatch, newrelic,
    /// graphite, dynatrace, keptn or splunk.
    std::string type;
    std::string address;
    std::map<std::string, std::vector<std::string>> headers;  ///< sent on each query
    std::optional<SecretRef> secret_ref;                      ///< in the template's namespace
    std::string region;                                       ///< cloudwatch
    bool insecure_skip_verify = false;
};

struct MetricTemplateSpec {
    MetricTemplateProvider provider;
    std::string query;  ///< Go text/template (flagger-spec §5.3)
};

struct MetricTemplate {
    ObjectMeta metadata;
    MetricTemplateSpec spec;
    std::vector<Condition> conditions;  ///< status.conditions; unused by the controller
};

/// Decodes a MetricTemplate. Errors: kInvalid naming the field path and the value. Never throws.
Result<MetricTemplate> decode_metric_template(const Json& object);

}  // namespace serin::api
