#include "worker/worker.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>

#include "common/loop_thread.h"
#include "gtest/gtest.h"
#include "tests/testing/http_test_server.h"

namespace fetchfleet::worker {
namespace {

TEST(BoundHeartbeatInterval, HoldsTheCoordinatorsIntervalToSaneBounds) {
  EXPECT_EQ(BoundHeartbeatInterval(1), absl::Milliseconds(50));
  EXPECT_EQ(BoundHeartbeatInterval(200), absl::Milliseconds(200));
  EXPECT_EQ(BoundHeartbeatInterval(1000), absl::Seconds(1));
  EXPECT_EQ(BoundHeartbeatInterval(uint64_t{1} << 62), absl::Seconds(60));
}

// OverAssigningCoordinator: a real gRPC WorkerService that answers a worker's
// hello with more assignments than the credit it granted, and records what
// comes back.
class OverAssigningCoordinator final : public v1::WorkerService::Service {
 public:
  explicit OverAssigningCoordinator(std::string url) : url_(std::move(url)) {}

  grpc::Status Connect(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>*
          stream) override {
    v1::WorkerMessage in;
    if (!stream->Read(&in)) return grpc::Status::OK;
    {
      std::lock_guard<std::mutex> lock(mu_);
      credit_ = in.credit();
    }
    v1::CoordinatorMessage out;
    out.set_heartbeat_interval_ms(1000);
    for (uint64_t lease = 1; lease <= 5; ++lease) {
      v1::Assignment* a = out.add_assignments();
      a->set_lease_id(lease);
      a->mutable_request()->set_url(url_);
      a->mutable_request()->set_method("GET");
      a->mutable_request()->set_max_attempts(1);
      a->mutable_request()->set_timeout_ms(5000);
    }
    *out.add_assignments() = out.assignments(0);  // and one twice
    stream->Write(out);
    while (stream->Read(&in)) {
      std::lock_guard<std::mutex> lock(mu_);
      for (const v1::Completion& c : in.completions())
        completed_.push_back(c.lease_id());
      for (uint64_t id : in.released()) released_.push_back(id);
      cv_.notify_all();
    }
    return grpc::Status::OK;
  }

  bool WaitForAnswers(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      return completed_.size() + released_.size() >= n;
    });
  }
  std::vector<uint64_t> completed() {
    std::lock_guard<std::mutex> lock(mu_);
    return completed_;
  }
  std::vector<uint64_t> released() {
    std::lock_guard<std::mutex> lock(mu_);
    return released_;
  }
  uint32_t credit() {
    std::lock_guard<std::mutex> lock(mu_);
    return credit_;
  }

 private:
  const std::string url_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint32_t credit_ = 0;
  std::vector<uint64_t> completed_;
  std::vector<uint64_t> released_;
};

// A coordinator that assigns past the credit does not make the worker hold
// more than --max-inflight: the excess is handed back at once, and a lease
// sent twice is held once (its accounting once went wrong twice over).
TEST(Worker, AssignmentsPastTheCreditAreHandedBack) {
  testing::HttpTestServer upstream;
  OverAssigningCoordinator coordinator(upstream.Url("/delay/200"));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&coordinator);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                     grpc::InsecureChannelCredentials());
  EgressPolicy policy;
  policy.Allow(*Cidr::Parse("127.0.0.0/8"));
  WorkerOptions options;
  options.name = "w-credit";
  options.max_inflight = 2;
  options.loops = 1;
  {
    LoopThread loop;
    auto worker =
        std::make_unique<Worker>(loop.loop(), channel, &policy, options);
    loop.Call([&] { worker->Start(); });
    ASSERT_TRUE(coordinator.WaitForAnswers(5));
    EXPECT_EQ(coordinator.credit(), 2u);
    std::vector<uint64_t> completed = coordinator.completed();
    std::sort(completed.begin(), completed.end());
    EXPECT_EQ(completed, (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(coordinator.released(), (std::vector<uint64_t>{3, 4, 5}));
    EXPECT_EQ(upstream.TotalHits(), 2);
    std::promise<void> drained;
    loop.Call([&] { worker->Drain([&] { drained.set_value(); }); });
    drained.get_future().wait();
    loop.Call([&] { worker.reset(); });
  }
  server->Shutdown();
}

}  // namespace
}  // namespace fetchfleet::worker
