#include "tests/testing/test_ca.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/testing/subprocess.h"

namespace fetchfleet::testing {

TestCa::TestCa(const std::string& name) {
  char pattern[] = "/tmp/fetchfleet-ca-XXXXXX";
  dir_ = ::mkdtemp(pattern);
  ca_cert_ = dir_ + "/ca.pem";
  ca_key_ = dir_ + "/ca.key";
  Run({"/usr/bin/openssl",
       "req",
       "-x509",
       "-newkey",
       "ec",
       "-pkeyopt",
       "ec_paramgen_curve:prime256v1",
       "-nodes",
       "-keyout",
       ca_key_,
       "-out",
       ca_cert_,
       "-days",
       "2",
       "-subj",
       "/CN=" + name,
       "-addext",
       "basicConstraints=critical,CA:TRUE",
       "-addext",
       "keyUsage=critical,keyCertSign,cRLSign"});
}

TestCa::~TestCa() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

bool TestCa::Run(std::vector<std::string> argv) {
  if (!ok_) return false;
  CommandResult result = RunCommand(std::move(argv));
  if (result.exit_code != 0) {
    ok_ = false;
    error_ = result.err;
  }
  return ok_;
}

TestCertificate TestCa::Issue(const std::string& name,
                              std::vector<std::string> dns_names) {
  std::string base = absl::StrCat(dir_, "/", ++serial_);
  TestCertificate out{base + ".pem", base + ".key"};
  std::string csr = base + ".csr";
  std::string ext = base + ".ext";
  {
    std::ofstream f(ext);
    f << "basicConstraints=CA:FALSE\n"
         "keyUsage=critical,digitalSignature,keyEncipherment\n"
         "extendedKeyUsage=serverAuth,clientAuth\n"
         "subjectAltName=IP:127.0.0.1";
    for (const std::string& dns : dns_names) f << ",DNS:" << dns;
    f << "\n";
  }
  Run({"/usr/bin/openssl", "req", "-newkey", "ec", "-pkeyopt",
       "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", out.key, "-out",
       csr, "-subj", "/CN=" + name});
  Run({"/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", ca_cert_,
       "-CAkey", ca_key_, "-set_serial", std::to_string(1000 + serial_),
       "-days", "2", "-extfile", ext, "-out", out.cert});
  return out;
}

}  // namespace fetchfleet::testing
