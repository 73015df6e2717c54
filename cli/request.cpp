#include "cli/request.hpp"

#include <openssl/bio.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "cli/format.hpp"
#include "platform/core/base64.hpp"
#include "platform/core/json.hpp"
#include "platform/core/text.hpp"

namespace serin::cli {

using Json = nlohmann::json;

Json make_request(const Json& canary, std::string_view action, bool full,
                  const std::string& requested_by, const std::string& reason) {
    const std::string name = get_string(canary, "metadata/name");
    Json spec = {{"canaryRef", {{"name", name}}},
                 {"action", std::string(action)},
                 {"requestedBy", requested_by}};
    if (action == "promote") {
        spec["full"] = full;
    }
    if (!reason.empty()) {
        spec["reason"] = reason;
    }
    return {{"apiVersion", "serin.dev/v1alpha1"},
            {"kind", "CanaryRequest"},
            {"metadata",
             {{"generateName", name + "-" + std::string(action) + "-"},
              {"namespace", get_string(canary, "metadata/namespace")},
              {"ownerReferences",
               {{{"apiVersion", get_string(canary, "apiVersion", "flagger.app/v1beta1")},
                 {"kind", "Canary"},
                 {"name", name},
                 {"uid", get_string(canary, "metadata/uid")},
                 {"controller", false}}}}}},
            {"spec", std::move(spec)}};
}

std::string token_subject(const std::string& token) {
    auto first = token.find('.');
    auto second = first == std::string::npos ? first : token.find('.', first + 1);
    if (second == std::string::npos || second - first - 1 > 16 * 1024) {
        return {};
    }
    std::string payload = token.substr(first + 1, second - first - 1);
    // base64url without padding -> base64.
    for (char& c : payload) {
        c = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    while (payload.size() % 4 != 0) {
        payload += '=';
    }
    auto decoded = decode_base64(payload);
    if (!decoded) {
        return {};
    }
    auto claims = parse_json(*decoded, 8, "the token");
    if (!claims) {
        return {};
    }
    return text::clip(json_string(*claims, "sub"), 253);
}

std::string certificate_common_name(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    if (!bio) {
        return {};
    }
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!cert) {
        return {};
    }
    X509_NAME* subject = X509_get_subject_name(cert.get());
    int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (index < 0) {
        return {};
    }
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
    unsigned char* utf8 = nullptr;
    int length = ASN1_STRING_to_UTF8(&utf8, data);
    if (length < 0) {
        return {};
    }
    std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(length));
    OPENSSL_free(utf8);
    return text::clip(cn, 253);
}

std::string requested_by(const kube::ClusterConfig& config) {
    if (!config.tls.client_cert_pem.empty()) {
        if (auto cn = certificate_common_name(config.tls.client_cert_pem); !cn.empty()) {
            return cn;
        }
    }
    std::string token = config.token;
    if (token.empty() && !config.token_file.empty()) {
        std::ifstream in(config.token_file);
        std::ostringstream buffer;
        buffer << in.rdbuf();
        token = std::string(text::trim(buffer.str()));
    }
    if (!token.empty()) {
        if (auto sub = token_subject(token); sub.rfind("system:serviceaccount:", 0) == 0) {
            return sub;
        }
    }
    if (!config.user.empty()) {
        return config.user;
    }
    if (!config.username.empty()) {
        return config.username;
    }
    return "unknown";
}

std::string missing_permission(std::string_view message) {
    // kube-apiserver's RBAC denial: `User "u" cannot create resource "canaryrequests" in API
    // group "serin.dev" in the namespace "test"` (or `at the cluster scope`).
    static const std::regex kDenial(  // NOLINT: a constant
        R"re(cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)")?)re");
    std::string text(message.substr(0, 4096));
    std::smatch m;
    if (!std::regex_search(text, m, kDenial)) {
        return {};
    }
    std::string resource = m[2].str();
    if (!m[3].str().empty()) {
        resource += "." + m[3].str();
    }
    std::string out = m[1].str() + " " + resource;
    out += m[4].matched ? " in namespace " + m[4].str() : " at the cluster scope";
    return out;
}

std::string describe_failure(const Error& error, std::string_view doing) {
    std::string why = text::clip(error.message, 1024);
    switch (error.kind) {
        case ErrorKind::kForbidden: {
            std::string permission = missing_permission(error.message);
            if (!permission.empty()) {
                return "cannot " + std::string(doing) + ": permission denied: you lack `" +
                       permission + "`";
            }
            return "cannot " + std::string(doing) + ": permission denied: " + why;
        }
        case ErrorKind::kUnauthorized:
            return "cannot " + std::string(doing) +
                   ": the API server does not accept these credentials (401): " + why;
        case ErrorKind::kNotFound:
            return "cannot " + std::string(doing) + ": not found: " + why;
        default:
            return "cannot " + std::string(doing) + ": " + error.describe();
    }
}

}  // namespace serin::cli
