#include "cli/format.hpp"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fmt/format.h>
#include <sstream>

#include "platform/core/text.hpp"
#include "platform/core/time_format.hpp"

namespace serin::cli {

namespace {

std::string number_text(double value) {
    // Two decimals at most, no trailing zeros: 99.5, 310, 0.25.
    std::string text = fmt::format("{:.2f}", value);
    while (!text.empty() && text.back() == '0') {
        text.pop_back();
    }
    if (!text.empty() && text.back() == '.') {
        text.pop_back();
    }
    return text;
}

bool releasing(std::string_view phase) {
    return phase == "Waiting" || phase == "Progressing" || phase == "WaitingPromotion" ||
           phase == "Promoting" || phase == "Finalising";
}

/// spec.analysis, else the deprecated spec.canaryAnalysis, else an empty object.
Json analysis_of(const Json& canary) {
    for (const char* path : {"spec/analysis", "spec/canaryAnalysis"}) {
        if (const Json* a = find(canary, path); a != nullptr && a->is_object()) {
            return *a;
        }
    }
    return Json::object();
}

/// The newest release of a CanaryHistory, or nullptr.
const Json* last_release(const Json& history) {
    const Json* releases = find(history, "spec/releases");
    if (releases == nullptr || !releases->is_array() || releases->empty()) {
        return nullptr;
    }
    return &releases->back();
}

std::string short_revision(const std::string& revision) {
    return revision.size() > 14 ? revision.substr(0, 14) : revision;
}

std::string check_text(const Json& check) {
    std::string text = get_string(check, "name", "?");
    auto value = get_number(check, "value");
    text += "=" + (value ? number_text(*value) : std::string("?"));
    std::string verdict = get_string(check, "verdict");
    if (verdict == "Fail") {
        text += "!";
    }
    return text;
}

std::string clean(std::string_view text, std::size_t max_bytes = 200) {
    // Objects are user input: keep a table on one line, in valid UTF-8, within bounds.
    std::string line = text::to_valid_utf8(text);
    std::replace(line.begin(), line.end(), '\n', ' ');
    std::replace(line.begin(), line.end(), '\t', ' ');
    line.erase(std::remove_if(line.begin(), line.end(),
                              [](char c) { return static_cast<unsigned char>(c) < 0x20; }),
               line.end());
    return text::clip(line, max_bytes);
}


void emit(YAML::Emitter& out, const Json& value) {
    switch (value.type()) {
        case Json::value_t::object:
            out << YAML::BeginMap;
            for (const auto& [key, item] : value.items()) {
                out << YAML::Key << key << YAML::Value;
                emit(out, item);
            }
            out << YAML::EndMap;
            break;
        case Json::value_t::array:
            out << YAML::BeginSeq;
            for (const auto& item : value) {
                emit(out, item);
            }
            out << YAML::EndSeq;
            break;
        case Json::value_t::string: {
            const auto& s = value.get_ref<const std::string&>();
            double ignored = 0;
            auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), ignored);
            bool ambiguous = s.empty() || (ec == std::errc() && ptr == s.data() + s.size()) ||
                             s == "true" || s == "false" || s == "null" || s == "~" ||
                             s == "yes" || s == "no" || s == "on" || s == "off";
            if (ambiguous) {
                out << YAML::DoubleQuoted << s;
            } else {
                out << s;
            }
            break;
        }
        case Json::value_t::boolean:
            out << value.get<bool>();
            break;
        case Json::value_t::number_integer:
            out << value.get<std::int64_t>();
            break;
        case Json::value_t::number_unsigned:
            out << value.get<std::uint64_t>();
            break;
        case Json::value_t::number_float:
            out << value.get<double>();
            break;
        default:
            out << YAML::Null;
            break;
    }
}

}  // namespace

const Json* find(const Json& object, std::string_view path) {
    const Json* node = &object;
    while (!path.empty()) {
        auto slash = path.find('/');
        std::string_view key = path.substr(0, slash);
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
        if (node->is_object()) {
            auto it = node->find(key);
            if (it == node->end()) {
                return nullptr;
            }
            node = &*it;
        } else if (node->is_array()) {
            std::size_t index = 0;
            auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
            if (ec != std::errc() || ptr != key.data() + key.size() || index >= node->size()) {
                return nullptr;
            }
            node = &(*node)[index];
        } else {
            return nullptr;
        }
    }
    return node;
}

