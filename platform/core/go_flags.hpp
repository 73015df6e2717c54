#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// Command lines read the way Go's `flag` package reads them, for programs that take the place
/// of Go ones (serin for Flagger, serin-loadtester for flagger-loadtester) and must accept
/// their manifests' arguments unchanged: `-name=value`, `-name value` (not for bools), `--name`
/// too; a bool only as `-name` or `-name=<Go bool>`; the first argument that is not a flag, or
/// `--`, ends the flags; the last occurrence wins.
namespace serin::goflags {

/// A flag's Go type, for the usage text ("-port int") and how its value is taken.
enum class FlagType { kBool, kString, kInt, kUint, kDuration, kValue };

/// Stores a flag's text value; returns why it is not a valid value ("" when it is).
using FlagSetter = std::function<std::string(const std::string& value)>;

struct FlagDef {
    std::string name;
    FlagType type;
    std::string default_text;  ///< as Go's usage shows it; "" for a zero default
    std::string usage;
    bool inert;  ///< accepted for compatibility, no effect
    FlagSetter set;
};

/// Go's strconv.ParseBool.
std::optional<bool> parse_go_bool(std::string_view text);

/// Go's strconv.ParseInt(text, 0, 64): an optional sign, then decimal, 0x hex, 0o or 0 octal,
/// or 0b binary; nullopt when it is not one or does not fit.
std::optional<std::int64_t> parse_go_int(std::string_view text);

FlagSetter text_to(std::string& target);
/// A value from `allowed` only.
FlagSetter one_of(std::string& target, std::vector<std::string> allowed);
FlagSetter bool_to(bool& target);
/// Checks a value with `valid` and otherwise ignores it (inert flags with a syntax).
FlagSetter checked(std::function<bool(const std::string&)> valid, std::string reason);
/// Takes any value and ignores it.
FlagSetter any_value();

/// An integer flag within [min, max]: Go's int, int32 and uint64 flags.
template <typename T>
FlagSetter int_to(T& target, std::int64_t min, std::int64_t max) {
    return [&target, min, max](const std::string& value) {
        auto parsed = parse_go_int(value);
        if (!parsed) {
            return std::string("parse error");
        }
        if (*parsed < min || *parsed > max) {
            return "not in range " + std::to_string(min) + " to " + std::to_string(max);
        }
        target = static_cast<T>(*parsed);
        return std::string();
    };
}

/// A value read by `parse` (nullopt: invalid, with `reason`), e.g. a duration.
template <typename T, typename Parse>
FlagSetter parsed_to(T& target, Parse parse, std::string reason) {
    return [&target, parse = std::move(parse), reason = std::move(reason)](const std::string& value) {
        auto parsed = parse(value);
        if (!parsed) {
            return reason;
        }
        target = *parsed;
        return std::string();
    };
}

/// What one pass over the arguments found: a usage request, an error, or flags set.
struct Scan {
    bool help = false;   ///< -h, -help or --help (when no flag of that name is defined)
    std::string error;   ///< Go's message ("flag provided but not defined: -x", ...)
    std::vector<std::string> inert_given;  ///< "-name" of each inert flag given, once, in order
};

/// Reads `args` (without the program name) against `flags`, setting each flag as it comes.
Scan scan(const std::vector<std::string>& args, const std::vector<FlagDef>& flags);

/// The usage text in the layout of Go's flag.PrintDefaults, after `preamble` and "Usage of
/// <program>:".
void write_usage(std::string_view preamble, std::string_view program,
                 const std::vector<FlagDef>& flags, std::ostream& out);

}  // namespace serin::goflags
