// Reading Prometheus instant-query answers: vectors, scalars, no data (empty, NaN, Inf), errors.
#include <catch2/catch.hpp>

#include "metrics/prometheus/prometheus_result.hpp"
#include "platform/core/text.hpp"
#include "tests/support/hostile.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

using serin::metrics::parse_query_response;

TEST_CASE("a vector's one sample is the value") {
    auto v = parse_query_response(R"({"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"a":"2"},"value":[1700000000.1,"99.25"]}]}})");
    REQUIRE(v.has_value());
    REQUIRE(v->has_value());
    CHECK(**v == 99.25);
}

TEST_CASE("a scalar is the value") {
    auto v = parse_query_response(
        R"({"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}})");
    REQUIRE(v.has_value());
    CHECK(v->value() == 1.0);
}

TEST_CASE("an empty vector, NaN and infinities are no data, not values") {
    for (const char* body :
         {R"({"status":"success","data":{"resultType":"vector","result":[]}})",
          R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}})",
          R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"+Inf"]}]}})",
          R"({"status":"success","data":{"resultType":"scalar","result":[1,"-Inf"]}})"}) {
        INFO(body);
        auto v = parse_query_response(body);
        REQUIRE(v.has_value());
        CHECK_FALSE(v->has_value());
    }
}

TEST_CASE("errors say what was wrong") {
    auto message = [](const char* body) {
        auto v = parse_query_response(body);
        REQUIRE_FALSE(v.has_value());
        CHECK(v.error().kind == serin::ErrorKind::kBadRequest);
        return v.error().message;
    };
    CHECK(message("<html>") == "Prometheus answered with a body that is not JSON");
    CHECK(message(R"({"status":"error","errorType":"bad_data","error":"parse error at char 5"})") ==
          "Prometheus query error: bad_data: parse error at char 5");
    CHECK(message(R"({"status":"success","data":{"resultType":"matrix","result":[]}})") ==
          "query returned multiple values");
    CHECK(message(R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"values":[[1,"2"]]}]}})") ==
          "query returned multiple values");
    CHECK(message(R"({"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"12x"]}]}})") ==
          "Prometheus sample value \"12x\" is not a number");
    CHECK(message(R"({"status":"success","data":{"resultType":"string","result":[1,"hi"]}})") ==
          "Prometheus result type \"string\" is not a vector or scalar");
}

TEST_CASE("a range answer is its one series' samples in order, without NaN and infinities") {
    auto v = serin::metrics::parse_range_response(
        R"({"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{},"values":[[1,"1.5"],[2,"NaN"],[3,"2.5"],[4,"+Inf"],[5,"3"]]}]}})");
    REQUIRE(v.has_value());
    CHECK(*v == std::vector<double>{1.5, 2.5, 3});

    auto empty = serin::metrics::parse_range_response(
        R"({"status":"success","data":{"resultType":"matrix","result":[]}})");
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
}

TEST_CASE("a range answer with two series, a vector or an error is an error naming it") {
    auto two = serin::metrics::parse_range_response(
        R"({"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"pod":"a"},"values":[[1,"1"]]},{"metric":{"pod":"b"},"values":[[1,"2"]]}]}})");
    REQUIRE_FALSE(two.has_value());
    CHECK(two.error().message.find("range query returned 2 series") == 0);

    auto vector = serin::metrics::parse_range_response(
        R"({"status":"success","data":{"resultType":"vector","result":[]}})");
    REQUIRE_FALSE(vector.has_value());
    CHECK(vector.error().message == "Prometheus range result type \"vector\" is not a matrix");

    auto bad = serin::metrics::parse_range_response(
        R"({"status":"error","errorType":"bad_data","error":"parse error"})");
    REQUIRE_FALSE(bad.has_value());
    CHECK(bad.error().message == "Prometheus query error: bad_data: parse error");
}

// ---- hostile answers (tests/data/hostile/prometheus): a Canary names its own metrics server ----

