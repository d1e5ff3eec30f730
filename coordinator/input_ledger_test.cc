#include "coordinator/input_ledger.h"

#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fetchfleet::coordinator {
namespace {

// The ledger against a real store: what it writes is what a restart finds.
class InputLedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fetchfleet-ledger-XXXXXX";
    path_ = absl::StrCat(::mkdtemp(pattern), "/jobs.sqlite");
    thread_ = std::thread([this] { loop_.Run(); });
    Open();
    store_->PutJob(Record(), store::v1::JobProgress());
  }
  void TearDown() override {
    store_.reset();
    loop_.Stop();
    thread_.join();
  }
  static store::v1::JobRecord Record() {
    store::v1::JobRecord record;
    record.set_id("j");
    return record;
  }
  void Open() {
    store_.reset();
    JobStoreOptions options;
    options.path = path_;
    auto store = JobStore::Open(options, &loop_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  // FlushAndReopen flushes, commits, reopens: what a restart would find.
  RecoveredJob FlushAndReopen() {
    ledger_.Flush(store_.get(), "j");
    std::promise<void> done;
    store_->Commit([&] { done.set_value(); });
    done.get_future().wait();
    Open();
    auto jobs = store_->Recover();
    EXPECT_TRUE(jobs.ok() && jobs->size() == 1);
    return jobs.ok() && !jobs->empty() ? (*jobs)[0] : RecoveredJob();
  }
  void Add(uint64_t from, uint64_t to) {
    for (uint64_t i = from; i < to; ++i) {
      SpooledLine line;
      line.index = i;
      line.request.set_url(absl::StrCat("http://example.test/", i));
      ledger_.Add(line);
    }
  }

  std::string path_;
  EventLoop loop_;
  std::thread thread_;
  std::unique_ptr<JobStore> store_;
  InputLedger ledger_;
};

TEST_F(InputLedgerTest, AChunkAnsweredBeforeItsCommitIsNeverWritten) {
  Add(0, 100);
  for (uint64_t i = 0; i < 100; ++i) ledger_.Answer(i);
  EXPECT_EQ(ledger_.waiting(), 0u);
  RecoveredJob job = FlushAndReopen();
  EXPECT_TRUE(job.input.empty());
  EXPECT_EQ(job.waiting_input, 0u);
}

TEST_F(InputLedgerTest, AnswersAfterTheWriteUpdateTheChunkThenDeleteIt) {
  Add(0, 10);
  ledger_.Answer(3);
  RecoveredJob job = FlushAndReopen();
  ASSERT_EQ(job.input.size(), 1u);
  EXPECT_EQ(job.waiting_input, 9u);
  ledger_ = InputLedger();
  ledger_.Restore(job.input);
  EXPECT_EQ(ledger_.waiting(), 9u);
  for (uint64_t i : {0, 1, 2, 4, 5}) ledger_.Answer(i);
  ledger_.Answer(3);   // already answered: no change
  ledger_.Answer(77);  // not an input line of this ledger
  job = FlushAndReopen();
  EXPECT_EQ(job.waiting_input, 4u);
  ledger_ = InputLedger();
  ledger_.Restore(job.input);
  for (uint64_t i = 6; i < 10; ++i) ledger_.Answer(i);
  job = FlushAndReopen();
  EXPECT_TRUE(job.input.empty());
}

TEST_F(InputLedgerTest, RunsAreCutAtTheirSizeAndAtGaps) {
  Add(0, InputLedger::kChunkLines + 5);
  Add(InputLedger::kChunkLines + 10, InputLedger::kChunkLines + 12);
  RecoveredJob job = FlushAndReopen();
  ASSERT_EQ(job.input.size(), 3u);
  EXPECT_EQ(job.input[0].count, InputLedger::kChunkLines);
  EXPECT_EQ(job.input[1].first, InputLedger::kChunkLines);
  EXPECT_EQ(job.input[1].count, 5u);
  EXPECT_EQ(job.input[2].first, InputLedger::kChunkLines + 10);
  EXPECT_EQ(job.waiting_input, InputLedger::kChunkLines + 7);
}

}  // namespace
}  // namespace fetchfleet::coordinator
