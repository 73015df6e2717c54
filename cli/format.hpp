#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/core/time.hpp"

/// What `kubectl serin` prints, as pure functions of the objects it read (docs/runtime-control.md,
/// "kubectl serin"). No I/O here: the verbs (cli/verbs) fetch, these format.
namespace serin::cli {

using Json = nlohmann::json;

/// Reading untrusted objects without throwing: the value at `path` (keys separated by '/',
/// array indexes as numbers), or nullptr when any step is missing or of another type.
const Json* find(const Json& object, std::string_view path);
std::string get_string(const Json& object, std::string_view path, std::string_view fallback = {});
/// A number at `path` (integers and floats), or nullopt.
std::optional<double> get_number(const Json& object, std::string_view path);
int get_int(const Json& object, std::string_view path, int fallback = 0);

/// How a canary releases, from its spec as serin reads it (analysis/release.cpp, step 26-27).
enum class Strategy { kCanary, kBlueGreen, kABTesting };
std::string_view to_string(Strategy strategy);
Strategy strategy_of(const Json& canary);

/// Where the release is among its analysis steps: weight steps for a canary, iterations for
/// blue/green and A/B testing.
struct Step {
    int index = 0;
    int total = 0;
};
/// nullopt when the canary is not releasing (no phase, Initialized, Succeeded, Failed) or the
/// spec gives no steps.
std::optional<Step> release_step(const Json& canary);

/// The last values of the metric checks: from the newest release's last step in the canary's
/// CanaryHistory ("request-success-rate=99.5 latency=310!" where '!' marks a failed check,
/// "?" no data or an error); "" when there is none.
std::string checks_summary(const Json& history);

/// kubectl's AGE: "45s", "12m", "5h", "3d", "2y".
std::string format_age(std::chrono::seconds age);

/// One line of `kubectl serin get`.
struct CanaryRow {
    std::string ns;
    std::string name;
    std::string phase;
    int weight = 0;
    std::optional<Step> step;
    int failed_checks = 0;
    std::string checks;
    std::string age;
};
/// `history` may be null (no CanaryHistory for it).
CanaryRow make_row(const Json& canary, const Json* history, SystemTime now);
Json row_json(const CanaryRow& row);

/// Terminal styling: colour only when asked for (a TTY without NO_COLOR).
struct Style {
    bool colour = false;
    std::string paint(std::string_view text, std::string_view sgr) const;
    /// The phase in its colour: green for done, red for failed, yellow while releasing.
    std::string phase(std::string_view phase) const;
    std::string bold(std::string_view text) const { return paint(text, "1"); }
};
/// Whether output to stdout should be coloured: a terminal, and NO_COLOR unset or empty.
bool colour_wanted();

/// A table with columns padded to the widest cell; `phase_column` (or -1) is painted with
/// Style::phase after padding, so colour codes never skew the alignment.
std::string render_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows, const Style& style,
                         int phase_column = -1);
std::string render_rows(const std::vector<CanaryRow>& rows, bool with_namespace,
                        const Style& style);

/// The release in words, one line: "test/podinfo: Progressing, weight 20%, step 2/5, 1 failed
/// check".
std::string status_line(const Json& canary);

/// The CanaryHistory's releases, newest first, as a table; with `steps`, each release is
/// followed by its analysis steps and their checks and gates.
std::string render_history(const Json& history, bool steps, const Style& style);

/// YAML text of a JSON value, for `-o yaml`.
std::string to_yaml(const Json& value);

}  // namespace serin::cli
