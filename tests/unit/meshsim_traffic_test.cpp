// meshsim's traffic model: who gets what share of an apex Service's stream, from each kind of
// routing object, and the exact request and error counts of the stream.
#include <catch2/catch.hpp>

#include "devcluster/meshsim/traffic.hpp"

namespace {

using namespace serin::meshsim;

Json service(const std::string& name, const std::string& app) {
    return {{"metadata", {{"name", name}, {"namespace", "test"}}},
            {"spec", {{"selector", {{"app", app}}}}}};
}

Json deployment(const std::string& name, int available, Json annotations = Json::object()) {
    return {{"metadata", {{"name", name}, {"namespace", "test"}}},
            {"spec", {{"template", {{"metadata", {{"labels", {{"app", name}}},
                                                  {"annotations", annotations}}}}}}},
            {"status", {{"availableReplicas", available}}}};
}

/// The apex podinfo, its primary and canary Services, and both Deployments ready.
std::vector<Json> services() {
    return {service("podinfo", "podinfo-primary"), service("podinfo-primary", "podinfo-primary"),
            service("podinfo-canary", "podinfo")};
}
std::vector<Json> deployments(int canary_available = 2) {
    return {deployment("podinfo-primary", 2),
            deployment("podinfo", canary_available,
                       {{kErrorRateAnnotation, "20"}, {kLatencyAnnotation, "600"}})};
}

std::map<std::string, double> shares(const std::vector<Flow>& flows) {
    std::map<std::string, double> out;
    for (const Flow& f : flows) {
        out[f.version.workload] += f.share;
    }
    return out;
}

Json destination(const std::string& host, int weight) {
    return {{"destination", {{"host", host}}}, {"weight", weight}};
}

}  // namespace

TEST_CASE("a VirtualService's weights split the apex's stream") {
    const Json vs = {{"kind", "VirtualService"},
                     {"metadata", {{"name", "podinfo"}, {"namespace", "test"}}},
                     {"spec", {{"http", {{{"route", {destination("podinfo-primary", 80),
                                                     destination("podinfo-canary", 20)}}}}}}}};
    const auto flows = plan(services(), deployments(), {vs});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.2}, {"podinfo-primary", 0.8}});
    const Flow& canary = flows[0].version.workload == "podinfo" ? flows[0] : flows[1];
    CHECK(canary.version.error_rate == Approx(0.2));
    CHECK(canary.version.latency_ms == 600);
}

TEST_CASE("A/B routes get a matched share, mirrors add copies") {
    Json ab = {{"kind", "VirtualService"},
               {"metadata", {{"name", "podinfo"}, {"namespace", "test"}}},
               {"spec", {{"http", {{{"route", {destination("podinfo-primary", 0),
                                               destination("podinfo-canary", 100)}}},
                                   {{"route", {destination("podinfo-primary", 100)}}}}}}}};
    CHECK(shares(plan(services(), deployments(), {ab})) ==
          std::map<std::string, double>{{"podinfo", kMatchedShare}, {"podinfo-primary", 1 - kMatchedShare}});
    Json mirror = ab;
    mirror["spec"]["http"] = {{{"route", {destination("podinfo-primary", 100), destination("podinfo-canary", 0)}},
                               {"mirror", {{"host", "podinfo-canary"}}},
                               {"mirrorPercentage", {{"value", 50}}}}};
    CHECK(shares(plan(services(), deployments(), {mirror})) ==
          std::map<std::string, double>{{"podinfo", 0.5}, {"podinfo-primary", 1.0}});
}

