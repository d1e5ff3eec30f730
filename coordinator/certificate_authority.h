// CertificateAuthority: a CA bundle (PEM) that client certificates are checked
// against, and the identity such a certificate names.
//
// The TLS handshake proves the client holds the key of the certificate it
// presents; which CA signed it is checked here, once per call, against
// --worker-ca (workers) or --client-ca (people and scripts). Two bundles, each
// granting its own roles, and a clear error for a certificate from the wrong
// CA ("not signed by --worker-ca") instead of a failed handshake.
#pragma once

#include <openssl/x509.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fetchfleet::coordinator {

class CertificateAuthority {
 public:
  // Parse reads every certificate in a PEM bundle (at least one).
  static absl::StatusOr<CertificateAuthority> Parse(absl::string_view pem);

  // Verify checks that `leaf_pem` (with the intermediates in `chain_pem`,
  // which may be empty or hold the leaf too) chains to this bundle, is within
  // its validity period and may be used by a TLS client. It returns the
  // certificate's identity: its first URI SAN (a SPIFFE ID), else its first
  // DNS SAN, else its subject's common name.
  absl::StatusOr<std::string> Verify(absl::string_view leaf_pem,
                                     absl::string_view chain_pem) const;

 private:
  struct StoreFree {
    void operator()(X509_STORE* store) const { X509_STORE_free(store); }
  };
  std::shared_ptr<X509_STORE> store_;
};

}  // namespace fetchfleet::coordinator
