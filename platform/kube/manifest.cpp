#include "platform/kube/manifest.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace serin::kube {

namespace {

constexpr std::string_view kTagStr = "tag:yaml.org,2002:str";
constexpr std::string_view kTagInt = "tag:yaml.org,2002:int";
constexpr std::string_view kTagFloat = "tag:yaml.org,2002:float";
constexpr std::string_view kTagBool = "tag:yaml.org,2002:bool";
constexpr std::string_view kTagNull = "tag:yaml.org,2002:null";

/// Deeper than any real manifest; stops alias cycles (`&a [*a]`) from recursing forever.
constexpr int kMaxDepth = 512;
/// JSON values one call may produce beyond four per byte of input. Without aliases every value
/// takes at least one character of text, so only aliases expanding far ("billion laughs") hit it.
constexpr std::size_t kExtraValues = 100'000;

/// Json converts to anything, Error included, so a Result<Json> has to be told which side a
/// Json goes to.
Result<Json> ok(Json value) {
    return Result<Json>(boost::system::in_place_value, std::move(value));
}

Error yaml_error(const YAML::Mark& mark, const std::string& message) {
    if (mark.is_null()) {
        return fail(ErrorKind::kInvalid, "yaml: " + message);
    }
    return fail(ErrorKind::kInvalid, "yaml: line " + std::to_string(mark.line + 1) + ", column " +
                                         std::to_string(mark.column + 1) + ": " + message);
}

bool is_digits(std::string_view s, int base) {
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        bool ok = base == 8    ? (c >= '0' && c <= '7')
                  : base == 10 ? (c >= '0' && c <= '9')
                               : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                                  (c >= 'A' && c <= 'F'));
        if (!ok) {
            return false;
        }
    }
    return true;
}

/// An integer of the core schema: [-+]?[0-9]+, 0o[0-7]+ or 0x[0-9a-fA-F]+.
std::optional<Json> parse_int(std::string_view s) {
    int base = 10;
    bool negative = false;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        s.remove_prefix(2);
    } else if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    if (!is_digits(s, base)) {
        return std::nullopt;
    }
    std::uint64_t magnitude = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude, base);
    if (ec == std::errc{} && end == s.data() + s.size()) {
        constexpr auto kMaxMagnitude = static_cast<std::uint64_t>(INT64_MAX);
        if (!negative && magnitude <= kMaxMagnitude) {
            return Json(static_cast<std::int64_t>(magnitude));
        }
        if (!negative) {
            return Json(magnitude);
        }
        if (magnitude <= kMaxMagnitude + 1) {
            // -(2^63) does not fit the positive side, so negate in unsigned arithmetic.
            return Json(static_cast<std::int64_t>(0 - magnitude));
        }
    }
    if (base != 10) {
        return std::nullopt;  // a hex or octal literal beyond 64 bits stays a string
    }
    // A decimal integer beyond 64 bits: keep its value approximately, as JSON would.
    double value = 0;
    auto [fend, fec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (fec != std::errc{} || fend != s.data() + s.size()) {
        return std::nullopt;
    }
    return Json(negative ? -value : value);
}

/// A float of the core schema: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?. The
/// infinities and NaN have no JSON form, so ".inf" and ".nan" are not recognised.
std::optional<Json> parse_float(std::string_view s) {
    std::string_view body = s;
    if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
        body.remove_prefix(1);
    }
    std::size_t i = 0;
    std::size_t int_digits = 0;
    while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
        ++i;
        ++int_digits;
    }
    std::size_t frac_digits = 0;
    if (i < body.size() && body[i] == '.') {
        ++i;
        while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
            ++i;
            ++frac_digits;
        }
    }
    if (int_digits == 0 && frac_digits == 0) {
        return std::nullopt;
    }
    if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
        ++i;
        if (i < body.size() && (body[i] == '-' || body[i] == '+')) {
            ++i;
        }
        std::size_t exp_digits = 0;
        while (i < body.size() && body[i] >= '0' && body[i] <= '9') {
            ++i;
            ++exp_digits;
        }
        if (exp_digits == 0) {
            return std::nullopt;
        }
    }
    if (i != body.size()) {
        return std::nullopt;
    }
    // from_chars takes no '+', and wants a digit before an exponent ("1.e5" is fine, ".5" too).
    std::string_view number = s[0] == '+' ? s.substr(1) : s;
    double value = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
    if (ec != std::errc{} || end != number.data() + number.size()) {
        return std::nullopt;  // out of range: keep the text
    }
    return Json(value);
}

