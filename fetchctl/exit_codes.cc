#include "fetchctl/exit_codes.h"

#include <cstdio>

#include "absl/strings/str_cat.h"

namespace fetchfleet::fetchctl {
namespace {

absl::StatusCode CodeOf(const grpc::Status& status) {
  return static_cast<absl::StatusCode>(status.error_code());
}

}  // namespace

int ExitCodeFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return kExitOk;
    // The coordinator understood the call and refused it as asked.
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kUnimplemented:
    // It refused the caller: fix the credentials, then run it again.
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
    // It is at a limit (too many jobs, a message too large): the call as made
    // will not succeed now; nothing of it was done.
    case absl::StatusCode::kResourceExhausted:
      return kExitUsage;
    // No answer, or the call broke on the way.
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
      return kExitUnreachable;
    // The coordinator answered with a failure of its own.
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    default:
      return kExitSomeFailed;
  }
}

int ExitCodeFor(const grpc::Status& status) {
  return ExitCodeFor(CodeOf(status));
}

int ExitCodeForBrokenStream(const grpc::Status& status) {
  int code = ExitCodeFor(status);
  // A stream that ended early without a refusal broke: a killed coordinator
  // shows as UNAVAILABLE, CANCELLED, INTERNAL (a reset stream) or UNKNOWN.
  if (code == kExitUsage) return code;
  return kExitUnreachable;
}

std::string ErrorText(absl::StatusCode code, const std::string& message) {
  switch (code) {
    case absl::StatusCode::kUnauthenticated:
      return absl::StrCat("not authenticated: ", message);
    case absl::StatusCode::kPermissionDenied:
      return absl::StrCat("permission denied: ", message);
    case absl::StatusCode::kResourceExhausted:
      return absl::StrCat("the coordinator is at a limit: ", message,
                          " (retry later or ask for less)");
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat("the coordinator did not answer in time: ", message);
    case absl::StatusCode::kUnimplemented:
      return absl::StrCat(
          "the coordinator does not serve this call (another "
          "version?): ",
          message);
    case absl::StatusCode::kCancelled:
      return absl::StrCat("the call to the coordinator broke: ", message);
    default:
      return message;
  }
}

std::string ErrorText(const grpc::Status& status) {
  return ErrorText(CodeOf(status), status.error_message());
}

int ReportError(const grpc::Status& status) {
  std::fprintf(stderr, "error: %s\n", ErrorText(status).c_str());
  return ExitCodeFor(status);
}

int ReportError(const absl::Status& status) {
  std::fprintf(stderr, "error: %s\n",
               ErrorText(status.code(), std::string(status.message())).c_str());
  return ExitCodeFor(status.code());
}

}  // namespace fetchfleet::fetchctl
