// The NGINX router's pure parts: the canary Ingress cloned from the user's (golden files), the
// canary annotations of each strategy, reading the weights back, the owned-field update, and
// the A/B matches NGINX cannot express, refused naming the field.
#include <catch2/catch.hpp>

#include "meshes/nginx/nginx_router.hpp"
#include "tests/support/golden.hpp"

namespace {

using serin::meshes::build_canary_ingress;
using serin::meshes::canary_ingress_routes;
using serin::meshes::canary_ingress_spec;
using serin::meshes::canary_ingress_update;
using serin::meshes::nginx_match;
using serin::meshes::NginxMatch;
using serin::testing::golden;
using serin::testing::load_document;
using serin::testing::route_context;
using Routes = serin::analysis::Routes;
using Json = nlohmann::json;

constexpr const char* kPrefix = "nginx.ingress.kubernetes.io";

Json user_ingress() { return load_document("tests/data/routes/nginx/ingress.yaml"); }

serin::meshes::RouteContext canary_context() {
    return route_context(load_document("tests/data/routes/nginx/canary.yaml"), "nginx");
}

serin::meshes::RouteContext ab_context() {
    return route_context(load_document("tests/data/routes/nginx/ab.yaml"), "nginx");
}

/// The error message nginx_match gives for `match` (YAML-free: JSON text).
std::string refusal(const char* match) {
    auto result = nginx_match(Json::parse(match));
    return result ? std::string("accepted") : result.error().message;
}

}  // namespace

