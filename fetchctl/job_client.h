// Job streaming for fetchctl: submit a job list and print its results as JSON
// Lines as they arrive, or re-attach to a running job. A writer thread streams
// the input (gRPC's flow control holds it back when the coordinator is not
// reading) while the calling thread reads results; stdout carries only result
// lines, everything for people goes to stderr. Each batch of results is
// flushed as it arrives. When the output cannot be written (EPIPE: `| head`
// went away, a full disk) fetchctl stops at once, says so, and leaves the job
// running on the coordinator (exit 1); a stream that breaks (the coordinator
// died) exits 3; both say how to resume with `fetchctl watch JOB --from SEQ`.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "fetchctl/exit_codes.h"
#include "fetchctl/input_reader.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::fetchctl {

struct OutputOptions {
  std::string output_path;  // "" = stdout
  bool progress = false;    // draw a progress bar on stderr
  bool detach = false;  // print the job id once the input is in, then return
  std::string coordinator;  // for messages
  bool submitting = false;  // set by SubmitJob: the input may not all be in
  bool embedded = false;    // fetchctl run: the job ends with this process
  // --stats-json FILE: the job's statistics as one JSON object, written when
  // the job ends ("" = not asked).
  std::string stats_json_path;
  // A job stream that breaks (the coordinator restarted, the network went) is
  // opened again, with backoff, for this long, when the coordinator keeps
  // its jobs in a store (0: never).
  absl::Duration reconnect_for = absl::Minutes(5);
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
