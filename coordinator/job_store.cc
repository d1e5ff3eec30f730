#include "coordinator/job_store.h"

#include <sys/stat.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace fetchfleet::coordinator {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs(
  id TEXT PRIMARY KEY, record BLOB NOT NULL, progress BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS input_runs(
  job TEXT NOT NULL, first INTEGER NOT NULL, count INTEGER NOT NULL,
  lines BLOB NOT NULL, PRIMARY KEY(job, first)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS input_answered(
  job TEXT NOT NULL, first INTEGER NOT NULL, answered BLOB NOT NULL,
  PRIMARY KEY(job, first)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS result_runs(
  job TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
  results BLOB NOT NULL, PRIMARY KEY(job, last_seq)
) WITHOUT ROWID;
)sql";

// Lines of a run that LoadInput may start inside: a run begins at most this
// far before the first index asked for.
constexpr uint64_t kMaxRunLines = 1 << 16;
// The runs the conversion of a first-schema database makes.
constexpr uint64_t kInputRunLines = 2048;

void BindText(sqlite3_stmt* stmt, int i, const std::string& text) {
  sqlite3_bind_text(stmt, i, text.data(), static_cast<int>(text.size()),
                    SQLITE_STATIC);
}
void BindBlob(sqlite3_stmt* stmt, int i, const std::string& blob) {
  sqlite3_bind_blob(stmt, i, blob.data(), static_cast<int>(blob.size()),
                    SQLITE_STATIC);
}
std::string ColumnBlob(sqlite3_stmt* stmt, int i) {
  const void* data = sqlite3_column_blob(stmt, i);
  int size = sqlite3_column_bytes(stmt, i);
  return data == nullptr ? std::string()
                         : std::string(static_cast<const char*>(data), size);
}
uint64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

}  // namespace

JobStore::JobStore(JobStoreOptions options, EventLoop* loop)
    : options_(std::move(options)), loop_(loop) {}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(
    JobStoreOptions options, EventLoop* loop) {
  std::unique_ptr<JobStore> store(new JobStore(std::move(options), loop));
  if (absl::Status s = store->Init(); !s.ok()) return s;
  store->thread_ = std::thread([raw = store.get()] { raw->Run(); });
  return store;
}

absl::Status JobStore::SqlError(const char* what) const {
  return absl::InternalError(absl::StrCat("job store ", options_.path, ": ",
                                          what, ": ", sqlite3_errmsg(db_)));
}

absl::Status JobStore::Exec(const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK)
    return absl::OkStatus();
  std::string text = message != nullptr ? message : "unknown error";
  sqlite3_free(message);
  return absl::InternalError(
      absl::StrCat("job store ", options_.path, ": ", text));
}

absl::Status JobStore::Init() {
  if (sqlite3_open_v2(
          options_.path.c_str(), &db_,
          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
          nullptr) != SQLITE_OK) {
    return SqlError("cannot open");
  }
  // The database is held exclusively: a second coordinator on the same file
  // is refused rather than let in (two would deal the same jobs).
  std::string pragmas = absl::StrCat(
      "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; "
      "PRAGMA synchronous=",
      options_.sync_full ? "FULL" : "NORMAL", ";");
  if (options_.max_bytes > 0) {
    absl::StrAppend(&pragmas, "PRAGMA max_page_count=",
                    std::max<uint64_t>(options_.max_bytes / 4096, 16), ";");
  }
  absl::StrAppend(&pragmas, "BEGIN EXCLUSIVE; COMMIT;");
  if (absl::Status s = Exec(pragmas.c_str()); !s.ok()) {
    int code = sqlite3_errcode(db_);
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
      return absl::FailedPreconditionError(
          absl::StrCat(s.message(), " (is another coordinator using it?)"));
    }
    return s;
  }
  if (absl::Status s = Exec(kSchema); !s.ok()) return s;
  struct {
    sqlite3_stmt** stmt;
    const char* sql;
  } statements[] = {
      {&put_job_,
       "INSERT OR REPLACE INTO jobs(id, record, progress) VALUES(?, ?, ?)"},
      {&put_progress_, "UPDATE jobs SET progress = ? WHERE id = ?"},
      {&put_input_,
       "INSERT OR REPLACE INTO input_runs(job, first, count, lines) "
       "VALUES(?, ?, ?, ?)"},
      // The bitmap has a table of its own: rewriting it must not rewrite the
      // run's lines (a row is rewritten whole).
      {&put_answered_,
       "INSERT OR REPLACE INTO input_answered(job, first, answered) "
       "VALUES(?, ?, ?)"},
      {&delete_input_[0], "DELETE FROM input_runs WHERE job = ? AND first = ?"},
      {&delete_input_[1],
       "DELETE FROM input_answered WHERE job = ? AND first = ?"},
      {&put_results_,
       "INSERT OR REPLACE INTO result_runs(job, first_seq, last_seq, results) "
       "VALUES(?, ?, ?, ?)"},
      {&delete_results_,
       "DELETE FROM result_runs WHERE job = ? AND last_seq <= ?"},
      {&delete_job_[0], "DELETE FROM input_runs WHERE job = ?"},
      {&delete_job_[1], "DELETE FROM input_answered WHERE job = ?"},
      {&delete_job_[2], "DELETE FROM result_runs WHERE job = ?"},
      {&delete_job_[3], "DELETE FROM jobs WHERE id = ?"},
      {&load_input_,
       "SELECT r.first, r.count, r.lines, a.answered FROM input_runs r "
       "LEFT JOIN input_answered a ON a.job = r.job AND a.first = r.first "
       "WHERE r.job = ? AND r.first > ? AND r.first < ? ORDER BY r.first"},
  };
  for (auto& s : statements) {
    if (sqlite3_prepare_v3(db_, s.sql, -1, SQLITE_PREPARE_PERSISTENT, s.stmt,
                           nullptr) != SQLITE_OK) {
      return SqlError("prepare");
    }
  }
  return MigrateRowPerLine();
}

