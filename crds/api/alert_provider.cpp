#include "crds/api/alert_provider.hpp"

namespace serin::api {

Result<AlertProvider> decode_alert_provider(const Json& object) {
    using detail::Reader;
    if (!object.is_object()) {
        return fail(ErrorKind::kInvalid,
                    "expected an AlertProvider object, got " + Reader::show(object));
    }
    Reader r;
    AlertProvider a;
    a.metadata = r.metadata(object);
    const Json* spec = r.object(object, "spec", "");
    if (spec == nullptr && r.ok()) {
        r.invalid("spec", "is required");
    }
    if (spec != nullptr && r.ok()) {
        const std::string path = "spec";
        AlertProviderSpec& s = a.spec;
        s.type = r.one_of(*spec, "type", path, {"slack", "msteams", "discord", "rocket", "gchat"})
                     .value_or("");
        if (r.ok() && s.type.empty()) {
            r.invalid("spec.type", "is required");
        }
        if (auto channel = r.string(*spec, "channel", path); channel && !channel->empty()) {
            s.channel = *channel;
        }
        if (auto username = r.string(*spec, "username", path); username && !username->empty()) {
            s.username = *username;
        }
        s.address = r.string(*spec, "address", path).value_or("");
        s.proxy = r.string(*spec, "proxy", path).value_or("");
        if (const Json* secret = r.object(*spec, "secretRef", path)) {
            s.secret_ref = SecretRef{r.required_string(*secret, "name", "spec.secretRef")};
        }
        if (r.ok() && s.address.empty() && !s.secret_ref) {
            r.invalid("spec", "one of address or secretRef is required");
        }
    }
    if (r.ok()) {
        if (const Json* status = r.object(object, "status", "")) {
            a.conditions = r.conditions(*status, "status");
        }
    }
    if (!r.ok()) {
        return r.error();
    }
    return a;
}

}  // namespace serin::api