namespace {

std::string hostile(const std::string& name) {
    return serin::testing::hostile_input("prometheus/" + name);
}

std::string error_of(const std::string& name) {
    auto v = parse_query_response(hostile(name));
    REQUIRE_FALSE(v.has_value());
    CHECK(v.error().kind == serin::ErrorKind::kBadRequest);
    return v.error().message;
}

}  // namespace

TEST_CASE("an answer nested 50,000 deep is an error, not a stack overflow") {
    CHECK(error_of("deep-sample.json") == "the Prometheus answer is nested deeper than 64 levels");
    CHECK(error_of("deep-object.json") == "the Prometheus answer is nested deeper than 64 levels");
    auto range = serin::metrics::parse_range_response(hostile("deep-range-values.json"));
    REQUIRE_FALSE(range.has_value());
    CHECK(range.error().message == "the Prometheus answer is nested deeper than 64 levels");
}

TEST_CASE("fields of the wrong type are errors, not exceptions") {
    CHECK(error_of("status-number.json") == "Prometheus answer has no string \"status\": 1");
    CHECK(error_of("status-null.json") == "Prometheus answer has no string \"status\": null");
    CHECK(error_of("result-type-null.json") ==
          "Prometheus answer has no string data.resultType: null");
    CHECK(error_of("result-type-object.json") ==
          "Prometheus answer has no string data.resultType: {\"a\":1}");
    CHECK(error_of("error-type-number.json") == "Prometheus query error: ?: ?");
    CHECK(error_of("result-not-array.json") ==
          "Prometheus result type \"vector\" is not a vector or scalar");
    CHECK(error_of("element-not-object.json") == "Prometheus vector element has no value: 7");
    CHECK(error_of("scalar-bad.json") == "Prometheus sample is not [time, \"value\"]: {\"a\":1}");
    auto range = serin::metrics::parse_range_response(hostile("matrix-series-not-object.json"));
    REQUIRE_FALSE(range.has_value());
    CHECK(range.error().message == "Prometheus series has no values: 3");
}

TEST_CASE("sample values are read as Prometheus writes them") {
    CHECK(error_of("value-hex.json") == "Prometheus sample value \"0x1p3\" is not a number");
    CHECK(error_of("value-leading-space.json") ==
          "Prometheus sample value \" 12\" is not a number");
    auto subnormal = parse_query_response(hostile("value-subnormal.json"));
    REQUIRE(subnormal.has_value());
    REQUIRE(subnormal->has_value());
    CHECK(**subnormal > 0);
    CHECK(**subnormal < 1e-320);
    auto huge = parse_query_response(hostile("value-huge.json"));
    REQUIRE(huge.has_value());
    CHECK(huge->value() == 9.3e18);
    auto overflow = parse_query_response(hostile("value-overflow.json"));
    REQUIRE(overflow.has_value());
    CHECK_FALSE(overflow->has_value());  // beyond a double: infinite, like "+Inf"
}

TEST_CASE("a vector of several series is refused, naming them") {
    CHECK(error_of("two-series.json") ==
          "query returned 2 series ({pod=\"a\"}, {pod=\"b\"}); a metric query must aggregate "
          "to one value (sum, avg, max, histogram_quantile)");
}

TEST_CASE("every hostile answer gives a value or an error with a short, valid message") {
    for (const auto& entry : std::filesystem::directory_iterator(
             std::string(SERIN_SOURCE_DIR) + "/tests/data/hostile/prometheus")) {
        const std::string name = entry.path().filename().string();
        INFO(name);
        const std::string body = hostile(name);
        for (int range = 0; range < 2; ++range) {
            std::string message;
            if (range == 0) {
                auto v = parse_query_response(body);
                message = v ? "" : v.error().message;
            } else {
                auto v = serin::metrics::parse_range_response(body);
                message = v ? "" : v.error().message;
            }
            CHECK(serin::text::is_valid_utf8(message));
            CHECK(message.size() <= 600);
        }
    }
}