std::optional<Json> parse_bool(std::string_view s) {
    if (s == "true" || s == "True" || s == "TRUE") {
        return Json(true);
    }
    if (s == "false" || s == "False" || s == "FALSE") {
        return Json(false);
    }
    return std::nullopt;
}

bool is_null_text(std::string_view s) {
    return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

/// A plain scalar resolved by the core schema.
Json resolve_plain(const std::string& s) {
    if (is_null_text(s)) {
        return Json(nullptr);
    }
    if (auto b = parse_bool(s)) {
        return *b;
    }
    if (auto i = parse_int(s)) {
        return *i;
    }
    if (auto f = parse_float(s)) {
        return *f;
    }
    return Json(s);
}

class Converter {
public:
    explicit Converter(std::size_t max_values) : max_values_(max_values) {}

    Result<Json> convert(const YAML::Node& node, int depth) {
        if (depth > kMaxDepth) {
            return yaml_error(node.Mark(), "nested too deeply (an alias refers to itself?)");
        }
        if (++values_ > max_values_) {
            return yaml_error(node.Mark(), "too many values (aliases expand too far)");
        }
        switch (node.Type()) {
            case YAML::NodeType::Undefined:
            case YAML::NodeType::Null:
                // "key: !!str" is an empty string rather than null.
                return ok(node.Tag() == kTagStr ? Json("") : Json(nullptr));
            case YAML::NodeType::Scalar:
                return scalar(node);
            case YAML::NodeType::Sequence: {
                Json out = Json::array();
                for (const auto& item : node) {
                    auto value = convert(item, depth + 1);
                    if (!value) {
                        return value.error();
                    }
                    out.push_back(std::move(*value));
                }
                return ok(std::move(out));
            }
            case YAML::NodeType::Map:
                return map(node, depth);
        }
        return yaml_error(node.Mark(), "unknown node type");
    }

private:
    static Result<Json> scalar(const YAML::Node& node) {
        const std::string& tag = node.Tag();
        const std::string& text = node.Scalar();
        if (tag == "?" || tag.empty()) {
            return ok(resolve_plain(text));
        }
        std::optional<Json> typed;
        if (tag == kTagInt) {
            typed = parse_int(text);
        } else if (tag == kTagFloat) {
            typed = parse_float(text);
            if (!typed) {
                typed = parse_int(text);
                if (typed) {
                    typed = Json(typed->get<double>());
                }
            }
        } else if (tag == kTagBool) {
            typed = parse_bool(text);
        } else if (tag == kTagNull) {
            if (is_null_text(text)) {
                typed = Json(nullptr);
            }
        } else {
            // "!" (quoted, literal or folded), !!str, and application tags: the text as is.
            return ok(Json(text));
        }
        if (!typed) {
            return yaml_error(node.Mark(), "\"" + text + "\" is not a valid " + tag);
        }
        return ok(std::move(*typed));
    }

    static Result<std::string> key_text(const YAML::Node& key) {
        if (key.IsScalar()) {
            return key.Scalar();
        }
        if (key.IsNull()) {
            return std::string("null");
        }
        return yaml_error(key.Mark(), "a mapping key must be a scalar");
    }

    static bool is_merge_key(const YAML::Node& key) {
        return key.IsScalar() && key.Scalar() == "<<" && (key.Tag() == "?" || key.Tag().empty());
    }

    Result<Json> map(const YAML::Node& node, int depth) {
        Json out = Json::object();
        std::vector<YAML::Node> merges;
        for (const auto& entry : node) {
            if (is_merge_key(entry.first)) {
                merges.push_back(entry.second);
                continue;
            }
            auto key = key_text(entry.first);
            if (!key) {
                return key.error();
            }
            if (out.contains(*key)) {
                return yaml_error(entry.first.Mark(), "duplicate key \"" + *key + "\"");
            }
            auto value = convert(entry.second, depth + 1);
            if (!value) {
                return value.error();
            }
            out[*key] = std::move(*value);
        }
        // "<<: *base" (or a list of them) supplies keys the mapping does not set itself; an
        // earlier source in the list wins over a later one.
        for (const auto& merge : merges) {
            std::vector<YAML::Node> sources;
            if (merge.IsMap()) {
                sources.push_back(merge);
            } else if (merge.IsSequence()) {
                for (const auto& item : merge) {
                    sources.push_back(item);
                }
            }
            for (const auto& source : sources) {
                if (!source.IsMap()) {
                    return yaml_error(source.Mark(), "a merge key (<<) needs mappings");
                }
                auto merged = map(source, depth + 1);
                if (!merged) {
                    return merged.error();
                }
                for (auto& [key, value] : merged->items()) {
                    if (!out.contains(key)) {
                        out[key] = std::move(value);
                    }
                }
            }
            if (sources.empty()) {
                return yaml_error(merge.Mark(), "a merge key (<<) needs mappings");
            }
        }
        return ok(std::move(out));
    }

    std::size_t max_values_;
    std::size_t values_ = 0;
};

/// Records the parser's message; everything else is accepted and dropped.
class ErrorRecorder final : public nlohmann::json_sax<Json> {
public:
    std::string message;

    bool null() override { return true; }
    bool boolean(bool /*val*/) override { return true; }
    bool number_integer(number_integer_t /*val*/) override { return true; }
    bool number_unsigned(number_unsigned_t /*val*/) override { return true; }
    bool number_float(number_float_t /*val*/, const string_t& /*s*/) override { return true; }
    bool string(string_t& /*val*/) override { return true; }
    bool binary(binary_t& /*val*/) override { return true; }
    bool start_object(std::size_t /*elements*/) override { return true; }
    bool key(string_t& /*val*/) override { return true; }
    bool end_object() override { return true; }
    bool start_array(std::size_t /*elements*/) override { return true; }
    bool end_array() override { return true; }
    bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                     const nlohmann::detail::exception& ex) override {
        message = ex.what();
        return false;
    }
};

}  // namespace

