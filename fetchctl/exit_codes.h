// fetchctl's exit statuses (README, "Exit status") and the one mapping from a
// call's gRPC status to them, so that every command answers the same failure
// with the same code and message:
//   0 all ok
//   1 some requests failed (or a required Aggregate part failed), or results
//     could not all be written out
//   2 usage or input error: the coordinator refused the call as asked
//     (INVALID_ARGUMENT, NOT_FOUND, ...), or refused the caller
//     (UNAUTHENTICATED, PERMISSION_DENIED) or is at a limit
//     (RESOURCE_EXHAUSTED)
//   3 the coordinator is unreachable, or the call to it broke
//
// Thread-safe (pure functions).
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace fetchfleet::fetchctl {

enum ExitCode {
  kExitOk = 0,
  kExitSomeFailed = 1,
  kExitUsage = 2,
  kExitUnreachable = 3
};

// ExitCodeFor maps a finished call's status to the exit status.
int ExitCodeFor(absl::StatusCode code);
int ExitCodeFor(const grpc::Status& status);

// ExitCodeForBrokenStream maps the status of a job stream (submit, watch) that
// ended before the job did. Only a refusal the coordinator chose (a bad job
// id, a bad request, auth) keeps its code; anything else means the stream
// broke (the coordinator died, the network went, the transport cancelled or
// reset the call) and is kExitUnreachable: the job may still be running.
int ExitCodeForBrokenStream(const grpc::Status& status);

// ErrorText is what follows "error: " for a failed call: the coordinator's
// message, with what the code means when that helps (credentials, limits, a
// call that broke or took too long).
std::string ErrorText(absl::StatusCode code, const std::string& message);
std::string ErrorText(const grpc::Status& status);

// ReportError prints "error: ErrorText" on stderr and returns ExitCodeFor.
int ReportError(const grpc::Status& status);
int ReportError(const absl::Status& status);

}  // namespace fetchfleet::fetchctl
