#include "metrics/prometheus/prometheus_result.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "platform/core/json.hpp"
#include "platform/core/text.hpp"

namespace serin::metrics {

using Json = nlohmann::json;

namespace {

/// How much of a malformed part of an answer an error message quotes.
constexpr std::size_t kQuoted = 120;

/// A sample value as Prometheus writes it (Go's strconv.FormatFloat 'f'/'e', "NaN", "+Inf",
/// "-Inf"): decimal only, no surrounding space, no hexadecimal. nullopt when not a number.
std::optional<double> read_number(std::string_view text) {
    if (text == "NaN") {
        return std::numeric_limits<double>::quiet_NaN();
    }
    if (text == "+Inf") {
        return std::numeric_limits<double>::infinity();
    }
    if (text == "-Inf") {
        return -std::numeric_limits<double>::infinity();
    }
    if (text.empty() || text.size() > 64) {
        return std::nullopt;
    }
    const char first = text.front();
    if (first != '-' && first != '.' && (first < '0' || first > '9')) {
        return std::nullopt;  // from_chars also takes "inf" and "nan", which Prometheus never sends
    }
    double value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
    if (ptr != end) {
        return std::nullopt;
    }
    if (ec == std::errc::result_out_of_range) {
        // Beyond a double's range: too large is infinite (no data, like "+Inf"); too small is 0.
        const bool negative = first == '-';
        const auto e = text.find_first_of("eE");
        const bool tiny = e != std::string_view::npos && e + 1 < text.size() && text[e + 1] == '-';
        if (tiny) {
            return negative ? -0.0 : 0.0;
        }
        return negative ? -std::numeric_limits<double>::infinity()
                        : std::numeric_limits<double>::infinity();
    }
    if (ec != std::errc{}) {
        return std::nullopt;
    }
    return value;
}

/// A sample [<unix time>, "<value>"]: the value, nullopt when it is not finite.
Result<std::optional<double>> sample_value(const Json& sample) {
    if (!sample.is_array() || sample.size() != 2 || !sample[1].is_string()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus sample is not [time, \"value\"]: " + show_json(sample, kQuoted));
    }
    const std::string& text = sample[1].get_ref<const std::string&>();
    const std::optional<double> value = read_number(text);
    if (!value) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus sample value \"" + text::clip(text, kQuoted) + "\" is not a number");
    }
    if (!std::isfinite(*value)) {
        return std::optional<double>{};
    }
    return value;
}

/// The labels of a series, for messages: {pod="a", code="200"}.
std::string labels_of(const Json& series) {
    const Json* metric = nullptr;
    if (series.is_object()) {
        if (auto it = series.find("metric"); it != series.end() && it->is_object()) {
            metric = &*it;
        }
    }
    if (metric == nullptr) {
        return "{}";
    }
    std::string out = "{";
    for (const auto& [name, value] : metric->items()) {
        out += (out.size() > 1 ? ", " : "") + name + "=" +
               (value.is_string() ? "\"" + value.get_ref<const std::string&>() + "\""
                                  : dump_json(value));
    }
    return text::clip(out + "}", kQuoted);
}

/// The `data` object of a successful response.
Result<Json> response_data(std::string_view body) {
    if (auto shallow = check_json_depth(body, kMaxRemoteJsonDepth, "the Prometheus answer");
        !shallow) {
        return shallow.error();
    }
    Json response = Json::parse(body, nullptr, false);
    if (response.is_discarded() || !response.is_object()) {
        return fail(ErrorKind::kBadRequest, "Prometheus answered with a body that is not JSON");
    }
    const auto status = response.find("status");
    if (status == response.end() || !status->is_string()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus answer has no string \"status\": " +
                        (status == response.end() ? std::string("missing")
                                                  : show_json(*status, kQuoted)));
    }
    if (status->get_ref<const std::string&>() != "success") {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus query error: " +
                        text::clip(json_string(response, "errorType", "?"), kQuoted) + ": " +
                        text::clip(json_string(response, "error", "?"), 2 * kQuoted));
    }
    const auto data = response.find("data");
    if (data == response.end() || !data->is_object()) {
        return fail(ErrorKind::kBadRequest, "Prometheus response has no data");
    }
    if (!data->contains("result")) {
        return fail(ErrorKind::kBadRequest, "Prometheus response has no data.result");
    }
    return Result<Json>(boost::system::in_place_value, std::move(*data));
}

