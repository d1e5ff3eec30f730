// The first step of every RPC handler: ask the Authenticator, and when the
// caller may not make the call, end it with the refusal before any work.
#pragma once

#include <grpcpp/grpcpp.h>

#include <optional>

#include "coordinator/access_policy.h"
#include "coordinator/authenticator.h"

namespace fetchfleet::coordinator {

// Admit: the caller of `rpc`, or the refusal, which it logs (at most a few
// lines a second: a client retrying in a loop must not flood the log).
absl::StatusOr<Principal> Admit(Authenticator* auth,
                                const grpc::CallbackServerContext& context,
                                Rpc rpc);

// AdmitUnary: Admit, and on a refusal `reactor` is finished with it (nullopt).
std::optional<Principal> AdmitUnary(Authenticator* auth,
                                    grpc::CallbackServerContext* context,
                                    Rpc rpc, grpc::ServerUnaryReactor* reactor);

// RefusedBidi / RefusedWrite: a streaming call refused before it starts.
template <typename Request, typename Response>
class RefusedBidi final : public grpc::ServerBidiReactor<Request, Response> {
 public:
  explicit RefusedBidi(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

template <typename Response>
class RefusedWrite final : public grpc::ServerWriteReactor<Response> {
 public:
  explicit RefusedWrite(const grpc::Status& status) { this->Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace fetchfleet::coordinator
