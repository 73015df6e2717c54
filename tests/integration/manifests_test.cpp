// The install manifests a cluster admin applies: crds/ (the base) and crds/overlays/<provider>,
// rendered by the kubectl on $PATH and validated by the devcluster's API server (server-side
// dry run: admission, schema and RBAC validation of every object, nothing stored).

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "platform/kube/resource.hpp"
#include "tests/support/cluster.hpp"
#include "tests/support/kustomize.hpp"

namespace {

namespace fs = std::filesystem;
using serin::ErrorKind;
using serin::testing::Json;
using serin::testing::Rendered;

struct Overlay {
    std::string dir;  ///< under crds/
    std::string provider;
    std::string metrics_server;
};

const std::vector<Overlay>& overlays() {
    static const std::vector<Overlay> all = {
        {".", "istio", "http://prometheus.istio-system:9090"},
        {"overlays/istio", "istio", "http://prometheus.istio-system:9090"},
        {"overlays/linkerd", "linkerd", "http://prometheus.linkerd-viz:9090"},
        {"overlays/smi", "smi:v1alpha3", "http://prometheus.monitoring:9090"},
        {"overlays/gatewayapi", "gatewayapi:v1", "http://prometheus.monitoring:9090"},
        {"overlays/kubernetes", "kubernetes", "http://prometheus.monitoring:9090"},
        {"overlays/nginx", "nginx", "http://prometheus.monitoring:9090"},
        {"overlays/contour", "contour", "http://prometheus.monitoring:9090"},
        {"overlays/gloo", "gloo", "http://prometheus.monitoring:9090"},
        {"overlays/traefik", "traefik", "http://prometheus.monitoring:9090"},
        {"overlays/kuma", "kuma", "http://prometheus-server.kuma-metrics:80"},
        {"overlays/apisix", "apisix", "http://flagger-prometheus.apisix:9090"},
        {"overlays/appmesh", "appmesh:v1beta2", "http://appmesh-prometheus.appmesh-system:9090"},
        {"overlays/skipper", "skipper", "http://prometheus.monitoring:9090"},
    };
    return all;
}

Rendered render(const Overlay& overlay) {
    const fs::path out = fs::temp_directory_path() /
                         ("serin-manifests-" + fs::path(overlay.dir).filename().string() + "-" +
                          std::to_string(::getpid()) + ".yaml");
    auto rendered = serin::testing::kustomize(fs::path(SERIN_SOURCE_DIR) / "crds" / overlay.dir, out);
    if (!rendered) {
        FAIL(rendered.error().describe());
    }
    return *rendered;
}

Json at(const Json& object, const std::string& pointer) {
    const Json* found = serin::testing::find_pointer(object, pointer);
    return found != nullptr ? *found : Json();
}

bool has_arg(const Json& args, const std::string& arg) {
    return std::find(args.begin(), args.end(), Json(arg)) != args.end();
}

}  // namespace

