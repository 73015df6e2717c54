#include "controller/workload/workload.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "crds/api/canary.hpp"
#include "platform/kube/manifest.hpp"
#include "tests/support/catch_result.hpp"

using serin::ErrorKind;
using serin::SystemTime;
using serin::canary::ConfigRef;
using serin::canary::Json;
using serin::canary::PrimaryOptions;
using serin::canary::SelectorLabel;
using namespace std::chrono_literals;

namespace sc = serin::canary;

namespace {

Json yaml(const std::string& text) {
    auto docs = serin::kube::parse_manifests(text);
    REQUIRE(docs.has_value());
    REQUIRE(docs->size() == 1);
    return docs->front();
}

serin::api::Canary canary_from(const std::string& text) {
    auto canary = serin::api::decode_canary(yaml(text));
    REQUIRE(canary.has_value());
    return *canary;
}

const std::vector<std::string> kCandidates{"app", "name", "app.kubernetes.io/name"};

/// The podinfo fixture of flagger-spec §10 plus every kind of config reference and the
/// anti-affinity / topology-spread selectors.
Json podinfo() {
    return yaml(R"(
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: default
  uid: dep-uid
  resourceVersion: "42"
  generation: 3
  creationTimestamp: "2026-01-01T00:00:00Z"
  labels:
    app: podinfo
    team: web
    kustomize.toolkit.fluxcd.io/name: apps
  annotations:
    note: keep
    kustomize.toolkit.fluxcd.io/checksum: abc
    kubectl.kubernetes.io/last-applied-configuration: "{}"
    deployment.kubernetes.io/revision: "7"
spec:
  replicas: 0
  progressDeadlineSeconds: 60
  minReadySeconds: 5
  revisionHistoryLimit: 3
  strategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 0}}
  selector:
    matchLabels: {app: podinfo}
  template:
    metadata:
      labels:
        app: podinfo
        version: v1
        helm.toolkit.fluxcd.io/name: chart
      annotations:
        prometheus.io/scrape: "true"
        flagger-id: stale
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector:
              matchLabels: {app: podinfo, tier: web}
            topologyKey: kubernetes.io/hostname
          preferredDuringSchedulingIgnoredDuringExecution:
          - weight: 100
            podAffinityTerm:
              labelSelector:
                matchExpressions:
                - {key: app, operator: In, values: [podinfo, other]}
                - {key: tier, operator: In, values: [podinfo]}
              topologyKey: kubernetes.io/hostname
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: topology.kubernetes.io/zone
        whenUnsatisfiable: DoNotSchedule
        labelSelector:
          matchLabels: {app: podinfo}
      initContainers:
      - name: init
        image: busybox
        envFrom:
        - configMapRef: {name: init-config}
      containers:
      - name: podinfo
        image: ghcr.io/stefanprodan/podinfo:6.0.0
        ports:
        - {name: http, containerPort: 9898, protocol: TCP}
        - {name: http-metrics, containerPort: 8080, protocol: TCP}
        - {containerPort: 8888, protocol: TCP}
        env:
        - name: COLOR
          valueFrom:
            configMapKeyRef: {name: podinfo-config-env, key: color}
        - name: PASSWORD
          valueFrom:
            secretKeyRef: {name: podinfo-secret-env, key: password, optional: true}
        - name: PLAIN
          value: x
        envFrom:
        - configMapRef: {name: podinfo-config-all-env}
        - secretRef: {name: podinfo-secret-all-env, optional: true}
      - name: istio-proxy
        image: istio/proxyv2
        ports:
        - {name: http-envoy-prom, containerPort: 15090}
      volumes:
      - name: config
        configMap: {name: podinfo-config-vol}
      - name: secret
        secret: {secretName: podinfo-secret-vol}
      - name: projected
        projected:
          sources:
          - configMap: {name: podinfo-config-env, optional: true}
          - configMap: {name: projected-config, optional: true}
          - secret: {name: projected-secret}
      - name: scratch
        emptyDir: {}
status:
  replicas: 1
  observedGeneration: 3
)");
}

Json podinfo_daemonset() {
    return yaml(R"(
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: podinfo
  namespace: default
  annotations:
    deprecated.daemonset.template.generation: "2"
spec:
  minReadySeconds: 3
  revisionHistoryLimit: 4
  updateStrategy: {type: RollingUpdate}
  selector:
    matchLabels: {name: podinfo}
  template:
    metadata:
      labels: {name: podinfo}
    spec:
      nodeSelector:
        flagger.app/scale-to-zero: "true"
      containers:
      - name: podinfo
        image: ghcr.io/stefanprodan/podinfo:6.0.0
)");
}

serin::api::Canary podinfo_canary(const std::string& service_yaml = "{port: 9898}") {
    return canary_from(R"(
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: default, uid: canary-uid}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: )" + service_yaml +
                       R"(
  analysis: {interval: 1m, threshold: 10, stepWeight: 10, maxWeight: 50}
)");
}

PrimaryOptions podinfo_options() {
    PrimaryOptions options;
    options.label = SelectorLabel{"app", "podinfo"};
    options.tracked_configs = {"configmap/podinfo-config-env", "secret/podinfo-secret-vol",
                               "configmap/projected-config", "configmap/init-config"};
    options.include_label_prefixes = {"team"};
    options.flagger_id = "id-1";
    options.owner_reference = sc::owner_reference(podinfo_canary());
    return options;
}

Json ports_of(const Json& service) { return service.at("spec").at("ports"); }

SystemTime at(const char* rfc3339_utc_seconds) {
    // Only "YYYY-MM-DDTHH:MM:SSZ" is used by the tests below.
    const std::string t = rfc3339_utc_seconds;
    const int y = std::stoi(t.substr(0, 4));
    const unsigned mo = static_cast<unsigned>(std::stoi(t.substr(5, 2)));
    const unsigned d = static_cast<unsigned>(std::stoi(t.substr(8, 2)));
    const auto day =
        std::chrono::sys_days{std::chrono::year{y} / std::chrono::month{mo} / std::chrono::day{d}};
    return SystemTime{day.time_since_epoch()} + std::chrono::hours{std::stoi(t.substr(11, 2))} +
           std::chrono::minutes{std::stoi(t.substr(14, 2))} +
           std::chrono::seconds{std::stoi(t.substr(17, 2))};
}

}  // namespace

// ---- selector label
// -------------------------------------------------------------------------------

TEST_CASE("selector_label picks the first candidate in candidate order") {
    Json workload = podinfo();
    workload["spec"]["selector"]["matchLabels"] = {{"name", "by-name"}, {"app", "by-app"}};
    auto label = sc::selector_label(workload, kCandidates);
    REQUIRE(label);
    CHECK(label->key == "app");
    CHECK(label->value == "by-app");

    workload["spec"]["selector"]["matchLabels"] = {{"app.kubernetes.io/name", "k8s"}};
    label = sc::selector_label(workload, kCandidates);
    REQUIRE(label);
    CHECK(label->key == "app.kubernetes.io/name");
    CHECK(label->value == "k8s");
}

TEST_CASE("selector_label names the workload and the candidates when none is present") {
    Json workload = podinfo_daemonset();
    workload["spec"]["selector"]["matchLabels"] = {{"other", "x"}};
    auto label = sc::selector_label(workload, kCandidates);
    REQUIRE_FALSE(label);
    CHECK(label.error().kind == ErrorKind::kInvalid);
    CHECK(label.error().message ==
          "daemonset podinfo.default spec.selector.matchLabels must contain one of "
          "[app name app.kubernetes.io/name]");
}

