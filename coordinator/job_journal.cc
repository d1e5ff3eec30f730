#include "coordinator/job_journal.h"

#include <utility>

namespace fetchfleet::coordinator {
namespace {

// The store's queue of writes not yet committed stops new input beyond this.
constexpr uint64_t kMaxQueuedBytes = 64 << 20;

}  // namespace

void DurableJobs::Touched(Job* job) {
  dirty_.insert(job->id());
  PostCommit();
}

void DurableJobs::PostCommit() {
  if (posted_ || committing_) return;
  posted_ = true;
  // After the current burst of work on the loop, not per change.
  loop_->Post([this] {
    posted_ = false;
    Commit();
  });
}

void DurableJobs::Forget(const std::string& job_id) {
  dirty_.erase(job_id);
  store_->DeleteJob(job_id);
  forgotten_ = true;
  PostCommit();
}

bool DurableJobs::Backlogged() const {
  return store_->queued_bytes() > kMaxQueuedBytes || !store_->error().empty();
}

void DurableJobs::Commit() {
  if (committing_ || (dirty_.empty() && !forgotten_)) return;
  committing_ = true;
  forgotten_ = false;
  std::vector<std::pair<std::string, DurableMark>> marks;
  marks.reserve(dirty_.size());
  for (const std::string& id : dirty_) {
    Job* job = find_(id);
    if (job == nullptr) continue;
    store_->PutProgress(id, job->Progress());
    marks.emplace_back(id, job->Mark());
  }
  dirty_.clear();
  store_->Commit([this, marks = std::move(marks)] {
    committing_ = false;
    for (const auto& [id, mark] : marks) {
      Job* job = find_(id);
      if (job == nullptr) continue;
      job->OnDurable(mark);
      on_durable_(job);
    }
    Commit();
  });
}

}  // namespace fetchfleet::coordinator