TEST_CASE("TrafficSplit weights of any version and HTTPRoute backends and mirrors") {
    const Json split = {{"kind", "TrafficSplit"},
                        {"metadata", {{"name", "podinfo"}, {"namespace", "test"}}},
                        {"spec", {{"backends", {{{"service", "podinfo-canary"}, {"weight", "30"}},
                                                {{"service", "podinfo-primary"}, {"weight", 70}}}}}}};
    CHECK(shares(plan(services(), deployments(), {split})) ==
          std::map<std::string, double>{{"podinfo", 0.3}, {"podinfo-primary", 0.7}});
    const Json route = {
        {"kind", "HTTPRoute"},
        {"metadata", {{"name", "podinfo"}, {"namespace", "test"}}},
        {"spec", {{"rules", {{{"backendRefs", {{{"name", "podinfo-primary"}, {"weight", 100}},
                                               {{"name", "podinfo-canary"}, {"weight", 0}}}},
                              {"filters", {{{"type", "RequestMirror"},
                                            {"requestMirror", {{"backendRef", {{"name", "podinfo-canary"}}}}}}}}}}}}}};
    CHECK(shares(plan(services(), deployments(), {route})) ==
          std::map<std::string, double>{{"podinfo", 1.0}, {"podinfo-primary", 1.0}});
}

TEST_CASE("a GRPCRoute's backend weights split the apex's stream as an HTTPRoute's do") {
    const Json route = {
        {"kind", "GRPCRoute"},
        {"metadata", {{"name", "podinfo"}, {"namespace", "test"}}},
        {"spec", {{"rules", {{{"backendRefs", {{{"name", "podinfo-primary"}, {"weight", 60}},
                                               {{"name", "podinfo-canary"}, {"weight", 40}}}}}}}}}};
    CHECK(shares(plan(services(), deployments(), {route})) ==
          std::map<std::string, double>{{"podinfo", 0.4}, {"podinfo-primary", 0.6}});
}

TEST_CASE("without a routing object the apex Service's selector decides, unready versions get nothing") {
    CHECK(shares(plan(services(), deployments(), {})) ==
          std::map<std::string, double>{{"podinfo-primary", 1.0}});
    std::vector<Json> switched = services();
    switched[0]["spec"]["selector"]["app"] = "podinfo";  // blue/green switched to the canary
    CHECK(shares(plan(switched, deployments(), {})) == std::map<std::string, double>{{"podinfo", 1.0}});
    CHECK(plan(switched, deployments(0), {}).empty());  // scaled to zero: no pod answers
}

TEST_CASE("the stream counts exact requests and errors over many steps") {
    const Json vs = {{"kind", "VirtualService"},
                     {"metadata", {{"name", "podinfo"}, {"namespace", "test"}}},
                     {"spec", {{"http", {{{"route", {destination("podinfo-primary", 90),
                                                     destination("podinfo-canary", 10)}}}}}}}};
    const auto flows = plan(services(), deployments(), {vs});
    Stream stream;
    std::map<std::string, std::pair<long, long>> totals;
    for (int i = 0; i < 50; ++i) {  // 10 s at 50 requests/s
        for (const Outcome& o : stream.step(flows, 50, 0.2)) {
            totals[o.version.workload].first += o.requests;
            totals[o.version.workload].second += o.errors;
        }
    }
    CHECK(totals["podinfo-primary"] == std::pair<long, long>{450, 0});
    CHECK(totals["podinfo"] == std::pair<long, long>{50, 10});  // 20% errors
}

TEST_CASE("latency samples spread over plus or minus 10%") {
    Version v;
    v.latency_ms = 600;
    double low = 1e9;
    double high = 0;
    for (long i = 0; i < 100; ++i) {
        low = std::min(low, latency_sample(v, i));
        high = std::max(high, latency_sample(v, i));
    }
    CHECK(low == Approx(540));
    CHECK(high == Approx(660));
}

