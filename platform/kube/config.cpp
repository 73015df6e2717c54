#include "platform/kube/config.hpp"

#include "platform/core/base64.hpp"

#include <boost/asio/ip/address_v6.hpp>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>
#include <utility>

namespace serin::kube {

namespace fs = std::filesystem;

namespace {

/// The file's first `limit` bytes (all of it when shorter), or nullopt when it cannot be opened
/// or read.
std::optional<std::string> read_file(const fs::path& path,
                                     std::size_t limit = std::numeric_limits<std::size_t>::max()) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    std::string text;
    std::array<char, 64 * 1024> chunk{};
    while (text.size() < limit && in) {
        in.read(chunk.data(), static_cast<std::streamsize>(
                                  std::min<std::size_t>(chunk.size(), limit - text.size())));
        text.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    }
    if (in.bad()) {
        return std::nullopt;
    }
    return text;
}

/// Service account files (CA, namespace) are small; anything past this is not one.
constexpr std::size_t kMaxServiceAccountFileBytes = 1024 * 1024;

/// At most the first 64 characters of `value`, quoted, for a message.
std::string quoted_prefix(std::string_view value) {
    constexpr std::size_t kShown = 64;
    std::string out = "\"";
    for (char c : value.substr(0, kShown)) {
        const auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 || u >= 0x7f) ? '?' : c;
    }
    out += value.size() > kShown ? "...\"" : "\"";
    return out;
}

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/// A DNS name (letters, digits, '-', '.'), an IPv4 literal, or an IPv6 literal with or without
/// brackets (hex digits, ':', '.').
bool valid_host(std::string_view host) {
    constexpr std::size_t kMaxHost = 253;
    if (host.empty() || host.size() > kMaxHost) {
        return false;
    }
    if (host.front() == '[' || host.find(':') != std::string_view::npos) {
        std::string_view inner = host;
        if (host.front() == '[') {
            if (host.size() < 3 || host.back() != ']') {
                return false;
            }
            inner = host.substr(1, host.size() - 2);
        }
        // A zone ("%eth0") has no place in a Service's address.
        if (inner.find('%') != std::string_view::npos) {
            return false;
        }
        boost::system::error_code ec;
        boost::asio::ip::make_address_v6(std::string(inner), ec);
        return !ec;
    }
    return host.front() != '.' && host.front() != '-' &&
           std::all_of(host.begin(), host.end(),
                       [](char c) { return is_alnum(c) || c == '-' || c == '.'; });
}

/// The port number in `port` (decimal digits, 1-65535), or nullopt.
std::optional<int> parse_port(std::string_view port) {
    constexpr std::size_t kMaxDigits = 5;
    constexpr int kMaxPort = 65535;
    if (port.empty() || port.size() > kMaxDigits ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return std::nullopt;
    }
    const int value = std::stoi(std::string(port));
    if (value < 1 || value > kMaxPort) {
        return std::nullopt;
    }
    return value;
}

/// A DNS-1123 label: at most 63 lower-case letters, digits and '-', starting and ending
/// alphanumeric.
bool valid_namespace(std::string_view ns) {
    constexpr std::size_t kMaxLabel = 63;
    auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    return !ns.empty() && ns.size() <= kMaxLabel && lower_alnum(ns.front()) &&
           lower_alnum(ns.back()) &&
           std::all_of(ns.begin(), ns.end(), [&](char c) { return lower_alnum(c) || c == '-'; });
}

std::string trim(std::string s) {
    constexpr std::string_view kSpace = " \t\r\n";
    auto end = s.find_last_not_of(kSpace);
    if (end == std::string::npos) {
        return {};
    }
    auto begin = s.find_first_not_of(kSpace);
    return s.substr(begin, end - begin + 1);
}

constexpr std::size_t kMaxKubeconfigBytes = 4 * 1024 * 1024;
constexpr std::size_t kMaxNesting = 64;