// ---- revision identity
// ----------------------------------------------------------------------------

TEST_CASE("canonical_dump sorts keys and drops null, empty objects and empty arrays recursively") {
    const Json a = Json::parse(
        R"({"b": 1, "a": {"x": null, "y": [], "z": {}}, "c": [1, {}], "d": {"e": {"f": null}}})");
    const Json b = Json::parse(R"({"c": [1, {}], "b": 1})");
    CHECK(sc::canonical_dump(a) == R"({"b":1,"c":[1,{}]})");
    CHECK(sc::canonical_dump(a) == sc::canonical_dump(b));
    CHECK(sc::canonical_dump(Json::parse(R"({"a": [2, 1]})")) == R"({"a":[2,1]})");
    CHECK(sc::canonical_dump(Json::parse(R"({"s": "x", "n": 0, "f": false})")) ==
          R"({"f":false,"n":0,"s":"x"})");
}

TEST_CASE("flagger_hash is FNV-1a printed in decimal and mapped to Flagger's alphabet") {
    // FNV-1a("") = 2166136261, FNV-1a("a") = 3826002220.
    CHECK(sc::flagger_hash("") == "65bb57b6b5");
    CHECK(sc::flagger_hash("a") == "7d6b446664");
    CHECK(sc::flagger_hash("a") != sc::flagger_hash("b"));
}

TEST_CASE("revision_hash is stable across key order and null or empty variations") {
    const Json one = yaml(R"(
kind: Deployment
spec:
  template:
    metadata: {labels: {app: podinfo, version: v1}}
    spec:
      containers:
      - {name: podinfo, image: "podinfo:1", env: []}
)");
    const Json two = yaml(R"(
kind: Deployment
spec:
  replicas: 3
  template:
    spec:
      volumes: null
      nodeSelector: {}
      containers:
      - {image: "podinfo:1", name: podinfo}
    metadata: {annotations: {}, labels: {version: v1, app: podinfo}}
)");
    CHECK(sc::revision_hash(one) == sc::revision_hash(two));
    // Serin's format: "s1:" and 16 hex digits, never mistaken for Flagger's [456789bcdf]{1,10}.
    const std::string revision = sc::revision_hash(one);
    CHECK(revision.rfind("s1:", 0) == 0);
    CHECK(revision.size() == 3 + 16);
    CHECK(revision.find_first_not_of("0123456789abcdef", 3) == std::string::npos);
    CHECK_FALSE(serin::analysis::foreign_revision(revision));
    CHECK(serin::analysis::foreign_revision("5498f4fcd6"));  // Flagger's
    CHECK(serin::analysis::foreign_revision("12345678901234567890"));  // Flagger before 1.0
    CHECK_FALSE(serin::analysis::foreign_revision(""));  // nothing recorded yet

    Json changed = one;
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:2";
    CHECK(sc::revision_hash(changed) != sc::revision_hash(one));

    // toolkit.fluxcd.io template keys never reach the primary, so they are not a revision.
    Json fluxed = one;
    fluxed["spec"]["template"]["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = "apps";
    CHECK(sc::revision_hash(fluxed) == sc::revision_hash(one));
}

TEST_CASE("revision_hash of a DaemonSet ignores the scale-to-zero node selector") {
    Json zero = podinfo_daemonset();
    Json up = zero;
    up["spec"]["template"]["spec"].erase("nodeSelector");
    CHECK(sc::revision_hash(zero) == sc::revision_hash(up));

    Json other = zero;
    other["spec"]["template"]["spec"]["nodeSelector"]["disk"] = "ssd";
    CHECK(sc::revision_hash(other) != sc::revision_hash(up));

    // A Deployment's node selector is part of its revision.
    Json deployment = zero;
    deployment["kind"] = "Deployment";
    Json deployment_up = up;
    deployment_up["kind"] = "Deployment";
    CHECK(sc::revision_hash(deployment) != sc::revision_hash(deployment_up));
}

TEST_CASE("canary_checksum is Flagger's webhook checksum, byte for byte") {
    // The vectors of flagger-spec-providers §16.4, computed with Flagger's go-spew and FNV.
    serin::api::CanaryStatus status;
    status.last_applied_spec = "6cb4c9d6c";
    CHECK(sc::canary_checksum(status) == "d97bf889c");  // trackedConfigs absent
    status.tracked_configs = serin::api::StringMap{};
    CHECK(sc::canary_checksum(status) == "7dcd7d6d46");  // empty
    status.tracked_configs = serin::api::StringMap{
        {"secret/podinfo-secret-env", "9f86d081884c7d65"},
        {"configmap/podinfo-config-env", "2c26b46b68ffc68f"}};
    CHECK(sc::canary_checksum(status) == "6859d9c67f");
    // Other status fields do not count.
    auto progressed = status;
    progressed.canary_weight = 30;
    progressed.phase = "Progressing";
    CHECK(sc::canary_checksum(progressed) == "6859d9c67f");
}

TEST_CASE("primary_revision of a primary built from the target is the target's revision") {
    // Serin's own primary: tracked configs renamed, selectors rewritten, flagger-id set.
    const PrimaryOptions options = podinfo_options();
    const Json primary = sc::make_primary(podinfo(), options);
    CHECK(sc::primary_revision(primary, options.label, "podinfo", options.tracked_configs) ==
          sc::revision_hash(podinfo()));

    // Whatever flagger-id it carries (Flagger's is a random UUID).
    Json flaggers = primary;
    flaggers["spec"]["template"]["metadata"]["annotations"]["flagger-id"] =
        "0b3c5d0e-8f5a-4c1e-9a57-4fb4b1cf9d2e";
    CHECK(sc::primary_revision(flaggers, options.label, "podinfo", options.tracked_configs) ==
          sc::revision_hash(podinfo()));

    // The renamed references are undone only for configs that are tracked.
    CHECK(sc::primary_revision(primary, options.label, "podinfo", {}) !=
          sc::revision_hash(podinfo()));
}

TEST_CASE("primary_revision sees what differs between the primary and its target") {
    const PrimaryOptions options = podinfo_options();
    const Json primary = sc::make_primary(podinfo(), options);
    Json bumped = podinfo();
    bumped["spec"]["template"]["spec"]["containers"][0]["image"] =
        "ghcr.io/stefanprodan/podinfo:6.0.1";
    CHECK(sc::primary_revision(primary, options.label, "podinfo", options.tracked_configs) !=
          sc::revision_hash(bumped));
    // The target's replicas and metadata are not part of a revision.
    Json scaled = podinfo();
    scaled["spec"]["replicas"] = 5;
    scaled["metadata"]["labels"]["team"] = "other";
    CHECK(sc::primary_revision(primary, options.label, "podinfo", options.tracked_configs) ==
          sc::revision_hash(scaled));
}

TEST_CASE("primary_revision undoes Flagger's selector rewrite by target name") {
    // Flagger renames anti-affinity values equal to the target's *name*; here the name (web)
    // differs from the selector label's value (frontend).
    const Json target = yaml(R"(
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: web}}
            topologyKey: kubernetes.io/hostname
      containers: [{name: web, image: "web:1"}]
)");
    const Json flagger_primary = yaml(R"(
kind: Deployment
metadata: {name: web-primary, namespace: default}
spec:
  selector: {matchLabels: {app: frontend-primary}}
  template:
    metadata:
      labels: {app: frontend-primary}
      annotations: {flagger-id: 5d7e9a7e-cc41-4a14-a4f8-6a3f4b0e7b2b}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector: {matchLabels: {app: web-primary}}
            topologyKey: kubernetes.io/hostname
      containers: [{name: web, image: "web:1"}]
)");
    CHECK(sc::primary_revision(flagger_primary, SelectorLabel{"app", "frontend"}, "web", {}) ==
          sc::revision_hash(target));
}

