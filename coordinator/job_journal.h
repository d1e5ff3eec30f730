// DurableJobs: what ties durable jobs to their store on the coordinator's loop.
// Jobs write their rows themselves (job.h); this gathers the jobs that changed
// and commits them as one transaction: each job's progress is written with a
// DurableMark of how far it had gone, and when the commit is durable the marks
// are handed back (Job::OnDurable) and `on_durable` runs for each job, so the
// results and input lines they cover can be told to clients.
//
// One commit is in flight at a time, and commits begin at most every
// `commit_interval`; changes made meanwhile wait for the next, so the commit
// rate adapts to the disk (group commit) and a job's changes reach the store in
// the order they happened.
//
// Loop thread only.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "common/event_loop.h"
#include "coordinator/job.h"
#include "coordinator/job_store.h"

namespace fetchfleet::coordinator {

class DurableJobs final : public JobJournal {
 public:
  using FindJob = std::function<Job*(const std::string&)>;
  using OnDurable = std::function<void(Job*)>;
  DurableJobs(JobStore* store, EventLoop* loop, absl::Duration commit_interval,
              FindJob find, OnDurable on_durable)
      : store_(store),
        loop_(loop),
        commit_interval_(commit_interval),
        find_(std::move(find)),
        on_durable_(std::move(on_durable)) {}

  JobStore* store() const { return store_; }
  void Touched(Job* job) override;
  // Forget drops a job from the store (in the next commit).
  void Forget(const std::string& job_id);
  // True while the store cannot take more: its queue is long or it is failing.
  bool Backlogged() const;

 private:
  void Commit();
  void PostCommit();

  JobStore* const store_;
  EventLoop* const loop_;
  const absl::Duration commit_interval_;
  const FindJob find_;
  const OnDurable on_durable_;
  absl::flat_hash_set<std::string> dirty_;
  bool posted_ = false;      // a Commit task is on the loop
  bool committing_ = false;  // a commit is at the store
  bool forgotten_ = false;   // a job was deleted since the last commit
  absl::Time last_commit_ = absl::InfinitePast();
};

}  // namespace fetchfleet::coordinator