std::string get_string(const Json& object, std::string_view path, std::string_view fallback) {
    const Json* value = find(object, path);
    if (value == nullptr || !value->is_string()) {
        return std::string(fallback);
    }
    return value->get<std::string>();
}

std::optional<double> get_number(const Json& object, std::string_view path) {
    const Json* value = find(object, path);
    if (value == nullptr || !value->is_number()) {
        return std::nullopt;
    }
    return value->get<double>();
}

int get_int(const Json& object, std::string_view path, int fallback) {
    auto value = get_number(object, path);
    if (!value || !std::isfinite(*value) || std::abs(*value) > 1e9) {
        return fallback;
    }
    return static_cast<int>(*value);
}

std::string_view to_string(Strategy strategy) {
    switch (strategy) {
        case Strategy::kCanary: return "canary";
        case Strategy::kBlueGreen: return "blue-green";
        case Strategy::kABTesting: return "ab-testing";
    }
    return "canary";
}

Strategy strategy_of(const Json& canary) {
    const Json analysis = analysis_of(canary);
    const bool kubernetes = get_string(canary, "spec/provider") == "kubernetes";
    const Json* match = find(analysis, "match");
    const bool has_match = match != nullptr && match->is_array() && !match->empty();
    const int iterations = get_int(analysis, "iterations");
    if (has_match && iterations > 0 && !kubernetes) {
        return Strategy::kABTesting;
    }
    if (iterations > 0 || kubernetes) {
        return Strategy::kBlueGreen;  // serin runs 10 iterations when kubernetes gives none
    }
    return Strategy::kCanary;
}

std::optional<Step> release_step(const Json& canary) {
    if (!releasing(get_string(canary, "status/phase"))) {
        return std::nullopt;
    }
    const Json analysis = analysis_of(canary);
    const Strategy strategy = strategy_of(canary);
    if (strategy != Strategy::kCanary) {
        int total = get_int(analysis, "iterations");
        if (total <= 0) {
            total = 10;
        }
        return Step{std::clamp(get_int(canary, "status/iterations"), 0, total), total};
    }
    const int weight = get_int(canary, "status/canaryWeight");
    const Json* steps = find(analysis, "stepWeights");
    const int step_weight = get_int(analysis, "stepWeight");
    if (step_weight <= 0 && steps != nullptr && steps->is_array() && !steps->empty()) {
        int index = 0;
        for (const auto& s : *steps) {
            if (s.is_number() && s.get<double>() <= weight) {
                ++index;
            }
        }
        return Step{index, static_cast<int>(steps->size())};
    }
    if (step_weight <= 0) {
        return std::nullopt;
    }
    int max_weight = get_int(analysis, "maxWeight");
    if (max_weight <= 0) {
        max_weight = 100;
    }
    const int total = (max_weight + step_weight - 1) / step_weight;
    const int index = std::clamp((weight + step_weight - 1) / step_weight, 0, total);
    return Step{index, total};
}

std::string checks_summary(const Json& history) {
    const Json* release = last_release(history);
    if (release == nullptr) {
        return {};
    }
    const Json* steps = find(*release, "steps");
    if (steps == nullptr || !steps->is_array() || steps->empty()) {
        return {};
    }
    const Json* checks = find(steps->back(), "checks");
    if (checks == nullptr || !checks->is_array()) {
        return {};
    }
    std::string text;
    for (const auto& check : *checks) {
        if (!text.empty()) {
            text += " ";
        }
        text += check_text(check);
    }
    return clean(text);
}

std::string format_age(std::chrono::seconds age) {
    const auto s = std::max<std::int64_t>(0, age.count());
    if (s < 120) {
        return std::to_string(s) + "s";
    }
    if (s < 3600 * 2) {
        return std::to_string(s / 60) + "m";
    }
    if (s < 86400 * 2) {
        return std::to_string(s / 3600) + "h";
    }
    if (s < 86400 * 365) {
        return std::to_string(s / 86400) + "d";
    }
    return std::to_string(s / (86400 * 365)) + "y";
}