TEST_CASE("the HTTP front sends requests to an apex's versions by their shares and error rates") {
    using serin::meshsim::Flow;
    using serin::meshsim::RequestRouter;
    using serin::meshsim::Version;
    Version primary{"test", "podinfo-primary", "p", 0, 10};
    Version canary{"test", "podinfo", "c", 0.5, 10};
    auto flow = [](const char* ns, const Version& v, double share) {
        Flow f;
        f.ns = ns;
        f.apex = "podinfo";
        f.version = v;
        f.share = share;
        return f;
    };
    const std::vector<Flow> flows{flow("test", primary, 0.8), flow("test", canary, 0.2),
                                  flow("test", canary, 0.2),  // a mirrored copy: not sent
                                  flow("other", primary, 1)};
    RequestRouter router;
    std::map<std::string, int> sent;
    int errors = 0;
    for (int i = 0; i < 100; ++i) {
        auto routed = router.route(flows, "test", "podinfo");
        REQUIRE(routed.has_value());
        ++sent[routed->version.workload];
        errors += routed->error ? 1 : 0;
    }
    CHECK(sent["podinfo-primary"] == 80);
    CHECK(sent["podinfo"] == 20);
    CHECK(errors == 10);  // half of the canary's
    CHECK_FALSE(router.route(flows, "test", "nothing").has_value());
}

namespace {

Json ingress(const std::string& name, const std::string& backend, Json annotations) {
    return {{"kind", "Ingress"},
            {"metadata", {{"name", name}, {"namespace", "test"}, {"annotations", annotations}}},
            {"spec",
             {{"rules",
               {{{"host", "app.example.com"},
                 {"http",
                  {{"paths",
                    {{{"path", "/"},
                      {"backend", {{"service", {{"name", backend}, {"port", {{"number", 80}}}}}}}}}}}}}}}}}};
}

}  // namespace

TEST_CASE("an NGINX canary Ingress's weight and rules split the user's Ingress's stream") {
    const Json user = ingress("podinfo", "podinfo", {{"kubernetes.io/ingress.class", "nginx"}});
    const Json weighted = ingress("podinfo-canary", "podinfo-canary",
                                  {{"custom.org/canary", "true"}, {"custom.org/canary-weight", "30"}});
    auto flows = plan(services(), deployments(), {user, weighted});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.3}, {"podinfo-primary", 0.7}});
    for (const Flow& f : flows) {
        CHECK(f.ingress == "podinfo");
        CHECK(f.canary_upstream == (f.version.workload == "podinfo" ? "test-podinfo-canary-80" : ""));
    }
    // A header rule: the matched share first, then the weight (0) for the rest.
    const Json ab = ingress("podinfo-canary", "podinfo-canary",
                            {{"nginx.ingress.kubernetes.io/canary", "true"},
                             {"nginx.ingress.kubernetes.io/canary-weight", "0"},
                             {"nginx.ingress.kubernetes.io/canary-by-header", "x-canary"}});
    CHECK(shares(plan(services(), deployments(), {user, ab})) ==
          std::map<std::string, double>{{"podinfo", kMatchedShare}, {"podinfo-primary", 1 - kMatchedShare}});
    // Only the user's Ingress: everything to the apex, labelled with it.
    flows = plan(services(), deployments(), {user});
    REQUIRE(flows.size() == 1);
    CHECK(flows[0].ingress == "podinfo");
    CHECK(flows[0].share == 1);
    // The outcomes keep the canary upstream apart.
    Stream stream;
    const auto outcomes = stream.step(plan(services(), deployments(), {user, weighted}), 100, 1);
    long canary = 0;
    for (const Outcome& o : outcomes) {
        canary += o.canary_upstream.empty() ? 0 : o.requests;
    }
    CHECK(canary == 30);
}

TEST_CASE("a Contour HTTPProxy's weights split the apex's stream, labelled with Envoy's clusters") {
    const Json proxy = Json::parse(R"({"kind": "HTTPProxy",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"routes": [{"conditions": [{"prefix": "/"}],
                             "services": [{"name": "podinfo-primary", "port": 9898, "weight": 75},
                                          {"name": "podinfo-canary", "port": 9898, "weight": 25}]}]}})");
    const auto flows = plan(services(), deployments(), {proxy});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.25}, {"podinfo-primary", 0.75}});
    for (const Flow& f : flows) {
        CHECK(f.envoy_cluster == (f.version.workload == "podinfo" ? "test_podinfo-canary_9898"
                                                                  : "test_podinfo-primary_9898"));
    }
}

