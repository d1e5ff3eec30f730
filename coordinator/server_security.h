// How the coordinator's port is secured: its TLS credentials (the certificate
// re-read on change, so a cert-manager rotation needs no restart) and the rule
// that keeps an unprotected coordinator off the network.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/authenticator.h"

namespace fetchfleet::coordinator {

struct ServerTls {
  std::string cert_file;  // the coordinator's certificate chain (PEM)
  std::string key_file;   // and its private key
  absl::Duration refresh = absl::Seconds(10);  // how often both are re-read
  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
};

// MakeServerCredentials: TLS when `tls` is enabled, else plaintext. Client
// certificates are asked for (not required) when `auth` takes certificates;
// the Authenticator checks which CA signed them.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTls& tls, const AuthOptions& auth);

// TlsPairWatch tells, once per change, when the certificate and key on disk
// stop matching (a rotation half done: gRPC then fails new handshakes until
// they match again) and when they match again. Call Check every refresh.
class TlsPairWatch {
 public:
  explicit TlsPairWatch(ServerTls tls) : tls_(std::move(tls)) {}
  void Check();

 private:
  const ServerTls tls_;
  bool broken_ = false;
};

// CheckExposure refuses to serve a non-loopback address without both TLS and
// authentication, unless `insecure`: a coordinator reachable over a network
// without them lets anyone run jobs, read every result and register as a
// worker. An empty `listen` (in-process only) is always fine.
absl::Status CheckExposure(const std::string& listen, const ServerTls& tls,
                           const AuthOptions& auth, bool insecure);

}  // namespace fetchfleet::coordinator