CanaryRow make_row(const Json& canary, const Json* history, SystemTime now) {
    CanaryRow row;
    row.ns = clean(get_string(canary, "metadata/namespace"), 253);
    row.name = clean(get_string(canary, "metadata/name"), 253);
    row.phase = clean(get_string(canary, "status/phase"), 40);
    row.weight = get_int(canary, "status/canaryWeight");
    row.step = release_step(canary);
    row.failed_checks = get_int(canary, "status/failedChecks");
    if (history != nullptr) {
        row.checks = checks_summary(*history);
    }
    if (auto created = parse_time(get_string(canary, "metadata/creationTimestamp"))) {
        row.age = format_age(std::chrono::duration_cast<std::chrono::seconds>(now - *created));
    }
    return row;
}

Json row_json(const CanaryRow& row) {
    Json out = {{"namespace", row.ns},      {"name", row.name},
                {"phase", row.phase},       {"weight", row.weight},
                {"failedChecks", row.failed_checks}, {"checks", row.checks},
                {"age", row.age}};
    out["step"] = row.step ? Json{{"index", row.step->index}, {"total", row.step->total}} : Json();
    return out;
}

std::string Style::paint(std::string_view text, std::string_view sgr) const {
    if (!colour) {
        return std::string(text);
    }
    return "\x1b[" + std::string(sgr) + "m" + std::string(text) + "\x1b[0m";
}

std::string Style::phase(std::string_view phase) const {
    std::string_view trimmed = phase.substr(0, phase.find_last_not_of(' ') + 1);
    std::string_view sgr;
    if (trimmed == "Succeeded" || trimmed == "Initialized") {
        sgr = "32";
    } else if (trimmed == "Failed" || trimmed == "Terminated") {
        sgr = "31";
    } else if (releasing(trimmed)) {
        sgr = "33";
    }
    if (sgr.empty() || trimmed.empty()) {
        return std::string(phase);
    }
    return paint(trimmed, sgr) + std::string(phase.substr(trimmed.size()));
}

bool colour_wanted() {
    const char* no_colour = std::getenv("NO_COLOR");  // NOLINT(concurrency-mt-unsafe)
    if (no_colour != nullptr && *no_colour != '\0') {
        return false;
    }
    return ::isatty(STDOUT_FILENO) == 1;
}

std::string render_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows, const Style& style,
                         int phase_column) {
    std::vector<std::size_t> widths(headers.size(), 0);
    for (std::size_t c = 0; c < headers.size(); ++c) {
        widths[c] = headers[c].size();
        for (const auto& row : rows) {
            if (c < row.size()) {
                widths[c] = std::max(widths[c], row[c].size());
            }
        }
    }
    auto line = [&](const std::vector<std::string>& cells, bool header) {
        std::string out;
        for (std::size_t c = 0; c < headers.size(); ++c) {
            std::string cell = c < cells.size() ? cells[c] : std::string();
            const bool last = c + 1 == headers.size();
            if (!last) {
                cell.resize(widths[c] + 3, ' ');
            }
            if (!header && static_cast<int>(c) == phase_column) {
                cell = style.phase(cell);
            }
            out += cell;
        }
        while (!out.empty() && out.back() == ' ') {
            out.pop_back();
        }
        return out + "\n";
    };
    std::string out = line(headers, true);
    for (const auto& row : rows) {
        out += line(row, false);
    }
    return out;
}

std::string render_rows(const std::vector<CanaryRow>& rows, bool with_namespace,
                        const Style& style) {
    std::vector<std::string> headers = {"NAME", "PHASE", "WEIGHT", "STEP", "FAILED", "CHECKS",
                                        "AGE"};
    if (with_namespace) {
        headers.insert(headers.begin(), "NAMESPACE");
    }
    std::vector<std::vector<std::string>> cells;
    for (const auto& row : rows) {
        std::vector<std::string> line = {
            row.name,
            row.phase.empty() ? "-" : row.phase,
            std::to_string(row.weight),
            row.step ? std::to_string(row.step->index) + "/" + std::to_string(row.step->total)
                     : "-",
            std::to_string(row.failed_checks),
            row.checks.empty() ? "-" : row.checks,
            row.age.empty() ? "-" : row.age};
        if (with_namespace) {
            line.insert(line.begin(), row.ns);
        }
        cells.push_back(std::move(line));
    }
    return render_table(headers, cells, style, with_namespace ? 2 : 1);
}