TEST_CASE("the canary Ingress is the user's with the canary backends and the canary annotations") {
    const auto context = canary_context();
    const Json at0 = build_canary_ingress(context, user_ingress(), Routes{100, 0, false}, kPrefix).value();
    CHECK(golden("nginx/canary-100-0.json", at0) == "");
    const Json at30 = build_canary_ingress(context, user_ingress(), Routes{70, 30, false}, kPrefix).value();
    CHECK(golden("nginx/canary-70-30.json", at30) == "");

    const Json& annotations = at30["metadata"]["annotations"];
    CHECK(annotations["nginx.ingress.kubernetes.io/canary"] == "true");
    CHECK(annotations["nginx.ingress.kubernetes.io/canary-weight"] == "30");  // not the user's "50"
    CHECK(annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m");
    CHECK(annotations["example.com/team"] == "web");
    CHECK_FALSE(annotations.contains("kubectl.kubernetes.io/last-applied-configuration"));
    CHECK(at30["metadata"]["name"] == "podinfo-canary");
    CHECK(at30["metadata"]["labels"] == Json{{"app", "podinfo"}});
    CHECK(at30["metadata"]["ownerReferences"][0]["kind"] == "Canary");
    const Json& rules = at30["spec"]["rules"];
    CHECK(rules[0]["http"]["paths"][0]["backend"]["service"]["name"] == "podinfo-canary");
    CHECK(rules[0]["http"]["paths"][1]["backend"]["service"]["name"] == "static");
    CHECK(rules[1]["http"]["paths"][0]["backend"]["service"]["name"] == "podinfo-canary");
    CHECK(at30["spec"]["tls"] == user_ingress()["spec"]["tls"]);
    CHECK(at30["spec"]["ingressClassName"] == "nginx");
}

TEST_CASE("an A/B release routes by the header and the cookie, and stops at weight 0") {
    const auto context = ab_context();
    const Json on = build_canary_ingress(context, user_ingress(), Routes{0, 100, false}, kPrefix).value();
    CHECK(golden("nginx/ab-0-100.json", on) == "");
    const Json& annotations = on["metadata"]["annotations"];
    CHECK(annotations["nginx.ingress.kubernetes.io/canary-by-header"] == "x-canary");
    CHECK(annotations["nginx.ingress.kubernetes.io/canary-by-header-value"] == "insider");
    CHECK(annotations["nginx.ingress.kubernetes.io/canary-by-cookie"] == "canary");
    CHECK(annotations["nginx.ingress.kubernetes.io/canary-weight"] == "0");

    const Json off = build_canary_ingress(context, user_ingress(), Routes{100, 0, false}, kPrefix).value();
    for (const char* key : {"canary-by-header", "canary-by-header-value", "canary-by-cookie"}) {
        CHECK_FALSE(off["metadata"]["annotations"].contains(std::string(kPrefix) + "/" + key));
    }
    // Promotion: the live A/B Ingress loses its rules, and its user-set keys stay.
    Json live = on;
    live["metadata"]["annotations"]["example.com/mine"] = "kept";
    live["metadata"]["resourceVersion"] = "7";
    const Json updated = canary_ingress_update(live, off, kPrefix).value();
    CHECK(updated["metadata"]["annotations"] == [&] {
        Json expected = off["metadata"]["annotations"];
        expected["example.com/mine"] = "kept";
        return expected;
    }());
    CHECK(updated["metadata"]["resourceVersion"] == "7");
    CHECK_FALSE(canary_ingress_update(updated, off, kPrefix).has_value());
}

TEST_CASE("a regex header match is written as canary-by-header-pattern") {
    const NginxMatch match = nginx_match(Json::parse(R"([{"headers": {"x-user": {"regex": "^(a|b)$"}}}])")).value();
    CHECK(match == NginxMatch{"", "x-user", "", "^(a|b)$"});
    const Json annotations = serin::meshes::canary_annotations(kPrefix, match, Routes{0, 100, false});
    CHECK(annotations == Json{{"nginx.ingress.kubernetes.io/canary", "true"},
                              {"nginx.ingress.kubernetes.io/canary-weight", "0"},
                              {"nginx.ingress.kubernetes.io/canary-by-header", "x-user"},
                              {"nginx.ingress.kubernetes.io/canary-by-header-pattern", "^(a|b)$"}});
}

TEST_CASE("the annotations prefix comes from the flag") {
    const Json ingress =
        build_canary_ingress(canary_context(), user_ingress(), Routes{90, 10, false}, "custom.nginx.org").value();
    const Json& annotations = ingress["metadata"]["annotations"];
    CHECK(annotations["custom.nginx.org/canary"] == "true");
    CHECK(annotations["custom.nginx.org/canary-weight"] == "10");
    // The user's keys under the default prefix are only the user's under another prefix.
    CHECK(annotations["nginx.ingress.kubernetes.io/canary-weight"] == "50");
    CHECK(canary_ingress_routes(canary_context(), ingress, "custom.nginx.org").value() ==
          Routes{90, 10, false});
}

TEST_CASE("the weights read back are the weights written") {
    for (const Routes routes : {Routes{100, 0, false}, Routes{80, 20, false}, Routes{0, 100, false}}) {
        const Json ingress = build_canary_ingress(canary_context(), user_ingress(), routes, kPrefix).value();
        CHECK(canary_ingress_routes(canary_context(), ingress, kPrefix).value() == routes);
        const Json ab = build_canary_ingress(ab_context(), user_ingress(), routes, kPrefix).value();
        // A/B has only all-or-nothing: any canary traffic is the header and cookie rules.
        CHECK(canary_ingress_routes(ab_context(), ab, kPrefix).value() ==
              (routes.canary > 0 ? Routes{0, 100, false} : Routes{100, 0, false}));
    }
}

TEST_CASE("a canary weight that is not a whole number from 0 to 100 is an error") {
    Json ingress = build_canary_ingress(canary_context(), user_ingress(), Routes{100, 0, false}, kPrefix).value();
    Json& weight = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"];
    for (const char* bad : {"ten", "10.5", "101", "-1", ""}) {
        weight = bad;
        auto read = canary_ingress_routes(canary_context(), ingress, kPrefix);
        REQUIRE_FALSE(read.has_value());
        CHECK(read.error().message ==
              "Ingress podinfo-canary.test: nginx.ingress.kubernetes.io/canary-weight \"" +
                  std::string(bad) + "\" is not a whole number from 0 to 100");
    }
    ingress["metadata"]["annotations"].erase("nginx.ingress.kubernetes.io/canary-weight");
    CHECK(canary_ingress_routes(canary_context(), ingress, kPrefix).value() == Routes{100, 0, false});
}

TEST_CASE("a user Ingress without the canary's backend, or with a rule without paths, is refused") {
    Json ingress = user_ingress();
    ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = "other";
    ingress["spec"]["rules"][1]["http"]["paths"][0]["backend"]["service"]["name"] = "other";
    auto missing = canary_ingress_spec(canary_context(), ingress);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().message ==
          "spec.ingressRef: Ingress podinfo.test: backend podinfo not found in ingress podinfo");

    ingress = user_ingress();
    ingress["spec"]["rules"][1].erase("http");
    auto no_http = canary_ingress_spec(canary_context(), ingress);
    REQUIRE_FALSE(no_http.has_value());
    CHECK(no_http.error().message ==
          "spec.ingressRef: Ingress podinfo.test: spec.rules[1] has no http paths to route");
}