/// data.resultType, which must be a string.
Result<std::string> result_type(const Json& data) {
    const auto type = data.find("resultType");
    if (type == data.end() || !type->is_string()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus answer has no string data.resultType: " +
                        (type == data.end() ? std::string("missing") : show_json(*type, kQuoted)));
    }
    return text::clip(type->get_ref<const std::string&>(), kQuoted);
}

/// The `data` of a successful answer and its result type.
struct TypedResult {
    Json data;
    std::string type;
    const Json& result() const { return data.at("result"); }
};

Result<TypedResult> typed_result(std::string_view body) {
    auto data = response_data(body);
    if (!data) {
        return data.error();
    }
    auto type = result_type(*data);
    if (!type) {
        return type.error();
    }
    return TypedResult{std::move(*data), std::move(*type)};
}

}  // namespace

Result<std::vector<double>> parse_range_response(std::string_view body) {
    auto data = typed_result(body);
    if (!data) {
        return data.error();
    }
    const std::string& type = data->type;
    const Json& result = data->result();
    if (type != "matrix" || !result.is_array()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus range result type \"" + type + "\" is not a matrix");
    }
    std::vector<double> values;
    if (result.empty()) {
        return values;
    }
    if (result.size() > 1) {
        return fail(ErrorKind::kBadRequest,
                    "range query returned " + std::to_string(result.size()) +
                        " series; a judged query must aggregate to one (sum, avg, "
                        "histogram_quantile)");
    }
    const Json& series = result.front();
    const auto samples = series.is_object() ? series.find("values") : series.end();
    if (!series.is_object() || samples == series.end() || !samples->is_array()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus series has no values: " + show_json(series, kQuoted));
    }
    values.reserve(samples->size());
    for (const Json& sample : *samples) {
        auto value = sample_value(sample);
        if (!value) {
            return value.error();
        }
        if (*value) {
            values.push_back(**value);
        }
    }
    return values;
}

Result<std::optional<double>> parse_query_response(std::string_view body) {
    auto data = typed_result(body);
    if (!data) {
        return data.error();
    }
    const std::string& type = data->type;
    const Json& result = data->result();
    if (type == "scalar") {
        return sample_value(result);
    }
    if (type == "matrix") {
        return fail(ErrorKind::kBadRequest, "query returned multiple values");
    }
    if (type != "vector" || !result.is_array()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus result type \"" + type + "\" is not a vector or scalar");
    }
    for (const Json& element : result) {
        if (element.is_object() && element.contains("values")) {
            return fail(ErrorKind::kBadRequest, "query returned multiple values");
        }
    }
    if (result.empty()) {
        return std::optional<double>{};
    }
    if (result.size() > 1) {
        // Flagger silently takes the last series, which is whichever Prometheus listed last.
        return fail(ErrorKind::kBadRequest,
                    "query returned " + std::to_string(result.size()) + " series (" +
                        labels_of(result[0]) + ", " + labels_of(result[1]) +
                        (result.size() > 2 ? ", ..." : "") +
                        "); a metric query must aggregate to one value (sum, avg, max, "
                        "histogram_quantile)");
    }
    const Json& only = result.front();
    const auto value = only.is_object() ? only.find("value") : only.end();
    if (!only.is_object() || value == only.end()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus vector element has no value: " + show_json(only, kQuoted));
    }
    return sample_value(*value);
}

}  // namespace serin::metrics
