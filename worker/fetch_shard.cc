#include "worker/fetch_shard.h"

namespace fetchfleet::worker {

FetchShard::FetchShard(const EgressPolicy* policy, RateLimiter* limiter,
                       CurlFetcher::Options fetcher_options,
                       BackoffConfig backoff, std::string worker_name,
                       RequestRunner::Complete on_complete)
    : fetcher_(&loop_, policy, std::move(fetcher_options)),
      runner_(&loop_, &fetcher_, limiter, backoff, std::move(worker_name),
              std::move(on_complete)),
      thread_([this] { loop_.Run(); }) {}

FetchShard::~FetchShard() {
  // Abandon what is left on the loop's own thread, then stop it.
  loop_.Post([this] { runner_.CancelAll(); });
  loop_.Stop();
  thread_.join();
}

}  // namespace fetchfleet::worker