TEST_CASE("primary_revision of a DaemonSet primary ignores the scale-to-zero node selector") {
    PrimaryOptions options;
    options.label = SelectorLabel{"name", "podinfo"};
    options.flagger_id = "id-2";
    Json primary = sc::make_primary(podinfo_daemonset(), options);
    primary["spec"]["template"]["spec"]["nodeSelector"]["flagger.app/scale-to-zero"] = "true";
    CHECK(sc::primary_revision(primary, options.label, "podinfo", {}) ==
          sc::revision_hash(podinfo_daemonset()));
}

// ---- config tracking --------------------------------------------------------------------------

TEST_CASE("config_refs finds references in every location, sorted and deduplicated") {
    const auto refs = sc::config_refs(podinfo().at("spec").at("template").at("spec"));
    std::vector<std::string> keys;
    for (const auto& ref : refs) {
        keys.push_back(ref.key() + (ref.optional ? " optional" : ""));
    }
    CHECK(keys == std::vector<std::string>{
                      "configmap/init-config",
                      "configmap/podinfo-config-all-env",
                      "configmap/podinfo-config-env",  // optional in projected, mandatory in env
                      "configmap/podinfo-config-vol",
                      "configmap/projected-config optional",
                      "secret/podinfo-secret-all-env optional",
                      "secret/podinfo-secret-env optional",
                      "secret/podinfo-secret-vol",
                      "secret/projected-secret",
                  });
    CHECK(refs.front().kind == ConfigRef::Kind::kConfigMap);
    CHECK(refs.back().kind == ConfigRef::Kind::kSecret);
}

TEST_CASE("config_refs of a pod spec without references is empty") {
    CHECK(sc::config_refs(Json::object()).empty());
    CHECK(sc::config_refs(
              Json::parse(R"({"containers": [{"name": "a", "env": [{"name": "x", "value": "y"}]}],
                                          "volumes": [{"name": "e", "emptyDir": {}}]})"))
              .empty());
}

TEST_CASE("ConfigRef::key names the kind") {
    CHECK(ConfigRef{ConfigRef::Kind::kConfigMap, "a", false}.key() == "configmap/a");
    CHECK(ConfigRef{ConfigRef::Kind::kSecret, "b", true}.key() == "secret/b");
}

TEST_CASE("tracking_disabled honours the annotation and the Secret type") {
    CHECK_FALSE(sc::tracking_disabled(yaml("{kind: ConfigMap, metadata: {name: a}}")));
    CHECK(
        sc::tracking_disabled(yaml("{kind: ConfigMap, metadata: {name: a, annotations: "
                                   "{flagger.app/config-tracking: disabled}}}")));
    CHECK(
        sc::tracking_disabled(yaml("{kind: ConfigMap, metadata: {name: a, annotations: "
                                   "{flagger.app/config-tracking: disable}}}")));
    CHECK_FALSE(
        sc::tracking_disabled(yaml("{kind: ConfigMap, metadata: {name: a, annotations: "
                                   "{flagger.app/config-tracking: enabled}}}")));
    CHECK_FALSE(sc::tracking_disabled(yaml("{kind: Secret, metadata: {name: a}}")));
    for (const char* type :
         {"Opaque", "kubernetes.io/basic-auth", "kubernetes.io/ssh-auth", "kubernetes.io/tls"}) {
        Json secret = yaml("{kind: Secret, metadata: {name: a}}");
        secret["type"] = type;
        CHECK_FALSE(sc::tracking_disabled(secret));
    }
    CHECK(sc::tracking_disabled(
        yaml("{kind: Secret, type: kubernetes.io/service-account-token, metadata: {name: a}}")));
    CHECK(sc::tracking_disabled(
        yaml("{kind: Secret, type: kubernetes.io/dockerconfigjson, metadata: {name: a}}")));
}

TEST_CASE("config_checksum is the first 8 bytes of SHA-256 of the sorted JSON of data") {
    // sha256('{"a":"b"}') starts db4a7ecb114bc66c.
    CHECK(sc::config_checksum(yaml("{kind: ConfigMap, data: {a: b}}")) == "db4a7ecb114bc66c");
    const Json one = Json::parse(R"({"kind": "ConfigMap", "data": {"x": "1", "y": "2"}})");
    const Json two = Json::parse(
        R"({"kind": "ConfigMap", "metadata": {"name": "z"}, "data": {"y": "2", "x": "1"}})");
    CHECK(sc::config_checksum(one) == sc::config_checksum(two));
    CHECK(sc::config_checksum(one).size() == 16);
    Json changed = one;
    changed["data"]["x"] = "3";
    CHECK(sc::config_checksum(changed) != sc::config_checksum(one));
    // Go's encoder escapes HTML characters: sha256('{"k":"\u003cb\u003e \u0026"}').
    CHECK(sc::config_checksum(Json::parse(R"({"data": {"k": "<b> &"}})")) == "97bbfa8d3dfada34");
    // No data: Go marshals a nil map as null.
    CHECK(sc::config_checksum(yaml("{kind: ConfigMap}")) == "74234e98afe7498f");
    // The vectors of flagger-spec-providers §16.3, so a canary taken over from Flagger keeps
    // its trackedConfigs and sees a config change made during the switch.
    CHECK(sc::config_checksum(yaml("{kind: ConfigMap, data: {}}")) == "44136fa355b3678a");
    CHECK(sc::config_checksum(yaml("{kind: ConfigMap, data: {b: '2', a: '1'}}")) ==
          "21f76dfbfe6dfe21");
    CHECK(sc::config_checksum(yaml("{kind: ConfigMap, data: {html: '<a&b>'}}")) ==
          "90da32b9f8dad2bf");
    CHECK(sc::config_checksum(yaml(
              "{kind: Secret, data: {password: czNjcjN0, user: YWRtaW4=}}")) == "0b66b4a1026df054");
}

TEST_CASE("make_primary_config copies data, filters labels and sets owners") {
    const Json owner = sc::owner_reference(podinfo_canary());
    const Json config = yaml(R"(
apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-config-env
  namespace: default
  resourceVersion: "9"
  uid: cm-uid
  labels: {team: web, app: podinfo, kustomize.toolkit.fluxcd.io/name: apps}
  ownerReferences:
  - {apiVersion: flagger.app/v1beta1, kind: Canary, name: other, uid: other-uid, controller: true}
  - {apiVersion: flagger.app/v1beta1, kind: Canary, name: podinfo, uid: canary-uid, controller: true}
immutable: true
data: {color: blue}
binaryData: {blob: AAEC}
)");
    const Json primary = sc::make_primary_config(config, owner, {"team"});
    CHECK(primary.at("apiVersion") == "v1");
    CHECK(primary.at("kind") == "ConfigMap");
    CHECK(primary.at("metadata").at("name") == "podinfo-config-env-primary");
    CHECK(primary.at("metadata").at("namespace") == "default");
    CHECK(primary.at("metadata").at("labels") == Json{{"team", "web"}});
    CHECK_FALSE(primary.at("metadata").contains("resourceVersion"));
    CHECK_FALSE(primary.at("metadata").contains("uid"));
    CHECK_FALSE(primary.contains("immutable"));
    CHECK(primary.at("data") == Json{{"color", "blue"}});
    CHECK(primary.at("binaryData") == Json{{"blob", "AAEC"}});
    const Json& owners = primary.at("metadata").at("ownerReferences");
    REQUIRE(owners.size() == 2);
    CHECK(owners.at(0) == owner);
    CHECK(owners.at(1).at("uid") == "other-uid");
    CHECK(owners.at(1).at("controller") == false);

    const Json all = sc::make_primary_config(config, owner, {"*"});
    CHECK(all.at("metadata").at("labels") == Json{{"app", "podinfo"}, {"team", "web"}});
    const Json none = sc::make_primary_config(config, owner, {});
    CHECK(none.at("metadata").at("labels") == Json::object());
}