TEST_CASE("a Gloo RouteTable's weights split the apex's stream through its Upstreams, labelled with Envoy's clusters") {
    auto upstream = [](const std::string& name, const std::string& service) {
        return Json{{"kind", "Upstream"},
                    {"metadata", {{"name", name}, {"namespace", "test"}}},
                    {"spec", {{"kube", {{"serviceName", service}, {"serviceNamespace", "test"}, {"servicePort", 9898}}}}}};
    };
    const Json table = Json::parse(R"({"kind": "RouteTable",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"routes": [{"routeAction": {"multi": {"destinations": [
            {"destination": {"upstream": {"name": "test-podinfo-primaryupstream-9898", "namespace": "test"}}, "weight": 60},
            {"destination": {"upstream": {"name": "test-podinfo-canaryupstream-9898", "namespace": "test"}}, "weight": 40}]}}}]}})");
    const std::vector<Json> routes{table, upstream("test-podinfo-primaryupstream-9898", "podinfo-primary"),
                                   upstream("test-podinfo-canaryupstream-9898", "podinfo-canary")};
    const auto flows = plan(services(), deployments(), routes);
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.4}, {"podinfo-primary", 0.6}});
    for (const Flow& f : flows) {
        CHECK(f.envoy_cluster == (f.version.workload == "podinfo" ? "test-podinfo-canaryupstream-9898_test"
                                                                  : "test-podinfo-primaryupstream-9898_test"));
    }
    // Without its Upstreams, a RouteTable reaches nothing.
    CHECK(plan(services(), deployments(), {table}).empty());
}

TEST_CASE("a TraefikService's weights split the apex's stream, labelled with Traefik's services") {
    const Json service = Json::parse(R"({"kind": "TraefikService",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"weighted": {"services": [
            {"name": "podinfo-primary", "namespace": "test", "port": 9898, "weight": 80},
            {"name": "podinfo-canary", "namespace": "test", "port": 9898, "weight": 20}]}}})");
    const auto flows = plan(services(), deployments(), {service});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.2}, {"podinfo-primary", 0.8}});
    for (const Flow& f : flows) {
        CHECK(f.traefik_service == (f.version.workload == "podinfo" ? "test-podinfo-canary-9898@kubernetescrd"
                                                                    : "test-podinfo-primary-9898@kubernetescrd"));
        CHECK(f.envoy_cluster.empty());
    }
    Stream stream;
    long canary_errors = 0;
    for (const Outcome& o : stream.step(flows, 100, 1)) {
        if (o.traefik_service == "test-podinfo-canary-9898@kubernetescrd") {
            CHECK(o.requests == 20);
            canary_errors += o.errors;
        }
    }
    CHECK(canary_errors == 4);  // the canary's 20% errors
}

TEST_CASE("a Kuma TrafficRoute's splits share the apex's stream, labelled with Kuma services") {
    const Json route = Json::parse(R"({"kind": "TrafficRoute", "mesh": "default",
        "metadata": {"name": "podinfo"},
        "spec": {"destinations": [{"match": {"kuma.io/service": "podinfo_test_svc_9898"}}],
                 "conf": {"split": [
                     {"weight": 60, "destination": {"kuma.io/service": "podinfo-primary_test_svc_9898"}},
                     {"weight": 40, "destination": {"kuma.io/service": "podinfo-canary_test_svc_9898"}}]}}})");
    const auto flows = plan(services(), deployments(), {route});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.4}, {"podinfo-primary", 0.6}});
    for (const Flow& f : flows) {
        CHECK(f.kuma_service == (f.version.workload == "podinfo" ? "podinfo-canary_test_svc_9898"
                                                                 : "podinfo-primary_test_svc_9898"));
        CHECK(f.envoy_cluster.empty());
    }
    // Another namespace's TrafficRoute of the same name routes nothing here.
    Json other = route;
    other["spec"]["destinations"][0]["match"]["kuma.io/service"] = "podinfo_shop_svc_9898";
    CHECK(shares(plan(services(), deployments(), {other})) ==
          std::map<std::string, double>{{"podinfo-primary", 1.0}});
}

