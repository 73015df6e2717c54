#pragma once

/// The traffic split, as the release engine decides it and a router reads it back.
namespace serin::analysis {

/// Traffic split as the router reports it (flagger-spec §4: weights total 100).
struct Routes {
    int primary = 100;
    int canary = 0;
    bool mirrored = false;
    bool operator==(const Routes&) const = default;
};

}  // namespace serin::analysis
