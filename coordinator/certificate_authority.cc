#include "coordinator/certificate_authority.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"

namespace fetchfleet::coordinator {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * stack) const {
    sk_X509_pop_free(stack, X509_free);
  }
};
struct CtxFree {
  void operator()(X509_STORE_CTX* ctx) const { X509_STORE_CTX_free(ctx); }
};

std::unique_ptr<BIO, BioFree> MemBio(absl::string_view pem) {
  return std::unique_ptr<BIO, BioFree>(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// ReadCertificates: every certificate in `pem`, in order.
std::unique_ptr<STACK_OF(X509), StackFree> ReadCertificates(
    absl::string_view pem) {
  std::unique_ptr<STACK_OF(X509), StackFree> certs(sk_X509_new_null());
  auto bio = MemBio(pem);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    sk_X509_push(certs.get(), cert);
  ERR_clear_error();  // the end of the bundle reads as an error
  return certs;
}

std::string GeneralName(const GENERAL_NAME* name) {
  const ASN1_IA5STRING* text = name->type == GEN_URI
                                   ? name->d.uniformResourceIdentifier
                               : name->type == GEN_DNS ? name->d.dNSName
                                                       : nullptr;
  if (text == nullptr) return "";
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                     ASN1_STRING_length(text));
}

std::string Identity(X509* cert) {
  std::string uri, dns;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_URI && uri.empty()) uri = GeneralName(name);
    if (name->type == GEN_DNS && dns.empty()) dns = GeneralName(name);
  }
  GENERAL_NAMES_free(names);
  if (!uri.empty()) return uri;
  if (!dns.empty()) return dns;
  char cn[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                            sizeof(cn));
  return cn;
}

}  // namespace

absl::StatusOr<CertificateAuthority> CertificateAuthority::Parse(
    absl::string_view pem) {
  auto certs = ReadCertificates(pem);
  if (sk_X509_num(certs.get()) == 0)
    return absl::InvalidArgumentError("no PEM certificate in the CA bundle");
  CertificateAuthority ca;
  ca.store_ = std::shared_ptr<X509_STORE>(X509_STORE_new(), StoreFree());
  for (int i = 0; i < sk_X509_num(certs.get()); ++i)
    X509_STORE_add_cert(ca.store_.get(), sk_X509_value(certs.get(), i));
  return ca;
}

absl::StatusOr<std::string> CertificateAuthority::Verify(
    absl::string_view leaf_pem, absl::string_view chain_pem) const {
  auto leaf_bio = MemBio(leaf_pem);
  std::unique_ptr<X509, X509Free> leaf(
      PEM_read_bio_X509(leaf_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (leaf == nullptr)
    return absl::UnauthenticatedError("the client certificate does not parse");
  auto chain = ReadCertificates(chain_pem);
  std::unique_ptr<X509_STORE_CTX, CtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store_.get(), leaf.get(), chain.get()) !=
      1) {
    return absl::InternalError("cannot set up certificate verification");
  }
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::UnauthenticatedError(X509_verify_cert_error_string(error));
  }
  return Identity(leaf.get());
}

}  // namespace fetchfleet::coordinator
