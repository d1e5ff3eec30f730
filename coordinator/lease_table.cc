#include "coordinator/lease_table.h"

#include <algorithm>

#include "absl/random/random.h"

namespace fetchfleet::coordinator {

LeaseTable::LeaseTable() {
  absl::BitGen gen;
  next_id_ = (absl::Uniform<uint64_t>(gen, 1, uint64_t{1} << 31)) << 32;
}

uint64_t LeaseTable::Grant(uint64_t worker_id, std::string job_id,
                           v1::FetchRequest request, absl::Time granted,
                           absl::Duration duration) {
  uint64_t id = next_id_++;
  Lease& lease = leases_[id];
  lease.id = id;
  lease.worker_id = worker_id;
  lease.job_id = std::move(job_id);
  lease.granted = granted;
  lease.duration = duration;
  lease.deadline = granted + duration;
  lease.request = std::move(request);
  by_worker_[worker_id].insert(id);
  return id;
}

std::optional<Lease> LeaseTable::Complete(uint64_t id, uint64_t worker_id) {
  auto it = leases_.find(id);
  if (it == leases_.end() || it->second.worker_id != worker_id)
    return std::nullopt;
  Lease lease = std::move(it->second);
  leases_.erase(it);
  auto w = by_worker_.find(worker_id);
  if (w != by_worker_.end()) {
    w->second.erase(id);
    if (w->second.empty()) by_worker_.erase(w);
  }
  return lease;
}

std::vector<Lease> LeaseTable::ReleaseWorker(uint64_t worker_id) {
  std::vector<Lease> out;
  auto w = by_worker_.find(worker_id);
  if (w == by_worker_.end()) return out;
  for (uint64_t id : w->second) {
    auto it = leases_.find(id);
    out.push_back(std::move(it->second));
    leases_.erase(it);
  }
  by_worker_.erase(w);
  return out;
}

std::vector<Lease> LeaseTable::ReleaseIf(
    const absl::flat_hash_set<uint64_t>& ids) {
  std::vector<Lease> out;
  for (uint64_t id : ids) {
    auto it = leases_.find(id);
    if (it == leases_.end()) continue;
    std::optional<Lease> lease = Complete(id, it->second.worker_id);
    out.push_back(std::move(*lease));
  }
  return out;
}

std::vector<Lease> LeaseTable::ReleaseJob(const std::string& job_id) {
  absl::flat_hash_set<uint64_t> ids;
  for (const auto& [id, lease] : leases_) {
    if (lease.job_id == job_id) ids.insert(id);
  }
  return ReleaseIf(ids);
}

std::vector<Lease> LeaseTable::TakeExpired(absl::Time now) {
  absl::flat_hash_set<uint64_t> ids;
  for (const auto& [id, lease] : leases_) {
    if (lease.deadline <= now) ids.insert(id);
  }
  return ReleaseIf(ids);
}

void LeaseTable::ExtendKey(const std::string& key, absl::Time paused_until) {
  for (auto& [id, lease] : leases_) {
    if (lease.request.rate_key() == key)
      lease.deadline = std::max(lease.deadline, paused_until + lease.duration);
  }
}

size_t LeaseTable::CountForWorker(uint64_t worker_id) const {
  auto w = by_worker_.find(worker_id);
  return w == by_worker_.end() ? 0 : w->second.size();
}

}  // namespace fetchfleet::coordinator
