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
  // PutLines writes lines with these indexes (consecutive) as one run.
  void PutLines(const std::string& job, std::vector<SpooledLine> lines,
                const std::string& answered = "") {
    std::string row;
    for (const SpooledLine& line : lines) AppendLine(line, &row);
    store_->PutInputChunk(job, lines.front().index,
                          static_cast<uint32_t>(lines.size()), std::move(row),
                          answered);
  }
  void PutResults(const std::string& job, uint64_t first, uint64_t last) {
    std::string row;
    for (uint64_t s = first; s <= last; ++s) AppendResult(Result(s, s), &row);
    store_->PutResults(job, first, last, std::move(row));
  }
  std::vector<SpooledLine> Load(const std::string& job, uint64_t from,
                                uint64_t upto, size_t max) {
    std::promise<absl::StatusOr<std::vector<SpooledLine>>> loaded;
    store_->LoadInput(job, from, upto, max,
                      [&](absl::StatusOr<std::vector<SpooledLine>> lines) {
                        loaded.set_value(std::move(lines));
                      });
    absl::StatusOr<std::vector<SpooledLine>> read = loaded.get_future().get();
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? *std::move(read) : std::vector<SpooledLine>();
  }

  EventLoop loop_;
  std::thread thread_;
  std::string path_ = TempDb();
  std::unique_ptr<JobStore> store_;
};

TEST_F(StoreTest, AnsweredLinesAreNotWaiting) {
  Open();
  store::v1::JobProgress progress;
  progress.set_next_index(3);
  store_->PutJob(Record("j-1"), progress);
  PutLines("j-1", {Request(0), Request(1), Request(2)});
  std::string answered;
  SetBit(&answered, 1);
  store_->PutAnswered("j-1", 0, answered);
  PutResults("j-1", 1, 1);
  ASSERT_TRUE(Commit());
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].record.owner(), "alice");
  EXPECT_EQ(jobs[0].progress.next_index(), 3u);
  EXPECT_EQ(jobs[0].waiting_input, 2u);
  ASSERT_EQ(jobs[0].input.size(), 1u);
  EXPECT_EQ(jobs[0].input[0].count, 3u);
  ASSERT_EQ(jobs[0].results.size(), 1u);
  EXPECT_EQ(jobs[0].results[0].index(), 1u);
  std::vector<SpooledLine> lines = Load("j-1", 0, 3, 10);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].index, 0u);
  EXPECT_EQ(lines[1].index, 2u);
}

// The bug this guards against: writes queued after the last Commit went into
// its transaction without the progress row that counts them, so a crash lost
// their requests (their input rows gone, their results not counted).
TEST_F(StoreTest, WritesAfterTheLastCommitAreNotCommitted) {
  Open();
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  PutLines("j-1", {Request(0)});
  ASSERT_TRUE(Commit());
  std::string answered;
  SetBit(&answered, 0);
  store_->PutAnswered("j-1", 0, answered);  // no Commit follows
  PutResults("j-1", 1, 1);
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].waiting_input, 1u);
  EXPECT_TRUE(jobs[0].results.empty());
}

TEST_F(StoreTest, LoadsCommittedLinesInIndexOrderWithinTheRange) {
  Open();
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  SpooledLine bad;
  bad.index = 4;
  bad.is_error = true;
  bad.error.set_index(4);
  bad.error.set_error(v1::ERROR_INVALID_REQUEST);
  PutLines("j-1", {Request(5), Request(6), Request(7)});
  PutLines("j-1", {Request(1), Request(2), Request(3), bad});
  ASSERT_TRUE(Commit());
  std::vector<SpooledLine> lines = Load("j-1", 2, 9, 3);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].index, 2u);
  EXPECT_EQ(lines[1].index, 3u);
  EXPECT_EQ(lines[2].index, 4u);
  EXPECT_TRUE(lines[2].is_error);
  EXPECT_EQ(lines[2].error.error(), v1::ERROR_INVALID_REQUEST);
  lines = Load("j-1", 5, 7, 10);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].request.url(), "http://example.test/5");
  EXPECT_EQ(lines[1].index, 6u);
}

