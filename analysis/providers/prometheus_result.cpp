#include "analysis/providers/prometheus_result.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace serin::metrics {

using Json = nlohmann::json;

namespace {

/// A sample [<unix time>, "<value>"]: the value, nullopt when it is not finite.
Result<std::optional<double>> sample_value(const Json& sample) {
    if (!sample.is_array() || sample.size() != 2 || !sample[1].is_string()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus sample is not [time, \"value\"]: " + sample.dump());
    }
    const std::string& text = sample[1].get_ref<const std::string&>();
    double value = 0;
    try {
        std::size_t used = 0;
        value = std::stod(text, &used);
        if (used != text.size()) {
            throw std::invalid_argument(text);
        }
    } catch (const std::exception&) {
        // std::stod reads "NaN", "+Inf" and "-Inf" itself; anything else is not a number.
        return fail(ErrorKind::kBadRequest, "Prometheus sample value \"" + text + "\" is not a number");
    }
    if (!std::isfinite(value)) {
        return std::optional<double>{};
    }
    return std::optional<double>{value};
}

/// The `data` object of a successful response.
Result<Json> response_data(std::string_view body) {
    Json response = Json::parse(body, nullptr, false);
    if (response.is_discarded() || !response.is_object()) {
        return fail(ErrorKind::kBadRequest, "Prometheus answered with a body that is not JSON");
    }
    if (response.value("status", "") != "success") {
        return fail(ErrorKind::kBadRequest, "Prometheus query error: " +
                                                response.value("errorType", std::string("?")) +
                                                ": " + response.value("error", std::string("?")));
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

}  // namespace

Result<std::vector<double>> parse_range_response(std::string_view body) {
    auto data = response_data(body);
    if (!data) {
        return data.error();
    }
    const std::string type = data->value("resultType", "");
    const Json& result = (*data)["result"];
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
    const auto samples = result[0].find("values");
    if (samples == result[0].end() || !samples->is_array()) {
        return fail(ErrorKind::kBadRequest, "Prometheus series has no values: " + result[0].dump());
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
    auto data_or = response_data(body);
    if (!data_or) {
        return data_or.error();
    }
    const Json* data = &*data_or;
    const std::string type = data->value("resultType", "");
    const auto result = data->find("result");
    if (type == "scalar") {
        return sample_value(*result);
    }
    if (type == "matrix") {
        return fail(ErrorKind::kBadRequest, "query returned multiple values");
    }
    if (type != "vector" || !result->is_array()) {
        return fail(ErrorKind::kBadRequest,
                    "Prometheus result type \"" + type + "\" is not a vector or scalar");
    }
    for (const Json& element : *result) {
        if (element.is_object() && element.contains("values")) {
            return fail(ErrorKind::kBadRequest, "query returned multiple values");
        }
    }
    if (result->empty()) {
        return std::optional<double>{};
    }
    const Json& last = result->back();
    if (!last.is_object() || !last.contains("value")) {
        return fail(ErrorKind::kBadRequest, "Prometheus vector element has no value: " + last.dump());
    }
    return sample_value(last["value"]);
}

}  // namespace serin::metrics