/// A bound on YAML nesting that needs no parser: flow collections ('[', '{') counted outside
/// quotes and comments, and block nesting through indentation, which grows by at least one
/// column per level (a tab is not YAML indentation).
Result<void> check_nesting(std::string_view text) {
    std::size_t flow = 0;
    std::size_t column = 0;
    bool indenting = true;
    char quote = 0;
    bool comment = false;
    for (const char c : text) {
        if (c == '\n') {
            column = 0;
            indenting = true;
            comment = false;
            continue;
        }
        if (indenting && (c == ' ' || c == '-')) {
            // "- - - x" nests sequences on one line: each dash is a level.
            if (++column > 4 * kMaxNesting) {
                return fail(ErrorKind::kInvalid, "nested deeper than YAML kubeconfigs go");
            }
            continue;
        }
        indenting = false;
        if (comment) {
            continue;
        }
        if (quote != 0) {
            if (c == quote) {
                quote = 0;
            }
            continue;
        }
        if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '#') {
            comment = true;
        } else if (c == '[' || c == '{') {
            if (++flow > kMaxNesting) {
                return fail(ErrorKind::kInvalid, "nested deeper than YAML kubeconfigs go");
            }
        } else if ((c == ']' || c == '}') && flow > 0) {
            --flow;
        }
    }
    return {};
}

/// Reads one kubeconfig; every error message starts with "kubeconfig PATH: ".
class KubeconfigReader {
public:
    explicit KubeconfigReader(fs::path path) : path_(std::move(path)) {}

    Result<ClusterConfig> load(const std::string& context_name) {
        auto text = read_file(path_);
        if (!text) {
            return error("cannot read the file");
        }
        return parse(*text, context_name);
    }

    Result<ClusterConfig> parse(const std::string& text, const std::string& context_name) {
        // yaml-cpp recurses once per nesting level, so deep nesting would overflow the stack.
        if (text.size() > kMaxKubeconfigBytes) {
            return error("larger than " + std::to_string(kMaxKubeconfigBytes) + " bytes");
        }
        if (auto nesting = check_nesting(text); !nesting) {
            return error(nesting.error().message);
        }
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::Exception& e) {
            if (e.mark.is_null()) {
                return error("invalid YAML: " + e.msg);
            }
            return error("invalid YAML at line " + std::to_string(e.mark.line + 1) + ", column " +
                         std::to_string(e.mark.column + 1) + ": " + e.msg);
        }
        try {
            return build(root, context_name);
        } catch (const YAML::Exception& e) {
            // build() checks node types before converting; this is a last line of defence.
            return error(e.what());
        }
    }

