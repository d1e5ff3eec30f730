// fetchctl breakers: list the fleet's circuit breakers, change a key's
// settings, reset one.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "common/breaker.h"
#include "common/flags.h"

namespace fetchfleet::fetchctl {

// BreakerFlags: `breakers set`'s flags; a flag not given takes the default.
struct BreakerFlags {
  BreakerConfig config;
  void Register(FlagSet* flags);
};

// BreakersCommand: `breakers list`, `breakers set KEY [flags]`, `breakers
// reset KEY`.
int BreakersCommand(const std::shared_ptr<grpc::Channel>& channel,
                    const std::vector<std::string>& args,
                    const BreakerFlags& flags);

}  // namespace fetchfleet::fetchctl
