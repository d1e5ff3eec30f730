// TestCa: a certificate authority made for one test with the openssl command
// (Debian's openssl package): a CA certificate, and leaf certificates it signs
// for servers and clients. Files live in a temporary directory removed with
// the TestCa.
#pragma once

#include <string>
#include <vector>

namespace fetchfleet::testing {

struct TestCertificate {
  std::string cert;  // PEM certificate path
  std::string key;   // PEM private key path
};

class TestCa {
 public:
  // `name` is the CA's common name; ok() is false if openssl failed (the
  // test then fails with its stderr).
  explicit TestCa(const std::string& name);
  ~TestCa();

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  const std::string& ca_file() const { return ca_cert_; }

  // Issue signs a certificate with common name `name` and these DNS names
  // (127.0.0.1 is added as an IP SAN), usable by TLS servers and clients.
  TestCertificate Issue(const std::string& name,
                        std::vector<std::string> dns_names = {});

 private:
  bool Run(std::vector<std::string> argv);

  std::string dir_;
  std::string ca_cert_;
  std::string ca_key_;
  int serial_ = 0;
  bool ok_ = true;
  std::string error_;
};

}  // namespace fetchfleet::testing