private:
    Error error(const std::string& message) const {
        return fail(ErrorKind::kInvalid, "kubeconfig " + path_.string() + ": " + message);
    }

    /// A string field: nullopt when absent or null, an error when it is not a scalar.
    Result<std::optional<std::string>> string_field(const YAML::Node& parent, const char* key,
                                                    const std::string& where) const {
        const YAML::Node node = parent[key];
        if (!node.IsDefined() || node.IsNull()) {
            return std::optional<std::string>{};
        }
        if (!node.IsScalar()) {
            return error(where + "." + key + " must be a string");
        }
        return std::optional<std::string>{node.Scalar()};
    }

    Result<bool> bool_field(const YAML::Node& parent, const char* key,
                            const std::string& where) const {
        const YAML::Node node = parent[key];
        if (!node.IsDefined() || node.IsNull()) {
            return false;
        }
        bool value = false;
        if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
            return error(where + "." + key + " must be true or false");
        }
        return value;
    }

    /// PEM material from KEY-data (base64) or, failing that, from the file KEY names.
    Result<std::string> pem_field(const YAML::Node& parent, const std::string& key,
                                  const std::string& where) const {
        std::string data_key = key + "-data";
        auto data = string_field(parent, data_key.c_str(), where);
        if (!data) {
            return data.error();
        }
        if (data->has_value() && !(*data)->empty()) {
            auto decoded = decode_base64(**data);
            if (!decoded) {
                return error(where + "." + data_key + " is not valid base64");
            }
            return std::move(*decoded);
        }
        auto file = string_field(parent, key.c_str(), where);
        if (!file) {
            return file.error();
        }
        if (!file->has_value() || (*file)->empty()) {
            return std::string{};
        }
        fs::path resolved = resolve(**file);
        auto contents = read_file(resolved);
        if (!contents) {
            return error(where + "." + key + ": cannot read " + resolved.string());
        }
        return std::move(*contents);
    }

    fs::path resolve(const std::string& file) const {
        fs::path p(file);
        if (p.is_relative()) {
            return path_.parent_path() / p;
        }
        return p;
    }

    /// The entry of `list` (clusters, users, contexts) called `name`, with its index.
    Result<std::pair<YAML::Node, std::size_t>> find_named(const YAML::Node& root, const char* list,
                                                          const char* what,
                                                          const std::string& name) const {
        const YAML::Node entries = root[list];
        if (entries.IsDefined() && !entries.IsNull()) {
            if (!entries.IsSequence()) {
                return error(std::string(list) + " must be a list");
            }
            for (std::size_t i = 0; i < entries.size(); ++i) {
                const YAML::Node entry = entries[i];
                if (!entry.IsMap()) {
                    return error(std::string(list) + "[" + std::to_string(i) +
                                 "] must be a mapping");
                }
                const YAML::Node entry_name = entry["name"];
                if (entry_name.IsScalar() && entry_name.Scalar() == name) {
                    return std::pair{entry, i};
                }
            }
        }
        return error(std::string(what) + " \"" + name + "\" not found");
    }

    /// The body of an entry ("cluster", "user", "context"); a missing body reads as empty.
    Result<YAML::Node> body(const YAML::Node& entry, const char* key,
                            const std::string& where) const {
        const YAML::Node node = entry[key];
        if (!node.IsDefined() || node.IsNull()) {
            return YAML::Node(YAML::NodeType::Map);
        }
        if (!node.IsMap()) {
            // YAML::Node is explicitly constructible from anything, so name the error side.
            return Result<YAML::Node>(boost::system::in_place_error,
                                      error(where + "." + key + " must be a mapping"));
        }
        return node;
    }

    Result<ClusterConfig> build(const YAML::Node& root, const std::string& context_name) {
        if (!root.IsMap()) {
            return error("not a kubeconfig (the document is not a mapping)");
        }
        std::string name = context_name;
        if (name.empty()) {
            auto current = string_field(root, "current-context", "");
            if (!current) {
                return current.error();
            }
            if (!current->has_value() || (*current)->empty()) {
                return error("no current-context is set and no context was given");
            }
            name = **current;
        }

        ClusterConfig config;

        auto context_entry = find_named(root, "contexts", "context", name);
        if (!context_entry) {
            return context_entry.error();
        }
        std::string context_where = "contexts[" + std::to_string(context_entry->second) + "]";
        auto context = body(context_entry->first, "context", context_where);
        if (!context) {
            return context.error();
        }
        context_where += ".context";
        auto cluster_name = string_field(*context, "cluster", context_where);
        if (!cluster_name) {
            return cluster_name.error();
        }
        if (!cluster_name->has_value() || (*cluster_name)->empty()) {
            return error(context_where + ".cluster is missing");
        }
        auto user_name = string_field(*context, "user", context_where);
        if (!user_name) {
            return user_name.error();
        }
        auto ns = string_field(*context, "namespace", context_where);
        if (!ns) {
            return ns.error();
        }
        if (ns->has_value() && !(*ns)->empty()) {
            config.default_namespace = **ns;
        }

        if (auto r = read_cluster(root, **cluster_name, config); !r) {
            return r.error();
        }
        if (user_name->has_value() && !(*user_name)->empty()) {
            config.user = **user_name;
            if (auto r = read_user(root, **user_name, config); !r) {
                return r.error();
            }
        }
        return config;
    }

    Result<void> read_cluster(const YAML::Node& root, const std::string& name,
                              ClusterConfig& config) {
        auto entry = find_named(root, "clusters", "cluster", name);
        if (!entry) {
            return entry.error();
        }
        std::string where = "clusters[" + std::to_string(entry->second) + "]";
        auto cluster = body(entry->first, "cluster", where);
        if (!cluster) {
            return cluster.error();
        }
        where += ".cluster";
        auto server = string_field(*cluster, "server", where);
        if (!server) {
            return server.error();
        }
        if (!server->has_value() || (*server)->empty()) {
            return error(where + ".server is missing");
        }
        config.server = **server;
        // A trailing slash would double up when paths are appended.
        while (config.server.size() > 1 && config.server.back() == '/') {
            config.server.pop_back();
        }
        auto ca = pem_field(*cluster, "certificate-authority", where);
        if (!ca) {
            return ca.error();
        }
        config.tls.ca_pem = std::move(*ca);
        auto insecure = bool_field(*cluster, "insecure-skip-tls-verify", where);
        if (!insecure) {
            return insecure.error();
        }
        config.tls.insecure_skip_verify = *insecure;
        return {};
    }

    Result<void> read_user(const YAML::Node& root, const std::string& name, ClusterConfig& config) {
        auto entry = find_named(root, "users", "user", name);
        if (!entry) {
            return entry.error();
        }
        std::string where = "users[" + std::to_string(entry->second) + "]";
        auto user = body(entry->first, "user", where);
        if (!user) {
            return user.error();
        }
        where += ".user";

        auto cert = pem_field(*user, "client-certificate", where);
        if (!cert) {
            return cert.error();
        }
        auto key = pem_field(*user, "client-key", where);
        if (!key) {
            return key.error();
        }
        if (cert->empty() != key->empty()) {
            return error(where + (cert->empty() ? ".client-certificate" : ".client-key") +
                         " is missing (a client certificate needs its key)");
        }
        config.tls.client_cert_pem = std::move(*cert);
        config.tls.client_key_pem = std::move(*key);

        auto token = string_field(*user, "token", where);
        if (!token) {
            return token.error();
        }
        if (token->has_value()) {
            config.token = **token;
        }
        auto token_file = string_field(*user, "tokenFile", where);
        if (!token_file) {
            return token_file.error();
        }
        if (token_file->has_value() && !(*token_file)->empty()) {
            config.token_file = resolve(**token_file);
            std::error_code ec;
            if (!fs::is_regular_file(config.token_file, ec)) {
                return error(where + ".tokenFile: cannot read " + config.token_file.string());
            }
        }
        auto username = string_field(*user, "username", where);
        if (!username) {
            return username.error();
        }
        auto password = string_field(*user, "password", where);
        if (!password) {
            return password.error();
        }
        config.username = username->value_or("");
        config.password = password->value_or("");

        bool has_credentials = !config.tls.client_cert_pem.empty() || !config.token.empty() ||
                               !config.token_file.empty() || !config.username.empty();
        if (!has_credentials) {
            for (const char* plugin : {"exec", "auth-provider"}) {
                const YAML::Node node = (*user)[plugin];
                if (node.IsDefined() && !node.IsNull()) {
                    return error(where + "." + plugin +
                                 " is not supported; use a token, tokenFile or client "
                                 "certificate");
                }
            }
        }
        return {};
    }

    fs::path path_;
};

