// JobStore: the coordinator's durable copy of its jobs (README, "Durable
// jobs"), one SQLite database in WAL mode under --data-dir:
//
//   jobs(id, record, progress)               what a job was created with,
//                                            and its counters
//   input_runs(job, first, count, lines), input_answered(job, first, answered)
//       its input, a row per run of lines, and the bitmap of those answered
//       (input_ledger.h)
//   result_runs(job, first_seq, last_seq, results)
//       results held for delivery and `watch --from`, a row per commit
//
// A result's row goes in and its line's bit is set in the same transaction, so
// in every committed state each input line is either waiting or answered in
// the job's counters (and in `results` until evicted): a restarted coordinator
// deals exactly the waiting ones again. Storage is bounded by what is not done
// plus the held results, not by the job's size.
//
// Writes are queued on the loop and applied in order by one store thread, in
// one transaction per Commit (a group commit: while one transaction syncs, the
// next batch gathers). A failed transaction (disk full, I/O error) is rolled
// back and retried every second with everything queued; error() says why in
// the meantime, and the queue's byte count (queued_bytes) lets the coordinator
// stop taking work until it clears.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "common/event_loop.h"
#include "coordinator/store_rows.h"
#include "proto/fetchfleet.pb.h"
#include "proto/job_store.pb.h"

namespace fetchfleet::coordinator {

struct JobStoreOptions {
  std::string path;  // the database file
  // full: each commit is fsynced (survives a power loss); normal: written to
  // the OS at commit, synced at checkpoints (survives a process crash).
  bool sync_full = true;
  // The database may not grow past this (0: until the disk is full).
  uint64_t max_bytes = 0;
};

// InputChunk: a run of input lines [first, first + count) as the store holds
// it; `answered` is the bitmap of those that have their result.
struct InputChunk {
  uint64_t first = 0;
  uint32_t count = 0;
  std::string answered;
};

struct RecoveredJob {
  store::v1::JobRecord record;
  store::v1::JobProgress progress;
  std::vector<v1::FetchResult> results;  // held, in seq order
  std::vector<InputChunk> input;         // without their lines
  uint64_t waiting_input = 0;            // lines without a result
};

class JobStore {
 public:
  // Open opens (or creates) the database and starts the store thread;
  // callbacks are posted to `loop`.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(JobStoreOptions options,
                                                        EventLoop* loop);
  // Commits what is queued up to the last Commit (retrying a failing store
  // for at most 5 s), then stops the thread; later writes are dropped, as a
  // crash would drop them.
  ~JobStore();

  // Recover reads every job. Call before any write.
  absl::StatusOr<std::vector<RecoveredJob>> Recover();

  // --- loop thread: writes, applied in order, durable at the next Commit.
  void PutJob(const store::v1::JobRecord& record,
              const store::v1::JobProgress& progress);
  void PutProgress(const std::string& job_id,
                   const store::v1::JobProgress& progress);
  // PutInputChunk adds input lines [first, first + count), packed by
  // AppendLine; PutAnswered rewrites their bitmap; DeleteInputChunk drops
  // them once all are answered.
  void PutInputChunk(const std::string& job_id, uint64_t first, uint32_t count,
                     std::string lines, const std::string& answered);
  void PutAnswered(const std::string& job_id, uint64_t first,
                   const std::string& answered);
  void DeleteInputChunk(const std::string& job_id, uint64_t first);
  // PutResults adds results first_seq..last_seq, packed by AppendResult.
  void PutResults(const std::string& job_id, uint64_t first_seq,
                  uint64_t last_seq, std::string results);
  // DeleteResultsThrough drops the results rows that end at or before `seq`
  // (a row reaching past it stays whole).
  void DeleteResultsThrough(const std::string& job_id, uint64_t seq);
  void DeleteJob(const std::string& job_id);
  // Commit makes every write queued so far durable; `done` runs on the loop
  // once it is.
  void Commit(absl::AnyInvocable<void()> done);
  // LoadInput reads up to `max` unanswered input lines of a job with index in
  // [from, upto), in index order, from what is committed; `done` gets them on
  // the loop.
  void LoadInput(
      const std::string& job_id, uint64_t from, uint64_t upto, size_t max,
      absl::AnyInvocable<void(absl::StatusOr<std::vector<SpooledLine>>)> done);

  // Bytes written but not yet committed (any thread).
  uint64_t queued_bytes() const { return queued_bytes_.load(); }
  // Why the last transaction failed; empty when it did not (any thread).
  std::string error() const;
  // The database's size on disk, with its WAL (any thread).
  uint64_t size_bytes() const;
  uint64_t commits() const { return commits_.load(); }
  const std::string& path() const { return options_.path; }

 private:
  enum class OpKind {
    kPutJob,
    kPutProgress,
    kPutInputChunk,
    kPutAnswered,
    kDeleteInputChunk,
    kPutResults,
    kDeleteResults,
    kDeleteJob,
    kCommit,
    kLoad
  };
  struct Op {
    OpKind kind = OpKind::kCommit;
    std::string job_id;
    std::string a, b;       // serialized protos
    uint64_t x = 0, y = 0;  // first index / first seq, last seq / from, upto
    uint64_t max = 0;       // lines to load / lines in a chunk
    absl::AnyInvocable<void()> done;
    absl::AnyInvocable<void(absl::StatusOr<std::vector<SpooledLine>>)> loaded;
  };

  JobStore(JobStoreOptions options, EventLoop* loop);
  absl::Status Init();
  // MigrateRowPerLine converts a database of the first schema (a row per
  // input line and per result) to this one.
  absl::Status MigrateRowPerLine();
  void Enqueue(Op op);
  void Run();
  // Apply runs one write in the open transaction.
  absl::Status Apply(const Op& op);
  absl::StatusOr<std::vector<SpooledLine>> Load(const Op& op);
  absl::Status Exec(const char* sql);
  absl::Status SqlError(const char* what) const;

  const JobStoreOptions options_;
  EventLoop* const loop_;
  sqlite3* db_ = nullptr;
  // Prepared statements, one per write kind.
  sqlite3_stmt* put_job_ = nullptr;
  sqlite3_stmt* put_progress_ = nullptr;
  sqlite3_stmt* put_input_ = nullptr;
  sqlite3_stmt* put_answered_ = nullptr;
  sqlite3_stmt* delete_input_[2] = {};
  sqlite3_stmt* put_results_ = nullptr;
  sqlite3_stmt* delete_results_ = nullptr;
  sqlite3_stmt* delete_job_[4] = {};
  sqlite3_stmt* load_input_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Op> queue_;  // writes and commits, in order
  std::deque<Op> loads_;
  bool stopping_ = false;
  std::string error_;
  std::atomic<uint64_t> queued_bytes_{0};
  std::atomic<uint64_t> commits_{0};
  std::thread thread_;
};

}  // namespace fetchfleet::coordinator