absl::Status JobStore::MigrateRowPerLine() {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT count(*) FROM sqlite_master WHERE type = "
                         "'table' AND name IN ('input', 'results')",
                         -1, &stmt, nullptr) != SQLITE_OK)
    return SqlError("migrate");
  int old_tables =
      sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (old_tables != 2) return absl::OkStatus();
  FF_LOG(INFO) << "job store " << options_.path
               << ": converting the row-per-line tables to runs of rows";
  if (absl::Status s = Exec("BEGIN"); !s.ok()) return s;
  absl::Status status = [&]() -> absl::Status {
    // Input: consecutive lines of a job become one run, none answered.
    if (sqlite3_prepare_v2(db_,
                           "SELECT job, idx, is_error, line FROM input "
                           "ORDER BY job, idx",
                           -1, &stmt, nullptr) != SQLITE_OK)
      return SqlError("migrate input");
    std::string job, lines;
    uint64_t first = 0, count = 0;
    auto flush = [&]() -> absl::Status {
      if (count == 0) return absl::OkStatus();
      Op op;
      op.kind = OpKind::kPutInputChunk;
      op.job_id = job;
      op.x = first;
      op.max = count;
      op.a = std::move(lines);
      lines.clear();
      count = 0;
      return Apply(op);
    };
    int rc;
    absl::Status written;
    while (written.ok() && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      SpooledLine line;
      std::string line_job = ColumnBlob(stmt, 0);
      line.index = static_cast<uint64_t>(sqlite3_column_int64(stmt, 1));
      line.is_error = sqlite3_column_int(stmt, 2) != 0;
      std::string blob = ColumnBlob(stmt, 3);
      bool parsed = line.is_error ? line.error.ParseFromString(blob)
                                  : line.request.ParseFromString(blob);
      if (!parsed) {
        line.is_error = true;
        line.error.Clear();
        line.error.set_index(line.index);
        line.error.set_error(v1::ERROR_INVALID_REQUEST);
        line.error.set_error_message(
            "the job store's copy of this line is damaged");
      }
      if (line_job != job || line.index != first + count ||
          count == kInputRunLines) {
        written = flush();
        job = line_job;
        first = line.index;
      }
      AppendLine(line, &lines);
      ++count;
    }
    sqlite3_finalize(stmt);
    if (written.ok()) written = flush();
    if (!written.ok()) return written;
    // Results: a run per job.
    if (sqlite3_prepare_v2(db_,
                           "SELECT job, seq, result FROM results "
                           "ORDER BY job, seq",
                           -1, &stmt, nullptr) != SQLITE_OK)
      return SqlError("migrate results");
    Op run;
    run.kind = OpKind::kPutResults;
    while (written.ok() && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      std::string result_job = ColumnBlob(stmt, 0);
      uint64_t seq = static_cast<uint64_t>(sqlite3_column_int64(stmt, 1));
      if (result_job != run.job_id && !run.a.empty()) {
        written = Apply(run);
        run.a.clear();
      }
      if (run.a.empty()) run.x = seq;
      run.job_id = result_job;
      run.y = seq;
      std::string blob = ColumnBlob(stmt, 2);
      v1::FetchResult result;
      if (!result.ParseFromString(blob)) {
        sqlite3_finalize(stmt);
        return absl::DataLossError(absl::StrCat("job store ", options_.path,
                                                ": a result of job ",
                                                result_job, " does not parse"));
      }
      AppendResult(result, &run.a);
    }
    sqlite3_finalize(stmt);
    if (written.ok() && !run.a.empty()) written = Apply(run);
    if (!written.ok()) return written;
    return Exec("DROP TABLE input; DROP TABLE results;");
  }();
  if (!status.ok()) {
    (void)Exec("ROLLBACK");
    return status;
  }
  return Exec("COMMIT");
}

