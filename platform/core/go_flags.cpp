#include "platform/core/go_flags.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <ostream>

namespace serin::goflags {

std::optional<bool> parse_go_bool(std::string_view text) {
    if (text == "1" || text == "t" || text == "T" || text == "TRUE" || text == "true" ||
        text == "True") {
        return true;
    }
    if (text == "0" || text == "f" || text == "F" || text == "FALSE" || text == "false" ||
        text == "False") {
        return false;
    }
    return std::nullopt;
}

std::optional<std::int64_t> parse_go_int(std::string_view text) {
    bool negative = false;
    if (!text.empty() && (text[0] == '+' || text[0] == '-')) {
        negative = text[0] == '-';
        text.remove_prefix(1);
    }
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    } else if (text.size() > 2 && text[0] == '0' && (text[1] == 'o' || text[1] == 'O')) {
        base = 8;
        text.remove_prefix(2);
    } else if (text.size() > 2 && text[0] == '0' && (text[1] == 'b' || text[1] == 'B')) {
        base = 2;
        text.remove_prefix(2);
    } else if (text.size() > 1 && text[0] == '0') {
        base = 8;
        text.remove_prefix(1);
    }
    if (text.empty() || text[0] == '+' || text[0] == '-') {
        return std::nullopt;
    }
    std::uint64_t magnitude = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), magnitude, base);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (magnitude > kMax + (negative ? 1 : 0)) {
        return std::nullopt;
    }
    if (negative) {
        return magnitude == kMax + 1 ? std::numeric_limits<std::int64_t>::min()
                                     : -static_cast<std::int64_t>(magnitude);
    }
    return static_cast<std::int64_t>(magnitude);
}

FlagSetter text_to(std::string& target) {
    return [&target](const std::string& value) {
        target = value;
        return std::string();
    };
}

FlagSetter one_of(std::string& target, std::vector<std::string> allowed) {
    return [&target, allowed = std::move(allowed)](const std::string& value) {
        for (const std::string& a : allowed) {
            if (value == a) {
                target = value;
                return std::string();
            }
        }
        std::string list;
        for (const std::string& a : allowed) {
            list += (list.empty() ? "" : ", ") + a;
        }
        return "not one of " + list;
    };
}

FlagSetter bool_to(bool& target) {
    return [&target](const std::string& value) {
        auto parsed = parse_go_bool(value);
        if (!parsed) {
            return std::string("parse error");
        }
        target = *parsed;
        return std::string();
    };
}

FlagSetter checked(std::function<bool(const std::string&)> valid, std::string reason) {
    return [valid = std::move(valid), reason = std::move(reason)](const std::string& value) {
        return valid(value) ? std::string() : reason;
    };
}

FlagSetter any_value() {
    return [](const std::string&) { return std::string(); };
}

namespace {

std::string_view type_name(FlagType type) {
    switch (type) {
        case FlagType::kBool:
            return "";
        case FlagType::kString:
            return "string";
        case FlagType::kInt:
            return "int";
        case FlagType::kUint:
            return "uint";
        case FlagType::kDuration:
            return "duration";
        case FlagType::kValue:
            return "value";
    }
    return "";
}

}  // namespace

void write_usage(std::string_view preamble, std::string_view program,
                 const std::vector<FlagDef>& flags, std::ostream& out) {
    out << preamble << "Usage of " << program << ":\n";
    for (const FlagDef& f : flags) {
        std::string line = "  -" + f.name;
        if (const std::string_view type = type_name(f.type); !type.empty()) {
            line += " ";
            line += type;
        }
        out << line << (line.size() <= 4 ? "\t" : "\n    \t") << f.usage;
        if (!f.default_text.empty()) {
            const bool quote = f.type == FlagType::kString;
            out << " (default " << (quote ? "\"" : "") << f.default_text << (quote ? "\"" : "")
                << ")";
        }
        out << "\n";
    }
}

Scan scan(const std::vector<std::string>& args, const std::vector<FlagDef>& flags) {
    Scan result;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg.size() < 2 || arg[0] != '-') {
            break;  // the first argument that is not a flag ends them
        }
        const std::size_t dashes = arg[1] == '-' ? 2 : 1;
        if (dashes == 2 && arg.size() == 2) {
            break;  // "--"
        }
        std::string name = arg.substr(dashes);
        if (name.empty() || name[0] == '-' || name[0] == '=') {
            result.error = "bad flag syntax: " + arg;
            return result;
        }
        std::optional<std::string> value;
        if (const std::size_t eq = name.find('='); eq != std::string::npos) {
            value = name.substr(eq + 1);
            name.resize(eq);
        }
        const auto flag = std::find_if(flags.begin(), flags.end(),
                                       [&name](const FlagDef& f) { return f.name == name; });
        if (flag == flags.end()) {
            if (name == "h" || name == "help") {
                result.help = true;
            } else {
                result.error = "flag provided but not defined: -" + name;
            }
            return result;
        }
        if (flag->type == FlagType::kBool) {
            if (!value) {
                value = "true";
            }
            if (std::string why = flag->set(*value); !why.empty()) {
                result.error = "invalid boolean value \"" + *value + "\" for -" + name + ": " + why;
                return result;
            }
        } else {
            if (!value) {
                if (i + 1 >= args.size()) {
                    result.error = "flag needs an argument: -" + name;
                    return result;
                }
                value = args[++i];
            }
            if (std::string why = flag->set(*value); !why.empty()) {
                result.error = "invalid value \"" + *value + "\" for flag -" + name + ": " + why;
                return result;
            }
        }
        if (flag->inert && std::find(result.inert_given.begin(), result.inert_given.end(),
                                     "-" + name) == result.inert_given.end()) {
            result.inert_given.push_back("-" + name);
        }
    }
    return result;
}


}  // namespace serin::goflags
