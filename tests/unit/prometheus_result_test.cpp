// Reading Prometheus instant-query answers: vectors, scalars, no data (empty, NaN, Inf), errors.
#include <catch2/catch.hpp>

#include "analysis/providers/prometheus_result.hpp"

using serin::metrics::parse_query_response;

TEST_CASE("a vector's last sample is the value") {
    auto v = parse_query_response(R"({"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"a":"1"},"value":[1700000000.1,"12.5"]},
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
