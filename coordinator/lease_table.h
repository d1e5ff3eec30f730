// LeaseTable: every assignment handed to a worker is a lease. A lease ends in
// exactly one of three ways: its result arrives (Complete), its worker goes
// away or hands it back (Release*), or its deadline passes (TakeExpired).
// Whatever ends it first wins; a late result for a lease that already ended
// finds nothing and is dropped, so each request yields exactly one result
// however workers die or reconnect.
//
// Loop thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "proto/fetchfleet.pb.h"

namespace fetchfleet::coordinator {

struct Lease {
  uint64_t id = 0;
  uint64_t worker_id = 0;
  std::string job_id;
  absl::Time granted;
  absl::Duration duration;  // its plan: deadline = granted + duration, unless
                            // a key pause moved it on
  absl::Time deadline;
  v1::FetchRequest
      request;  // kept so the request can go back to its job's queue
};

class LeaseTable {
 public:
  LeaseTable();

  // Grant records a new lease and returns its id (never reused).
  uint64_t Grant(uint64_t worker_id, std::string job_id,
                 v1::FetchRequest request, absl::Time granted,
                 absl::Duration duration);
  // ExtendKey gives every lease of rate key `key` its whole plan again from
  // `paused_until` (an upstream's Retry-After paused the key fleet-wide), when
  // that is later than its deadline. Costs a pass over the leases: pauses are
  // rare.
  void ExtendKey(const std::string& key, absl::Time paused_until);
  // Complete ends the lease `id` if it is still held by `worker_id`.
  std::optional<Lease> Complete(uint64_t id, uint64_t worker_id);
  // ReleaseWorker ends every lease of a worker (its stream broke or it missed
  // heartbeats).
  std::vector<Lease> ReleaseWorker(uint64_t worker_id);
  // ReleaseJob ends every lease of a job (cancelled).
  std::vector<Lease> ReleaseJob(const std::string& job_id);
  // TakeExpired ends every lease whose deadline is at or before `now`.
  std::vector<Lease> TakeExpired(absl::Time now);

  size_t size() const { return leases_.size(); }
  size_t CountForWorker(uint64_t worker_id) const;

 private:
  std::vector<Lease> ReleaseIf(const absl::flat_hash_set<uint64_t>& ids);

  // Ids start at a random point so that a restarted coordinator does not
  // reissue the ids a worker may still hold results for.
  uint64_t next_id_;
  absl::flat_hash_map<uint64_t, Lease> leases_;
  absl::flat_hash_map<uint64_t, absl::flat_hash_set<uint64_t>> by_worker_;
};

}  // namespace fetchfleet::coordinator
