#include "common/tls_files.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"

namespace fetchfleet {
namespace {

struct FileClose {
  void operator()(FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<FILE, FileClose>;

absl::Status Open(const std::string& path, File* file) {
  file->reset(std::fopen(path.c_str(), "r"));
  if (*file == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckCaBundle(const std::string& path) {
  File file;
  if (absl::Status s = Open(path, &file); !s.ok()) return s;
  X509* cert = PEM_read_X509(file.get(), nullptr, nullptr, nullptr);
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " holds no PEM certificate"));
  }
  X509_free(cert);
  return absl::OkStatus();
}

absl::Status CheckKeyPair(const std::string& cert_path,
                          const std::string& key_path) {
  File cert_file, key_file;
  if (absl::Status s = Open(cert_path, &cert_file); !s.ok()) return s;
  if (absl::Status s = Open(key_path, &key_file); !s.ok()) return s;
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_X509(cert_file.get(), nullptr, nullptr, nullptr), X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_PrivateKey(key_file.get(), nullptr, nullptr, nullptr),
      EVP_PKEY_free);
  ERR_clear_error();
  if (cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(cert_path, " holds no PEM certificate"));
  }
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, " holds no PEM private key"));
  }
  bool match = X509_check_private_key(cert.get(), key.get()) == 1;
  ERR_clear_error();
  if (!match) {
    return absl::InvalidArgumentError(absl::StrCat(
        key_path, " is not the private key of the certificate in ", cert_path));
  }
  return absl::OkStatus();
}

}  // namespace fetchfleet
