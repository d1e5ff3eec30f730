#include "coordinator/coordinator_metrics.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/interceptor.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include "absl/strings/str_replace.h"
#include "common/loop_call.h"
#include "common/outcome_counters.h"
#include "common/redis_metrics.h"
#include "coordinator/scheduler.h"
#include "prometheus/metric_family.h"

namespace fetchfleet::coordinator {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// How long a scrape waits for the scheduler's loop before it serves the
// event metrics alone (and says so in fetchfleet_coordinator_census_ok).
constexpr absl::Duration kCensusTimeout = absl::Seconds(2);

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "UNKNOWN";
}

// MethodLabel: "pkg.Service/Method" for a method of a service linked into
// this binary (ours, health, reflection), else "other": a client can send
// any path, and each would be a series.
std::string MethodLabel(absl::string_view path) {
  if (path.size() < 4 || path.front() != '/') return "other";
  std::string name(path.substr(1));
  std::string dotted = absl::StrReplaceAll(name, {{"/", "."}});
  if (google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
          dotted) == nullptr) {
    return "other";
  }
  return name;
}

MetricFamily NewFamily(std::string name, std::string help, MetricType type) {
  MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = type;
  return family;
}

void Add(MetricFamily* family, std::vector<ClientMetric::Label> labels,
         double value) {
  ClientMetric metric;
  metric.label = std::move(labels);
  if (family->type == MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family->metric.push_back(std::move(metric));
}

// KeyLabels: the keys that get their own label, sorted, at most
// kMaxKeyLabels: those with a configured limit or breaker settings.
std::set<std::string> KeyLabels(const Scheduler& scheduler) {
  std::set<std::string> keys;
  for (const auto& [key, limit] : scheduler.limits()) keys.insert(key);
  for (const v1::BreakerSetting& setting : scheduler.breaker_table().settings())
    keys.insert(setting.key());
  while (keys.size() > kMaxKeyLabels) keys.erase(std::prev(keys.end()));
  return keys;
}

// PerKey sums values per label: a labelled key's own, or "other". Kept in a
// map so the output is sorted and each label appears once.
class PerKey {
 public:
  PerKey(const std::set<std::string>* labelled, bool max_for_other)
      : labelled_(labelled), max_for_other_(max_for_other) {}
  void Put(const std::string& key, double value) {
    if (labelled_->count(key) > 0) {
      values_[key] += value;
      return;
    }
    double& other = values_["other"];
    other = max_for_other_ ? std::max(other, value) : other + value;
  }
  // Touch gives a labelled key its series even before it has a value.
  void Touch(const std::string& key) { values_.try_emplace(key, 0.0); }
  void Emit(MetricFamily* family) const {
    for (const auto& [key, value] : values_) Add(family, {{"key", key}}, value);
  }
  // Emit with each value mapped (values kept in another order for max).
  template <typename Map>
  void Emit(MetricFamily* family, Map map) const {
    for (const auto& [key, value] : values_)
      Add(family, {{"key", key}}, map(value));
  }

 private:
  const std::set<std::string>* labelled_;
  const bool max_for_other_;
  std::map<std::string, double> values_;
};

std::vector<MetricFamily> TakeCensus(const Scheduler& scheduler) {
  std::vector<MetricFamily> out;
  const Scheduler::Census census = scheduler.TakeCensus();
  const Scheduler::Counters& counters = scheduler.counters();

  MetricFamily jobs = NewFamily("fetchfleet_coordinator_jobs",
                                "Jobs the coordinator holds, by state (ended "
                                "jobs are kept a while for status and watch).",
                                MetricType::Gauge);
  Add(&jobs, {{"state", "running"}}, census.jobs_running);
  Add(&jobs, {{"state", "done"}}, census.jobs_done);
  Add(&jobs, {{"state", "cancelled"}}, census.jobs_cancelled);
  out.push_back(std::move(jobs));

  MetricFamily ended =
      NewFamily("fetchfleet_coordinator_jobs_ended_total",
                "Jobs that ended, by how.", MetricType::Counter);
  Add(&ended, {{"state", "done"}}, counters.jobs_done);
  Add(&ended, {{"state", "cancelled"}}, counters.jobs_cancelled);
  out.push_back(std::move(ended));

  MetricFamily requests = NewFamily(
      "fetchfleet_coordinator_requests",
      "Requests of running and kept jobs not yet answered: pending (waiting "
      "for a worker), parked (held back by a rate limit or pause), leased "
      "(out at a worker).",
      MetricType::Gauge);
  Add(&requests, {{"state", "pending"}}, census.requests_pending);
  Add(&requests, {{"state", "parked"}}, census.requests_parked);
  Add(&requests, {{"state", "leased"}}, census.requests_leased);
  Add(&requests, {{"state", "spooled"}}, census.requests_spooled);
  out.push_back(std::move(requests));

  MetricFamily results = NewFamily(
      "fetchfleet_coordinator_results_total",
      "Results workers returned that their jobs accepted, by outcome.",
      MetricType::Counter);
  for (int kind = 0; kind < v1::ErrorKind_ARRAYSIZE; ++kind) {
    if (counters.results[kind] == 0) continue;
    Add(&results, {{"outcome", OutcomeName(static_cast<v1::ErrorKind>(kind))}},
        counters.results[kind]);
  }
  out.push_back(std::move(results));

  auto counter = [&out](const char* name, const char* help, double value) {
    MetricFamily family = NewFamily(name, help, MetricType::Counter);
    Add(&family, {}, value);
    out.push_back(std::move(family));
  };
  counter("fetchfleet_coordinator_results_delivered_total",
          "Results received by Submit and Watch clients.",
          counters.results_delivered);
  counter("fetchfleet_coordinator_results_dropped_total",
          "Late results for leases that had already ended (their requests "
          "went elsewhere).",
          scheduler.dropped_results());
  counter("fetchfleet_coordinator_leases_expired_total",
          "Leases that outlived their deadline.", counters.leases_expired);
  counter("fetchfleet_coordinator_requests_requeued_total",
          "Requests put back in their job's queue (expired lease, worker "
          "lost or draining).",
          counters.requests_requeued);
  counter("fetchfleet_coordinator_worker_connections_total",
          "Worker streams accepted.", counters.workers_connected);
  counter("fetchfleet_coordinator_worker_ejections_total",
          "Times a worker was taken out of dispatch for stalling or failing "
          "alone.",
          scheduler.worker_ejections());
  counter("fetchfleet_coordinator_breaker_changes_total",
          "Breaker state changes workers reported.",
          scheduler.breaker_reports().changes());

  if (const JobStore* store = scheduler.store(); store != nullptr) {
    auto gauge = [&](const char* name, const char* help, double value) {
      MetricFamily family = NewFamily(name, help, MetricType::Gauge);
      Add(&family, {}, value);
      out.push_back(std::move(family));
    };
    gauge("fetchfleet_coordinator_store_bytes",
          "The job store's size on disk (database and WAL).",
          static_cast<double>(store->size_bytes()));
    gauge("fetchfleet_coordinator_store_queued_bytes",
          "Changes waiting for the job store's next commit.",
          static_cast<double>(store->queued_bytes()));
    gauge("fetchfleet_coordinator_store_writable",
          "1 while the job store's commits succeed; 0 while it cannot write "
          "(full disk, I/O error): no result is delivered then.",
          store->error().empty() ? 1 : 0);
    counter("fetchfleet_coordinator_store_commits_total",
            "Transactions the job store committed.", store->commits());
  }

  MetricFamily workers =
      NewFamily("fetchfleet_coordinator_workers",
                "Connected workers, by state.", MetricType::Gauge);
  Add(&workers, {{"state", "active"}}, census.workers_active);
  Add(&workers, {{"state", "draining"}}, census.workers_draining);
  Add(&workers, {{"state", "ejected"}}, census.workers_ejected);
  out.push_back(std::move(workers));

  // Per rate key, labelled keys only.
  std::set<std::string> labelled = KeyLabels(scheduler);
  PerKey limit(&labelled, false), achieved(&labelled, false),
      waiting(&labelled, false), paused(&labelled, true);
  for (const std::string& key : labelled) {
    waiting.Touch(key);
    achieved.Touch(key);
  }
  v1::LimitTable table = scheduler.ListLimits();
  for (const v1::KeyLimit& entry : table.limits()) {
    if (entry.per_second() > 0) limit.Put(entry.key(), entry.per_second());
    achieved.Put(entry.key(), entry.achieved_per_second());
    waiting.Put(entry.key(), static_cast<double>(entry.waiting()));
    paused.Put(entry.key(), static_cast<double>(entry.paused_ms()) / 1000.0);
  }
  struct Emitted {
    const char* name;
    const char* help;
    const PerKey* values;
  };
  for (const Emitted& e : {
           Emitted{"fetchfleet_rate_limit_per_second",
                   "The configured limit of each rate key.", &limit},
           Emitted{"fetchfleet_rate_limit_achieved_per_second",
                   "Requests started per second over the last 10 s.",
                   &achieved},
           Emitted{"fetchfleet_rate_limit_waiting",
                   "Requests held back waiting for the key now.", &waiting},
           Emitted{"fetchfleet_rate_limit_paused_seconds",
                   "What remains of an upstream's pause (Retry-After); "
                   "other: the longest.",
                   &paused},
       }) {
    MetricFamily family = NewFamily(e.name, e.help, MetricType::Gauge);
    e.values->Emit(&family);
    out.push_back(std::move(family));
  }

  // Breakers: state per labelled key (other: the worst, open above
  // half-open above closed), opens, and how many keys are in each state.
  // State values 0 closed, 1 open, 2 half-open; severities 0, 2, 1. The map
  // swaps open and half-open, so it is its own inverse: the same table turns
  // the largest severity back into a state.
  constexpr double kSeverity[3] = {0, 2, 1};
  PerKey severity(&labelled, true);
  std::map<std::string, double> opens;
  for (const v1::BreakerSetting& setting :
       scheduler.breaker_table().settings()) {
    if (labelled.count(setting.key()) > 0) {
      severity.Touch(setting.key());
      opens.try_emplace(setting.key(), 0.0);
    }
  }
  uint64_t by_state[3] = {0, 0, 0};
  for (const auto& [key, report] : scheduler.breaker_reports().reports()) {
    int s = std::clamp(static_cast<int>(report.event.state()), 0, 2);
    ++by_state[s];
    severity.Put(key, kSeverity[s]);
  }
  // Opens are counted apart from the reports (which a reset or a prune
  // forgets), so each series only grows; other is what no labelled key had.
  double labelled_opens = 0;
  for (const auto& [key, count] : scheduler.breaker_reports().opens()) {
    if (labelled.count(key) == 0) continue;
    opens[key] = static_cast<double>(count);
    labelled_opens += static_cast<double>(count);
  }
  opens["other"] =
      static_cast<double>(scheduler.breaker_reports().opens_total()) -
      labelled_opens;
  MetricFamily state_family = NewFamily(
      "fetchfleet_breaker_state",
      "Circuit breaker state per key: 0 closed, 1 open, 2 half-open (as "
      "workers last reported it; other: the worst of the rest).",
      MetricType::Gauge);
  severity.Emit(&state_family, [&](double v) {
    return kSeverity[std::clamp(static_cast<int>(v), 0, 2)];
  });
  out.push_back(std::move(state_family));
  MetricFamily opens_family = NewFamily(
      "fetchfleet_breaker_opened_total",
      "Times each key's breaker opened (trips and failed probes) since the "
      "coordinator started.",
      MetricType::Counter);
  for (const auto& [key, count] : opens)
    Add(&opens_family, {{"key", key}}, count);
  out.push_back(std::move(opens_family));
  MetricFamily breakers =
      NewFamily("fetchfleet_breakers",
                "Keys whose breaker workers have reported, by last state.",
                MetricType::Gauge);
  Add(&breakers, {{"state", "closed"}}, by_state[0]);
  Add(&breakers, {{"state", "open"}}, by_state[1]);
  Add(&breakers, {{"state", "half_open"}}, by_state[2]);
  out.push_back(std::move(breakers));
  return out;
}

// RpcInterceptor reports each RPC's status as it is sent.
class RpcInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcInterceptor(CoordinatorMetrics* metrics, const char* method)
      : metrics_(metrics), method_(method != nullptr ? method : "") {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_->OnRpc(method_, methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  CoordinatorMetrics* const metrics_;
  const std::string method_;
};

class RpcInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcInterceptorFactory(CoordinatorMetrics* metrics)
      : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcInterceptor(metrics_, info->method());
  }

 private:
  CoordinatorMetrics* const metrics_;
};

