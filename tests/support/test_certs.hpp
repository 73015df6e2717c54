#pragma once

#include <string>

namespace serin::test {

/// A certificate and its private key, both PEM.
struct TestCertificate {
    std::string cert_pem;
    std::string key_pem;
};

/// Certificates made at run time for TLS tests (EC P-256, SHA-256, valid from an hour ago for
/// thirty days).
struct TestPki {
    TestCertificate ca;          ///< a self-signed CA
    TestCertificate server;      ///< signed by `ca`; SAN IP:127.0.0.1 and DNS:localhost
    TestCertificate client;      ///< signed by `ca`; CN=serin-test-client, for mutual TLS
    TestCertificate other_ca;    ///< an unrelated self-signed CA, for wrong-CA tests
    TestCertificate wrong_host;  ///< signed by `ca` but only for DNS:wrong.example.invalid
};

/// Made once per process, on first use.
const TestPki& test_pki();

}  // namespace serin::test
