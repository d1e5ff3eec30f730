#include "common/request_parser.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/json_limits.h"
#include "common/rate_limiter.h"
#include "common/redact.h"
#include "common/status_macros.h"
#include "common/trace_context.h"
#include "common/wire_limits.h"
#include "nlohmann/json.hpp"

namespace fetchfleet {
namespace {

using Json = nlohmann::json;

struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

// RFC 9110 token characters, for methods and header names.
bool IsToken(absl::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (absl::ascii_isalnum(c)) continue;
    if (absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos)
      return false;
  }
  return true;
}

bool HasControlChars(absl::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Quote shortens a piece of input for an error message.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 60;
  std::string out;
  for (char c : text.substr(0, kMax)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u > 0x7e) {
      out += "?";  // ASCII only: a cut multi-byte sequence would not be UTF-8
    } else {
      out += c;
    }
  }
  if (text.size() > kMax) out += "...";
  return absl::StrCat("\"", out, "\"");
}

// QuoteUrl quotes a URL for an error message without its userinfo: errors
// are read by operators and logs, not only by the URL's owner.
std::string QuoteUrl(absl::string_view url) { return Quote(RedactUrl(url)); }

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(message);
}

absl::Status ParseJsonRequest(absl::string_view line,
                              v1::FetchRequest* request) {
  RETURN_IF_ERROR(CheckJsonShape(line, kMaxLineBytes));
  Json doc = Json::parse(line.begin(), line.end(), nullptr,
                         /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return Invalid("line is not a URL and not valid JSON");
  if (!doc.is_object()) return Invalid("a JSON request line must be an object");
  // The id first: fields are visited in name order, and an error in any other
  // field must still name the request it belongs to.
  if (auto id = doc.find("id"); id != doc.end()) {
    if (id->is_string())
      request->set_id(id->get<std::string>());
    else if (id->is_number_integer())
      request->set_id(std::to_string(id->get<int64_t>()));
    else
      return Invalid("\"id\" must be a string or an integer");
  }
  for (auto& [key, value] : doc.items()) {
    if (key == "id") {
      continue;
    } else if (key == "url") {
      if (!value.is_string()) return Invalid("\"url\" must be a string");
      request->set_url(value.get<std::string>());
    } else if (key == "method") {
      if (!value.is_string()) return Invalid("\"method\" must be a string");
      request->set_method(value.get<std::string>());
    } else if (key == "headers") {
      if (!value.is_object())
        return Invalid("\"headers\" must be an object of strings");
      for (auto& [name, header_value] : value.items()) {
        if (!header_value.is_string()) {
          return Invalid(
              absl::StrCat("header ", Quote(name), " must be a string"));
        }
        v1::Header* header = request->add_headers();
        header->set_name(name);
        header->set_value(header_value.get<std::string>());
      }
    } else if (key == "body") {
      if (!value.is_string()) return Invalid("\"body\" must be a string");
      request->set_body(value.get<std::string>());
    } else if (key == "rate_key") {
      if (!value.is_string()) return Invalid("\"rate_key\" must be a string");
      request->set_rate_key(value.get<std::string>());
      if (absl::Status ok = CheckRateKey(request->rate_key()); !ok.ok())
        return Invalid(std::string(ok.message()));
    } else if (key == "traceparent" || key == "tracestate") {
      if (!value.is_string())
        return Invalid(absl::StrCat(Quote(key), " must be a string"));
      if (key == "traceparent")
        request->set_traceparent(value.get<std::string>());
      else
        request->set_tracestate(value.get<std::string>());
    } else if (key == "max_attempts") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
          value.get<int64_t>() > kMaxAttemptsLimit) {
        return Invalid(
            absl::StrCat("\"max_attempts\" must be a whole number from 1 to ",
                         kMaxAttemptsLimit));
      }
      request->set_max_attempts(value.get<uint32_t>());
    } else if (key == "timeout_ms") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
          value.get<int64_t>() > kMaxTimeoutMs) {
        return Invalid(absl::StrCat(
            "\"timeout_ms\" must be a whole number from 1 to ", kMaxTimeoutMs));
      }
      request->set_timeout_ms(value.get<uint32_t>());
    } else {
      return Invalid(
          absl::StrCat("unknown field ", Quote(key),
                       " (known: id, url, method, headers, body, rate_key, "
                       "max_attempts, timeout_ms, traceparent, tracestate)"));
    }
  }
  if (request->url().empty()) return Invalid("\"url\" is missing");
  if (!request->tracestate().empty() && request->traceparent().empty())
    return Invalid("\"tracestate\" needs a \"traceparent\"");
  if (!request->traceparent().empty()) {
    absl::StatusOr<TraceContext> context =
        ParseTraceparent(request->traceparent(), request->tracestate());
    if (!context.ok()) return context.status();
  }
  return absl::OkStatus();
}