TEST_CASE("every overlay is the hardened base with its provider's flags") {
    for (const Overlay& overlay : overlays()) {
        INFO("crds/" << overlay.dir);
        const Rendered r = render(overlay);
        // The CRDs (Flagger's three, Serin's two), the Namespace, the ServiceAccount, its RBAC,
        // the users' two ClusterRoles (serin-viewer, serin-operator) and the Deployment: 14
        // objects.
        CHECK(r.objects.size() == 14);
        CHECK(r.find("ClusterRole", "serin-viewer") != nullptr);
        CHECK(r.find("ClusterRole", "serin-operator") != nullptr);
        for (const char* crd : {"canaries.flagger.app", "metrictemplates.flagger.app",
                                "alertproviders.flagger.app", "canaryrequests.serin.dev",
                                "canaryhistories.serin.dev"}) {
            CHECK(r.find("CustomResourceDefinition", crd) != nullptr);
        }
        const Json* deployment = r.find("Deployment", "serin");
        REQUIRE(deployment != nullptr);
        const std::string ns = at(*deployment, "/metadata/namespace").get<std::string>();
        CHECK(r.find("Namespace", ns) != nullptr);

        const Json pod = at(*deployment, "/spec/template/spec");
        const Json container = at(pod, "/containers/0");
        const Json args = at(container, "/args");
        CHECK(has_arg(args, "-mesh-provider=" + overlay.provider));
        CHECK(has_arg(args, "-metrics-server=" + overlay.metrics_server));
        CHECK(has_arg(args, "-enable-leader-election=true"));
        CHECK(has_arg(args, "-leader-election-namespace=" + ns));
        // Hardened: non-root, no privilege escalation, no capabilities, read-only root, seccomp.
        CHECK(at(pod, "/securityContext/runAsNonRoot") == true);
        CHECK(at(pod, "/securityContext/seccompProfile/type") == "RuntimeDefault");
        CHECK(at(container, "/securityContext/runAsNonRoot") == true);
        CHECK(at(container, "/securityContext/allowPrivilegeEscalation") == false);
        CHECK(at(container, "/securityContext/readOnlyRootFilesystem") == true);
        CHECK(at(container, "/securityContext/capabilities/drop") == Json::array({"ALL"}));
        // Probes on the port serin serves.
        CHECK(at(container, "/livenessProbe/httpGet/path") == "/healthz");
        CHECK(at(container, "/readinessProbe/httpGet/path") == "/readyz");
        CHECK(at(container, "/ports/0/name") == "http");
        CHECK(has_arg(args, "-port=" + std::to_string(at(container, "/ports/0/containerPort")
                                                          .get<int>())));
        // Requests and limits.
        for (const char* pointer : {"/resources/requests/cpu", "/resources/requests/memory",
                                    "/resources/limits/cpu", "/resources/limits/memory"}) {
            CHECK(at(container, pointer).is_string());
        }

        // The ServiceAccount of the pod gets the ClusterRole and, in its namespace, the Lease Role.
        const std::string account = at(pod, "/serviceAccountName").get<std::string>();
        CHECK(r.find("ServiceAccount", account) != nullptr);
        const Json subject = {{"kind", "ServiceAccount"}, {"name", account}, {"namespace", ns}};
        const Json* cluster_binding = r.find("ClusterRoleBinding", "serin");
        REQUIRE(cluster_binding != nullptr);
        CHECK(at(*cluster_binding, "/subjects") == Json::array({subject}));
        CHECK(r.find("ClusterRole", at(*cluster_binding, "/roleRef/name").get<std::string>()) !=
              nullptr);
        const Json* lease_binding = r.find("RoleBinding", "serin-leader-election");
        REQUIRE(lease_binding != nullptr);
        CHECK(at(*lease_binding, "/metadata/namespace") == ns);
        CHECK(at(*lease_binding, "/subjects") == Json::array({subject}));
        const Json* lease_role = r.find("Role", at(*lease_binding, "/roleRef/name").get<std::string>());
        REQUIRE(lease_role != nullptr);
        CHECK(at(*lease_role, "/metadata/namespace") == ns);
        CHECK(at(*lease_role, "/rules/0/resources") == Json::array({"leases"}));
    }
}

TEST_CASE("every overlay applies with a server-side dry run on the devcluster") {
    auto& cluster = serin::testing::shared_cluster();
    boost::asio::io_context io;
    auto client = serin::testing::make_admin_client(io, cluster);
    for (const Overlay& overlay : overlays()) {
        INFO("crds/" << overlay.dir);
        const Rendered r = render(overlay);
        // A dry-run Namespace is not created, and the server refuses to dry-run objects in a
        // namespace that does not exist. So the overlay's Namespace objects are created for real
        // first (an empty namespace; the install e2e test applies the same one), and then every
        // object, those Namespaces included, goes through the dry run.
        for (const Json& object : r.objects) {
            if (object.value("kind", "") != "Namespace") {
                continue;
            }
            auto created = serin::testing::run(
                io, client->create(serin::kube::types::namespaces(), "", object));
            if (!created) {
                REQUIRE(created.error().kind == ErrorKind::kAlreadyExists);
            }
        }
        auto applied = serin::testing::kubectl(
            cluster.kubeconfig_path(), {"apply", "--dry-run=server", "-f", r.file.string()});
        if (!applied) {
            FAIL(applied.error().describe());
        }
        // One "... (server dry run)" line per object: none skipped, none refused.
        std::size_t lines = 0;
        for (std::size_t at = applied->find("(server dry run)"); at != std::string::npos;
             at = applied->find("(server dry run)", at + 1)) {
            ++lines;
        }
        CHECK(lines == r.objects.size());
        INFO(*applied);
        CHECK(applied->find("serviceaccount/serin") != std::string::npos);
        CHECK(applied->find("deployment.apps/serin") != std::string::npos);
    }
}
