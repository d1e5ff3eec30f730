#include "coordinator/access_policy.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace fetchfleet::coordinator {
namespace {

struct RoleName {
  Role role;
  const char* name;
};
constexpr RoleName kRoleNames[] = {
    {kRoleSubmit, "submit"},
    {kRoleRead, "read"},
    {kRoleAdmin, "admin"},
    {kRoleWorker, "worker"},
};

}  // namespace

absl::StatusOr<Roles> ParseRoles(absl::string_view text) {
  Roles roles = 0;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    bool known = false;
    for (const RoleName& r : kRoleNames) {
      if (part == r.name) {
        roles |= r.role;
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown role \"", part, "\" (roles: submit, read, admin, worker)"));
    }
  }
  return roles;
}

std::string RolesToString(Roles roles) {
  std::vector<std::string> names;
  for (const RoleName& r : kRoleNames)
    if (roles & r.role) names.push_back(r.name);
  return names.empty() ? "none" : absl::StrJoin(names, ",");
}

const char* RpcName(Rpc rpc) {
  switch (rpc) {
    case Rpc::kSubmit:
      return "JobService.Submit";
    case Rpc::kWatch:
      return "JobService.Watch";
    case Rpc::kGetJob:
      return "JobService.GetJob";
    case Rpc::kListJobs:
      return "JobService.ListJobs";
    case Rpc::kCancelJob:
      return "JobService.CancelJob";
    case Rpc::kConnect:
      return "WorkerService.Connect";
    case Rpc::kListWorkers:
      return "AdminService.ListWorkers";
    case Rpc::kListLimits:
      return "AdminService.ListLimits";
    case Rpc::kSetLimit:
      return "AdminService.SetLimit";
    case Rpc::kDeleteLimit:
      return "AdminService.DeleteLimit";
    case Rpc::kListBreakers:
      return "AdminService.ListBreakers";
    case Rpc::kSetBreaker:
      return "AdminService.SetBreaker";
    case Rpc::kResetBreaker:
      return "AdminService.ResetBreaker";
    case Rpc::kAggregate:
      return "GatewayService.Aggregate";
  }
  return "?";
}

Roles RolesFor(Rpc rpc) {
  switch (rpc) {
    case Rpc::kSubmit:
    case Rpc::kAggregate:
      return kRoleSubmit;
    // Reading jobs: submitters see their own (MayUseJob), read and admin all.
    case Rpc::kWatch:
    case Rpc::kGetJob:
    case Rpc::kListJobs:
      return kRoleSubmit | kRoleRead | kRoleAdmin;
    // A submitter cancels its own jobs; admin cancels any (MayUseJob).
    case Rpc::kCancelJob:
      return kRoleSubmit | kRoleAdmin;
    case Rpc::kConnect:
      return kRoleWorker;
    case Rpc::kListWorkers:
    case Rpc::kListLimits:
    case Rpc::kListBreakers:
      return kRoleRead | kRoleAdmin;
    case Rpc::kSetLimit:
    case Rpc::kDeleteLimit:
    case Rpc::kSetBreaker:
    case Rpc::kResetBreaker:
      return kRoleAdmin;
  }
  return 0;
}

bool MayUseJob(const Principal& who, Rpc rpc, absl::string_view owner) {
  if (who.Has(kRoleAdmin)) return true;
  if (who.Has(kRoleSubmit) && who.name == owner) return true;
  return who.Has(kRoleRead) && (rpc == Rpc::kWatch || rpc == Rpc::kGetJob);
}

bool SeesAllJobs(const Principal& who) {
  return who.Has(kRoleRead | kRoleAdmin);
}

}  // namespace fetchfleet::coordinator
