// How fetchctl and workers reach the coordinator: TLS (verifying the
// coordinator against --tls-ca or the system's roots), an optional client
// certificate (a worker's mTLS identity), and an optional bearer token.
//
// Certificate files are watched: a rotated client certificate or CA bundle is
// used for the next connection without a restart. The token is read once, from
// --token-file or the environment (FETCHFLEET_TOKEN), never from argv, where
// `ps` would show it to every user of the machine.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/flags.h"

namespace fetchfleet {

struct ClientSecurity {
  bool tls = false;         // --tls; implied by any other --tls-* flag
  std::string ca_file;      // empty: the system's trusted roots
  std::string server_name;  // the name the coordinator's certificate must
                            // carry, when it is not the dialled host
  std::string cert_file;    // a client certificate and its key (mTLS)
  std::string key_file;
  std::string token_file;
  // Send a token without TLS to an address that is not loopback (a token
  // crossing a network in the clear can be read and replayed).
  bool insecure = false;
};

// AddClientSecurityFlags registers --tls, --tls-ca, --tls-server-name,
// --tls-cert, --tls-key, --token-file and --insecure. Their defaults come from
// FETCHFLEET_TLS, FETCHFLEET_TLS_CA, ... so a shell or a pod can set them once.
void AddClientSecurityFlags(FlagSet* flags, ClientSecurity* security);

// DialCoordinator makes a channel to `address` with `security`. `args` carries
// the caller's other channel settings. It fails with InvalidArgument for a
// security set-up that cannot work (a certificate without its key, an
// unreadable token file, a token about to go over plaintext to another host).
absl::StatusOr<std::shared_ptr<grpc::Channel>> DialCoordinator(
    const std::string& address, const ClientSecurity& security,
    grpc::ChannelArguments args);

// IsLoopbackAddress: "localhost:7070", "127.0.0.1:7070", "[::1]:7070" and
// friends (host:port or a bare host).
bool IsLoopbackAddress(absl::string_view address);

}  // namespace fetchfleet
