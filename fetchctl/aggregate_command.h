// fetchctl aggregate FILE: one fan-out call (the gateway pattern). Prints the
// merged JSON document on stdout, each failed part's error on stderr.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace fetchfleet::fetchctl {

// AggregateCommand sends the document in `path` ("-": stdin). Exit status: 0
// the call succeeded (optional parts may have fallen back), 1 a required part
// failed, 2 bad input, 3 coordinator unreachable.
// `traceparent` and `tracestate` (validated, may be empty) put the call in a
// trace.
int AggregateCommand(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& path, const std::string& traceparent,
                     const std::string& tracestate);

}  // namespace fetchfleet::fetchctl