TEST_CASE("make_primary_config of a Secret copies type and data") {
    const Json secret = yaml(R"(
apiVersion: v1
kind: Secret
metadata: {name: podinfo-secret-env, namespace: default}
type: kubernetes.io/basic-auth
data: {username: YWRtaW4=}
)");
    const Json primary = sc::make_primary_config(secret, sc::owner_reference(podinfo_canary()), {});
    CHECK(primary.at("kind") == "Secret");
    CHECK(primary.at("metadata").at("name") == "podinfo-secret-env-primary");
    CHECK(primary.at("type") == "kubernetes.io/basic-auth");
    CHECK(primary.at("data") == Json{{"username", "YWRtaW4="}});
    CHECK(primary.at("metadata").at("ownerReferences").size() == 1);
}

// ---- ownership
// ------------------------------------------------------------------------------------

TEST_CASE("owner_reference and owned_by") {
    const auto canary = podinfo_canary();
    const Json ref = sc::owner_reference(canary);
    CHECK(ref == Json::parse(R"({"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
                                 "name": "podinfo", "uid": "canary-uid", "controller": true,
                                 "blockOwnerDeletion": true})"));
    Json object = Json::parse(R"({"metadata": {"name": "x"}})");
    CHECK_FALSE(sc::owned_by(object, "canary-uid"));
    object["metadata"]["ownerReferences"] = Json::array({ref});
    CHECK(sc::owned_by(object, "canary-uid"));
    CHECK_FALSE(sc::owned_by(object, "other-uid"));
    CHECK_FALSE(sc::owned_by(object, ""));
    object["metadata"]["ownerReferences"][0]["controller"] = false;
    CHECK_FALSE(sc::owned_by(object, "canary-uid"));
    object["metadata"]["ownerReferences"][0]["controller"] = true;
    object["metadata"]["ownerReferences"][0]["kind"] = "Deployment";
    CHECK_FALSE(sc::owned_by(object, "canary-uid"));
}

// ---- the primary workload ----------------------------------------------------------------------

TEST_CASE("make_primary builds a postable X-primary Deployment") {
    const auto options = podinfo_options();
    const Json primary = sc::make_primary(podinfo(), options);

    CHECK(primary.at("apiVersion") == "apps/v1");
    CHECK(primary.at("kind") == "Deployment");
    CHECK_FALSE(primary.contains("status"));
    const Json& metadata = primary.at("metadata");
    CHECK(metadata.at("name") == "podinfo-primary");
    CHECK(metadata.at("namespace") == "default");
    for (const char* server_field :
         {"resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"}) {
        CHECK_FALSE(metadata.contains(server_field));
    }
    CHECK(metadata.at("labels") == Json{{"app", "podinfo-primary"}, {"team", "web"}});
    CHECK(metadata.at("annotations") == Json{{"note", "keep"}});
    CHECK(metadata.at("ownerReferences") == Json::array({options.owner_reference}));

    const Json& spec = primary.at("spec");
    CHECK(spec.at("replicas") == 1);  // the target has 0
    CHECK(spec.at("progressDeadlineSeconds") == 60);
    CHECK(spec.at("minReadySeconds") == 5);
    CHECK(spec.at("revisionHistoryLimit") == 3);
    CHECK(spec.at("strategy") == podinfo().at("spec").at("strategy"));
    CHECK(spec.at("selector") == Json::parse(R"({"matchLabels": {"app": "podinfo-primary"}})"));
    const Json& template_meta = spec.at("template").at("metadata");
    CHECK(template_meta.at("labels") == Json{{"app", "podinfo-primary"}, {"version", "v1"}});
    CHECK(template_meta.at("annotations") ==
          Json{{"flagger-id", "id-1"}, {"prometheus.io/scrape", "true"}});
}

TEST_CASE("make_primary keeps the target's replicas when positive") {
    Json target = podinfo();
    target["spec"]["replicas"] = 4;
    CHECK(sc::make_primary(target, podinfo_options()).at("spec").at("replicas") == 4);
    target["spec"].erase("replicas");
    CHECK(sc::make_primary(target, podinfo_options()).at("spec").at("replicas") == 1);
}

TEST_CASE("make_primary renames tracked config references only") {
    const Json pod =
        sc::make_primary(podinfo(), podinfo_options()).at("spec").at("template").at("spec");
    const Json& container = pod.at("containers").at(0);
    CHECK(container.at("env").at(0).at("valueFrom").at("configMapKeyRef").at("name") ==
          "podinfo-config-env-primary");
    CHECK(container.at("env").at(1).at("valueFrom").at("secretKeyRef").at("name") ==
          "podinfo-secret-env");  // not tracked
    CHECK(container.at("env").at(2) == Json{{"name", "PLAIN"}, {"value", "x"}});
    CHECK(container.at("envFrom").at(0).at("configMapRef").at("name") == "podinfo-config-all-env");
    CHECK(pod.at("initContainers").at(0).at("envFrom").at(0).at("configMapRef").at("name") ==
          "init-config-primary");
    const Json& volumes = pod.at("volumes");
    CHECK(volumes.at(0).at("configMap").at("name") == "podinfo-config-vol");
    CHECK(volumes.at(1).at("secret").at("secretName") == "podinfo-secret-vol-primary");
    const Json& sources = volumes.at(2).at("projected").at("sources");
    CHECK(sources.at(0).at("configMap").at("name") == "podinfo-config-env-primary");
    CHECK(sources.at(0).at("configMap").at("optional") == true);
    CHECK(sources.at(1).at("configMap").at("name") == "projected-config-primary");
    CHECK(sources.at(2).at("secret").at("name") == "projected-secret");
    CHECK(container.at("image") == "ghcr.io/stefanprodan/podinfo:6.0.0");
}

TEST_CASE("make_primary rewrites anti-affinity and topology spread selectors") {
    const Json pod =
        sc::make_primary(podinfo(), podinfo_options()).at("spec").at("template").at("spec");
    const Json& anti = pod.at("affinity").at("podAntiAffinity");
    CHECK(anti.at("requiredDuringSchedulingIgnoredDuringExecution").at(0).at("labelSelector") ==
          Json::parse(R"({"matchLabels": {"app": "podinfo-primary", "tier": "web"}})"));
    const Json& expressions = anti.at("preferredDuringSchedulingIgnoredDuringExecution")
                                  .at(0)
                                  .at("podAffinityTerm")
                                  .at("labelSelector")
                                  .at("matchExpressions");
    CHECK(expressions.at(0).at("values") == Json::array({"podinfo-primary", "other"}));
    CHECK(expressions.at(1).at("values") == Json::array({"podinfo"}));  // other key
    CHECK(pod.at("topologySpreadConstraints").at(0).at("labelSelector") ==
          Json::parse(R"({"matchLabels": {"app": "podinfo-primary"}})"));
}

