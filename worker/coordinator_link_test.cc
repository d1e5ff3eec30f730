#include "worker/coordinator_link.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "common/loop_thread.h"
#include "gtest/gtest.h"

namespace fetchfleet::worker {
namespace {

// A batch keeps everything its messages carried: a pause or breaker change
// queued behind completions once went missing here.
TEST(MergeWorkerMessages, KeepsEveryPart) {
  std::deque<v1::WorkerMessage> queue(3);
  queue[0].set_credit(1);
  queue[0].add_completions()->set_lease_id(1);
  queue[1].set_credit(2);
  queue[1].add_completions()->set_lease_id(2);
  queue[1].add_paused()->set_key("api");
  queue[1].set_in_flight(7);
  queue[2].add_breaker_events()->set_key("api");
  queue[2].add_released(9);
  queue[2].set_in_flight(5);
  v1::WorkerMessage merged = MergeWorkerMessages(&queue);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(merged.credit(), 3u);
  ASSERT_EQ(merged.completions_size(), 2);
  EXPECT_EQ(merged.completions(1).lease_id(), 2u);
  ASSERT_EQ(merged.paused_size(), 1);
  EXPECT_EQ(merged.paused(0).key(), "api");
  ASSERT_EQ(merged.breaker_events_size(), 1);
  EXPECT_EQ(merged.released_size(), 1);
  EXPECT_EQ(merged.in_flight(), 5u);
}

v1::WorkerMessage CompletionWithBody(uint64_t lease_id, size_t body_bytes) {
  v1::WorkerMessage m;
  m.set_credit(1);
  v1::Completion* c = m.add_completions();
  c->set_lease_id(lease_id);
  c->mutable_result()->set_body(std::string(body_bytes, 'x'));
  c->mutable_result()->set_body_bytes(body_bytes);
  return m;
}

// Merging stops before the byte budget: six 30 MB results once went out as
// one 150 MB message, which gRPC refused, breaking the stream.
TEST(MergeWorkerMessages, StopsAtTheByteBudget) {
  std::deque<v1::WorkerMessage> queue;
  for (uint64_t i = 1; i <= 5; ++i) queue.push_back(CompletionWithBody(i, 400));
  v1::WorkerMessage merged = MergeWorkerMessages(&queue, 1000);
  EXPECT_LE(merged.ByteSizeLong(), 1000u);
  ASSERT_EQ(merged.completions_size(), 2);
  EXPECT_EQ(merged.credit(), 2u);
  ASSERT_EQ(queue.size(), 3u);
  EXPECT_EQ(queue.front().completions(0).lease_id(), 3u);
  // The rest follow, in order, in batches of the same budget.
  merged = MergeWorkerMessages(&queue, 1000);
  EXPECT_EQ(merged.completions(0).lease_id(), 3u);
  EXPECT_EQ(queue.size(), 1u);
}

TEST(MergeWorkerMessages, AMessageOverTheBudgetGoesAlone) {
  std::deque<v1::WorkerMessage> queue;
  queue.push_back(CompletionWithBody(1, 5000));
  queue.push_back(CompletionWithBody(2, 10));
  v1::WorkerMessage merged = MergeWorkerMessages(&queue, 1000);
  ASSERT_EQ(merged.completions_size(), 1);
  EXPECT_EQ(merged.completions(0).result().body().size(), 5000u);
  EXPECT_EQ(queue.size(), 1u);
}

// A result too large for any message becomes too_large, its body dropped and
// everything else kept, instead of breaking the stream.
TEST(FitForWire, AResultTooLargeForAnyMessageBecomesTooLarge) {
  v1::WorkerMessage m = CompletionWithBody(7, 100000);
  v1::FetchResult* r = m.mutable_completions(0)->mutable_result();
  r->set_ok(true);
  r->set_status(200);
  r->set_attempts(2);
  r->set_url("http://a/");
  r->set_truncated(true);
  r->add_headers()->set_name("content-type");
  std::vector<v1::WorkerMessage> pieces = FitForWire(m, 20000, 50000);
  ASSERT_EQ(pieces.size(), 1u);
  ASSERT_EQ(pieces[0].completions_size(), 1);
  const v1::FetchResult& out = pieces[0].completions(0).result();
  EXPECT_EQ(pieces[0].completions(0).lease_id(), 7u);
  EXPECT_FALSE(out.ok());
  EXPECT_EQ(out.error(), v1::ERROR_TOO_LARGE);
  EXPECT_TRUE(out.body().empty());
  EXPECT_EQ(out.body_bytes(), 100000u);
  EXPECT_EQ(out.status(), 200);
  EXPECT_EQ(out.attempts(), 2u);
  EXPECT_EQ(out.url(), "http://a/");
  EXPECT_EQ(out.headers_size(), 1);  // small enough to keep
  EXPECT_NE(out.error_message().find("body dropped"), std::string::npos)
      << out.error_message();
  EXPECT_LE(pieces[0].ByteSizeLong(), 50000u);
  EXPECT_EQ(pieces[0].credit(), 1u);
}

TEST(FitForWire, HeadersGoTooWhenTheyAloneAreTooLarge) {
  v1::WorkerMessage m = CompletionWithBody(7, 10);
  v1::Header* h = m.mutable_completions(0)->mutable_result()->add_headers();
  h->set_name("x-big");
  h->set_value(std::string(100000, 'h'));
  std::vector<v1::WorkerMessage> pieces = FitForWire(m, 20000, 50000);
  ASSERT_EQ(pieces.size(), 1u);
  const v1::FetchResult& out = pieces[0].completions(0).result();
  EXPECT_EQ(out.error(), v1::ERROR_TOO_LARGE);
  EXPECT_EQ(out.headers_size(), 0);
  EXPECT_NE(out.error_message().find("body and headers dropped"),
            std::string::npos)
      << out.error_message();
}

TEST(FitForWire, SplitsAMessageOfManyCompletionsOverTheBudget) {
  v1::WorkerMessage m;
  m.set_credit(3);
  m.set_in_flight(4);
  m.add_released(9);
  for (uint64_t i = 1; i <= 3; ++i) {
    v1::Completion* c = m.add_completions();
    c->set_lease_id(i);
    c->mutable_result()->set_body(std::string(800, 'x'));
  }
  std::vector<v1::WorkerMessage> pieces = FitForWire(m, 1000, 50000);
  ASSERT_EQ(pieces.size(), 3u);
  EXPECT_EQ(pieces[0].credit(), 3u);
  EXPECT_EQ(pieces[0].released_size(), 1);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_EQ(pieces[i].completions_size(), 1);
    EXPECT_EQ(pieces[i].completions(0).lease_id(), i + 1);
    EXPECT_EQ(pieces[i].completions(0).result().body().size(), 800u);
  }
}

TEST(FitForWire, SmallMessagesPassUntouched) {
  v1::WorkerMessage m = CompletionWithBody(1, 100);
  std::vector<v1::WorkerMessage> pieces = FitForWire(m, 1000, 50000);
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].SerializeAsString(), m.SerializeAsString());
}