TEST_F(StoreTest, ADamagedRunIsAnsweredAsErrors) {
  Open();
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  std::string row;
  AppendLine(Request(0), &row);
  row += "\x05\x00\x7f";  // a line cut short
  store_->PutInputChunk("j-1", 0, 3, row, "");
  ASSERT_TRUE(Commit());
  std::vector<SpooledLine> lines = Load("j-1", 0, 3, 10);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[0].is_error);
  EXPECT_TRUE(lines[1].is_error);
  EXPECT_EQ(lines[2].index, 2u);
  EXPECT_NE(lines[2].error.error_message().find("damaged"), std::string::npos);
}

TEST_F(StoreTest, EvictedResultsAndForgottenJobsLeaveTheStore) {
  Open();
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  store_->PutJob(Record("j-2"), store::v1::JobProgress());
  PutResults("j-1", 1, 2);
  PutResults("j-1", 3, 4);
  PutResults("j-1", 5, 6);
  PutLines("j-2", {Request(0)});
  store_->DeleteResultsThrough("j-1", 3);  // the run 3..4 reaches past 3
  store_->DeleteInputChunk("j-1", 0);
  store_->DeleteJob("j-2");
  ASSERT_TRUE(Commit());
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].record.id(), "j-1");
  ASSERT_EQ(jobs[0].results.size(), 4u);
  EXPECT_EQ(jobs[0].results[0].seq(), 3u);
}

// A database of the first schema (a row per line and per result) is converted
// when opened: its jobs go on.
TEST_F(StoreTest, ConvertsARowPerLineDatabase) {
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, R"sql(
      CREATE TABLE jobs(id TEXT PRIMARY KEY, record BLOB NOT NULL,
                        progress BLOB NOT NULL) WITHOUT ROWID;
      CREATE TABLE input(job TEXT NOT NULL, idx INTEGER NOT NULL,
                         is_error INTEGER NOT NULL, line BLOB NOT NULL,
                         PRIMARY KEY(job, idx)) WITHOUT ROWID;
      CREATE TABLE results(job TEXT NOT NULL, seq INTEGER NOT NULL,
                           result BLOB NOT NULL, PRIMARY KEY(job, seq))
                           WITHOUT ROWID;)sql",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    auto insert = [&](const std::string& sql, const std::string& a,
                      const std::string& b) {
      sqlite3_stmt* stmt = nullptr;
      ASSERT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr),
                SQLITE_OK);
      sqlite3_bind_blob(stmt, 1, a.data(), static_cast<int>(a.size()),
                        SQLITE_TRANSIENT);
      sqlite3_bind_blob(stmt, 2, b.data(), static_cast<int>(b.size()),
                        SQLITE_TRANSIENT);
      ASSERT_EQ(sqlite3_step(stmt), SQLITE_DONE);
      sqlite3_finalize(stmt);
    };
    insert("INSERT INTO jobs VALUES('j-1', ?, ?)",
           Record("j-1").SerializeAsString(),
           store::v1::JobProgress().SerializeAsString());
    for (uint64_t i : {0, 1, 2, 5})
      insert(absl::StrCat("INSERT INTO input VALUES('j-1', ", i, ", 0, ?)"),
             Request(i).request.SerializeAsString(), "");
    for (uint64_t s : {7, 8})
      insert(absl::StrCat("INSERT INTO results VALUES('j-1', ", s, ", ?)"),
             Result(3, s).SerializeAsString(), "");
    sqlite3_close(db);
  }
  std::vector<RecoveredJob> jobs = Reopen();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].waiting_input, 4u);
  ASSERT_EQ(jobs[0].results.size(), 2u);
  EXPECT_EQ(jobs[0].results[1].seq(), 8u);
  std::vector<SpooledLine> lines = Load("j-1", 0, 10, 10);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3].index, 5u);
  EXPECT_EQ(lines[3].request.url(), "http://example.test/5");
}

// A full store (here its own cap; a full disk fails the same way) says so and
// keeps retrying; nothing it acknowledged is lost, nothing unacknowledged is
// acknowledged.
TEST_F(StoreTest, AFullStoreSaysSoAndAcknowledgesNothing) {
  Open(/*max_bytes=*/256 << 10);
  store_->PutJob(Record("j-1"), store::v1::JobProgress());
  ASSERT_TRUE(Commit());
  std::string padding(1000, 'p');
  std::vector<SpooledLine> lines;
  for (uint64_t i = 0; i < 2000; ++i) {
    lines.push_back(Request(i));
    lines.back().request.set_body(padding);
  }
  PutLines("j-1", std::move(lines));
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