TEST_CASE("make_primary copies labels per include prefix") {
    auto options = podinfo_options();
    options.include_label_prefixes = {"*"};
    CHECK(sc::make_primary(podinfo(), options).at("metadata").at("labels") ==
          Json{{"app", "podinfo-primary"}, {"team", "web"}});
    options.include_label_prefixes = {};
    CHECK(sc::make_primary(podinfo(), options).at("metadata").at("labels") ==
          Json{{"app", "podinfo-primary"}});
    options.include_label_prefixes = {"kustomize"};  // toolkit keys never pass
    CHECK(sc::make_primary(podinfo(), options).at("metadata").at("labels") ==
          Json{{"app", "podinfo-primary"}});
}

TEST_CASE("make_primary builds a DaemonSet without the scale-to-zero node selector") {
    PrimaryOptions options;
    options.label = SelectorLabel{"name", "podinfo"};
    options.flagger_id = "id-2";
    const Json primary = sc::make_primary(podinfo_daemonset(), options);
    CHECK(primary.at("kind") == "DaemonSet");
    CHECK(primary.at("metadata").at("name") == "podinfo-primary");
    CHECK(primary.at("metadata").at("annotations") == Json::object());
    CHECK_FALSE(primary.at("metadata").contains("ownerReferences"));
    const Json& spec = primary.at("spec");
    CHECK_FALSE(spec.contains("replicas"));
    CHECK_FALSE(spec.contains("strategy"));
    CHECK(spec.at("updateStrategy") == Json{{"type", "RollingUpdate"}});
    CHECK(spec.at("minReadySeconds") == 3);
    CHECK(spec.at("revisionHistoryLimit") == 4);
    CHECK(spec.at("selector").at("matchLabels") == Json{{"name", "podinfo-primary"}});
    CHECK_FALSE(spec.at("template").at("spec").contains("nodeSelector"));

    Json other = podinfo_daemonset();
    other["spec"]["template"]["spec"]["nodeSelector"]["disk"] = "ssd";
    CHECK(
        sc::make_primary(other, options).at("spec").at("template").at("spec").at("nodeSelector") ==
        Json{{"disk", "ssd"}});
}

