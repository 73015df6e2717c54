#include "devcluster/pki.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

namespace serin::devcluster {
namespace {

struct BioFree {
    void operator()(BIO* b) const { BIO_free_all(b); }
};
struct PkeyFree {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
    void operator()(X509* x) const { X509_free(x); }
};
struct BnFree {
    void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ExtFree {
    void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, ExtFree>;

/// The error with OpenSSL's queued reasons appended; clears the queue.
Error ssl_error(const std::string& what) {
    std::string message = what;
    while (unsigned long code = ERR_get_error()) {
        char buffer[256];
        ERR_error_string_n(code, buffer, sizeof buffer);
        message += ": ";
        message += buffer;
    }
    return fail(ErrorKind::kInternal, message);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long size = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(size));
}

Result<std::string> private_key_pem(EVP_PKEY* key) {
    BioPtr bio{BIO_new(BIO_s_mem())};
    if (!bio ||
        PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        return ssl_error("writing a private key");
    }
    return bio_text(bio.get());
}

Result<std::string> cert_pem(X509* cert) {
    BioPtr bio{BIO_new(BIO_s_mem())};
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
        return ssl_error("writing a certificate");
    }
    return bio_text(bio.get());
}

Result<PkeyPtr> make_ec_key() {
    PkeyPtr key{EVP_EC_gen("P-256")};
    if (!key) {
        return ssl_error("generating an EC P-256 key");
    }
    return key;
}

Result<void> add_extension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
    ExtPtr ext{X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str())};
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
        return ssl_error("adding extension " + std::string(OBJ_nid2sn(nid)) + "=" + value);
    }
    return {};
}

/// A certificate for `key`, signed by `issuer_key` (self-signed when `issuer` is null).
Result<X509Ptr> build_certificate(EVP_PKEY* key, const CertificateRequest& request, bool is_ca,
                                  X509* issuer, EVP_PKEY* issuer_key) {
    X509Ptr cert{X509_new()};
    if (!cert || X509_set_version(cert.get(), 2) != 1) {
        return ssl_error("allocating a certificate");
    }
    unsigned char serial_bytes[16];
    if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) {
        return ssl_error("generating a serial number");
    }
    serial_bytes[0] &= 0x7f;  // keep it positive
    BnPtr serial{BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr)};
    if (!serial || BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
        return ssl_error("setting the serial number");
    }
    // Valid from an hour ago, so small clock differences never make it "not yet valid".
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()),
                    static_cast<long>(std::chrono::seconds(request.validity).count()));
    if (X509_set_pubkey(cert.get(), key) != 1) {
        return ssl_error("setting the public key");
    }
    X509_NAME* name = X509_get_subject_name(cert.get());
    for (const auto& org : request.organizations) {
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(org.c_str()), -1, -1, 0);
    }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(request.common_name.c_str()),
                               -1, -1, 0);
    X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
    if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1) {
        return ssl_error("setting the issuer");
    }
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer_cert, cert.get(), nullptr, nullptr, 0);
    auto add = [&](int nid, const std::string& value) {
        return add_extension(cert.get(), &ctx, nid, value);
    };
    if (is_ca) {
        if (auto r = add(NID_basic_constraints, "critical,CA:TRUE"); !r) {
            return r.error();
        }
        if (auto r = add(NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"); !r) {
            return r.error();
        }
    } else {
        if (auto r = add(NID_basic_constraints, "critical,CA:FALSE"); !r) {
            return r.error();
        }
        if (auto r = add(NID_key_usage, "critical,digitalSignature,keyEncipherment"); !r) {
            return r.error();
        }
        std::string usages;
        if (request.server) {
            usages = "serverAuth";
        }
        if (request.client) {
            usages += usages.empty() ? "clientAuth" : ",clientAuth";
        }
        if (!usages.empty()) {
            if (auto r = add(NID_ext_key_usage, usages); !r) {
                return r.error();
            }
        }
    }
    if (auto r = add(NID_subject_key_identifier, "hash"); !r) {
        return r.error();
    }
    if (issuer != nullptr) {
        if (auto r = add(NID_authority_key_identifier, "keyid:always"); !r) {
            return r.error();
        }
    }
    std::string sans;
    for (const auto& dns : request.dns_names) {
        sans += (sans.empty() ? "DNS:" : ",DNS:") + dns;
    }
    for (const auto& ip : request.ip_addresses) {
        sans += (sans.empty() ? "IP:" : ",IP:") + ip;
    }
    if (!sans.empty()) {
        if (auto r = add(NID_subject_alt_name, sans); !r) {
            return r.error();
        }
    }
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
        return ssl_error("signing the certificate for " + request.common_name);
    }
    return cert;
}

Result<CertAndKey> to_pem(X509* cert, EVP_PKEY* key) {
    auto c = cert_pem(cert);
    if (!c) {
        return c.error();
    }
    auto k = private_key_pem(key);
    if (!k) {
        return k.error();
    }
    return CertAndKey{std::move(*c), std::move(*k)};
}

}  // namespace

Result<CertAndKey> make_ca(const std::string& common_name, std::chrono::hours validity) {
    auto key = make_ec_key();
    if (!key) {
        return key.error();
    }
    CertificateRequest request;
    request.common_name = common_name;
    request.validity = validity;
    auto cert = build_certificate(key->get(), request, true, nullptr, key->get());
    if (!cert) {
        return cert.error();
    }
    return to_pem(cert->get(), key->get());
}

Result<CertAndKey> issue_certificate(const CertAndKey& ca, const CertificateRequest& request) {
    BioPtr cert_bio{BIO_new_mem_buf(ca.cert_pem.data(), static_cast<int>(ca.cert_pem.size()))};
    X509Ptr ca_cert{PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)};
    if (!ca_cert) {
        return ssl_error("reading the CA certificate");
    }
    BioPtr key_bio{BIO_new_mem_buf(ca.key_pem.data(), static_cast<int>(ca.key_pem.size()))};
    PkeyPtr ca_key{PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr)};
    if (!ca_key) {
        return ssl_error("reading the CA key");
    }
    auto key = make_ec_key();
    if (!key) {
        return key.error();
    }
    auto cert = build_certificate(key->get(), request, false, ca_cert.get(), ca_key.get());
    if (!cert) {
        return cert.error();
    }
    return to_pem(cert->get(), key->get());
}

Result<RsaKeyPair> make_rsa_key_pair(int bits) {
    PkeyPtr key{EVP_RSA_gen(static_cast<unsigned int>(bits))};
    if (!key) {
        return ssl_error("generating an RSA key");
    }
    auto priv = private_key_pem(key.get());
    if (!priv) {
        return priv.error();
    }
    BioPtr bio{BIO_new(BIO_s_mem())};
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
        return ssl_error("writing a public key");
    }
    return RsaKeyPair{std::move(*priv), bio_text(bio.get())};
}

std::string random_hex(std::size_t bytes) {
    std::string raw(bytes, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
        // The CSPRNG never fails on Linux once seeded; if it does, nothing here is safe to run.
        throw std::runtime_error("RAND_bytes failed");
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes * 2);
    for (unsigned char c : raw) {
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
    return out;
}

}  // namespace serin::devcluster
