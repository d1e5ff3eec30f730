#include "common/redact.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace fetchfleet {
namespace {

constexpr absl::string_view kMask = "***";

// AuthorityStart: where the authority begins, after "scheme://" (RFC 3986
// scheme characters), or 0 for text without a scheme ("user:pw@host/x").
size_t AuthorityStart(absl::string_view url) {
  size_t sep = url.find("://");
  if (sep == absl::string_view::npos || sep == 0) return 0;
  for (char c : url.substr(0, sep)) {
    if (!absl::ascii_isalnum(c) && c != '+' && c != '-' && c != '.') return 0;
  }
  return sep + 3;
}

// CouldBeHostPort: "host", "host:", "host:8080", "[::1]:80"; not "user:pw".
bool CouldBeHostPort(absl::string_view authority) {
  size_t bracket = authority.rfind(']');
  size_t colon = authority.rfind(':');
  if (colon == absl::string_view::npos ||
      (bracket != absl::string_view::npos && colon < bracket))
    return true;
  for (char c : authority.substr(colon + 1)) {
    if (!absl::ascii_isdigit(c)) return false;
  }
  return true;
}

}  // namespace

std::string RedactUrl(absl::string_view url) {
  size_t start = AuthorityStart(url);
  absl::string_view rest = url.substr(start);
  absl::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = authority.rfind('@');
  if (at == absl::string_view::npos) {
    if (CouldBeHostPort(authority)) return std::string(url);
    // "u:pa/ss@host": the raw '/' cut the authority inside the password.
    at = rest.rfind('@');
    if (at == absl::string_view::npos) return std::string(url);
  }
  return absl::StrCat(url.substr(0, start), kMask, rest.substr(at));
}

bool IsSecretHeader(absl::string_view name) {
  for (absl::string_view secret : {"authorization", "proxy-authorization",
                                   "cookie", "set-cookie", "x-api-key"}) {
    if (absl::EqualsIgnoreCase(name, secret)) return true;
  }
  return false;
}

std::string RedactHeaderValue(absl::string_view name, absl::string_view value) {
  return IsSecretHeader(name) ? std::string(kMask) : std::string(value);
}

}  // namespace fetchfleet
