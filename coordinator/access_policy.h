// Who may call what: the roles a caller can hold, every RPC the coordinator
// serves, and the one table that says which roles each RPC needs. Job-level
// rules (a submitter sees its own jobs) are here too, next to the table, so
// the whole policy reads in one place.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fetchfleet::coordinator {

// Roles, as bits.
enum Role : uint32_t {
  kRoleSubmit = 1,  // submit jobs and Aggregate calls; see its own jobs
  kRoleRead = 2,    // see every job, worker, limit and breaker
  kRoleAdmin = 4,   // set limits and breakers, cancel any job
  kRoleWorker = 8,  // connect as a worker
};
using Roles = uint32_t;
constexpr Roles kAllRoles = kRoleSubmit | kRoleRead | kRoleAdmin | kRoleWorker;

// ParseRoles reads "submit,read" (names above); RolesToString writes it back.
absl::StatusOr<Roles> ParseRoles(absl::string_view text);
std::string RolesToString(Roles roles);

// Principal: who a call comes from, once authenticated.
struct Principal {
  std::string name;
  Roles roles = 0;
  // How it was proven: "token", "certificate", or "open" (a coordinator
  // without authentication, on loopback or --insecure).
  std::string via;

  bool Has(Roles any_of) const { return (roles & any_of) != 0; }
};

enum class Rpc {
  kSubmit,
  kWatch,
  kGetJob,
  kListJobs,
  kCancelJob,
  kConnect,
  kListWorkers,
  kListLimits,
  kSetLimit,
  kDeleteLimit,
  kListBreakers,
  kSetBreaker,
  kResetBreaker,
  kAggregate,
};
inline constexpr Rpc kAllRpcs[] = {
    Rpc::kSubmit,       Rpc::kWatch,       Rpc::kGetJob,       Rpc::kListJobs,
    Rpc::kCancelJob,    Rpc::kConnect,     Rpc::kListWorkers,  Rpc::kListLimits,
    Rpc::kSetLimit,     Rpc::kDeleteLimit, Rpc::kListBreakers, Rpc::kSetBreaker,
    Rpc::kResetBreaker, Rpc::kAggregate,
};

// RpcName: "JobService.Submit" and so on.
const char* RpcName(Rpc rpc);
// RolesFor: a caller needs one of these roles to make the call at all. Calls
// on one job (Watch, GetJob, CancelJob) then also pass MayUseJob.
Roles RolesFor(Rpc rpc);

// MayUseJob: `who` may make `rpc` on a job submitted by `owner`: its
// submitter may; `read` may watch and look at any job; `admin` may do all.
bool MayUseJob(const Principal& who, Rpc rpc, absl::string_view owner);
// SeesAllJobs: ListJobs lists every job, not only the caller's own.
bool SeesAllJobs(const Principal& who);

}  // namespace fetchfleet::coordinator
