#include "coordinator/access_file.h"

#include <openssl/sha.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace fetchfleet::coordinator {
namespace {

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         absl::StrContains("._-@:/", c);
}

bool IsHexDigest(absl::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

}  // namespace

std::string TokenDigest(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

absl::StatusOr<AccessTable> ParseAccessFile(absl::string_view text) {
  AccessTable table;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos)
      line = line.substr(0, hash);
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto error = [&](absl::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number, ": ", why));
    };
    if (fields.size() != 3)
      return error("want three fields: NAME ROLES CREDENTIAL");
    absl::string_view name = fields[0];
    if (name.size() > 128) return error("the name is longer than 128 bytes");
    for (char c : name) {
      if (!IsNameChar(c))
        return error("a name is letters, digits and . _ - @ : /");
    }
    absl::StatusOr<Roles> roles = ParseRoles(fields[1]);
    if (!roles.ok()) return error(roles.status().message());
    AccessEntry entry{std::string(name), *roles};
    absl::string_view credential = fields[2];
    if (credential == "cert") {
      if (!table.certificates.emplace(name, entry).second)
        return error(absl::StrCat("certificate identity ", name, " twice"));
    } else if (absl::ConsumePrefix(&credential, "sha256:")) {
      if (!IsHexDigest(credential))
        return error("sha256: wants 64 hex digits (the token's SHA-256)");
      if (!table.tokens.emplace(absl::AsciiStrToLower(credential), entry)
               .second)
        return error("the same token twice");
    } else {
      return error(
          "the credential is sha256:<hex of the token's SHA-256> or cert");
    }
  }
  return table;
}

}  // namespace fetchfleet::coordinator