std::string status_line(const Json& canary) {
    std::string phase = clean(get_string(canary, "status/phase"), 40);
    std::string text = clean(get_string(canary, "metadata/namespace"), 253) + "/" +
                       clean(get_string(canary, "metadata/name"), 253) + ": " +
                       (phase.empty() ? "not initialized yet" : phase);
    if (releasing(phase)) {
        const Strategy strategy = strategy_of(canary);
        if (strategy == Strategy::kCanary) {
            text += ", weight " + std::to_string(get_int(canary, "status/canaryWeight")) + "%";
        }
        if (auto step = release_step(canary)) {
            text += fmt::format(", {} {}/{}", strategy == Strategy::kCanary ? "step" : "iteration",
                                step->index, step->total);
        }
        int failed = get_int(canary, "status/failedChecks");
        text += fmt::format(", {} failed check{}", failed, failed == 1 ? "" : "s");
        if (find(canary, "status/paused") != nullptr &&
            find(canary, "status/paused")->is_object()) {
            text += ", paused";
        }
    }
    return text;
}

std::string render_history(const Json& history, bool steps, const Style& style) {
    const Json* releases = find(history, "spec/releases");
    if (releases == nullptr || !releases->is_array() || releases->empty()) {
        return "no releases recorded\n";
    }
    std::string out;
    const std::vector<std::string> headers = {"#",     "OUTCOME", "REVISION", "IMAGE",
                                              "STRATEGY", "START", "END",    "REASON"};
    std::vector<std::vector<std::string>> rows;
    auto release_row = [&](const Json& r, std::size_t number) {
        return std::vector<std::string>{std::to_string(number),
                                        clean(get_string(r, "outcome", "-"), 20),
                                        clean(short_revision(get_string(r, "revision", "-")), 20),
                                        clean(get_string(r, "image", "-"), 120),
                                        clean(get_string(r, "strategy", "-"), 20),
                                        clean(get_string(r, "start", "-"), 30),
                                        clean(get_string(r, "end", "-"), 30),
                                        clean(get_string(r, "reason", ""), 120)};
    };
    const std::size_t count = releases->size();
    if (!steps) {
        for (std::size_t i = count; i-- > 0;) {
            rows.push_back(release_row((*releases)[i], i + 1));
        }
        return render_table(headers, rows, style, 1);
    }
    for (std::size_t i = count; i-- > 0;) {
        const Json& r = (*releases)[i];
        out += render_table(headers, {release_row(r, i + 1)}, style, 1);
        const Json* list = find(r, "steps");
        std::vector<std::vector<std::string>> step_rows;
        if (list != nullptr && list->is_array()) {
            for (const auto& s : *list) {
                std::string checks;
                if (const Json* c = find(s, "checks"); c != nullptr && c->is_array()) {
                    for (const auto& check : *c) {
                        checks += (checks.empty() ? "" : " ") + check_text(check);
                    }
                }
                std::string gates;
                if (const Json* g = find(s, "gates"); g != nullptr && g->is_array()) {
                    for (const auto& gate : *g) {
                        const Json* ok = find(gate, "ok");
                        gates += (gates.empty() ? "" : " ") + get_string(gate, "name", "?") +
                                 (ok != nullptr && ok->is_boolean() && ok->get<bool>() ? "=open"
                                                                                       : "=closed");
                    }
                }
                step_rows.push_back({"  " + clean(get_string(s, "time", "-"), 30),
                                     clean(get_string(s, "phase", "-"), 20),
                                     std::to_string(get_int(s, "weight")),
                                     std::to_string(get_int(s, "iteration")),
                                     std::to_string(get_int(s, "failedChecks")),
                                     checks.empty() ? "-" : clean(checks),
                                     gates.empty() ? "-" : clean(gates)});
            }
        }
        if (int dropped = get_int(r, "droppedSteps"); dropped > 0) {
            out += fmt::format("  ({} earlier steps dropped)\n", dropped);
        }
        if (step_rows.empty()) {
            out += "  no steps recorded\n";
        } else {
            out += render_table({"  TIME", "PHASE", "WEIGHT", "ITERATION", "FAILED", "CHECKS",
                                 "GATES"},
                                step_rows, style, 1);
        }
        if (i > 0) {
            out += "\n";
        }
    }
    return out;
}

std::string to_yaml(const Json& value) {
    YAML::Emitter out;
    emit(out, value);
    return std::string(out.c_str()) + "\n";
}

}  // namespace serin::cli