// AggregateFamily: registered twice (once per label), the same each time.
prometheus::Family<prometheus::Histogram>& AggregateFamily(
    prometheus::Registry& registry) {
  return prometheus::BuildHistogram()
      .Name("fetchfleet_gateway_aggregate_duration_seconds")
      .Help(
          "Aggregate calls from start to answer, by whether every required "
          "part succeeded.")
      .Register(registry);
}

}  // namespace

class CoordinatorMetrics::SchedulerCollector final
    : public prometheus::Collectable {
 public:
  SchedulerCollector(EventLoop* loop, const Scheduler* scheduler)
      : loop_(loop), scheduler_(scheduler) {}

  std::vector<MetricFamily> Collect() const override {
    const Scheduler* scheduler = scheduler_;
    // At most one census waits on the loop: when a stalled loop made the last
    // scrape give up, the next ones do not queue more behind it.
    std::optional<std::vector<MetricFamily>> census;
    if (!census_pending_->exchange(true)) {
      census = CallOnLoop<std::vector<MetricFamily>>(
          loop_,
          [scheduler, pending = census_pending_] {
            std::vector<MetricFamily> families = TakeCensus(*scheduler);
            pending->store(false);
            return families;
          },
          kCensusTimeout);
    }
    std::vector<MetricFamily> out =
        census ? *std::move(census) : std::vector<MetricFamily>();
    MetricFamily ok = NewFamily(
        "fetchfleet_coordinator_census_ok",
        "1 when this scrape read the scheduler; 0 when its loop did not "
        "answer within 2 s (the job, worker and key metrics are missing).",
        MetricType::Gauge);
    Add(&ok, {}, census ? 1 : 0);
    out.push_back(std::move(ok));
    return out;
  }

 private:
  EventLoop* const loop_;
  const Scheduler* const scheduler_;
  const std::shared_ptr<std::atomic<bool>> census_pending_ =
      std::make_shared<std::atomic<bool>>(false);
};

