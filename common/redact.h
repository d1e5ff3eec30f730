// Redaction of secrets for log lines and error messages: the userinfo of a
// URL (http://user:password@host) and the values of credential-bearing
// headers. What a job's submitter gets back about their own request (its
// result's URL) is theirs and stays as sent; what an operator reads (logs,
// error statuses) goes through here.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace fetchfleet {

// RedactUrl replaces a URL's userinfo with "***": "http://u:p@h/x" becomes
// "http://***@h/x". Any text is accepted (a malformed URL too, for the error
// that says so); text without userinfo comes back unchanged. A password with a
// raw '/', '?' or '#' ends the authority early; when what is left of it cannot
// be a host:port (the "port" is not a number), everything up to the last '@'
// goes, which can over-redact but never shows the password.
std::string RedactUrl(absl::string_view url);

// IsSecretHeader: Authorization, Proxy-Authorization, Cookie, Set-Cookie and
// X-Api-Key, in any case.
bool IsSecretHeader(absl::string_view name);

// RedactHeaderValue returns `value`, or "***" when `name` is a secret header.
std::string RedactHeaderValue(absl::string_view name, absl::string_view value);

}  // namespace fetchfleet