JobStore::~JobStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (sqlite3_stmt* stmt :
       {put_job_, put_progress_, put_input_, put_answered_, delete_input_[0],
        delete_input_[1], put_results_, delete_results_, delete_job_[0],
        delete_job_[1], delete_job_[2], delete_job_[3], load_input_}) {
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db_);
}

absl::StatusOr<std::vector<RecoveredJob>> JobStore::Recover() {
  std::vector<RecoveredJob> jobs;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT id, record, progress FROM jobs", -1,
                         &stmt, nullptr) != SQLITE_OK)
    return SqlError("recover");
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    RecoveredJob job;
    if (!job.record.ParseFromString(ColumnBlob(stmt, 1)) ||
        !job.progress.ParseFromString(ColumnBlob(stmt, 2))) {
      std::string id = ColumnBlob(stmt, 0);
      sqlite3_finalize(stmt);
      return absl::DataLossError(absl::StrCat("job store ", options_.path,
                                              ": the row of job ", id,
                                              " does not parse"));
    }
    jobs.push_back(std::move(job));
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_DONE) return SqlError("recover");
  for (RecoveredJob& job : jobs) {
    const std::string& id = job.record.id();
    if (sqlite3_prepare_v2(db_,
                           "SELECT results FROM result_runs WHERE job = ? "
                           "ORDER BY last_seq",
                           -1, &stmt, nullptr) != SQLITE_OK)
      return SqlError("recover results");
    BindText(stmt, 1, id);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (!DecodeResults(ColumnBlob(stmt, 0), &job.results)) {
        sqlite3_finalize(stmt);
        return absl::DataLossError(absl::StrCat("job store ", options_.path,
                                                ": results of job ", id,
                                                " do not parse"));
      }
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return SqlError("recover results");
    if (sqlite3_prepare_v2(db_,
                           "SELECT r.first, r.count, a.answered FROM "
                           "input_runs r LEFT JOIN input_answered a ON "
                           "a.job = r.job AND a.first = r.first WHERE "
                           "r.job = ? ORDER BY r.first",
                           -1, &stmt, nullptr) != SQLITE_OK)
      return SqlError("recover input");
    BindText(stmt, 1, id);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      InputChunk chunk;
      chunk.first = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
      chunk.count = static_cast<uint32_t>(sqlite3_column_int64(stmt, 1));
      chunk.answered = ColumnBlob(stmt, 2);
      job.waiting_input += chunk.count - CountBits(chunk.answered, chunk.count);
      job.input.push_back(std::move(chunk));
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) return SqlError("recover input");
  }
  return jobs;
}

void JobStore::Enqueue(Op op) {
  queued_bytes_ += op.job_id.size() + op.a.size() + op.b.size() + 32;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(op));
  }
  // The thread is woken by Commit and LoadInput only: writes wait for them.
}

void JobStore::PutJob(const store::v1::JobRecord& record,
                      const store::v1::JobProgress& progress) {
  Op op;
  op.kind = OpKind::kPutJob;
  op.job_id = record.id();
  record.SerializeToString(&op.a);
  progress.SerializeToString(&op.b);
  Enqueue(std::move(op));
}

void JobStore::PutProgress(const std::string& job_id,
                           const store::v1::JobProgress& progress) {
  Op op;
  op.kind = OpKind::kPutProgress;
  op.job_id = job_id;
  progress.SerializeToString(&op.a);
  Enqueue(std::move(op));
}

void JobStore::PutInputChunk(const std::string& job_id, uint64_t first,
                             uint32_t count, std::string lines,
                             const std::string& answered) {
  Op op;
  op.kind = OpKind::kPutInputChunk;
  op.job_id = job_id;
  op.x = first;
  op.max = count;
  op.a = std::move(lines);
  op.b = answered;
  Enqueue(std::move(op));
}

void JobStore::PutAnswered(const std::string& job_id, uint64_t first,
                           const std::string& answered) {
  Op op;
  op.kind = OpKind::kPutAnswered;
  op.job_id = job_id;
  op.x = first;
  op.b = answered;
  Enqueue(std::move(op));
}