// FakeCoordinator: a real gRPC WorkerService that welcomes a worker and
// records the completions it receives.
class FakeCoordinator final : public v1::WorkerService::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<v1::CoordinatorMessage, v1::WorkerMessage>*
          stream) override {
    v1::WorkerMessage in;
    if (!stream->Read(&in)) return grpc::Status::OK;
    v1::CoordinatorMessage welcome;
    welcome.set_heartbeat_interval_ms(1000);
    stream->Write(welcome);
    while (stream->Read(&in)) {
      std::lock_guard<std::mutex> lock(mu_);
      ++messages_;
      for (const v1::Completion& c : in.completions()) {
        leases_.push_back(c.lease_id());
        body_bytes_ += c.result().body().size();
      }
      cv_.notify_all();
    }
    return grpc::Status::OK;
  }

  // WaitForCompletions waits (up to 30 s) for `n` completions.
  bool WaitForCompletions(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30),
                        [&] { return leases_.size() >= n; });
  }
  std::vector<uint64_t> leases() {
    std::lock_guard<std::mutex> lock(mu_);
    return leases_;
  }
  int messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  size_t body_bytes() {
    std::lock_guard<std::mutex> lock(mu_);
    return body_bytes_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<uint64_t> leases_;
  int messages_ = 0;
  size_t body_bytes_ = 0;
};

class CountingHandler final : public CoordinatorLink::Handler {
 public:
  v1::WorkerMessage OnConnected() override {
    ++connects;
    v1::WorkerMessage hello;
    hello.set_name("w-big");
    hello.set_credit(10);
    return hello;
  }
  void OnMessage(const v1::CoordinatorMessage&) override {}
  void OnDisconnected() override { ++disconnects; }
  std::atomic<int> connects{0};
  std::atomic<int> disconnects{0};
};

// Over a real gRPC stream with the worker's 64 MiB limit: six 12 MB results
// queued at once were merged into one 72 MB message, gRPC refused it ("Sent
// message larger than max") and the stream broke, taking every lease with it.
TEST(CoordinatorLink, BigResultsQueuedTogetherDoNotBreakTheStream) {
  FakeCoordinator coordinator;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(&coordinator);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  auto channel =
      grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                grpc::InsecureChannelCredentials(), args);
  constexpr size_t kBody = 12 << 20;
  constexpr int kCount = 6;
  CountingHandler handler;
  {
    LoopThread loop;
    auto link =
        std::make_unique<CoordinatorLink>(loop.loop(), channel, &handler);
    loop.Call([&] {
      link->Start();
      for (int i = 1; i <= kCount; ++i)
        link->Send(CompletionWithBody(i, kBody));
    });
    EXPECT_TRUE(coordinator.WaitForCompletions(kCount))
        << coordinator.leases().size() << " completions arrived";
    std::vector<uint64_t> leases = coordinator.leases();
    EXPECT_EQ(leases, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
    EXPECT_EQ(coordinator.body_bytes(), kCount * kBody);
    EXPECT_EQ(handler.disconnects.load(), 0);
    EXPECT_EQ(handler.connects.load(), 1);
    EXPECT_GE(coordinator.messages(), kCount);  // none merged past 16 MiB
    std::promise<void> closed;
    loop.Call([&] { link->Close([&] { closed.set_value(); }); });
    closed.get_future().wait();
    loop.Call([&] { link.reset(); });
  }
  server->Shutdown();
}

}  // namespace
}  // namespace fetchfleet::worker
