#include "meshes/router.hpp"

namespace serin::meshes {

void RouterRegistry::add(std::string provider, RouterFactory factory) {
    factories_[std::move(provider)] = std::move(factory);
}

void RouterRegistry::add_prefix(std::string prefix, RouterFactory factory) {
    prefixes_.push_back(prefix);
    add(std::move(prefix), std::move(factory));
}

Result<MeshRouter*> RouterRegistry::find(std::string_view provider) {
    std::string_view name = provider;
    auto factory = factories_.find(name);
    while (factory == factories_.end() && name.find(':') != std::string_view::npos) {
        name = name.substr(0, name.rfind(':'));
        factory = factories_.find(name);
    }
    for (const std::string& prefix : prefixes_) {
        if (factory == factories_.end() && provider.starts_with(prefix)) {
            name = prefix;
            factory = factories_.find(name);
        }
    }
    if (factory == factories_.end()) {
        return fail(ErrorKind::kInvalid, "spec.provider: \"" + std::string(provider) +
                                             "\" is not supported by this build of Serin "
                                             "(supported: " +
                                             supported() + ")");
    }
    auto it = routers_.find(name);
    if (it == routers_.end()) {
        it = routers_.emplace(std::string(name), factory->second(deps_)).first;
    }
    return it->second.get();
}

std::string RouterRegistry::supported() const {
    std::string out;
    for (const auto& [name, factory] : factories_) {
        out += (out.empty() ? "" : ", ") + name;
    }
    return out;
}

}  // namespace serin::meshes
