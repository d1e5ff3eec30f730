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
  // Not sooner than commit_interval_ after the last commit began: each
  // commit costs the store a sync and a write of every page it touches,
  // whatever it holds, so gathering a few milliseconds more is cheaper than
  // committing after every burst of work on the loop.
  absl::Duration wait = last_commit_ + commit_interval_ - loop_->Now();
  auto run = [this] {
    posted_ = false;
    Commit();
  };
  if (wait > absl::ZeroDuration()) {
    loop_->RunAfter(wait, std::move(run));
  } else {
    loop_->Post(std::move(run));
  }
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
  last_commit_ = loop_->Now();
  std::vector<std::pair<std::string, DurableMark>> marks;
  marks.reserve(dirty_.size());
  for (const std::string& id : dirty_) {
    Job* job = find_(id);
    if (job == nullptr) continue;
    job->WriteChanges();
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
    if (!dirty_.empty() || forgotten_) PostCommit();
  });
}

}  // namespace fetchfleet::coordinator
