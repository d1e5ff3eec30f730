#include "fetchctl/aggregate_command.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include "absl/strings/str_format.h"
#include "common/json_limits.h"
#include "common/request_parser.h"
#include "fetchctl/exit_codes.h"
#include "nlohmann/json.hpp"
#include "proto/fetchfleet.grpc.pb.h"

namespace fetchfleet::fetchctl {

int AggregateCommand(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& path, const std::string& traceparent,
                     const std::string& tracestate) {
  std::string document;
  if (path == "-") {
    document.assign(std::istreambuf_iterator<char>(std::cin),
                    std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "error: cannot read %s\n", path.c_str());
      return kExitUsage;
    }
    document.assign(std::istreambuf_iterator<char>(in),
                    std::istreambuf_iterator<char>());
  }
  // The call's own deadline bounds it; the RPC gets a little more so the
  // coordinator's answer (with fallbacks) always arrives.
  int64_t deadline_ms = 10000;
  // Only a document the coordinator could accept is looked into here; it
  // names what is wrong with any other.
  nlohmann::json doc = CheckJsonShape(document, kMaxLineBytes).ok()
                           ? nlohmann::json::parse(document, nullptr,
                                                   /*allow_exceptions=*/false)
                           : nlohmann::json();
  if (doc.is_object() && doc.contains("deadline_ms") &&
      doc["deadline_ms"].is_number_integer()) {
    deadline_ms =
        std::clamp<int64_t>(doc["deadline_ms"].get<int64_t>(), 1, 600000);
  }
  auto stub = v1::GatewayService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(deadline_ms + 10000));
  v1::AggregateRequest request;
  request.set_json(document);
  request.set_traceparent(traceparent);
  request.set_tracestate(tracestate);
  v1::AggregateResponse response;
  grpc::Status status = stub->Aggregate(&context, request, &response);
  if (!status.ok()) return ReportError(status);
  std::fwrite(response.document().data(), 1, response.document().size(),
              stdout);
  std::fputc('\n', stdout);
  // The document is the answer: one that did not get out is a failure.
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "error: writing the document: %s\n",
                 std::strerror(errno));
    return kExitSomeFailed;
  }
  int degraded = 0;
  for (const v1::AggregatePartResult& part : response.parts()) {
    if (part.ok()) continue;
    degraded += part.degraded() ? 1 : 0;
    std::fprintf(stderr, "%s: %s: %s%s\n", part.name().c_str(),
                 part.error().c_str(), part.error_message().c_str(),
                 part.degraded() ? " (fell back)" : "");
  }
  std::fprintf(stderr, "%d part%s in %.1f ms%s\n", response.parts_size(),
               response.parts_size() == 1 ? "" : "s", response.latency_ms(),
               response.ok()
                   ? absl::StrFormat(", %d degraded", degraded).c_str()
                   : ", failed");
  return response.ok() ? kExitOk : kExitSomeFailed;
}

}  // namespace fetchfleet::fetchctl