CoordinatorMetrics::CoordinatorMetrics(EventLoop* loop,
                                       const Scheduler* scheduler)
    : registry_(std::make_shared<prometheus::Registry>()),
      census_(std::make_shared<SchedulerCollector>(loop, scheduler)),
      rpcs_(prometheus::BuildCounter()
                .Name("fetchfleet_coordinator_rpcs_total")
                .Help("Finished RPCs by method and gRPC status code.")
                .Register(*registry_)),
      aggregate_ok_(
          AggregateFamily(*registry_).Add({{"ok", "true"}}, LatencyBuckets())),
      aggregate_failed_(
          AggregateFamily(*registry_).Add({{"ok", "false"}}, LatencyBuckets())),
      degraded_parts_(
          prometheus::BuildCounter()
              .Name("fetchfleet_gateway_degraded_parts_total")
              .Help("Optional Aggregate parts that failed and were replaced "
                    "by their fallback.")
              .Register(*registry_)
              .Add({})) {}

std::vector<std::shared_ptr<prometheus::Collectable>>
CoordinatorMetrics::collectables() const {
  return {registry_, census_};
}

void CoordinatorMetrics::OnRpc(absl::string_view method,
                               grpc::StatusCode code) {
  rpcs_.Add({{"method", MethodLabel(method)}, {"code", CodeName(code)}})
      .Increment();
}

void CoordinatorMetrics::OnAggregate(absl::Duration latency, bool ok,
                                     int degraded_parts) {
  (ok ? aggregate_ok_ : aggregate_failed_)
      .Observe(absl::ToDoubleSeconds(latency));
  if (degraded_parts > 0) degraded_parts_.Increment(degraded_parts);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
CoordinatorMetrics::RpcInterceptorFactory() {
  return std::make_unique<coordinator::RpcInterceptorFactory>(this);
}

}  // namespace fetchfleet::coordinator
