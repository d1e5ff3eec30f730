// Checks of TLS files before gRPC is given them: gRPC takes an unreadable CA
// bundle or a certificate that does not match its key without complaint, and
// then fails every handshake with a line of its own on stderr. These name the
// file and the problem instead.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace fetchfleet {

// CheckCaBundle: `path` holds at least one PEM certificate.
absl::Status CheckCaBundle(const std::string& path);

// CheckKeyPair: `cert_path` holds a PEM certificate and `key_path` the private
// key that belongs to it.
absl::Status CheckKeyPair(const std::string& cert_path,
                          const std::string& key_path);

}  // namespace fetchfleet
