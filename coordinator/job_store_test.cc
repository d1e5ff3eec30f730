#include "coordinator/job_store.h"

#include <stdlib.h>

#include <future>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace fetchfleet::coordinator {
namespace {

std::string TempDb() {
  char pattern[] = "/tmp/fetchfleet-store-XXXXXX";
  const char* dir = ::mkdtemp(pattern);
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/jobs.sqlite");
}

// A store with its loop running on a thread, as the coordinator has it.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { loop_.Run(); });
  }
  void TearDown() override {
    store_.reset();
    loop_.Stop();
    thread_.join();
  }

  void Open(uint64_t max_bytes = 0) {
    store_.reset();
    JobStoreOptions options;
    options.path = path_;
    options.max_bytes = max_bytes;
    auto store = JobStore::Open(options, &loop_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  // Commit waits for the commit (at most `seconds`); false if it did not
  // come.
  bool Commit(int seconds = 10) {
    std::promise<void> done;
    std::future<void> committed = done.get_future();
    store_->Commit([&done] { done.set_value(); });
    return committed.wait_for(std::chrono::seconds(seconds)) ==
           std::future_status::ready;
  }
  std::vector<RecoveredJob> Reopen() {
    Open();
    auto jobs = store_->Recover();
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    return jobs.ok() ? *std::move(jobs) : std::vector<RecoveredJob>();
  }

  static store::v1::JobRecord Record(const std::string& id) {
    store::v1::JobRecord record;
    record.set_id(id);
    record.set_owner("alice");
    return record;
  }
  static SpooledLine Request(uint64_t index) {
    SpooledLine line;
    line.index = index;
    line.request.set_index(index);
    line.request.set_url(absl::StrCat("http://example.test/", index));
    return line;
  }
  static v1::FetchResult Result(uint64_t index, uint64_t seq) {
    v1::FetchResult result;
    result.set_index(index);
    result.set_seq(seq);
    result.set_ok(true);
    return result;
  }

  EventLoop loop_;
  std::thread thread_;
  std::string path_ = TempDb();
  std::unique_ptr<JobStore> store_;
};

TEST_F(StoreTest, AResultTakesItsInputRowWithIt) {
  Open();
  store::v1::JobProgress progress;
  progress.set_next_index(3);
  store_->PutJob(Record("j-1"), progress);
  for (uint64_t i = 0; i < 3; ++i) store_->PutInput("j-1", Request(i));
  store_->PutResult("j-1", Result(1, 1));
  ASSERT_TRUE(Commit());
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].record.owner(), "alice");
  EXPECT_EQ(jobs[0].progress.next_index(), 3u);
  EXPECT_EQ(jobs[0].waiting_input, 2u);
  ASSERT_EQ(jobs[0].results.size(), 1u);
  EXPECT_EQ(jobs[0].results[0].index(), 1u);
}

// The bug this guards against: writes queued after the last Commit went into
// its transaction without the progress row that counts them, so a crash lost
// their requests (their input rows gone, their results not counted).
TEST_F(StoreTest, WritesAfterTheLastCommitAreNotCommitted) {
  Open();
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  store_->PutInput("j-1", Request(0));
  ASSERT_TRUE(Commit());
  store_->PutResult("j-1", Result(0, 1));  // no Commit follows
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].waiting_input, 1u);
  EXPECT_TRUE(jobs[0].results.empty());
}

TEST_F(StoreTest, LoadsCommittedRowsInIndexOrderWithinTheRange) {
  Open();
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  for (uint64_t i : {5, 1, 3, 9, 7}) store_->PutInput("j-1", Request(i));
  SpooledLine bad;
  bad.index = 4;
  bad.is_error = true;
  bad.error.set_index(4);
  bad.error.set_error(v1::ERROR_INVALID_REQUEST);
  store_->PutInput("j-1", bad);
  ASSERT_TRUE(Commit());
  std::promise<absl::StatusOr<std::vector<SpooledLine>>> loaded;
  store_->LoadInput("j-1", 2, 9, 3,
                    [&](absl::StatusOr<std::vector<SpooledLine>> lines) {
                      loaded.set_value(std::move(lines));
                    });
  absl::StatusOr<std::vector<SpooledLine>> read = loaded.get_future().get();
  ASSERT_TRUE(read.ok()) << read.status();
  std::vector<SpooledLine> lines = *std::move(read);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].index, 3u);
  EXPECT_EQ(lines[1].index, 4u);
  EXPECT_TRUE(lines[1].is_error);
  EXPECT_EQ(lines[1].error.error(), v1::ERROR_INVALID_REQUEST);
  EXPECT_EQ(lines[2].index, 5u);
  EXPECT_EQ(lines[2].request.url(), "http://example.test/5");
}

TEST_F(StoreTest, EvictedResultsAndForgottenJobsLeaveTheStore) {
  Open();
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  store_->PutJob(Record("j-2"), store::v1::JobProgress());
  for (uint64_t s = 1; s <= 4; ++s) store_->PutResult("j-1", Result(s, s));
  store_->PutInput("j-2", Request(0));
  store_->DeleteResultsThrough("j-1", 2);
  store_->DeleteJob("j-2");
  ASSERT_TRUE(Commit());
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].record.id(), "j-1");
  ASSERT_EQ(jobs[0].results.size(), 2u);
  EXPECT_EQ(jobs[0].results[0].seq(), 3u);
}

// A full store (here its own cap; a full disk fails the same way) says so and
// keeps retrying; nothing it acknowledged is lost, nothing unacknowledged is
// acknowledged.
TEST_F(StoreTest, AFullStoreSaysSoAndAcknowledgesNothing) {
  Open(/*max_bytes=*/256 << 10);
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  ASSERT_TRUE(Commit());
  std::string padding(1000, 'p');
  for (uint64_t i = 0; i < 2000; ++i) {
    SpooledLine line = Request(i);
    line.request.set_body(padding);
    store_->PutInput("j-1", line);
  }
  EXPECT_FALSE(Commit(/*seconds=*/3));
  EXPECT_NE(store_->error().find("database or disk is full"), std::string::npos)
      << store_->error();
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].waiting_input, 0u);
  EXPECT_TRUE(store_->error().empty());
}

TEST_F(StoreTest, ASecondCoordinatorOnTheSameFileIsRefused) {
  Open();
  JobStoreOptions options;
  options.path = path_;
  auto second = JobStore::Open(options, &loop_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("another coordinator"),
            std::string::npos)
      << second.status();
}

}  // namespace
}  // namespace fetchfleet::coordinator