std::optional<std::string> env(const std::string& name) {
    const char* value = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe)
    if (value == nullptr || *value == '\0') {
        return std::nullopt;
    }
    return std::string(value);
}

}  // namespace

Result<ClusterConfig> load_kubeconfig(const fs::path& path, const std::string& context) {
    return KubeconfigReader(path).load(context);
}

Result<ClusterConfig> parse_kubeconfig(const std::string& text, const fs::path& path,
                                       const std::string& context) {
    return KubeconfigReader(path).parse(text, context);
}

Result<ClusterConfig> make_in_cluster_config(std::string_view host, std::string_view port,
                                             std::string ca_pem,
                                             std::optional<std::string_view> namespace_text,
                                             const InClusterPaths& paths) {
    auto in_cluster_error = [](const std::string& message) {
        return fail(ErrorKind::kInvalid, "in-cluster config: " + message);
    };
    if (!valid_host(host)) {
        return in_cluster_error(paths.host_env + " is not a host name or IP address: " +
                                quoted_prefix(host));
    }
    const auto port_number = parse_port(port);
    if (!port_number) {
        return in_cluster_error(paths.port_env + " is not a port (1-65535): " +
                                quoted_prefix(port));
    }
    if (ca_pem.size() > kMaxServiceAccountFileBytes) {
        return in_cluster_error("the CA certificate " + paths.ca_file.string() +
                                " is larger than " +
                                std::to_string(kMaxServiceAccountFileBytes) + " bytes");
    }
    if (ca_pem.empty()) {
        return in_cluster_error("the CA certificate " + paths.ca_file.string() + " is empty");
    }
    ClusterConfig config;
    const bool ipv6 = host.find(':') != std::string_view::npos && host.front() != '[';
    config.server = "https://" + (ipv6 ? "[" + std::string(host) + "]" : std::string(host)) +
                    ":" + std::to_string(*port_number);
    config.tls.ca_pem = std::move(ca_pem);
    if (namespace_text) {
        std::string trimmed = trim(std::string(*namespace_text));
        if (!trimmed.empty()) {
            if (!valid_namespace(trimmed)) {
                return in_cluster_error("the namespace file " + paths.namespace_file.string() +
                                        " does not hold a namespace name: " +
                                        quoted_prefix(trimmed));
            }
            config.default_namespace = std::move(trimmed);
        }
    }
    return config;
}

