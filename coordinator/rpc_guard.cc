#include "coordinator/rpc_guard.h"

#include <atomic>

#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/logging.h"

namespace fetchfleet::coordinator {
namespace {

constexpr int kRefusalsLoggedPerSecond = 5;
std::atomic<int64_t> log_second{0};
std::atomic<int> logged_this_second{0};

void LogRefusal(const grpc::CallbackServerContext& context,
                const absl::Status& why) {
  int64_t now = absl::ToUnixSeconds(absl::Now());
  if (log_second.exchange(now) != now) logged_this_second = 0;
  if (logged_this_second.fetch_add(1) >= kRefusalsLoggedPerSecond) return;
  FF_LOG(WARNING) << LogField("peer", context.peer())
                  << LogField("code", absl::StatusCodeToString(why.code()))
                  << "refused a call from " << context.peer() << ": "
                  << absl::StatusCodeToString(why.code()) << " "
                  << why.message();
}

}  // namespace

absl::StatusOr<Principal> Admit(Authenticator* auth,
                                const grpc::CallbackServerContext& context,
                                Rpc rpc) {
  absl::StatusOr<Principal> who = auth->Authorize(context, rpc);
  if (!who.ok()) LogRefusal(context, who.status());
  return who;
}

std::optional<Principal> AdmitUnary(Authenticator* auth,
                                    grpc::CallbackServerContext* context,
                                    Rpc rpc,
                                    grpc::ServerUnaryReactor* reactor) {
  absl::StatusOr<Principal> who = Admit(auth, *context, rpc);
  if (who.ok()) return *std::move(who);
  reactor->Finish(ToGrpcStatus(who.status()));
  return std::nullopt;
}

}  // namespace fetchfleet::coordinator
