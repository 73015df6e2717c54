#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "platform/core/result.hpp"
#include "platform/http/http_client.hpp"

namespace serin::kube {

/// How to reach and authenticate to one API server.
struct ClusterConfig {
    std::string server;  ///< "https://127.0.0.1:6443"
    http::TlsOptions tls;
    std::string token;                  ///< a bearer token, used as is
    std::filesystem::path token_file;   ///< or a file holding it, re-read when it changes
    std::string username;               ///< basic auth, when neither token is set
    std::string password;
    std::string default_namespace = "default";
    /// The kubeconfig's name for the user entry of the context ("" in-cluster): who the client
    /// says it is when nothing better (a certificate's CN, a token's subject) is known.
    std::string user;
};

/// Reads a kubeconfig file: the named context, or current-context when `context` is empty.
/// Understands token, tokenFile, client-certificate(-data), client-key(-data),
/// certificate-authority(-data), insecure-skip-tls-verify, username/password and the context's
/// namespace. Relative file paths are taken relative to the kubeconfig's folder. Errors (kInvalid)
/// name the file and the missing or malformed field.
Result<ClusterConfig> load_kubeconfig(const std::filesystem::path& path,
                                      const std::string& context = {});

/// The same for a kubeconfig's text; `path` names it in messages and is where relative file
/// paths start. The text is bounded (4 MiB, nesting 64) before yaml-cpp, which recurses per
/// level, sees it.
Result<ClusterConfig> parse_kubeconfig(const std::string& text, const std::filesystem::path& path,
                                       const std::string& context = {});

/// Where the in-cluster configuration comes from; the defaults are Kubernetes' own.
struct InClusterPaths {
    std::filesystem::path token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    std::filesystem::path ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
    std::filesystem::path namespace_file =
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
    std::string host_env = "KUBERNETES_SERVICE_HOST";
    std::string port_env = "KUBERNETES_SERVICE_PORT";
};

/// The in-cluster configuration from what a pod is given, without touching the environment or
/// files (pure, fuzzed): `host` and `port` as in KUBERNETES_SERVICE_HOST/_PORT, the CA file's
/// text and the namespace file's text (nullopt: no namespace file, so "default"). Each is checked:
/// a host is a DNS name or an IP literal, a port 1-65535, the CA at most 1 MiB and not empty, the
/// namespace a DNS-1123 label. Errors (kInvalid) name the variable or file and the bad value.
Result<ClusterConfig> make_in_cluster_config(std::string_view host, std::string_view port,
                                             std::string ca_pem,
                                             std::optional<std::string_view> namespace_text,
                                             const InClusterPaths& paths = {});

/// The service account's configuration inside a pod. The token is read from its file on use and
/// re-read when the file changes, so rotated tokens are picked up.
Result<ClusterConfig> load_in_cluster(const InClusterPaths& paths = {});

/// --kubeconfig if given, else $KUBECONFIG, else in-cluster when running in a pod, else
/// ~/.kube/config. `context` selects a kubeconfig context (empty: current-context); naming one
/// rules out the in-cluster configuration, which has none.
Result<ClusterConfig> load_default_config(const std::string& kubeconfig_flag,
                                          const std::string& context = {});

}  // namespace serin::kube