Result<std::vector<Json>> parse_manifests(std::string_view yaml_text) {
    std::vector<YAML::Node> documents;
    try {
        documents = YAML::LoadAll(std::string(yaml_text));
    } catch (const YAML::Exception& e) {
        return yaml_error(e.mark, e.msg);
    }
    std::vector<Json> out;
    out.reserve(documents.size());
    try {
        Converter converter(kExtraValues + 4 * yaml_text.size());
        for (const auto& document : documents) {
            if (!document.IsDefined() || document.IsNull()) {
                continue;
            }
            auto json = converter.convert(document, 0);
            if (!json) {
                return json.error();
            }
            out.push_back(std::move(*json));
        }
    } catch (const YAML::Exception& e) {
        return yaml_error(e.mark, e.msg);
    }
    return out;
}

Result<Json> parse_json(std::string_view json_text) {
    Json value = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
    if (!value.is_discarded()) {
        return ok(std::move(value));
    }
    // Parse again only to learn why: the DOM parser reports nothing without exceptions.
    ErrorRecorder recorder;
    Json::sax_parse(json_text, &recorder);
    if (recorder.message.empty()) {
        recorder.message = "invalid JSON";
    }
    return fail(ErrorKind::kInvalid, "json: " + recorder.message);
}

}  // namespace serin::kube