Result<ClusterConfig> load_in_cluster(const InClusterPaths& paths) {
    auto in_cluster_error = [](const std::string& message) {
        return fail(ErrorKind::kInvalid, "in-cluster config: " + message);
    };
    auto host = env(paths.host_env);
    if (!host) {
        return in_cluster_error(paths.host_env + " is not set (not running in a pod?)");
    }
    auto port = env(paths.port_env);
    if (!port) {
        return in_cluster_error(paths.port_env + " is not set (not running in a pod?)");
    }
    std::error_code ec;
    if (!fs::is_regular_file(paths.token_file, ec)) {
        return in_cluster_error("the service account token " + paths.token_file.string() +
                                " does not exist");
    }
    auto ca = read_file(paths.ca_file, kMaxServiceAccountFileBytes + 1);
    if (!ca) {
        return in_cluster_error("cannot read the CA certificate " + paths.ca_file.string());
    }
    auto ns = read_file(paths.namespace_file, kMaxServiceAccountFileBytes);
    std::optional<std::string_view> ns_text;
    if (ns) {
        ns_text = *ns;
    }
    auto config = make_in_cluster_config(*host, *port, std::move(*ca), ns_text, paths);
    if (config) {
        // The token itself is left in its file: the REST client re-reads it when it is rotated.
        config->token_file = paths.token_file;
    }
    return config;
}

Result<ClusterConfig> load_default_config(const std::string& kubeconfig_flag,
                                          const std::string& context) {
    if (!kubeconfig_flag.empty()) {
        return load_kubeconfig(kubeconfig_flag, context);
    }
    if (auto list = env("KUBECONFIG")) {
        // $KUBECONFIG may list several files; kubectl merges them, Serin takes the first that
        // exists, which covers the common single-file case.
        std::string_view rest = *list;
        std::optional<fs::path> first;
        while (!rest.empty()) {
            auto colon = rest.find(':');
            std::string_view item = rest.substr(0, colon);
            rest = colon == std::string_view::npos ? std::string_view{} : rest.substr(colon + 1);
            if (item.empty()) {
                continue;
            }
            if (!first) {
                first = fs::path(item);
            }
            std::error_code ec;
            if (fs::exists(fs::path(item), ec)) {
                return load_kubeconfig(fs::path(item), context);
            }
        }
        if (first) {
            return load_kubeconfig(*first, context);  // reports the missing file
        }
    }
    InClusterPaths in_cluster;
    if (context.empty() && env(in_cluster.host_env)) {
        return load_in_cluster(in_cluster);
    }
    auto home = env("HOME");
    if (!home) {
        return fail(ErrorKind::kInvalid,
                    "no kubeconfig: --kubeconfig and $KUBECONFIG are unset, not running in a pod "
                    "and $HOME is unset");
    }
    return load_kubeconfig(fs::path(*home) / ".kube" / "config", context);
}

}  // namespace serin::kube
