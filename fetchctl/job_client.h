// Job streaming for fetchctl: submit a job list and print its results as JSON
// Lines as they arrive, or re-attach to a running job. A writer thread streams
// the input (gRPC's flow control holds it back when the coordinator is not
// reading) while the calling thread reads results; stdout carries only result
// lines, everything for people goes to stderr.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "fetchctl/input_reader.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::fetchctl {

// Exit statuses of PRODUCT.md.
enum ExitCode {
  kExitOk = 0,
  kExitSomeFailed = 1,
  kExitUsage = 2,
  kExitUnreachable = 3
};

struct OutputOptions {
  std::string output_path;  // "" = stdout
  bool progress = false;    // draw a progress bar on stderr
  bool detach = false;  // print the job id once the input is in, then return
  std::string coordinator;  // for messages
};

// CheckReachable waits briefly for the channel to connect; false when the
// coordinator cannot be reached (the caller exits kExitUnreachable).
bool CheckReachable(const std::shared_ptr<grpc::Channel>& channel,
                    absl::Duration timeout);

int SubmitJob(const std::shared_ptr<grpc::Channel>& channel,
              const v1::JobOptions& options, InputReader* input,
              const OutputOptions& output);

int WatchJob(const std::shared_ptr<grpc::Channel>& channel,
             const std::string& job_id, uint64_t from_seq,
             const OutputOptions& output);

}  // namespace fetchfleet::fetchctl
