#include "crds/api/metric_template.hpp"

namespace serin::api {

Result<MetricTemplate> decode_metric_template(const Json& object) {
    using detail::Reader;
    if (!object.is_object()) {
        return fail(ErrorKind::kInvalid,
                    "expected a MetricTemplate object, got " + Reader::show(object));
    }
    Reader r;
    MetricTemplate t;
    t.metadata = r.metadata(object);
    const Json* spec = r.object(object, "spec", "");
    if (spec == nullptr && r.ok()) {
        r.invalid("spec", "is required");
    }
    if (spec != nullptr && r.ok()) {
        const Json* provider = r.object(*spec, "provider", "spec");
        if (provider == nullptr && r.ok()) {
            r.invalid("spec.provider", "is required");
        }
        if (provider != nullptr) {
            const std::string path = "spec.provider";
            MetricTemplateProvider& p = t.spec.provider;
            p.type =
                r.one_of(*provider, "type", path,
                         {"prometheus", "influxdb", "datadog", "externalmetrics", "stackdriver",
                          "cloudwatch", "newrelic", "graphite", "dynatrace", "keptn", "splunk"})
                    .value_or("");
            if (r.ok() && p.type.empty()) {
                r.invalid(path + ".type", "is required");
            }
            p.address = r.string(*provider, "address", path).value_or("");
            if (const Json* headers = r.object(*provider, "headers", path)) {
                for (auto it = headers->begin(); it != headers->end() && r.ok(); ++it) {
                    auto values = r.string_list(*headers, it.key(), path + ".headers");
                    p.headers[it.key()] = values.value_or(std::vector<std::string>{});
                }
            }
            if (const Json* secret = r.object(*provider, "secretRef", path)) {
                p.secret_ref = SecretRef{r.required_string(*secret, "name", path + ".secretRef")};
            }
            p.region = r.string(*provider, "region", path).value_or("");
            p.insecure_skip_verify =
                r.boolean(*provider, "insecureSkipVerify", path).value_or(false);
        }
        t.spec.query = r.required_string(*spec, "query", "spec");
    }
    if (r.ok()) {
        if (const Json* status = r.object(object, "status", "")) {
            t.conditions = r.conditions(*status, "status");
        }
    }
    if (!r.ok()) {
        return r.error();
    }
    return t;
}

}  // namespace serin::api
