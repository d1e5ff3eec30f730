#include "coordinator/authenticator.h"

#include <grpc/grpc_security_constants.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace fetchfleet::coordinator {
namespace {

absl::string_view View(const grpc::string_ref& ref) {
  return absl::string_view(ref.data(), ref.size());
}

absl::StatusOr<AccessTable> ParseAccess(const std::string& text) {
  return ParseAccessFile(text);
}
absl::StatusOr<CertificateAuthority> ParseCa(const std::string& text) {
  return CertificateAuthority::Parse(text);
}

constexpr char kNoCredential[] =
    "no credential: this coordinator wants a bearer token (--token-file, or "
    "env FETCHFLEET_TOKEN) or a client certificate (--tls-cert, --tls-key)";

}  // namespace

Authenticator::Authenticator(AuthOptions options)
    : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    AuthOptions options) {
  std::unique_ptr<Authenticator> self(new Authenticator(std::move(options)));
  const AuthOptions& o = self->options_;
  // Each file is loaded now: a missing or bad one stops the coordinator.
  auto load = [](auto& file, const std::string& path, const char* flag,
                 auto parse) -> absl::Status {
    if (path.empty()) return absl::OkStatus();
    using T = typename std::decay_t<decltype(*file)>::Value;
    file = std::make_unique<WatchedFile<T>>(path, parse);
    absl::Status loaded = file->Load();
    if (loaded.ok()) return loaded;
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " ", loaded.message()));
  };
  for (absl::Status s :
       {load(self->access_, o.auth_file, "--auth-file", ParseAccess),
        load(self->worker_ca_, o.worker_ca, "--worker-ca", ParseCa),
        load(self->client_ca_, o.client_ca, "--client-ca", ParseCa)}) {
    if (!s.ok()) return s;
  }
  return self;
}

absl::StatusOr<Principal> Authenticator::FromToken(absl::string_view token) {
  if (access_ == nullptr) {
    return absl::UnauthenticatedError(
        "this coordinator takes no tokens (it has no --auth-file)");
  }
  std::shared_ptr<const AccessTable> table = access_->Get();
  auto it = table->tokens.find(TokenDigest(token));
  if (it == table->tokens.end()) {
    return absl::UnauthenticatedError(
        "the token is not valid here (unknown, or revoked)");
  }
  Principal who{it->second.name, it->second.roles, "token"};
  // With --worker-ca, a worker proves itself with a certificate only.
  if (worker_ca_ != nullptr) who.roles &= ~kRoleWorker;
  return who;
}

absl::StatusOr<Principal> Authenticator::FromCertificate(
    absl::string_view leaf_pem, absl::string_view chain_pem) {
  std::string why;
  if (worker_ca_ != nullptr) {
    auto identity = worker_ca_->Get()->Verify(leaf_pem, chain_pem);
    if (identity.ok()) return Principal{*identity, kRoleWorker, "certificate"};
    why = absl::StrCat("--worker-ca: ", identity.status().message());
  }
  if (client_ca_ != nullptr) {
    auto identity = client_ca_->Get()->Verify(leaf_pem, chain_pem);
    if (identity.ok()) {
      Principal who{*identity, 0, "certificate"};
      if (access_ != nullptr) {
        std::shared_ptr<const AccessTable> table = access_->Get();
        auto it = table->certificates.find(*identity);
        if (it != table->certificates.end()) who.roles = it->second.roles;
      }
      return who;
    }
    absl::StrAppend(&why, why.empty() ? "" : "; ",
                    "--client-ca: ", identity.status().message());
  }
  if (why.empty()) why = "no --worker-ca or --client-ca takes certificates";
  return absl::UnauthenticatedError(
      absl::StrCat("the client certificate is not accepted (", why, ")"));
}

absl::StatusOr<Principal> Authenticator::Authenticate(
    const grpc::ServerContextBase& context) {
  if (open()) return Principal{"anonymous", kAllRoles, "open"};
  const auto& metadata = context.client_metadata();
  auto auth = metadata.find("authorization");
  if (auth != metadata.end()) {
    absl::string_view value = View(auth->second);
    if (value.size() < 7 ||
        !absl::EqualsIgnoreCase(value.substr(0, 7), "bearer "))
      return absl::UnauthenticatedError(
          "the authorization header is not \"Bearer <token>\"");
    return FromToken(absl::StripAsciiWhitespace(value.substr(7)));
  }
  std::shared_ptr<const grpc::AuthContext> auth_context =
      context.auth_context();
  if (auth_context != nullptr) {
    std::vector<grpc::string_ref> leaf =
        auth_context->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (!leaf.empty()) {
      std::vector<grpc::string_ref> chain = auth_context->FindPropertyValues(
          GRPC_X509_PEM_CERT_CHAIN_PROPERTY_NAME);
      return FromCertificate(View(leaf[0]),
                             chain.empty() ? "" : View(chain[0]));
    }
  }
  return absl::UnauthenticatedError(kNoCredential);
}

absl::StatusOr<Principal> Authenticator::Authorize(
    const grpc::ServerContextBase& context, Rpc rpc) {
  absl::StatusOr<Principal> who = Authenticate(context);
  if (!who.ok()) {
    return absl::Status(
        who.status().code(),
        absl::StrCat(RpcName(rpc), ": ", who.status().message()));
  }
  Roles wanted = RolesFor(rpc);
  if (!who->Has(wanted)) {
    return absl::PermissionDeniedError(absl::StrCat(
        RpcName(rpc), ": ", who->name, " (", who->via, ") holds role(s) ",
        RolesToString(who->roles), "; this call needs ", RolesToString(wanted),
        wanted & (wanted - 1) ? " (any one)" : "",
        rpc == Rpc::kConnect && who->via == "token" && worker_ca_ != nullptr
            ? " (with --worker-ca a worker must present a certificate from "
              "it; a token's worker role is ignored)"
            : ""));
  }
  return who;
}

}  // namespace fetchfleet::coordinator
