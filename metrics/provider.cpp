#include "metrics/provider.hpp"

namespace serin::metrics {

Result<http::HttpClient*> ProviderDeps::client_for(const ProviderSettings& settings) const {
    if (!settings.insecure_skip_verify) {
        return &http;
    }
    if (insecure == nullptr) {
        return provider_error(
            "spec.provider.insecureSkipVerify is set but this checker has no client without TLS "
            "verification");
    }
    return insecure;
}

Error provider_error(std::string what) {
    return fail(ErrorKind::kInvalid, "error: " + std::move(what));
}

Error secret_error(const ProviderSettings& settings, std::string what) {
    return fail(ErrorKind::kInvalid, "secret " + settings.secret_name + " error: " + std::move(what));
}

void ProviderRegistry::add(std::string type, ProviderFactory factory) {
    factories_[std::move(type)] = std::move(factory);
}

Result<void> ProviderRegistry::supports(std::string_view type) const {
    if (factories_.find(type) == factories_.end()) {
        return provider_error("spec.provider.type: \"" + std::string(type) +
                              "\" is not supported by this build of Serin (" + supported() + ")");
    }
    return {};
}

Result<MetricProviderPtr> ProviderRegistry::build(const ProviderSettings& settings) const {
    if (auto known = supports(settings.type); !known) {
        return known.error();
    }
    return factories_.find(settings.type)->second(settings, deps_);
}

std::vector<std::string> ProviderRegistry::types() const {
    std::vector<std::string> out;
    out.reserve(factories_.size());
    for (const auto& [type, factory] : factories_) {
        out.push_back(type);
    }
    return out;
}

std::string ProviderRegistry::supported() const {
    if (factories_.empty()) {
        return "no provider is";
    }
    std::string out;
    std::size_t i = 0;
    for (const auto& [type, factory] : factories_) {
        ++i;
        out += (i == 1 ? "" : i == factories_.size() ? " and " : ", ") + type;
    }
    return out + (factories_.size() == 1 ? " is" : " are");
}

}  // namespace serin::metrics
