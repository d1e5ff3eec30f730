#include "common/client_credentials.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <grpcpp/support/client_interceptor.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/tls_files.h"

namespace fetchfleet {
namespace {

// How often watched certificate files are re-read.
constexpr int kCertRefreshSeconds = 10;

std::string EnvOr(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

// TokenInterceptor adds the bearer token to every call's metadata. An
// interceptor rather than call credentials: gRPC refuses call credentials on a
// plaintext channel, and a loopback coordinator without TLS still checks
// tokens.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->insert({"authorization", *header_});
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class TokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token)
      : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* /*info*/) override {
    return new TokenInterceptor(&header_);
  }

 private:
  const std::string header_;
};

// A token is at most this long (ours are 64 hex digits; gRPC's metadata limit
// is 8 KiB).
constexpr size_t kMaxTokenBytes = 4096;

absl::StatusOr<std::string> ReadToken(const ClientSecurity& security) {
  std::string token;
  const std::string where = security.token_file.empty()
                                ? std::string("FETCHFLEET_TOKEN")
                                : "--token-file " + security.token_file;
  if (!security.token_file.empty()) {
    struct stat st;
    if (::stat(security.token_file.c_str(), &st) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": cannot read it (", std::strerror(errno), ")"));
    }
    if (!S_ISREG(st.st_mode))
      return absl::InvalidArgumentError(absl::StrCat(where, ": not a file"));
    if (st.st_size > static_cast<off_t>(kMaxTokenBytes)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": longer than ", kMaxTokenBytes, " bytes: not a token"));
    }
    std::ifstream in(security.token_file);
    std::stringstream text;
    text << in.rdbuf();
    token = text.str();
    if (!in)
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": cannot read it"));
  } else {
    token = EnvOr("FETCHFLEET_TOKEN", "");
  }
  token = std::string(absl::StripAsciiWhitespace(token));
  if (!security.token_file.empty() && token.empty())
    return absl::InvalidArgumentError(absl::StrCat(where, ": empty"));
  if (token.size() > kMaxTokenBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": longer than ", kMaxTokenBytes, " bytes: not a token"));
  }
  for (char c : token) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the token holds whitespace (one token, on one line)"));
    }
    if (c < ' ' || c > '~') {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the token holds a character that is not printable ASCII"));
    }
  }
  return token;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials(
    const ClientSecurity& security) {
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-cert and --tls-key go together (a client certificate and its "
        "key)");
  }
  if (!security.ca_file.empty()) {
    if (absl::Status ok = CheckCaBundle(security.ca_file); !ok.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-ca: ", ok.message()));
  }
  if (!security.cert_file.empty()) {
    if (absl::Status ok = CheckKeyPair(security.cert_file, security.key_file);
        !ok.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls-cert/--tls-key: ", ok.message()));
    }
  }
  grpc::experimental::TlsChannelCredentialsOptions options;
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider;
  if (!security.cert_file.empty()) {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            security.key_file, security.cert_file, security.ca_file,
            kCertRefreshSeconds);
    options.watch_identity_key_cert_pairs();
  } else if (!security.ca_file.empty()) {
    provider =
        std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
            security.ca_file, kCertRefreshSeconds);
  }
  if (provider != nullptr) options.set_certificate_provider(provider);
  // No CA file: the system's trusted roots.
  if (!security.ca_file.empty()) options.watch_root_certs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(
      std::make_shared<grpc::experimental::HostNameCertificateVerifier>());
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace

void AddClientSecurityFlags(FlagSet* flags, ClientSecurity* security) {
  security->tls = EnvOr("FETCHFLEET_TLS", "") == "true";
  security->ca_file = EnvOr("FETCHFLEET_TLS_CA", security->ca_file);
  security->server_name =
      EnvOr("FETCHFLEET_TLS_SERVER_NAME", security->server_name);
  security->cert_file = EnvOr("FETCHFLEET_TLS_CERT", security->cert_file);
  security->key_file = EnvOr("FETCHFLEET_TLS_KEY", security->key_file);
  security->token_file = EnvOr("FETCHFLEET_TOKEN_FILE", security->token_file);
  flags->Bool("tls", &security->tls,
              "connect with TLS (implied by the other --tls-* flags)");
  flags->String("tls-ca", &security->ca_file,
                "CA bundle that signed the coordinator's certificate "
                "(default: the system's roots)");
  flags->String("tls-server-name", &security->server_name,
                "name the coordinator's certificate must carry (default: the "
                "host dialled)");
  flags->String("tls-cert", &security->cert_file,
                "client certificate (PEM) presented to the coordinator");
  flags->String("tls-key", &security->key_file,
                "the client certificate's private key (PEM)");
  flags->String("token-file", &security->token_file,
                "file holding the bearer token (else env FETCHFLEET_TOKEN)");
  flags->Bool("insecure", &security->insecure,
              "allow a token over plaintext to a non-loopback address");
}

bool IsLoopbackAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:") ||
      absl::StartsWith(address, "unix-abstract:"))
    return true;
  absl::ConsumePrefix(&address, "dns:///");
  absl::ConsumePrefix(&address, "ipv4:");
  absl::ConsumePrefix(&address, "ipv6:");
  absl::string_view host = address;
  if (absl::ConsumePrefix(&host, "[")) {
    host = host.substr(0, host.find(']'));
  } else if (size_t colon = host.rfind(':');
             colon != absl::string_view::npos &&
             host.find(':') == colon) {  // host:port, not a bare IPv6
    host = host.substr(0, colon);
  }
  std::string lower = absl::AsciiStrToLower(host);
  if (lower == "localhost" || lower == "::1" ||
      absl::EndsWith(lower, ".localhost"))
    return true;
  // 127.0.0.0/8
  if (!absl::StartsWith(lower, "127.")) return false;
  int parts = 0;
  for (absl::string_view part : absl::StrSplit(lower, '.')) {
    int value = 0;
    if (!absl::SimpleAtoi(part, &value) || value < 0 || value > 255)
      return false;
    ++parts;
  }
  return parts == 4;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> DialCoordinator(
    const std::string& address, const ClientSecurity& security,
    grpc::ChannelArguments args) {
  bool tls = security.tls || !security.ca_file.empty() ||
             !security.server_name.empty() || !security.cert_file.empty() ||
             !security.key_file.empty();
  absl::StatusOr<std::string> token = ReadToken(security);
  if (!token.ok()) return token.status();
  if (!tls && !token->empty() && !security.insecure &&
      !IsLoopbackAddress(address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to send a token in the clear to ", address,
        ": connect with TLS (--tls, --tls-ca), or pass --insecure"));
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      grpc::InsecureChannelCredentials();
  if (tls) {
    auto made = TlsCredentials(security);
    if (!made.ok()) return made.status();
    credentials = *made;
    if (!security.server_name.empty())
      args.SetSslTargetNameOverride(security.server_name);
  }
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  if (!token->empty())
    interceptors.push_back(
        std::make_unique<TokenInterceptorFactory>(*std::move(token)));
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      address, credentials, args, std::move(interceptors));
}

}  // namespace fetchfleet