namespace {

/// A live primary as the API server returns it: server metadata, defaulted fields, status.
Json live_primary_from(const Json& created) {
    Json live = created;
    live["metadata"]["resourceVersion"] = "100";
    live["metadata"]["uid"] = "primary-uid";
    live["metadata"]["generation"] = 2;
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2";
    live["metadata"]["annotations"]["someone/else"] = "x";
    live["metadata"]["labels"]["added"] = "by-hand";
    live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
        "/dev/termination-log";
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent";
    live["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst";
    live["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = "25%";
    live["status"] = {{"replicas", 1}};
    return live;
}

}  // namespace

TEST_CASE("promoted_primary keeps the live metadata and takes the target's spec") {
    const auto options = podinfo_options();
    Json live = live_primary_from(sc::make_primary(podinfo(), options));
    live["spec"]["replicas"] = 5;

    Json target = podinfo();
    target["spec"]["replicas"] = 2;
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.1.0";

    const Json promoted = sc::promoted_primary(live, target, options, false);
    CHECK_FALSE(promoted.contains("status"));
    CHECK(promoted.at("metadata").at("resourceVersion") == "100");
    CHECK(promoted.at("metadata").at("uid") == "primary-uid");
    CHECK(promoted.at("metadata").at("labels") ==
          Json{{"app", "podinfo-primary"}, {"team", "web"}});
    CHECK(promoted.at("metadata").at("annotations") ==
          Json{{"deployment.kubernetes.io/revision", "2"}, {"note", "keep"}});
    CHECK(promoted.at("spec").at("replicas") == 2);
    CHECK(promoted.at("spec").at("template").at("spec").at("containers").at(0).at("image") ==
          "podinfo:6.1.0");

    const Json kept = sc::promoted_primary(live, target, options, true);
    CHECK(kept.at("spec").at("replicas") == 5);
}

TEST_CASE("primary_matches ignores server defaults but sees real differences") {
    const auto options = podinfo_options();
    Json target = podinfo();
    target["spec"]["replicas"] = 2;
    const Json live = live_primary_from(sc::promoted_primary(
        live_primary_from(sc::make_primary(target, options)), target, options, false));
    CHECK(sc::primary_matches(live, target, options, false));

    Json new_image = target;
    new_image["spec"]["template"]["spec"]["containers"][0]["image"] = "podinfo:6.1.0";
    CHECK_FALSE(sc::primary_matches(live, new_image, options, false));

    Json extra_container = target;
    extra_container["spec"]["template"]["spec"]["containers"].push_back(
        {{"name", "sidecar"}, {"image", "busybox"}});
    CHECK_FALSE(sc::primary_matches(live, extra_container, options, false));

    auto other_id = options;
    other_id.flagger_id = "id-2";
    CHECK_FALSE(sc::primary_matches(live, target, other_id, false));

    Json scaled = target;
    scaled["spec"]["replicas"] = 7;
    CHECK_FALSE(sc::primary_matches(live, scaled, options, false));
    CHECK(sc::primary_matches(live, scaled, options, true));
}

// ---- scaling
// --------------------------------------------------------------------------------------

TEST_CASE("scale_to_zero_patch") {
    Json deployment = podinfo();
    deployment["spec"]["replicas"] = 3;
    REQUIRE(sc::scale_to_zero_patch(deployment));
    CHECK(Json::parse(*sc::scale_to_zero_patch(deployment)) ==
          Json::parse(R"({"spec":{"replicas":0}})"));
    deployment["spec"]["replicas"] = 0;
    CHECK_FALSE(sc::scale_to_zero_patch(deployment));

    Json daemonset = podinfo_daemonset();
    CHECK_FALSE(sc::scale_to_zero_patch(daemonset));  // already has the node selector
    daemonset["spec"]["template"]["spec"].erase("nodeSelector");
    auto patch = sc::scale_to_zero_patch(daemonset);
    REQUIRE(patch);
    CHECK(
        Json::parse(*patch) ==
        Json::parse(
            R"({"spec":{"template":{"spec":{"nodeSelector":{"flagger.app/scale-to-zero":"true"}}}}})"));
}

TEST_CASE("scale_up_patch chooses the replicas like Flagger") {
    Json target = podinfo();  // replicas 0
    Json primary = Json::parse(R"({"spec": {"replicas": 3}})");
    Json hpa = Json::parse(
        R"({"kind": "HorizontalPodAutoscaler", "spec": {"minReplicas": 2, "maxReplicas": 4}})");

    auto replicas_of = [](const std::optional<std::string>& patch) {
        REQUIRE(patch);
        return Json::parse(*patch).at("spec").at("replicas").get<int>();
    };
    CHECK(replicas_of(sc::scale_up_patch(target, nullptr, nullptr)) == 1);
    CHECK(replicas_of(sc::scale_up_patch(target, &primary, nullptr)) == 3);
    CHECK(replicas_of(sc::scale_up_patch(target, &primary, &hpa)) == 2);
    hpa["spec"]["minReplicas"] = 1;
    CHECK(replicas_of(sc::scale_up_patch(target, &primary, &hpa)) == 1);
    Json scaled_object = Json::parse(R"({"kind": "ScaledObject", "spec": {"minReplicaCount": 3}})");
    CHECK(replicas_of(sc::scale_up_patch(target, &primary, &scaled_object)) == 3);
    primary["spec"]["replicas"] = 0;
    CHECK(replicas_of(sc::scale_up_patch(target, &primary, nullptr)) == 1);
    CHECK(Json::parse(*sc::scale_up_patch(target, nullptr, nullptr)) ==
          Json::parse(R"({"spec":{"replicas":1}})"));

    target["spec"]["replicas"] = 2;
    CHECK_FALSE(sc::scale_up_patch(target, &primary, &hpa));
}

TEST_CASE("scale_up_patch of a DaemonSet removes the node selector") {
    Json daemonset = podinfo_daemonset();
    auto patch = sc::scale_up_patch(daemonset, nullptr, nullptr);
    REQUIRE(patch);
    CHECK(
        Json::parse(*patch) ==
        Json::parse(
            R"({"spec":{"template":{"spec":{"nodeSelector":{"flagger.app/scale-to-zero":null}}}}})"));
    daemonset["spec"]["template"]["spec"].erase("nodeSelector");
    CHECK_FALSE(sc::scale_up_patch(daemonset, nullptr, nullptr));
}

// ---- readiness ----------------------------------------------------------------------------------

namespace {

const char* const kPrefix = "podinfo-primary.default not ready: ";

Json deployment_with(const std::string& status_json, int replicas = 2, int generation = 1) {
    Json d = Json::parse(R"({"kind": "Deployment", "metadata": {"name": "podinfo"}, "spec": {}})");
    d["metadata"]["generation"] = generation;
    d["spec"]["replicas"] = replicas;
    d["status"] = Json::parse(status_json);
    return d;
}

serin::analysis::Readiness ready_of(const Json& deployment, int threshold = 100,
                                    SystemTime now = at("2026-12-02T02:00:00Z")) {
    return sc::deployment_readiness(deployment, threshold, 600, now, kPrefix);
}

}  // namespace

TEST_CASE("deployment_readiness: a rolled-out deployment is ready") {
    const auto r = ready_of(deployment_with(
        R"({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})"));
    CHECK(r.ready);
    CHECK(r.retriable);
    CHECK(r.message.empty());
}

TEST_CASE("deployment_readiness: observed generation behind") {
    const auto r = ready_of(deployment_with(
        R"({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2})",
        2, 2));
    CHECK_FALSE(r.ready);
    CHECK(r.retriable);
    CHECK(r.message == std::string(kPrefix) +
                           "waiting for rollout to finish: observed deployment generation less "
                           "than desired generation");
    // Missing status counts as 0.
    Json no_status = deployment_with("{}", 2, 1);
    no_status.erase("status");
    CHECK(ready_of(no_status).message ==
          std::string(kPrefix) +
              "waiting for rollout to finish: observed deployment generation "
              "less than desired generation");
}

TEST_CASE("deployment_readiness: progress deadline exceeded is not retriable") {
    const auto r = ready_of(deployment_with(R"({"observedGeneration": 1, "replicas": 2,
        "updatedReplicas": 2, "availableReplicas": 2, "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]})"));
    CHECK_FALSE(r.ready);
    CHECK_FALSE(r.retriable);
    CHECK(r.message ==
          std::string(kPrefix) + "deployment \"podinfo\" exceeded its progress deadline");
}

TEST_CASE("deployment_readiness: scaled to zero is not ready") {
    const auto r = ready_of(deployment_with(R"({"observedGeneration": 1})", 0));
    CHECK_FALSE(r.ready);
    CHECK(r.retriable);
    CHECK(r.message == std::string(kPrefix) + "waiting for rollout to finish: scaled to zero");
}

TEST_CASE("deployment_readiness: replicas not yet updated") {
    const auto r = ready_of(deployment_with(
        R"({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 2})",
        3));
    CHECK_FALSE(r.ready);
    CHECK(r.retriable);
    CHECK(r.message ==
          std::string(kPrefix) +
              "waiting for rollout to finish: 1 out of 3 new replicas have been updated");
}

TEST_CASE("deployment_readiness: old replicas pending termination") {
    const auto r = ready_of(deployment_with(
        R"({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2})"));
    CHECK_FALSE(r.ready);
    CHECK(r.message == std::string(kPrefix) +
                           "waiting for rollout to finish: 1 old replicas are pending termination");
}

TEST_CASE("deployment_readiness: available replicas below the ready threshold") {
    const Json d = deployment_with(
        R"({"observedGeneration": 1, "replicas": 4, "updatedReplicas": 4, "availableReplicas": 1})",
        4);
    auto r = ready_of(d, 50);
    CHECK_FALSE(r.ready);
    CHECK(r.retriable);
    CHECK(r.message == std::string(kPrefix) +
                           "waiting for rollout to finish: 1 of 2 (readyThreshold 50%) updated "
                           "replicas are available");
    // floor(4 * 25%) = 1: ready.
    CHECK(ready_of(d, 25).ready);
    // floor(3 * 50%) = 1.
    const Json three = deployment_with(
        R"({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 0})",
        3);
    CHECK(ready_of(three, 50).message ==
          std::string(kPrefix) +
              "waiting for rollout to finish: 0 of 1 (readyThreshold 50%) "
              "updated replicas are available");
}

TEST_CASE("deployment_readiness: stuck unavailable past the deadline is not retriable") {
    const Json d = deployment_with(R"({"observedGeneration": 1, "replicas": 2,
        "updatedReplicas": 2, "availableReplicas": 0, "conditions": [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"},
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
         "lastUpdateTime": "2026-12-02T01:44:25Z"}]})");
    // 01:44:25 + 600s = 01:54:25.
    const auto before = ready_of(d, 100, at("2026-12-02T01:54:25Z"));
    CHECK_FALSE(before.ready);
    CHECK(before.retriable);
    const auto after = ready_of(d, 100, at("2026-12-02T01:54:26Z"));
    CHECK_FALSE(after.ready);
    CHECK_FALSE(after.retriable);
    CHECK(after.message == std::string(kPrefix) +
                               "waiting for rollout to finish: 0 of 2 (readyThreshold 100%) "
                               "updated replicas are available");

    // Scaled to zero stays retriable regardless.
    Json zero = d;
    zero["spec"]["replicas"] = 0;
    CHECK(ready_of(zero, 100, at("2026-12-02T03:00:00Z")).retriable);
}

TEST_CASE("daemonset_readiness") {
    const SystemTime since = at("2026-12-02T01:00:00Z");
    const SystemTime soon = at("2026-12-02T01:05:00Z");
    const SystemTime late = at("2026-12-02T01:10:01Z");
    const std::string prefix = "canary daemonset podinfo.default not ready: ";
    auto ds = [](const std::string& status) {
        Json d = Json::parse(
            R"({"kind": "DaemonSet", "metadata": {"name": "podinfo", "generation": 1}})");
        d["status"] = Json::parse(status);
        return d;
    };
    const Json ready = ds(R"({"observedGeneration": 1, "desiredNumberScheduled": 3,
                              "updatedNumberScheduled": 3, "numberAvailable": 3})");
    CHECK(sc::daemonset_readiness(ready, 100, 600, late, since, prefix).ready);

    const Json updating = ds(R"({"observedGeneration": 1, "desiredNumberScheduled": 3,
                                 "updatedNumberScheduled": 1, "numberAvailable": 3})");
    auto r = sc::daemonset_readiness(updating, 100, 600, soon, since, prefix);
    CHECK_FALSE(r.ready);
    CHECK(r.retriable);
    CHECK(r.message ==
          prefix + "waiting for rollout to finish: 1 out of 3 new pods have been updated");
    CHECK_FALSE(sc::daemonset_readiness(updating, 100, 600, late, since, prefix).retriable);

    const Json unavailable = ds(R"({"observedGeneration": 1, "desiredNumberScheduled": 3,
                                    "updatedNumberScheduled": 3, "numberAvailable": 1})");
    r = sc::daemonset_readiness(unavailable, 100, 600, soon, since, prefix);
    CHECK_FALSE(r.ready);
    CHECK(r.message == prefix +
                           "waiting for rollout to finish: 1 of 3 (readyThreshold 100%) "
                           "updated pods are available");
    // floor(3 * 50%) = 1.
    CHECK(sc::daemonset_readiness(unavailable, 50, 600, soon, since, prefix).ready);
}

