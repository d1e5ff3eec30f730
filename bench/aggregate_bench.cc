// fetchfleet-aggregate-bench: Aggregate calls at a fixed rate (open loop: a
// slow answer does not slow the sender), and their latency percentiles.
//
//   fetchfleet-aggregate-bench COORDINATOR DOCUMENT_FILE RATE SECONDS
//
// Prints one line: calls, failures, degraded answers, client-side latency
// p50/p99/max. Used by bench/run.sh.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proto/fetchfleet.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Call {
  grpc::ClientContext context;
  fetchfleet::v1::AggregateRequest request;
  fetchfleet::v1::AggregateResponse response;
  Clock::time_point start;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr,
                 "usage: fetchfleet-aggregate-bench COORDINATOR DOCUMENT_FILE "
                 "RATE SECONDS\n");
    return 2;
  }
  std::ifstream in(argv[2]);
  std::string document((std::istreambuf_iterator<char>(in)),
                       std::istreambuf_iterator<char>());
  double rate = std::atof(argv[3]);
  double seconds = std::atof(argv[4]);
  if (document.empty() || rate <= 0 || seconds <= 0) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  auto channel =
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  auto stub = fetchfleet::v1::GatewayService::NewStub(channel);

  std::mutex mu;
  std::condition_variable all_done;
  std::vector<double> latencies;
  std::vector<double> server_latencies;
  int failed = 0;
  int degraded = 0;
  int outstanding = 0;
  int total = static_cast<int>(rate * seconds);
  auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / rate));
  Clock::time_point next = Clock::now();
  for (int i = 0; i < total; ++i) {
    std::this_thread::sleep_until(next);
    next += interval;
    auto* call = new Call;
    call->request.set_json(document);
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(30));
    call->start = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu);
      ++outstanding;
    }
    stub->async()->Aggregate(
        &call->context, &call->request, &call->response,
        [&, call](grpc::Status status) {
          double ms = std::chrono::duration<double, std::milli>(Clock::now() -
                                                                call->start)
                          .count();
          std::lock_guard<std::mutex> lock(mu);
          if (!status.ok() || !call->response.ok()) {
            ++failed;
          } else {
            latencies.push_back(ms);
            server_latencies.push_back(call->response.latency_ms());
            for (const auto& part : call->response.parts())
              degraded += part.degraded() ? 1 : 0;
          }
          delete call;
          if (--outstanding == 0) all_done.notify_all();
        });
  }
  std::unique_lock<std::mutex> lock(mu);
  all_done.wait(lock, [&] { return outstanding == 0; });
  std::printf(
      "%d calls at %.0f/s: %d failed, %d degraded parts; latency p50 %.2f ms, "
      "p99 %.2f ms, max %.2f ms (coordinator's own measure: p50 %.2f, p99 "
      "%.2f)\n",
      total, rate, failed, degraded, Percentile(latencies, 0.5),
      Percentile(latencies, 0.99), Percentile(latencies, 1.0),
      Percentile(server_latencies, 0.5), Percentile(server_latencies, 0.99));
  return failed == 0 ? 0 : 1;
}
