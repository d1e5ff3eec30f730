// AccessFile: the coordinator's --auth-file, one credential per line:
//
//   # name   roles          credential
//   alice    submit         sha256:<64 hex digits: SHA-256 of the token>
//   ops      admin,read     sha256:<...>
//   ci-bot   submit,read    cert        # a client certificate (--client-ca)
//                                       # whose identity is "ci-bot"
//
// Tokens are kept hashed: the file alone does not let anyone in. Tokens are
// random (32 bytes from a CSPRNG, README "Security"), so one SHA-256 is
// enough; a slow password hash defends guessable secrets, which these are not.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "coordinator/access_policy.h"

namespace fetchfleet::coordinator {

struct AccessEntry {
  std::string name;
  Roles roles = 0;
};

struct AccessTable {
  // By the token's SHA-256, lower-case hex.
  absl::flat_hash_map<std::string, AccessEntry> tokens;
  // By a client certificate's identity.
  absl::flat_hash_map<std::string, AccessEntry> certificates;
};

// ParseAccessFile reads the file's text; an error names the line.
absl::StatusOr<AccessTable> ParseAccessFile(absl::string_view text);

// TokenDigest: the lower-case hex SHA-256 of `token`, as the file holds it.
std::string TokenDigest(absl::string_view token);

}  // namespace fetchfleet::coordinator
