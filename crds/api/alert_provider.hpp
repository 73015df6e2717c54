#pragma once

#include <string>
#include <vector>

#include "crds/api/canary.hpp"

namespace serin::api {

/// AlertProvider `.spec` (flagger-spec §1.7).
struct AlertProviderSpec {
    std::string type;  ///< slack, msteams, discord, rocket or gchat
    std::string channel = "general";
    std::string username = "flagger";
    std::string address;                  ///< webhook URL; the secret's `address` overrides it
    std::string proxy;                    ///< optional HTTP proxy for posting
    std::optional<SecretRef> secret_ref;  ///< keys `address` (required) and `token` (optional)
};

struct AlertProvider {
    ObjectMeta metadata;
    AlertProviderSpec spec;
    std::vector<Condition> conditions;  ///< status.conditions
};

/// Decodes an AlertProvider; channel and username take their defaults when absent or empty.
/// Errors: kInvalid naming the field path and the value (also when neither address nor
/// secretRef is set). Never throws.
Result<AlertProvider> decode_alert_provider(const Json& object);

}  // namespace serin::api
