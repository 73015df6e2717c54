#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "platform/core/result.hpp"

namespace serin::devcluster {

/// A certificate and its private key, both PEM.
struct CertAndKey {
    std::string cert_pem;
    std::string key_pem;  ///< PKCS#8
};

/// An RSA key pair, PEM: the private key PKCS#8, the public key SubjectPublicKeyInfo.
struct RsaKeyPair {
    std::string private_pem;
    std::string public_pem;
};

struct CertificateRequest {
    std::string common_name;
    std::vector<std::string> organizations;  ///< Kubernetes reads these as groups
    std::vector<std::string> dns_names;
    std::vector<std::string> ip_addresses;
    bool server = false;  ///< extendedKeyUsage serverAuth
    bool client = false;  ///< extendedKeyUsage clientAuth
    std::chrono::hours validity{24 * 365};
};

/// A self-signed CA (EC P-256, SHA-256). Errors are kInternal with OpenSSL's reason.
Result<CertAndKey> make_ca(const std::string& common_name,
                           std::chrono::hours validity = std::chrono::hours{24 * 365});

/// A leaf certificate (EC P-256) signed by `ca`.
Result<CertAndKey> issue_certificate(const CertAndKey& ca, const CertificateRequest& request);

/// An RSA key pair, e.g. for signing service-account tokens.
Result<RsaKeyPair> make_rsa_key_pair(int bits = 2048);

/// `bytes` bytes from OpenSSL's CSPRNG, as lower-case hex.
std::string random_hex(std::size_t bytes);

}  // namespace serin::devcluster