TEST_CASE("APISIX's canary route shadows the user's route and splits by its backend weights") {
    const Json user = Json::parse(R"({"kind": "ApisixRoute",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"http": [{"name": "main", "match": {"paths": ["/*"]},
                           "backends": [{"serviceName": "podinfo", "servicePort": 9898}]}]}})");
    Json canary = user;
    canary["metadata"]["name"] = "podinfo-podinfo-canary";
    canary["spec"]["http"][0]["priority"] = 10000;
    canary["spec"]["http"][0]["backends"] = Json::parse(R"([
        {"serviceName": "podinfo-primary", "servicePort": 9898, "weight": 80},
        {"serviceName": "podinfo-canary", "servicePort": 9898, "weight": 20}])");
    const auto flows = plan(services(), deployments(), {user, canary});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.2}, {"podinfo-primary", 0.8}});
    for (const Flow& f : flows) {
        CHECK(f.apisix_route == "test_podinfo-podinfo-canary_main");
    }
    // The user's route alone sends the apex everything, under its own route name.
    const auto direct = plan(services(), deployments(), {user});
    REQUIRE_FALSE(direct.empty());
    CHECK(direct[0].apisix_route == "test_podinfo_main");
}

TEST_CASE("an App Mesh VirtualRouter's weighted targets split the apex's stream through Envoy sidecars") {
    const Json router = Json::parse(R"({"kind": "VirtualRouter",
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"routes": [{"name": "podinfo", "httpRoute": {"match": {"prefix": "/"}, "action": {
            "weightedTargets": [{"virtualNodeRef": {"name": "podinfo-canary"}, "weight": 40},
                                {"virtualNodeRef": {"name": "podinfo-primary"}, "weight": 60}]}}}]}})");
    // The node's DNS hostname names the Service it stands for.
    const Json node = Json::parse(R"({"kind": "VirtualNode",
        "metadata": {"name": "podinfo-canary", "namespace": "test"},
        "spec": {"serviceDiscovery": {"dns": {"hostname": "podinfo-canary.test.svc.cluster.local."}}}})");
    const auto flows = plan(services(), deployments(), {node, router});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.4}, {"podinfo-primary", 0.6}});
    for (const Flow& f : flows) {
        CHECK(f.appmesh);
        CHECK(f.envoy_cluster.empty());
    }
    Stream stream;
    long appmesh = 0;
    for (const Outcome& o : stream.step(flows, 100, 1)) {
        appmesh += o.appmesh ? o.requests : 0;
    }
    CHECK(appmesh == 100);
}

TEST_CASE("a Skipper canary Ingress splits the apex's stream by its backend weights, or not at all with False()") {
    Json canary = Json::parse(R"J({"kind": "Ingress",
        "metadata": {"name": "web-canary", "namespace": "test", "annotations": {
            "zalando.org/backend-weights": "{\"podinfo-canary\":30,\"podinfo-primary\":70}",
            "zalando.org/skipper-predicate": "Weight(100)"}},
        "spec": {"rules": [{"host": "app.example.com", "http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "podinfo-primary", "port": {"number": 9898}}}},
            {"path": "/", "backend": {"service": {"name": "podinfo-canary", "port": {"number": 9898}}}}]}}]}})J");
    auto flows = plan(services(), deployments(), {canary});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo", 0.3}, {"podinfo-primary", 0.7}});
    for (const Flow& f : flows) {
        CHECK(f.skipper_route == (f.version.workload == "podinfo"
                                      ? "kube_test__web_canary__app_example_com_____podinfo_canary"
                                      : "kube_test__web_canary__app_example_com_____podinfo_primary"));
        CHECK(f.ingress.empty());  // not NGINX's
    }
    canary["metadata"]["annotations"]["zalando.org/skipper-predicate"] = "False()";
    flows = plan(services(), deployments(), {canary});
    CHECK(shares(flows) == std::map<std::string, double>{{"podinfo-primary", 1}});
    CHECK(flows[0].skipper_route == "kube_test__web__app_example_com_____podinfo");
}
