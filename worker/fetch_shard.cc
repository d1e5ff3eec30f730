#include "worker/fetch_shard.h"

namespace fetchfleet::worker {

FetchShard::FetchShard(const EgressPolicy* policy, LimiterFactory make_limiter,
                       BreakerFactory make_breaker,
                       CurlFetcher::Options fetcher_options,
                       BackoffConfig backoff, std::string worker_name,
                       RequestRunner::Complete on_complete,
                       FetchObserver* observer)
    : limiter_(make_limiter(&loop_)),
      breaker_(make_breaker(&loop_)),
      fetcher_(&loop_, policy, std::move(fetcher_options)),
      runner_(&loop_, &fetcher_, limiter_.get(), breaker_.get(), backoff,
              std::move(worker_name), std::move(on_complete), observer) {
  // The limiter spends no slots on a key whose breaker is open. Set before
  // the loop's thread starts.
  limiter_->set_hold([breaker = breaker_.get()](absl::string_view key) {
    return breaker->Holding(key);
  });
  thread_ = std::thread([this] { loop_.Run(); });
}

FetchShard::~FetchShard() {
  // Abandon what is left on the loop's own thread, then stop it.
  loop_.Post([this] { runner_.CancelAll(); });
  // The limiter's Redis connection is torn down on the loop's thread too.
  loop_.Post([this] {
    limiter_.reset();
    breaker_.reset();
  });
  loop_.Stop();
  thread_.join();
}

}  // namespace fetchfleet::worker
