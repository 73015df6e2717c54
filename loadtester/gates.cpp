#include "loadtester/gates.hpp"

namespace serin::loadtester {

bool GateStore::is_open(const std::string& key) {
    const auto it = gates_.find(key);
    if (it != gates_.end()) {
        return it->second;
    }
    if (gates_.size() < kMaxGates) {
        gates_.emplace(key, false);
    }
    return false;
}

bool GateStore::set(const std::string& key, bool open) {
    const auto it = gates_.find(key);
    if (it != gates_.end()) {
        it->second = open;
        return true;
    }
    if (gates_.size() >= kMaxGates) {
        return false;
    }
    gates_.emplace(key, open);
    return true;
}

}  // namespace serin::loadtester
