// Authenticator: who a call comes from (a bearer token, or a client
// certificate from --worker-ca or --client-ca) and whether that caller may
// make it (access_policy.h). Every RPC handler asks it first.
//
// Without any of --auth-file, --worker-ca, --client-ca the coordinator is
// open: every caller holds every role. That is for loopback and for
// --insecure only (server_security.h refuses it elsewhere).
//
// Thread-safe: called on gRPC's threads. The files are re-read when they change
// (WatchedFile), so tokens and CAs rotate without a restart.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/watched_file.h"
#include "coordinator/access_file.h"
#include "coordinator/access_policy.h"
#include "coordinator/certificate_authority.h"

namespace fetchfleet::coordinator {

struct AuthOptions {
  std::string auth_file;  // tokens and client-certificate identities
  std::string worker_ca;  // CA of workers' client certificates
  std::string client_ca;  // CA of other clients' certificates
  bool configured() const {
    return !auth_file.empty() || !worker_ca.empty() || !client_ca.empty();
  }
};

class Authenticator {
 public:
  // Create loads the files; a missing or bad one is an error.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(
      AuthOptions options);

  bool open() const { return !options_.configured(); }
  const AuthOptions& options() const { return options_; }

  // Authorize: the caller, if it may make `rpc` at all; else UNAUTHENTICATED
  // (no or a bad credential) or PERMISSION_DENIED (a role missing), each with
  // a message that says what to do.
  absl::StatusOr<Principal> Authorize(const grpc::ServerContextBase& context,
                                      Rpc rpc);
  // Authenticate: the caller, whatever it wants to do.
  absl::StatusOr<Principal> Authenticate(
      const grpc::ServerContextBase& context);

 private:
  explicit Authenticator(AuthOptions options);
  absl::StatusOr<Principal> FromToken(absl::string_view token);
  absl::StatusOr<Principal> FromCertificate(absl::string_view leaf_pem,
                                            absl::string_view chain_pem);

  const AuthOptions options_;
  std::unique_ptr<WatchedFile<AccessTable>> access_;
  std::unique_ptr<WatchedFile<CertificateAuthority>> worker_ca_;
  std::unique_ptr<WatchedFile<CertificateAuthority>> client_ca_;
};

}  // namespace fetchfleet::coordinator
