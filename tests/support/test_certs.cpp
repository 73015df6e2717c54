// Test certificates made with the OpenSSL C API, so that no key material lives in the repository.
#include "tests/support/test_certs.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>
#include <string>

namespace serin::test {
namespace {

struct PkeyFree {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
    void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct X509Free {
    void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
    void operator()(BIO* p) const { BIO_free(p); }
};
struct ExtensionFree {
    void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};

using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

/// Test setup cannot go on without its certificates: a failure here is a broken environment.
void check(bool ok, const char* what) {
    if (!ok) {
        const unsigned long err = ERR_get_error();
        std::string reason = err != 0 ? ERR_reason_error_string(err) : "unknown";
        throw std::runtime_error(std::string{"test certificates: "} + what + ": " + reason);
    }
}

Pkey make_key() {
    std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx{
        EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr)};
    check(ctx != nullptr, "EVP_PKEY_CTX_new_from_name");
    check(EVP_PKEY_keygen_init(ctx.get()) == 1, "EVP_PKEY_keygen_init");
    check(EVP_PKEY_CTX_set_group_name(ctx.get(), "P-256") == 1, "EVP_PKEY_CTX_set_group_name");
    EVP_PKEY* key = nullptr;
    check(EVP_PKEY_keygen(ctx.get(), &key) == 1, "EVP_PKEY_keygen");
    return Pkey{key};
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    std::unique_ptr<X509_EXTENSION, ExtensionFree> ext{
        X509V3_EXT_conf_nid(nullptr, &ctx, nid, value)};
    check(ext != nullptr, "X509V3_EXT_conf_nid");
    check(X509_add_ext(cert, ext.get(), -1) == 1, "X509_add_ext");
}

/// A certificate for `key` named `common_name`, signed by issuer (self-signed when null).
Cert make_cert(EVP_PKEY* key, const char* common_name, long serial, X509* issuer,
               EVP_PKEY* issuer_key, bool is_ca, const char* san, const char* usage) {
    Cert cert{X509_new()};
    check(cert != nullptr, "X509_new");
    check(X509_set_version(cert.get(), 2) == 1, "X509_set_version");
    check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) == 1, "serial");
    check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr, "notBefore");
    check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600) != nullptr, "notAfter");
    check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
    X509_NAME* name = X509_get_subject_name(cert.get());
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                     reinterpret_cast<const unsigned char*>(common_name), -1, -1,
                                     0) == 1,
          "subject");
    X509* signer = issuer != nullptr ? issuer : cert.get();
    check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1, "issuer");
    add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
    add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
    if (is_ca) {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
        add_extension(cert.get(), signer, NID_ext_key_usage, usage);
    }
    if (san != nullptr) {
        add_extension(cert.get(), signer, NID_subject_alt_name, san);
    }
    check(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
          "X509_sign");
    return cert;
}

std::string drain(BIO* bio) {
    std::string out(BIO_ctrl_pending(bio), '\0');
    check(BIO_read(bio, out.data(), static_cast<int>(out.size())) == static_cast<int>(out.size()),
          "BIO_read");
    return out;
}

TestCertificate to_pem(X509* cert, EVP_PKEY* key) {
    TestCertificate out;
    std::unique_ptr<BIO, BioFree> cert_bio{BIO_new(BIO_s_mem())};
    check(cert_bio != nullptr && PEM_write_bio_X509(cert_bio.get(), cert) == 1,
          "PEM_write_bio_X509");
    out.cert_pem = drain(cert_bio.get());
    std::unique_ptr<BIO, BioFree> key_bio{BIO_new(BIO_s_mem())};
    check(key_bio != nullptr && PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0,
                                                         nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
    out.key_pem = drain(key_bio.get());
    return out;
}

TestPki make_pki() {
    TestPki pki;
    Pkey ca_key = make_key();
    Cert ca = make_cert(ca_key.get(), "serin-test-ca", 1, nullptr, nullptr, true, nullptr, nullptr);
    pki.ca = to_pem(ca.get(), ca_key.get());

    Pkey server_key = make_key();
    Cert server = make_cert(server_key.get(), "localhost", 2, ca.get(), ca_key.get(), false,
                            "IP:127.0.0.1,DNS:localhost", "serverAuth");
    pki.server = to_pem(server.get(), server_key.get());

    Pkey client_key = make_key();
    Cert client = make_cert(client_key.get(), "serin-test-client", 3, ca.get(), ca_key.get(), false,
                            nullptr, "clientAuth");
    pki.client = to_pem(client.get(), client_key.get());

    Pkey wrong_key = make_key();
    Cert wrong = make_cert(wrong_key.get(), "wrong.example.invalid", 5, ca.get(), ca_key.get(),
                           false, "DNS:wrong.example.invalid", "serverAuth");
    pki.wrong_host = to_pem(wrong.get(), wrong_key.get());

    Pkey other_key = make_key();
    Cert other = make_cert(other_key.get(), "serin-test-other-ca", 4, nullptr, nullptr, true,
                           nullptr, nullptr);
    pki.other_ca = to_pem(other.get(), other_key.get());
    return pki;
}

}  // namespace

const TestPki& test_pki() {
    static const TestPki pki = make_pki();
    return pki;
}

}  // namespace serin::test