absl::Status ValidateRequest(v1::FetchRequest* request) {
  ASSIGN_OR_RETURN(std::string host, ValidateFetchUrl(request->url()));
  if (request->rate_key().empty()) request->set_rate_key(host);
  if (request->method().empty()) request->set_method("GET");
  if (!IsToken(request->method()) || request->method().size() > 32) {
    return Invalid(absl::StrCat("method ", Quote(request->method()),
                                " is not an HTTP method"));
  }
  request->set_method(absl::AsciiStrToUpper(request->method()));
  // CONNECT would turn the fetcher into a tunnel to any port of the upstream;
  // TRACE echoes the request, credentials included, back in the body.
  if (request->method() == "CONNECT" || request->method() == "TRACE") {
    return Invalid(absl::StrCat("method ", request->method(),
                                " is not allowed (it tunnels or echoes)"));
  }
  if (request->headers_size() > static_cast<int>(kMaxHeaders)) {
    return Invalid(absl::StrCat("too many headers: ", request->headers_size(),
                                " (limit ", kMaxHeaders, ")"));
  }
  size_t total = 0;
  for (const v1::Header& header : request->headers()) {
    if (!IsToken(header.name())) {
      return Invalid(absl::StrCat("header name ", Quote(header.name()),
                                  " is not a valid token"));
    }
    if (HasControlChars(header.value())) {
      return Invalid(absl::StrCat(
          "header ", Quote(header.name()),
          " has a control character (CR/LF injection?) in its value"));
    }
    if (header.value().size() > kMaxHeaderValueBytes) {
      return Invalid(absl::StrCat(
          "header ", Quote(header.name()), " is ", header.value().size(),
          " bytes; the limit is ", kMaxHeaderValueBytes));
    }
    std::string lower = absl::AsciiStrToLower(header.name());
    if (lower == "content-length" || lower == "transfer-encoding" ||
        lower == "connection") {
      return Invalid(
          absl::StrCat("header ", Quote(header.name()),
                       " is set by the fetcher and may not be given"));
    }
    total += header.name().size() + header.value().size();
  }
  if (total > kMaxHeadersBytes) {
    return Invalid(absl::StrCat("headers total ", total,
                                " bytes; the limit is ", kMaxHeadersBytes));
  }
  if (request->body().size() > kMaxRequestBodyBytes) {
    return absl::OutOfRangeError(
        absl::StrCat("request body is ", request->body().size(),
                     " bytes; the limit is ", kMaxRequestBodyBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateJobOptions(const v1::JobOptions& options) {
  if (options.max_attempts() > kMaxAttemptsLimit) {
    return Invalid(absl::StrCat("max_attempts ", options.max_attempts(),
                                " is over the limit of ", kMaxAttemptsLimit));
  }
  if (options.timeout_ms() > kMaxTimeoutMs) {
    return Invalid(absl::StrCat("timeout_ms ", options.timeout_ms(),
                                " is over the limit of ", kMaxTimeoutMs));
  }
  if (options.body_cap_bytes() > kMaxBodyCapBytes) {
    return Invalid(absl::StrCat("body_cap_bytes ", options.body_cap_bytes(),
                                " is over the limit of ", kMaxBodyCapBytes,
                                " (32 MiB)"));
  }
  if (!v1::OnOpen_IsValid(options.on_open()))
    return Invalid(absl::StrCat("on_open ", options.on_open(), " is unknown"));
  if (!options.tracestate().empty() && options.traceparent().empty())
    return Invalid("tracestate needs a traceparent");
  if (!options.traceparent().empty()) {
    absl::StatusOr<TraceContext> context =
        ParseTraceparent(options.traceparent(), options.tracestate());
    if (!context.ok()) return context.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ValidateFetchUrl(absl::string_view url) {
  if (url.size() > kMaxUrlBytes) {
    return Invalid(absl::StrCat("URL is ", url.size(), " bytes; the limit is ",
                                kMaxUrlBytes));
  }
  for (unsigned char c : url) {
    if (c <= 0x20 || c == 0x7f) {
      return Invalid(
          absl::StrCat("URL ", QuoteUrl(url),
                       " contains whitespace or a control character"));
    }
    // Raw bytes would go on the wire unencoded; say how to write them instead.
    if (c > 0x7f) {
      return Invalid(absl::StrCat("URL ", QuoteUrl(url),
                                  " is not ASCII (percent-encode the path, "
                                  "punycode the host)"));
    }
  }
  std::unique_ptr<CURLU, CurlUrlDeleter> handle(curl_url());
  std::string text(url);
  // No default scheme: "example.com/x" is refused rather than guessed.
  if (curl_url_set(handle.get(), CURLUPART_URL, text.c_str(),
                   CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    return Invalid(absl::StrCat(QuoteUrl(url), " is not a valid absolute URL"));
  }
  char* scheme = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
    return Invalid(absl::StrCat(QuoteUrl(url), " has no scheme"));
  }
  std::string scheme_text = absl::AsciiStrToLower(scheme);
  curl_free(scheme);
  if (scheme_text != "http" && scheme_text != "https") {
    return Invalid(absl::StrCat(
        "scheme \"", scheme_text,
        "\" is not allowed (only http and https): ", QuoteUrl(url)));
  }
  char* host = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK ||
      host == nullptr || *host == '\0') {
    if (host) curl_free(host);
    return Invalid(absl::StrCat(QuoteUrl(url), " has no host"));
  }
  std::string lowered = absl::AsciiStrToLower(host);
  curl_free(host);
  absl::string_view host_text = lowered;
  absl::ConsumePrefix(&host_text, "[");
  absl::ConsumeSuffix(&host_text, "]");
  return std::string(host_text);
}

absl::StatusOr<v1::FetchRequest> ParseRequestObject(absl::string_view json) {
  v1::FetchRequest request;
  absl::Status status = ParseJsonRequest(json, &request);
  if (status.ok()) status = ValidateRequest(&request);
  if (!status.ok()) return status;
  return request;
}

ParsedLine ParseRequestLine(absl::string_view line, uint64_t line_number,
                            uint64_t index, const v1::JobOptions& options) {
  ParsedLine parsed;
  absl::string_view text = absl::StripAsciiWhitespace(line);
  if (text.empty() || text[0] == '#') return parsed;

  v1::FetchRequest& request = parsed.request;
  request.set_index(index);
  absl::Status status;
  if (line.size() > kMaxLineBytes) {
    status = absl::OutOfRangeError(absl::StrCat(
        "line is ", line.size(), " bytes; the limit is ", kMaxLineBytes));
  } else if (text[0] == '{' || text[0] == '[') {
    status = ParseJsonRequest(text, &request);
  } else {
    request.set_url(std::string(text));
  }
  if (request.id().empty()) request.set_id(absl::StrCat(line_number));
  if (status.ok()) status = ValidateRequest(&request);
  if (!status.ok()) {
    parsed.kind = ParsedLine::Kind::kError;
    v1::FetchResult& result = parsed.error;
    result.set_index(index);
    result.set_id(request.id());
    // Only an ASCII URL is echoed back: results are protobuf strings, which
    // must be UTF-8.
    bool ascii =
        request.url().size() <= kMaxUrlBytes &&
        std::all_of(request.url().begin(), request.url().end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x80;
        });
    result.set_url(ascii ? request.url() : "");
    result.set_error(absl::IsOutOfRange(status) ? v1::ERROR_TOO_LARGE
                                                : v1::ERROR_INVALID_REQUEST);
    result.set_error_message(
        absl::StrCat("line ", line_number, ": ", status.message()));
    return parsed;
  }
  if (request.max_attempts() == 0) {
    request.set_max_attempts(options.max_attempts() ? options.max_attempts()
                                                    : kDefaultMaxAttempts);
  }
  if (request.timeout_ms() == 0) {
    request.set_timeout_ms(options.timeout_ms() ? options.timeout_ms()
                                                : kDefaultTimeoutMs);
  }
  parsed.kind = ParsedLine::Kind::kRequest;
  return parsed;
}

}  // namespace fetchfleet
