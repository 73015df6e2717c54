#pragma once

#include <cstddef>
#include <map>
#include <string>

/// The load tester's gates (flagger-spec-providers.md §14.2): named switches, closed until
/// opened, kept in memory (lost on restart) and never closed by themselves.
namespace serin::loadtester {

class GateStore {
public:
    /// At most this many gates are remembered; a check of an unknown gate beyond it answers
    /// closed without remembering it, so a flood of names cannot grow the store without bound.
    static constexpr std::size_t kMaxGates = 10000;

    /// Whether the gate is open. An unknown gate is created closed (Flagger's behaviour).
    bool is_open(const std::string& key);
    /// Opens or closes the gate (creating it). False when the store is full and the gate new.
    bool set(const std::string& key, bool open);
    std::size_t size() const { return gates_.size(); }

    /// "<name>.<namespace>" and "rollback.<name>.<namespace>".
    static std::string gate_key(const std::string& canary) { return canary; }
    static std::string rollback_key(const std::string& canary) { return "rollback." + canary; }

private:
    std::map<std::string, bool> gates_;
};

}  // namespace serin::loadtester