// ---- services ---------------------------------------------------------------------------------

TEST_CASE("make_services builds the apex, primary and canary Services") {
    const auto canary = podinfo_canary(R"(
    port: 9898
    appProtocol: http
    headless: true
    trafficDistribution: PreferClose
    apex: {labels: {tier: apex}, annotations: {a: apex}}
    canary: {labels: {tier: canary, app: overridden}, annotations: {a: canary}})");
    const Json owner = sc::owner_reference(canary);
    const auto services = sc::make_services(canary, podinfo(), {"app", "podinfo"}, owner);

    CHECK(services.apex.at("metadata").at("name") == "podinfo");
    CHECK(services.primary.at("metadata").at("name") == "podinfo-primary");
    CHECK(services.canary.at("metadata").at("name") == "podinfo-canary");
    for (const Json* svc : {&services.apex, &services.primary, &services.canary}) {
        CHECK(svc->at("apiVersion") == "v1");
        CHECK(svc->at("kind") == "Service");
        CHECK(svc->at("metadata").at("namespace") == "default");
        CHECK(svc->at("metadata").at("ownerReferences") == Json::array({owner}));
        CHECK(svc->at("metadata").at("annotations").at("kustomize.toolkit.fluxcd.io/reconcile") ==
              "disabled");
        CHECK(svc->at("metadata").at("annotations").at("helm.toolkit.fluxcd.io/driftDetection") ==
              "disabled");
        CHECK(svc->at("spec").at("type") == "ClusterIP");
        CHECK(svc->at("spec").at("clusterIP") == "None");
        CHECK(svc->at("spec").at("trafficDistribution") == "PreferClose");
        CHECK(ports_of(*svc) == Json::parse(R"([{"name": "http", "protocol": "TCP", "port": 9898,
                                                  "targetPort": 9898, "appProtocol": "http"}])"));
    }
    CHECK(services.apex.at("spec").at("selector") == Json{{"app", "podinfo-primary"}});
    CHECK(services.primary.at("spec").at("selector") == Json{{"app", "podinfo-primary"}});
    CHECK(services.canary.at("spec").at("selector") == Json{{"app", "podinfo"}});
    CHECK(services.apex.at("metadata").at("labels") == Json{{"app", "podinfo"}, {"tier", "apex"}});
    CHECK(services.primary.at("metadata").at("labels") == Json{{"app", "podinfo-primary"}});
    CHECK(services.canary.at("metadata").at("labels") ==
          Json{{"app", "podinfo-canary"}, {"tier", "canary"}});
    CHECK(services.apex.at("metadata").at("annotations").at("a") == "apex");
    CHECK(services.primary.at("metadata").at("annotations").size() == 2);
    CHECK(services.canary.at("metadata").at("annotations").at("a") == "canary");
}

TEST_CASE("make_services uses spec.service.name and portName") {
    const auto canary = podinfo_canary("{name: podinfo-service, port: 80, portName: web}");
    const auto services = sc::make_services(canary, podinfo(), {"name", "podinfo"}, Json());
    CHECK(services.apex.at("metadata").at("name") == "podinfo-service");
    CHECK(services.primary.at("metadata").at("name") == "podinfo-service-primary");
    CHECK(services.canary.at("metadata").at("name") == "podinfo-service-canary");
    CHECK(services.primary.at("metadata").at("labels") ==
          Json{{"name", "podinfo-service-primary"}});
    CHECK(services.canary.at("spec").at("selector") == Json{{"name", "podinfo"}});
    CHECK_FALSE(services.apex.at("metadata").contains("ownerReferences"));
    CHECK_FALSE(services.apex.at("spec").contains("clusterIP"));
    CHECK_FALSE(services.apex.at("spec").contains("trafficDistribution"));
    CHECK(ports_of(services.apex) ==
          Json::parse(R"([{"name": "web", "protocol": "TCP", "port": 80, "targetPort": 80}])"));
}

TEST_CASE("make_services with portDiscovery (flagger-spec §10 scenario 13)") {
    const auto canary = podinfo_canary("{port: 9898, portDiscovery: true}");
    const auto services = sc::make_services(canary, podinfo(), {"app", "podinfo"}, Json());
    CHECK(ports_of(services.canary) == Json::parse(R"([
        {"name": "http", "protocol": "TCP", "port": 9898, "targetPort": 9898},
        {"name": "http-metrics", "protocol": "TCP", "port": 8080, "targetPort": 8080},
        {"name": "tcp-podinfo-2", "protocol": "TCP", "port": 8888, "targetPort": 8888}])"));
    CHECK(ports_of(services.apex) == ports_of(services.canary));
}

TEST_CASE("make_services with a numeric targetPort (scenario 14)") {
    const auto canary = podinfo_canary("{port: 80, targetPort: 9898, portDiscovery: true}");
    const auto services = sc::make_services(canary, podinfo(), {"app", "podinfo"}, Json());
    CHECK(ports_of(services.canary) == Json::parse(R"([
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 9898},
        {"name": "http-metrics", "protocol": "TCP", "port": 8080, "targetPort": 8080},
        {"name": "tcp-podinfo-2", "protocol": "TCP", "port": 8888, "targetPort": 8888}])"));
}

TEST_CASE("make_services with a named targetPort (scenario 15)") {
    const auto canary = podinfo_canary("{port: 8080, targetPort: http, portDiscovery: true}");
    const auto services = sc::make_services(canary, podinfo(), {"app", "podinfo"}, Json());
    CHECK(ports_of(services.primary) == Json::parse(R"([
        {"name": "http", "protocol": "TCP", "port": 8080, "targetPort": "http"},
        {"name": "http-metrics", "protocol": "TCP", "port": 8080, "targetPort": 8080},
        {"name": "tcp-podinfo-2", "protocol": "TCP", "port": 8888, "targetPort": 8888}])"));
}

namespace {

/// What the API server returns for a created Service.
Json as_live(const Json& created) {
    Json live = created;
    live["metadata"]["resourceVersion"] = "5";
    live["metadata"]["uid"] = "svc-uid";
    live["spec"]["clusterIP"] = "10.0.0.7";
    live["spec"]["clusterIPs"] = Json::array({"10.0.0.7"});
    live["spec"]["sessionAffinity"] = "None";
    live["status"] = Json::parse(R"({"loadBalancer": {}})");
    return live;
}

}  // namespace

TEST_CASE("service_update returns nullopt when the live Service matches") {
    const auto canary = podinfo_canary("{port: 9898, portDiscovery: true}");
    const auto services =
        sc::make_services(canary, podinfo(), {"app", "podinfo"}, sc::owner_reference(canary));
    Json live = as_live(services.canary);
    // Port order does not matter.
    std::swap(live["spec"]["ports"][0], live["spec"]["ports"][2]);
    CHECK_FALSE(sc::service_update(live, services.canary, canary, false));
    // A targetPort the server defaulted from an absent one, and a defaulted protocol.
    Json minimal = live;
    for (Json& port : minimal["spec"]["ports"]) {
        port.erase("protocol");
    }
    CHECK_FALSE(sc::service_update(minimal, services.canary, canary, false));
}

