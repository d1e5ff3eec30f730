#include "coordinator/server_security.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include "absl/strings/str_cat.h"
#include "common/client_credentials.h"
#include "common/logging.h"
#include "common/tls_files.h"

namespace fetchfleet::coordinator {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerTls& tls, const AuthOptions& auth) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  if (tls.cert_file.empty() || tls.key_file.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  // gRPC would start with a bad pair and fail every handshake.
  if (absl::Status pair = CheckKeyPair(tls.cert_file, tls.key_file); !pair.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--tls-cert/--tls-key: ", pair.message()));
  auto provider =
      std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          tls.key_file, tls.cert_file,
          std::max<int64_t>(1, absl::ToInt64Seconds(tls.refresh)));
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  // The handshake proves the client holds its certificate's key; the chain is
  // checked by the Authenticator against --worker-ca or --client-ca, so each
  // CA grants its own roles and a wrong one gets a clear error, not a reset
  // connection. A client without a certificate (a token) is let through to
  // the same check.
  options.set_cert_request_type(
      auth.worker_ca.empty() && auth.client_ca.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

void TlsPairWatch::Check() {
  if (!tls_.enabled()) return;
  absl::Status pair = CheckKeyPair(tls_.cert_file, tls_.key_file);
  if (!pair.ok() && !broken_) {
    FF_LOG(ERROR) << "--tls-cert/--tls-key: " << pair.message()
                  << ": new TLS connections fail until the certificate and "
                     "its key match again (write both)";
  } else if (pair.ok() && broken_) {
    FF_LOG(INFO) << "--tls-cert/--tls-key match again";
  }
  broken_ = !pair.ok();
}

absl::Status CheckExposure(const std::string& listen, const ServerTls& tls,
                           const AuthOptions& auth, bool insecure) {
  if (listen.empty() || IsLoopbackAddress(listen) || insecure)
    return absl::OkStatus();
  std::string missing;
  if (!tls.enabled()) missing = "TLS (--tls-cert, --tls-key)";
  if (!auth.configured()) {
    absl::StrAppend(&missing, missing.empty() ? "" : " and ",
                    "authentication (--auth-file, --worker-ca)");
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to listen on ", listen, " without ", missing,
      ": anyone who reaches the port could run jobs, read every result and "
      "register as a worker. Listen on 127.0.0.1, configure them (README "
      "\"Security\"), or pass --insecure on a network you trust"));
}

}  // namespace fetchfleet::coordinator
