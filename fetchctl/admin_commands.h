// fetchctl's one-shot commands: jobs, status, cancel, workers. Tables for
// people on stdout.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace fetchfleet::fetchctl {

int ListJobsCommand(const std::shared_ptr<grpc::Channel>& channel);
int StatusCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& job_id);
int CancelCommand(const std::shared_ptr<grpc::Channel>& channel,
                  const std::string& job_id);
int WorkersCommand(const std::shared_ptr<grpc::Channel>& channel);

}  // namespace fetchfleet::fetchctl