TEST_CASE("service_update rewrites ports and selector, keeping server fields and nodePorts") {
    const auto canary = podinfo_canary("{port: 9898, portName: web}");
    const auto services =
        sc::make_services(canary, podinfo(), {"app", "podinfo"}, sc::owner_reference(canary));
    Json live = as_live(services.apex);
    live["spec"]["type"] = "NodePort";
    live["spec"]["ports"] = Json::parse(R"([
        {"name": "web", "protocol": "TCP", "port": 9000, "targetPort": 9000, "nodePort": 30080}])");
    live["spec"]["selector"] = {{"app", "podinfo"}};

    auto update = sc::service_update(live, services.apex, canary, false);
    REQUIRE(update);
    CHECK(update->at("metadata").at("resourceVersion") == "5");
    CHECK(update->at("spec").at("clusterIP") == "10.0.0.7");
    CHECK(update->at("spec").at("type") == "NodePort");
    CHECK(update->at("spec").at("selector") == Json{{"app", "podinfo-primary"}});
    CHECK(ports_of(*update) == Json::parse(R"([
        {"name": "web", "protocol": "TCP", "port": 9898, "targetPort": 9898, "nodePort": 30080}])"));

    // Applying it and reconciling again writes nothing.
    CHECK_FALSE(sc::service_update(*update, services.apex, canary, false));

    // keep_selector: only the ports change.
    auto kept = sc::service_update(live, services.apex, canary, true);
    REQUIRE(kept);
    CHECK(kept->at("spec").at("selector") == Json{{"app", "podinfo"}});
    Json same_ports = live;
    same_ports["spec"]["ports"] = ports_of(services.apex);
    CHECK_FALSE(sc::service_update(same_ports, services.apex, canary, true));
    CHECK(sc::service_update(same_ports, services.apex, canary, false));
}

TEST_CASE("service_update manages metadata only on owned Services, keeping unmanaged keys") {
    const auto canary = podinfo_canary(R"(
    port: 9898
    canary: {labels: {tier: canary, team: flagger}, annotations: {owner: flagger, note: flagger}}
    unmanagedMetadata: {labels: [team, absent-label], annotations: [note]})");
    const auto services =
        sc::make_services(canary, podinfo(), {"app", "podinfo"}, sc::owner_reference(canary));
    Json live = as_live(services.canary);
    live["metadata"]["labels"]["tier"] = "edited";
    live["metadata"]["labels"]["team"] = "external";
    live["metadata"]["labels"]["extra"] = "x";
    live["metadata"]["annotations"]["note"] = "external";
    live["metadata"]["annotations"]["owner"] = "edited";
    live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}";

    auto update = sc::service_update(live, services.canary, canary, false);
    REQUIRE(update);
    CHECK(update->at("metadata").at("labels") ==
          Json{{"app", "podinfo-canary"}, {"team", "external"}, {"tier", "canary"}});
    const Json& annotations = update->at("metadata").at("annotations");
    CHECK(annotations.at("note") == "external");
    CHECK(annotations.at("owner") == "flagger");
    CHECK(annotations.at("kubectl.kubernetes.io/last-applied-configuration") == "{}");
    CHECK(annotations.at("kustomize.toolkit.fluxcd.io/reconcile") == "disabled");
    CHECK_FALSE(sc::service_update(*update, services.canary, canary, false));

    // A Service the canary does not own keeps its metadata.
    Json foreign = live;
    foreign["metadata"].erase("ownerReferences");
    CHECK_FALSE(sc::service_update(foreign, services.canary, canary, false));
}

// ---- autoscaler
// -----------------------------------------------------------------------------------

namespace {

Json podinfo_hpa() {
    return yaml(R"(
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: podinfo
  namespace: default
  resourceVersion: "3"
  labels: {app: podinfo, kustomize.toolkit.fluxcd.io/name: apps}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  minReplicas: 2
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 99}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 300}
status: {currentReplicas: 2}
)");
}

}  // namespace

TEST_CASE("make_primary_hpa targets the primary and copies the scaling spec") {
    const auto canary = podinfo_canary();
    const Json owner = sc::owner_reference(canary);
    const Json primary = sc::make_primary_hpa(podinfo_hpa(), canary, owner);
    CHECK(primary.at("apiVersion") == "autoscaling/v2");
    CHECK(primary.at("kind") == "HorizontalPodAutoscaler");
    CHECK_FALSE(primary.contains("status"));
    CHECK(primary.at("metadata") ==
          Json::parse(R"({"name": "podinfo-primary", "namespace": "default",
        "labels": {"app": "podinfo"}, "ownerReferences": [)" +
                      owner.dump() + "]}"));
    const Json& spec = primary.at("spec");
    CHECK(spec.at("scaleTargetRef") ==
          Json::parse(
              R"({"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo-primary"})"));
    CHECK(spec.at("minReplicas") == 2);
    CHECK(spec.at("maxReplicas") == 4);
    CHECK(spec.at("metrics") == podinfo_hpa().at("spec").at("metrics"));
    CHECK(spec.at("behavior") == podinfo_hpa().at("spec").at("behavior"));
}

TEST_CASE("make_primary_hpa applies primaryScalerReplicas") {
    const auto canary = canary_from(R"(
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: default, uid: canary-uid}
spec:
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
    primaryScalerReplicas: {minReplicas: 3, maxReplicas: 9}
  service: {port: 9898}
  analysis: {interval: 1m, threshold: 10, stepWeight: 10}
)");
    const Json spec = sc::make_primary_hpa(podinfo_hpa(), canary, Json()).at("spec");
    CHECK(spec.at("minReplicas") == 3);
    CHECK(spec.at("maxReplicas") == 9);
}

TEST_CASE("hpa_update writes only when min, max, metrics or behavior differ") {
    const auto canary = podinfo_canary();
    const Json desired = sc::make_primary_hpa(podinfo_hpa(), canary, sc::owner_reference(canary));
    Json live = desired;
    live["metadata"]["resourceVersion"] = "8";
    live["status"] = {{"currentReplicas", 2}};
    // Server defaults inside behavior do not count.
    live["spec"]["behavior"]["scaleDown"]["selectPolicy"] = "Max";
    live["spec"]["behavior"]["scaleUp"] = {{"stabilizationWindowSeconds", 0}};
    live["metadata"]["labels"]["extra"] = "x";
    CHECK_FALSE(sc::hpa_update(live, desired));

    Json other_max = live;
    other_max["spec"]["maxReplicas"] = 10;
    auto update = sc::hpa_update(other_max, desired);
    REQUIRE(update);
    CHECK(update->at("spec").at("maxReplicas") == 4);
    CHECK(update->at("metadata").at("resourceVersion") == "8");
    CHECK_FALSE(update->contains("status"));
    CHECK_FALSE(sc::hpa_update(*update, desired));

    Json other_metric = live;
    other_metric["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] = 50;
    REQUIRE(sc::hpa_update(other_metric, desired));
    CHECK(sc::hpa_update(other_metric, desired)->at("spec").at("metrics") ==
          desired.at("spec").at("metrics"));

    // minReplicas absent means 1.
    Json desired_one = desired;
    desired_one["spec"].erase("minReplicas");
    Json live_one = live;
    live_one["spec"]["minReplicas"] = 1;
    CHECK_FALSE(sc::hpa_update(live_one, desired_one));
    CHECK(sc::hpa_update(live, desired_one));

    // Behavior removed from the original.
    Json no_behavior = desired;
    no_behavior["spec"].erase("behavior");
    auto removed = sc::hpa_update(live, no_behavior);
    REQUIRE(removed);
    CHECK_FALSE(removed->at("spec").contains("behavior"));
}