void JobStore::DeleteInputChunk(const std::string& job_id, uint64_t first) {
  Op op;
  op.kind = OpKind::kDeleteInputChunk;
  op.job_id = job_id;
  op.x = first;
  Enqueue(std::move(op));
}

void JobStore::PutResults(const std::string& job_id, uint64_t first_seq,
                          uint64_t last_seq, std::string results) {
  Op op;
  op.kind = OpKind::kPutResults;
  op.job_id = job_id;
  op.x = first_seq;
  op.y = last_seq;
  op.a = std::move(results);
  Enqueue(std::move(op));
}

void JobStore::DeleteResultsThrough(const std::string& job_id, uint64_t seq) {
  Op op;
  op.kind = OpKind::kDeleteResults;
  op.job_id = job_id;
  op.y = seq;
  Enqueue(std::move(op));
}

void JobStore::DeleteJob(const std::string& job_id) {
  Op op;
  op.kind = OpKind::kDeleteJob;
  op.job_id = job_id;
  Enqueue(std::move(op));
}

void JobStore::Commit(absl::AnyInvocable<void()> done) {
  Op op;
  op.kind = OpKind::kCommit;
  op.done = std::move(done);
  Enqueue(std::move(op));
  wake_.notify_one();
}

void JobStore::LoadInput(
    const std::string& job_id, uint64_t from, uint64_t upto, size_t max,
    absl::AnyInvocable<void(absl::StatusOr<std::vector<SpooledLine>>)> done) {
  Op op;
  op.kind = OpKind::kLoad;
  op.job_id = job_id;
  op.x = from;
  op.y = upto;
  op.max = max;
  op.loaded = std::move(done);
  {
    std::lock_guard<std::mutex> lock(mu_);
    loads_.push_back(std::move(op));
  }
  wake_.notify_one();
}

std::string JobStore::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

uint64_t JobStore::size_bytes() const {
  return FileSize(options_.path) + FileSize(options_.path + "-wal");
}

absl::Status JobStore::Apply(const Op& op) {
  sqlite3_stmt* stmt = nullptr;
  auto step = [&](sqlite3_stmt* s) -> absl::Status {
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? absl::OkStatus() : SqlError("write");
  };
  switch (op.kind) {
    case OpKind::kPutJob:
      stmt = put_job_;
      BindText(stmt, 1, op.job_id);
      BindBlob(stmt, 2, op.a);
      BindBlob(stmt, 3, op.b);
      return step(stmt);
    case OpKind::kPutProgress:
      stmt = put_progress_;
      BindBlob(stmt, 1, op.a);
      BindText(stmt, 2, op.job_id);
      return step(stmt);
    case OpKind::kPutInputChunk:
      stmt = put_input_;
      BindText(stmt, 1, op.job_id);
      sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(op.x));
      sqlite3_bind_int64(stmt, 3, static_cast<int64_t>(op.max));
      BindBlob(stmt, 4, op.a);
      if (absl::Status s = step(stmt); !s.ok() || op.b.empty()) return s;
      [[fallthrough]];
    case OpKind::kPutAnswered:
      stmt = put_answered_;
      BindText(stmt, 1, op.job_id);
      sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(op.x));
      BindBlob(stmt, 3, op.b);
      return step(stmt);
    case OpKind::kDeleteInputChunk:
      for (sqlite3_stmt* s : delete_input_) {
        BindText(s, 1, op.job_id);
        sqlite3_bind_int64(s, 2, static_cast<int64_t>(op.x));
        if (absl::Status status = step(s); !status.ok()) return status;
      }
      return absl::OkStatus();
    case OpKind::kPutResults:
      stmt = put_results_;
      BindText(stmt, 1, op.job_id);
      sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(op.x));
      sqlite3_bind_int64(stmt, 3, static_cast<int64_t>(op.y));
      BindBlob(stmt, 4, op.a);
      return step(stmt);
    case OpKind::kDeleteResults:
      stmt = delete_results_;
      BindText(stmt, 1, op.job_id);
      sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(op.y));
      return step(stmt);
    case OpKind::kDeleteJob:
      for (sqlite3_stmt* s : delete_job_) {
        BindText(s, 1, op.job_id);
        if (absl::Status status = step(s); !status.ok()) return status;
      }
      return absl::OkStatus();
    case OpKind::kCommit:
    case OpKind::kLoad:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<SpooledLine>> JobStore::Load(const Op& op) {
  std::vector<SpooledLine> lines;
  sqlite3_stmt* stmt = load_input_;
  BindText(stmt, 1, op.job_id);
  sqlite3_bind_int64(
      stmt, 2, static_cast<int64_t>(op.x) - static_cast<int64_t>(kMaxRunLines));
  sqlite3_bind_int64(stmt, 3, static_cast<int64_t>(op.y));
  int rc = SQLITE_DONE;
  while (lines.size() < op.max && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    uint64_t first = static_cast<uint64_t>(sqlite3_column_int64(stmt, 0));
    uint64_t count = static_cast<uint64_t>(sqlite3_column_int64(stmt, 1));
    std::string answered = ColumnBlob(stmt, 3);
    uint64_t next = first;  // the index the next line of the run should have
    auto take = [&](uint64_t index) {
      return index >= op.x && index < op.y && index - first < count &&
             !BitIsSet(answered, index - first) && lines.size() < op.max;
    };
    bool intact = DecodeLines(ColumnBlob(stmt, 2), [&](SpooledLine line) {
      next = line.index + 1;
      if (take(line.index)) lines.push_back(std::move(line));
    });
    if (!intact) {
      // A row this coordinator wrote that no longer parses: its lines from
      // the damage on are answered as errors rather than dealt, so the job
      // still ends.
      for (uint64_t index = next; index < first + count; ++index) {
        if (!take(index)) continue;
        SpooledLine line;
        line.index = index;
        line.is_error = true;
        line.error.set_index(index);
        line.error.set_error(v1::ERROR_INVALID_REQUEST);
        line.error.set_error_message(
            "the job store's copy of this line is damaged");
        lines.push_back(std::move(line));
      }
    }
  }
  absl::Status status = rc == SQLITE_DONE || rc == SQLITE_ROW
                            ? absl::OkStatus()
                            : SqlError("read spooled input");
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (!status.ok()) return status;
  return lines;
}