TEST_CASE("what NGINX cannot route by is refused, naming the field") {
    CHECK(refusal(R"([{"sourceLabels": {"app": "a"}}])") ==
          "spec.analysis.match[0].sourceLabels: not supported by NGINX (it routes the canary by "
          "one header or one cookie)");
    CHECK(refusal(R"([{"uri": {"prefix": "/api"}, "headers": {"x": {"exact": "1"}}}])") ==
          "spec.analysis.match[0].uri: not supported by NGINX (it routes the canary by one header "
          "or one cookie)");
    CHECK(refusal(R"([{"headers": {"x": {"exact": "1"}, "y": {"exact": "2"}}}])")
              .starts_with("spec.analysis.match[0].headers: NGINX needs exactly one header per match entry"));
    CHECK(refusal(R"([{"headers": {"x": {"exact": "1"}}}, {"headers": {"y": {"exact": "2"}}}])") ==
          "spec.analysis.match[1].headers.y: NGINX routes by one header; "
          "spec.analysis.match[0].headers.x names one already");
    CHECK(refusal(R"([{"headers": {"cookie": {"exact": "a"}}}, {"headers": {"cookie": {"exact": "b"}}}])") ==
          "spec.analysis.match[1].headers.cookie: NGINX routes by one cookie; "
          "spec.analysis.match[0].headers.cookie names one already");
    CHECK(refusal(R"([{"headers": {"x": {"prefix": "a"}}}])") ==
          "spec.analysis.match[0].headers.x.prefix: NGINX matches a header by exact value or regex only");
    CHECK(refusal(R"([{"headers": {"cookie": {"regex": "a.*"}}}])") ==
          "spec.analysis.match[0].headers.cookie.regex: NGINX routes by a cookie's name "
          "(canary-by-cookie): give it as exact");
    CHECK(refusal(R"([{"headers": {"x": {"exact": "1"}}}, {"headers": {"cookie": {"exact": "c"}}}])") ==
          "accepted");
    CHECK(refusal("null") == "accepted");
}

TEST_CASE("the update of a live canary Ingress writes only what differs") {
    const Json desired = build_canary_ingress(canary_context(), user_ingress(), Routes{80, 20, false}, kPrefix).value();
    CHECK_FALSE(canary_ingress_update(desired, desired, kPrefix).has_value());
    Json live = desired;
    live["spec"]["rules"][0]["host"] = "edited.example.com";  // drift in the spec
    live["metadata"]["labels"]["extra"] = "x";
    const Json repaired = canary_ingress_update(live, desired, kPrefix).value();
    CHECK(repaired["spec"] == desired["spec"]);
    CHECK(repaired["metadata"]["labels"]["extra"] == "x");
    CHECK(repaired["metadata"]["annotations"] == desired["metadata"]["annotations"]);
}