void JobStore::Run() {
  // A transaction holds the writes up to the last Commit queued, never past
  // it: writes after a Commit belong with the progress rows of the next one
  // (a result without its job's counters would lose a request in a crash).
  std::deque<Op> batch;
  auto failing_since = std::chrono::steady_clock::time_point::max();
  while (true) {
    std::deque<Op> loads;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto last_commit = [&] {
        for (size_t i = queue_.size(); i > 0; --i)
          if (queue_[i - 1].kind == OpKind::kCommit) return i;
        return size_t{0};
      };
      wake_.wait(lock, [&] {
        return stopping_ || (!batch.empty() && !error_.empty()) ||
               !loads_.empty() || last_commit() > 0;
      });
      size_t take = last_commit();
      if (stopping_ && take == 0 && batch.empty() && loads_.empty()) {
        // Writes without a Commit are dropped, as a crash would drop them.
        return;
      }
      for (size_t i = 0; i < take; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      // Loads read only what is committed: they need not wait for writes.
      if (error_.empty() || batch.empty()) loads.swap(loads_);
    }
    if (!batch.empty()) {
      absl::Status status = Exec("BEGIN");
      uint64_t bytes = 0;
      for (const Op& op : batch) {
        if (!status.ok()) break;
        status = Apply(op);
        bytes += op.job_id.size() + op.a.size() + op.b.size() + 32;
      }
      if (status.ok()) status = Exec("COMMIT");
      if (!status.ok()) {
        (void)Exec("ROLLBACK");
        auto now = std::chrono::steady_clock::now();
        bool first = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          first = error_.empty();
          error_ = std::string(status.message());
        }
        if (first) {
          failing_since = now;
          FF_LOG(ERROR) << status.message()
                        << "; no result is delivered and no input is taken "
                           "until it can write again (retrying every second)";
        }
        std::unique_lock<std::mutex> lock(mu_);
        for (Op& load : loads) loads_.push_back(std::move(load));
        if (stopping_ && now - failing_since > std::chrono::seconds(5)) {
          FF_LOG(ERROR) << "job store: giving up on " << batch.size()
                        << " unwritten changes at shutdown (" << error_ << ")";
          return;
        }
        wake_.wait_for(lock, std::chrono::seconds(1));
        continue;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_.empty()) {
          FF_LOG(INFO) << "job store " << options_.path << " writes again";
          error_.clear();
        }
      }
      queued_bytes_ -= std::min<uint64_t>(bytes, queued_bytes_.load());
      ++commits_;
      for (Op& op : batch) {
        if (op.kind == OpKind::kCommit && op.done)
          loop_->Post(std::move(op.done));
      }
      batch.clear();
    }
    for (Op& op : loads) {
      loop_->Post([done = std::move(op.loaded), lines = Load(op)]() mutable {
        done(std::move(lines));
      });
    }
  }
}

}  // namespace fetchfleet::coordinator
