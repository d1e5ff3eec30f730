// The security issue's trials against a coordinator started as the README says
// for a networked deployment (a non-loopback listen address, TLS, a token
// file, mTLS for workers), with real processes and certificates this test
// makes: every RPC × every role, job ownership, worker certificates from the
// right and the wrong CA, an outsider's attempt to take the fleet over, tokens
// and certificates rotated without a restart, and no secret in any log.
#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/client_credentials.h"
#include "common/wire_limits.h"
#include "coordinator/access_file.h"
#include "coordinator/access_policy.h"
#include "proto/fetchfleet.grpc.pb.h"
#include "tests/integration/fleet.h"
#include "tests/integration/tmux.h"
#include "tests/testing/http_test_server.h"
#include "tests/testing/test_ca.h"

namespace fetchfleet::testing {
namespace {

using coordinator::TokenDigest;
using nlohmann::json;

constexpr char kServerName[] = "coordinator.test";

// Every secret this test hands out starts with "ffsecret" (the suite's log
// check, tests/integration/no_secrets.sh, looks for it).
std::string NewSecret(const std::string& what) {
  absl::BitGen gen;
  return absl::StrFormat("ffsecret-%s-%016x%016x", what,
                         absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

std::string WriteFile(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
  }
  std::filesystem::rename(tmp, path);  // atomic, as a Secret update is
  return path;
}

// SecureFleet: CAs, certificates, tokens and a coordinator that uses them.
class SecureFleet {
 public:
  SecureFleet()
      : server_ca_("fleet server CA"),
        worker_ca_("fleet worker CA"),
        dir_(MakeDir()) {
    EXPECT_TRUE(server_ca_.ok()) << server_ca_.error();
    EXPECT_TRUE(worker_ca_.ok()) << worker_ca_.error();
    server_cert_ = server_ca_.Issue("coordinator", {kServerName});
    // The coordinator reads its own copies, so a test can rotate them.
    std::filesystem::copy_file(server_cert_.cert, dir_ + "/server.pem");
    std::filesystem::copy_file(server_cert_.key, dir_ + "/server.key");
    for (const char* role : {"submit", "read", "admin", "worker"})
      tokens_[role] = NewSecret(role);
    tokens_["bob"] = NewSecret("bob");
    WriteAuthFile({});
  }

  ~SecureFleet() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // WriteAuthFile writes the token file: alice (submit), reader, ops (admin),
  // a worker token, bob (submit), plus `extra` lines.
  void WriteAuthFile(const std::vector<std::string>& extra,
                     bool with_bob = true) {
    std::string text = "# name roles credential\n";
    absl::StrAppend(
        &text, "alice submit sha256:", TokenDigest(tokens_["submit"]), "\n");
    absl::StrAppend(&text, "reader read sha256:", TokenDigest(tokens_["read"]),
                    "\n");
    absl::StrAppend(&text, "ops admin sha256:", TokenDigest(tokens_["admin"]),
                    "\n");
    absl::StrAppend(
        &text, "wtoken worker sha256:", TokenDigest(tokens_["worker"]), "\n");
    if (with_bob) {
      absl::StrAppend(&text, "bob submit sha256:", TokenDigest(tokens_["bob"]),
                      "\n");
    }
    for (const std::string& line : extra) absl::StrAppend(&text, line, "\n");
    WriteFile(auth_file(), text);
  }

  // Start runs the coordinator as the README's networked deployment does.
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {BinaryPath("fetchfleet-coordinator"),
                                     "--listen",
                                     "0.0.0.0:0",
                                     "--heartbeat-interval",
                                     "200ms",
                                     "--tls-cert",
                                     dir_ + "/server.pem",
                                     "--tls-key",
                                     dir_ + "/server.key",
                                     "--tls-refresh",
                                     "1s",
                                     "--auth-file",
                                     auth_file(),
                                     "--worker-ca",
                                     worker_ca_.ca_file()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coordinator_ = std::make_unique<Subprocess>(argv);
    auto port = coordinator_->WaitForPort();
    ASSERT_TRUE(port.ok()) << port.status() << coordinator_->Stderr();
    address_ = absl::StrCat("127.0.0.1:", *port);
  }

  std::string auth_file() const { return dir_ + "/tokens"; }
  const std::string& dir() const { return dir_; }
  const std::string& address() const { return address_; }
  TestCa& server_ca() { return server_ca_; }
  TestCa& worker_ca() { return worker_ca_; }
  Subprocess* coordinator() { return coordinator_.get(); }
  const std::string& token(const std::string& who) { return tokens_[who]; }

  std::string TokenFile(const std::string& who) {
    return WriteFile(absl::StrCat(dir_, "/", who, ".token"), tokens_[who]);
  }

  // Channel: a TLS channel trusting `ca` (the server CA by default), with
  // `token` (empty: none) and an optional client certificate.
  std::shared_ptr<grpc::Channel> Channel(const std::string& token,
                                         const TestCertificate* cert = nullptr,
                                         const std::string& ca = "") {
    ClientSecurity security;
    security.tls = true;
    security.ca_file = ca.empty() ? server_ca_.ca_file() : ca;
    security.server_name = kServerName;
    if (cert != nullptr) {
      security.cert_file = cert->cert;
      security.key_file = cert->key;
    }
    if (!token.empty()) {
      security.token_file = absl::StrCat(dir_, "/raw-", ++files_, ".token");
      WriteFile(security.token_file, token);
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(kMaxReceiveMessageBytes);
    auto channel = DialCoordinator(address_, security, args);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return *channel;
  }

  // Fetchctl: argv for fetchctl COMMAND with TLS and `who`'s token ("" =
  // none), then `args`.
  std::vector<std::string> Fetchctl(const std::string& command,
                                    const std::string& who,
                                    std::vector<std::string> args = {}) {
    std::vector<std::string> argv = {BinaryPath("fetchctl"),
                                     "--coordinator",
                                     address_,
                                     command,
                                     "--tls-ca",
                                     server_ca_.ca_file(),
                                     "--tls-server-name",
                                     kServerName};
    if (!who.empty()) {
      argv.push_back("--token-file");
      argv.push_back(TokenFile(who));
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Worker: argv for a worker with `cert` (nullptr: none).
  std::vector<std::string> Worker(const std::string& name,
                                  const TestCertificate* cert) {
    std::vector<std::string> argv = {BinaryPath("fetchfleet-worker"),
                                     "--coordinator",
                                     address_,
                                     "--name",
                                     name,
                                     "--allow-cidr",
                                     "127.0.0.0/8",
                                     "--tls-ca",
                                     server_ca_.ca_file(),
                                     "--tls-server-name",
                                     kServerName};
    if (cert != nullptr) {
      argv.insert(argv.end(),
                  {"--tls-cert", cert->cert, "--tls-key", cert->key});
    }
    return argv;
  }

  // Logs: everything the coordinator wrote so far.
  std::string CoordinatorLog() const { return coordinator_->Stderr(); }

 private:
  static std::string MakeDir() {
    char pattern[] = "/tmp/fetchfleet-security-XXXXXX";
    return ::mkdtemp(pattern);
  }

  TestCa server_ca_;
  TestCa worker_ca_;
  std::string dir_;
  TestCertificate server_cert_;
  std::map<std::string, std::string> tokens_;
  std::unique_ptr<Subprocess> coordinator_;
  std::string address_;
  int files_ = 0;
};

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// The RPCs, in the order of the table below (coordinator/access_policy.h).
using Call = coordinator::Rpc;
constexpr auto& kCalls = coordinator::kAllRpcs;

// Make makes one call with harmless arguments and returns its status.
grpc::Status Make(const std::shared_ptr<grpc::Channel>& channel, Call call) {
  auto jobs = v1::JobService::NewStub(channel);
  auto admin = v1::AdminService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(3)));
  v1::JobRef ref;
  ref.set_job_id("j-no-such-job");
  v1::JobStatus job_status;
  switch (call) {
    case Call::kSubmit: {
      auto stream = jobs->Submit(&context);
      v1::SubmitRequest first;
      first.mutable_options()->set_max_attempts(1);
      first.add_lines("http://127.0.0.1:9/never-fetched-input-is-empty");
      // An empty job is enough: send options only.
      first.clear_lines();
      stream->Write(first);
      stream->WritesDone();
      v1::JobEvent event;
      while (stream->Read(&event)) {
      }
      return stream->Finish();
    }
    case Call::kWatch: {
      v1::WatchRequest request;
      request.set_job_id("j-no-such-job");
      auto stream = jobs->Watch(&context, request);
      v1::JobEvent event;
      while (stream->Read(&event)) {
      }
      return stream->Finish();
    }
    case Call::kGetJob:
      return jobs->GetJob(&context, ref, &job_status);
    case Call::kListJobs: {
      v1::ListJobsResponse response;
      return jobs->ListJobs(&context, v1::ListJobsRequest(), &response);
    }
    case Call::kCancelJob:
      return jobs->CancelJob(&context, ref, &job_status);
    case Call::kConnect: {
      // An admitted worker's stream stays open: the deadline ends it.
      context.set_deadline(In(absl::Seconds(1)));
      auto workers = v1::WorkerService::NewStub(channel);
      auto stream = workers->Connect(&context);
      v1::WorkerMessage hello;
      hello.set_name("table-test");
      stream->Write(hello);
      v1::CoordinatorMessage message;
      while (stream->Read(&message)) {
      }
      return stream->Finish();
    }
    case Call::kListWorkers: {
      v1::ListWorkersResponse response;
      return admin->ListWorkers(&context, v1::ListWorkersRequest(), &response);
    }
    case Call::kListLimits: {
      v1::LimitTable response;
      return admin->ListLimits(&context, v1::ListLimitsRequest(), &response);
    }
    case Call::kSetLimit: {
      v1::SetLimitRequest request;
      request.set_key("table.example");
      request.set_per_second(100);
      v1::KeyLimit response;
      return admin->SetLimit(&context, request, &response);
    }
    case Call::kDeleteLimit: {
      v1::DeleteLimitRequest request;
      request.set_key("table.example");
      v1::KeyLimit response;
      return admin->DeleteLimit(&context, request, &response);
    }
    case Call::kListBreakers: {
      v1::ListBreakersResponse response;
      return admin->ListBreakers(&context, v1::ListBreakersRequest(),
                                 &response);
    }
    case Call::kSetBreaker: {
      v1::SetBreakerRequest request;
      request.set_key("table.example");
      v1::BreakerInfo response;
      return admin->SetBreaker(&context, request, &response);
    }
    case Call::kResetBreaker: {
      v1::BreakerRef request;
      request.set_key("table.example");
      v1::BreakerInfo response;
      return admin->ResetBreaker(&context, request, &response);
    }
    case Call::kAggregate: {
      auto gateway = v1::GatewayService::NewStub(channel);
      v1::AggregateRequest request;
      request.set_json(R"({"parts": []})");  // refused as empty once admitted
      v1::AggregateResponse response;
      return gateway->Aggregate(&context, request, &response);
    }
  }
  return grpc::Status(grpc::StatusCode::INTERNAL, "unreachable");
}

// Outcome: U refused as unauthenticated, D permission denied, A admitted
// (any other status: the call got past the check).
char Outcome(const grpc::Status& status) {
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) return 'U';
  if (status.error_code() == grpc::StatusCode::PERMISSION_DENIED) return 'D';
  return 'A';
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { fleet_.Start(); }
  SecureFleet fleet_;
};

TEST_F(SecurityTest, EachCallerMakesExactlyTheCallsItsRolesAllow) {
  TestCa rogue_ca("rogue CA");
  TestCertificate worker_cert =
      fleet_.worker_ca().Issue("worker-a", {"worker-a"});
  TestCertificate rogue_cert = rogue_ca.Issue("worker-a", {"worker-a"});
  TestCertificate server_ca_cert =  // right name, CA of servers not workers
      fleet_.server_ca().Issue("worker-a", {"worker-a"});
  struct Caller {
    std::string name;
    std::shared_ptr<grpc::Channel> channel;
    // Per call, in kCalls' order: Submit Watch GetJob ListJobs CancelJob
    // Connect ListWorkers ListLimits SetLimit DeleteLimit ListBreakers
    // SetBreaker ResetBreaker Aggregate.
    std::string want;
  };
  std::vector<Caller> callers = {
      {"no credential", fleet_.Channel(""), "UUUUUUUUUUUUUU"},
      {"unknown token", fleet_.Channel(NewSecret("forged")), "UUUUUUUUUUUUUU"},
      {"submit", fleet_.Channel(fleet_.token("submit")), "AAAAADDDDDDDDA"},
      {"read", fleet_.Channel(fleet_.token("read")), "DAAADDAADDADDD"},
      {"admin", fleet_.Channel(fleet_.token("admin")), "DAAAADAAAAAAAD"},
      // With --worker-ca, a worker proves itself by certificate only.
      {"worker token", fleet_.Channel(fleet_.token("worker")),
       "DDDDDDDDDDDDDD"},
      {"worker certificate", fleet_.Channel("", &worker_cert),
       "DDDDDADDDDDDDD"},
      {"certificate from another CA", fleet_.Channel("", &rogue_cert),
       "UUUUUUUUUUUUUU"},
      {"certificate from the server CA", fleet_.Channel("", &server_ca_cert),
       "UUUUUUUUUUUUUU"},
  };
  for (const Caller& caller : callers) {
    std::string got;
    std::string detail;
    for (Call call : kCalls) {
      grpc::Status status = Make(caller.channel, call);
      got += Outcome(status);
      absl::StrAppend(&detail, "\n  ", coordinator::RpcName(call), ": ",
                      status.error_code(), " ", status.error_message());
    }
    EXPECT_EQ(got, caller.want) << caller.name << detail;
  }
  // A refusal says what to do.
  grpc::Status anonymous = Make(fleet_.Channel(""), Call::kListJobs);
  EXPECT_NE(anonymous.error_message().find("no credential"), std::string::npos)
      << anonymous.error_message();
  grpc::Status reader =
      Make(fleet_.Channel(fleet_.token("read")), Call::kSetLimit);
  EXPECT_NE(reader.error_message().find("reader (token) holds role(s) read; "
                                        "this call needs admin"),
            std::string::npos)
      << reader.error_message();
  grpc::Status rogue = Make(fleet_.Channel("", &rogue_cert), Call::kConnect);
  EXPECT_NE(rogue.error_message().find("--worker-ca"), std::string::npos)
      << rogue.error_message();
}

TEST_F(SecurityTest, JobsBelongToTheirSubmitter) {
  HttpTestServer target;
  TestCertificate cert = fleet_.worker_ca().Issue("worker-a", {"worker-a"});
  Subprocess worker(fleet_.Worker("w1", &cert));
  ASSERT_TRUE(fleet_.coordinator()->WaitForOutput("worker worker-a (").ok());

  // alice's job waits on a slow URL, so it is still running while others try.
  std::string input = WriteTempFile(target.Url("/delay/4000") + "\n");
  CommandResult submitted =
      RunCommand(fleet_.Fetchctl("submit", "submit", {"--detach", input}));
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job_id(absl::StripAsciiWhitespace(submitted.out));
  ASSERT_FALSE(job_id.empty());

  // bob (another submitter) can neither see, watch nor cancel it.
  for (const char* command : {"status", "cancel", "watch"}) {
    CommandResult bob = RunCommand(fleet_.Fetchctl(command, "bob", {job_id}));
    EXPECT_EQ(bob.exit_code, 2) << command << ": " << bob.out << bob.err;
    EXPECT_NE(bob.err.find("belongs to another user"), std::string::npos)
        << command << ": " << bob.err;
  }
  CommandResult bob_jobs = RunCommand(fleet_.Fetchctl("jobs", "bob"));
  EXPECT_EQ(bob_jobs.exit_code, 0) << bob_jobs.err;
  EXPECT_EQ(bob_jobs.out.find(job_id), std::string::npos) << bob_jobs.out;

  // The reader sees it, and whose it is, but may not cancel it.
  CommandResult status =
      RunCommand(fleet_.Fetchctl("status", "read", {job_id}));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("owner:      alice"), std::string::npos)
      << status.out;
  CommandResult reader_cancel =
      RunCommand(fleet_.Fetchctl("cancel", "read", {job_id}));
  EXPECT_EQ(reader_cancel.exit_code, 2) << reader_cancel.err;

  // alice lists her job; admin cancels it.
  CommandResult alice_jobs = RunCommand(fleet_.Fetchctl("jobs", "submit"));
  EXPECT_NE(alice_jobs.out.find(job_id), std::string::npos) << alice_jobs.out;
  EXPECT_NE(alice_jobs.out.find("alice"), std::string::npos) << alice_jobs.out;
  CommandResult cancelled =
      RunCommand(fleet_.Fetchctl("cancel", "admin", {job_id}));
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_NE(fleet_.CoordinatorLog().find("of alice cancelled by ops"),
            std::string::npos);
}

TEST_F(SecurityTest, OnlyWorkersWithACertificateFromTheWorkerCaRegister) {
  HttpTestServer target;
  TestCa rogue_ca("rogue CA");
  TestCertificate good = fleet_.worker_ca().Issue("worker-a", {"worker-a"});
  TestCertificate rogue = rogue_ca.Issue("worker-b", {"worker-b"});
  Subprocess no_cert(fleet_.Worker("no-cert", nullptr));
  Subprocess wrong_ca(fleet_.Worker("wrong-ca", &rogue));
  Subprocess worker(fleet_.Worker("claimed-name", &good));
  // The worker is named by its certificate, not by what it claims.
  ASSERT_TRUE(fleet_.coordinator()
                  ->WaitForOutput("worker worker-a/claimed-name (")
                  .ok())
      << fleet_.CoordinatorLog();
  ASSERT_TRUE(no_cert.WaitForOutput("no credential").ok()) << no_cert.Stderr();
  ASSERT_TRUE(wrong_ca.WaitForOutput("not accepted").ok()) << wrong_ca.Stderr();

  CommandResult workers = RunCommand(fleet_.Fetchctl("workers", "read"));
  ASSERT_EQ(workers.exit_code, 0) << workers.err;
  EXPECT_NE(workers.out.find("worker-a/claimed-name"), std::string::npos)
      << workers.out;
  EXPECT_EQ(workers.out.find("no-cert"), std::string::npos) << workers.out;
  EXPECT_EQ(workers.out.find("wrong-ca"), std::string::npos) << workers.out;
  EXPECT_EQ(workers.out.find("worker-b"), std::string::npos) << workers.out;

  // Work goes to the certified worker only: 50 requests, each once, with a
  // secret header that must not reach any log.
  std::string user_secret = NewSecret("user-header");
  std::string lines;
  for (int i = 0; i < 50; ++i) {
    json line = {{"id", absl::StrCat("r", i)},
                 {"url", target.Url(i % 10 == 0 ? "/status/500" : "/echo")},
                 {"headers",
                  {{"Authorization", "Bearer " + user_secret},
                   {"Cookie", "session=" + user_secret}}}};
    lines += line.dump() + "\n";
  }
  CommandResult run = RunCommand(fleet_.Fetchctl(
      "submit", "submit", {"--max-attempts", "2", WriteTempFile(lines)}));
  std::vector<json> results = ParseResults(run.out);
  std::set<std::string> ids;
  for (const json& r : results) ids.insert(r.value("id", ""));
  EXPECT_EQ(results.size(), 50u) << run.err;
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(worker.Stderr().find(user_secret), std::string::npos);
  EXPECT_EQ(fleet_.CoordinatorLog().find(user_secret), std::string::npos);
}

// fetchctl top reads workers, limits, breakers and jobs: the reader may, a
// submitter (no read role) is refused with the message every command prints,
// in a terminal as without one, and the terminal is left as it was.
TEST_F(SecurityTest, TopNeedsTheReadRoleAndSaysSoLikeEveryCommand) {
  CommandResult reader =
      RunCommand(fleet_.Fetchctl("top", "read", {"--interval", "100ms"}));
  EXPECT_EQ(reader.exit_code, 0) << reader.err;
  EXPECT_NE(reader.out.find("WORKERS (0)"), std::string::npos) << reader.out;

  CommandResult workers = RunCommand(fleet_.Fetchctl("workers", "submit"));
  ASSERT_EQ(workers.exit_code, 2) << workers.err;
  EXPECT_NE(workers.err.find("error: permission denied: "), std::string::npos)
      << workers.err;
  CommandResult top = RunCommand(fleet_.Fetchctl("top", "submit"));
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_EQ(top.err, workers.err);
  EXPECT_EQ(top.out, "");

  TmuxSession tmux;
  std::string command;
  for (const std::string& arg : fleet_.Fetchctl("top", "submit"))
    absl::StrAppend(&command, "'", arg, "' ");
  const std::string& dir = tmux.dir();
  ASSERT_EQ(tmux.Start(absl::StrCat(command, "2> ", dir, "/err; echo $? > ",
                                    dir, "/rc.tmp; mv ", dir, "/rc.tmp ", dir,
                                    "/rc; exec sleep 600"),
                       100, 30)
                .exit_code,
            0);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (!std::filesystem::exists(dir + "/rc") && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(50));
  std::ifstream rc(dir + "/rc"), err(dir + "/err");
  std::string code((std::istreambuf_iterator<char>(rc)), {});
  std::string text((std::istreambuf_iterator<char>(err)), {});
  EXPECT_EQ(code, "2\n");
  EXPECT_EQ(text, workers.err);
  EXPECT_EQ(tmux.Format("#{alternate_on} #{cursor_flag}"), "0 1");
}

// The outsider trial of the issue, replayed: no credential, then a client's
// credential used to pose as a worker.
TEST_F(SecurityTest, TheOutsiderTrialFailsAtEveryStep) {
  HttpTestServer target;
  TestCertificate cert = fleet_.worker_ca().Issue("worker-a", {"worker-a"});
  Subprocess worker(fleet_.Worker("w1", &cert));
  ASSERT_TRUE(fleet_.coordinator()->WaitForOutput("worker worker-a (").ok());
  std::string lines;
  for (int i = 0; i < 20; ++i)
    lines += target.Url(absl::StrCat("/delay/300?", i)) + "\n";
  CommandResult submitted = RunCommand(fleet_.Fetchctl(
      "submit", "submit",
      {"--detach", "--concurrency", "2", WriteTempFile(lines)}));
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  std::string job_id(absl::StripAsciiWhitespace(submitted.out));

  // Plaintext to the TLS port gets nowhere.
  CommandResult plain = RunCommand(
      {BinaryPath("fetchctl"), "--coordinator", fleet_.address(), "jobs"});
  EXPECT_EQ(plain.exit_code, 3) << plain.err;
  // TLS without a credential: every step refused.
  for (std::vector<std::string> step : {std::vector<std::string>{"jobs"},
                                        {"cancel", job_id},
                                        {"limits", "set", "example.com", "1/s"},
                                        {"breakers", "reset", "example.com"},
                                        {"watch", job_id}}) {
    std::string command = step[0];
    step.erase(step.begin());
    CommandResult r = RunCommand(fleet_.Fetchctl(command, "", step));
    EXPECT_EQ(r.exit_code, 2) << command << ": " << r.err;
    EXPECT_NE(r.err.find("not authenticated"), std::string::npos) << r.err;
  }
  // Registering as a worker, and forging a completion, with no credential and
  // with a submitter's token.
  for (const std::string& token : {std::string(), fleet_.token("submit")}) {
    auto stub = v1::WorkerService::NewStub(fleet_.Channel(token));
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(5)));
    auto stream = stub->Connect(&context);
    v1::WorkerMessage hello;
    hello.set_name("w1");  // the real worker's name
    hello.set_credit(64);
    stream->Write(hello);
    v1::WorkerMessage forged;
    v1::Completion* completion = forged.add_completions();
    completion->mutable_result()->set_id("r0");
    completion->mutable_result()->set_ok(true);
    stream->Write(forged);
    v1::CoordinatorMessage message;
    int assignments = 0;
    while (stream->Read(&message)) assignments += message.assignments_size();
    grpc::Status status = stream->Finish();
    EXPECT_EQ(assignments, 0);
    EXPECT_TRUE(status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                status.error_code() == grpc::StatusCode::PERMISSION_DENIED)
        << status.error_code() << " " << status.error_message();
  }
  // alice's job was untouched: 20 real results, none cancelled or forged.
  CommandResult watched =
      RunCommand(fleet_.Fetchctl("watch", "submit", {job_id}));
  EXPECT_EQ(watched.exit_code, 0) << watched.err;
  std::vector<json> results = ParseResults(watched.out);
  EXPECT_EQ(results.size(), 20u);
  for (const json& r : results) {
    EXPECT_TRUE(r.value("ok", false)) << r.dump();
    EXPECT_EQ(r.value("status", 0), 200) << r.dump();
  }
}

TEST_F(SecurityTest, TokensAreReloadedWithoutARestart) {
  std::string carol = NewSecret("carol");
  auto carol_channel = fleet_.Channel(carol);
  auto bob_channel = fleet_.Channel(fleet_.token("bob"));
  EXPECT_EQ(Outcome(Make(carol_channel, Call::kListJobs)), 'U');
  EXPECT_EQ(Outcome(Make(bob_channel, Call::kListJobs)), 'A');
  // carol in, bob out; the next calls see it within a few seconds.
  fleet_.WriteAuthFile(
      {absl::StrCat("carol submit sha256:", TokenDigest(carol))},
      /*with_bob=*/false);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (Outcome(Make(carol_channel, Call::kListJobs)) != 'A' &&
         absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Outcome(Make(carol_channel, Call::kListJobs)), 'A');
  EXPECT_EQ(Outcome(Make(bob_channel, Call::kListJobs)), 'U');
  // A broken edit keeps the last good table (and says so).
  WriteFile(fleet_.auth_file(), "carol submit sha256:not-hex\n");
  absl::SleepFor(absl::Milliseconds(1100));  // past the re-check interval
  EXPECT_EQ(Outcome(Make(carol_channel, Call::kListJobs)), 'A');
  EXPECT_TRUE(fleet_.coordinator()
                  ->WaitForOutput("sha256: wants 64 hex digits (the token's "
                                  "SHA-256); keeping the last version")
                  .ok())
      << fleet_.CoordinatorLog();
}

TEST_F(SecurityTest, TheServerCertificateRotatesWithoutARestart) {
  TestCa next_ca("next server CA");
  TestCertificate next = next_ca.Issue("coordinator", {kServerName});
  // Before: only clients trusting the first CA get in.
  grpc::Status before =
      Make(fleet_.Channel(fleet_.token("read"), nullptr, next_ca.ca_file()),
           Call::kListJobs);
  EXPECT_EQ(before.error_code(), grpc::StatusCode::UNAVAILABLE)
      << before.error_message();
  // cert-manager writes the new pair in place; half-way, the key does not
  // match the certificate, and the coordinator says so.
  std::filesystem::copy_file(next.key, fleet_.dir() + "/server.key.new");
  std::filesystem::rename(fleet_.dir() + "/server.key.new",
                          fleet_.dir() + "/server.key");
  EXPECT_TRUE(fleet_.coordinator()
                  ->WaitForOutput("new TLS connections fail until the "
                                  "certificate and its key match again")
                  .ok())
      << fleet_.CoordinatorLog();
  std::filesystem::copy_file(next.cert, fleet_.dir() + "/server.pem.new");
  std::filesystem::rename(fleet_.dir() + "/server.pem.new",
                          fleet_.dir() + "/server.pem");
  absl::Time deadline = absl::Now() + absl::Seconds(15);
  grpc::Status after;
  do {
    absl::SleepFor(absl::Milliseconds(250));
    after =
        Make(fleet_.Channel(fleet_.token("read"), nullptr, next_ca.ca_file()),
             Call::kListJobs);
  } while (!after.ok() && absl::Now() < deadline);
  EXPECT_TRUE(after.ok()) << after.error_message();
  EXPECT_TRUE(fleet_.coordinator()
                  ->WaitForOutput("--tls-cert/--tls-key match again")
                  .ok());
  // New connections now present the new certificate: the old CA fails.
  grpc::Status old =
      Make(fleet_.Channel(fleet_.token("read")), Call::kListJobs);
  EXPECT_EQ(old.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(fleet_.coordinator()->Running());
}

TEST_F(SecurityTest, ClientsCheckTheCoordinatorsName) {
  // The right CA but another name: the certificate does not vouch for it.
  ClientSecurity security;
  security.ca_file = fleet_.server_ca().ca_file();
  security.server_name = "impostor.test";
  auto channel = DialCoordinator(fleet_.address(), security, {});
  ASSERT_TRUE(channel.ok());
  EXPECT_EQ(Make(*channel, Call::kListJobs).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  CommandResult r =
      RunCommand({BinaryPath("fetchctl"), "--coordinator", fleet_.address(),
                  "jobs", "--tls-ca", fleet_.server_ca().ca_file(),
                  "--tls-server-name", "impostor.test"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("check --tls-ca and --tls-server-name"),
            std::string::npos)
      << r.err;
}

TEST(ClientCertificateTest, AClientCaIdentityGetsTheRolesOfItsCertLine) {
  SecureFleet fleet;
  TestCa client_ca("fleet client CA");
  fleet.WriteAuthFile({"ci-bot submit,read cert"});
  fleet.Start({"--client-ca", client_ca.ca_file()});
  TestCertificate ci = client_ca.Issue("ci-bot", {"ci-bot"});
  TestCertificate stranger = client_ca.Issue("stranger", {"stranger"});
  auto ci_channel = fleet.Channel("", &ci);
  EXPECT_EQ(Outcome(Make(ci_channel, Call::kListJobs)), 'A');
  EXPECT_EQ(Outcome(Make(ci_channel, Call::kListWorkers)), 'A');  // read
  EXPECT_EQ(Outcome(Make(ci_channel, Call::kSetLimit)), 'D');     // no admin
  EXPECT_EQ(Outcome(Make(ci_channel, Call::kConnect)), 'D');      // no worker
  // Signed by the client CA, but the auth file gives it no role.
  grpc::Status none = Make(fleet.Channel("", &stranger), Call::kListJobs);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(none.error_message().find("stranger (certificate) holds role(s) "
                                      "none"),
            std::string::npos)
      << none.error_message();
  // A client-CA certificate is not a worker's.
  TestCertificate posing = client_ca.Issue("worker-a", {"worker-a"});
  EXPECT_EQ(Outcome(Make(fleet.Channel("", &posing), Call::kConnect)), 'D');
}

TEST(SecurityDefaultsTest, ANetworkAddressNeedsTlsAndAuthenticationOrInsecure) {
  CommandResult refused = RunCommand(
      {BinaryPath("fetchfleet-coordinator"), "--listen", "0.0.0.0:0"}, "",
      absl::Seconds(20));
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("refusing to listen on 0.0.0.0:0 without TLS "
                             "(--tls-cert, --tls-key) and authentication"),
            std::string::npos)
      << refused.err;

  TestCa ca("test CA");
  TestCertificate cert = ca.Issue("coordinator", {kServerName});
  CommandResult tls_only =
      RunCommand({BinaryPath("fetchfleet-coordinator"), "--listen", "0.0.0.0:0",
                  "--tls-cert", cert.cert, "--tls-key", cert.key},
                 "", absl::Seconds(20));
  EXPECT_EQ(tls_only.exit_code, 1);
  EXPECT_NE(tls_only.err.find("without authentication"), std::string::npos)
      << tls_only.err;

  // A certificate and a key that do not belong together stop it at start.
  TestCertificate other = ca.Issue("other", {"other.test"});
  CommandResult mismatched = RunCommand(
      {BinaryPath("fetchfleet-coordinator"), "--listen", "127.0.0.1:0",
       "--tls-cert", cert.cert, "--tls-key", other.key},
      "", absl::Seconds(20));
  EXPECT_EQ(mismatched.exit_code, 1);
  EXPECT_NE(mismatched.err.find("is not the private key of the certificate"),
            std::string::npos)
      << mismatched.err;

  Subprocess insecure({BinaryPath("fetchfleet-coordinator"), "--listen",
                       "0.0.0.0:0", "--insecure"});
  ASSERT_TRUE(insecure.WaitForPort().ok()) << insecure.Stderr();
  EXPECT_NE(insecure.Stderr().find("--insecure: this coordinator serves "
                                   "0.0.0.0 without authentication"),
            std::string::npos)
      << insecure.Stderr();

  // fetchctl will not send a token in the clear to another host.
  std::string token_file = WriteTempFile(NewSecret("token"));
  CommandResult clear =
      RunCommand({BinaryPath("fetchctl"), "--coordinator", "192.0.2.1:7070",
                  "jobs", "--token-file", token_file});
  EXPECT_EQ(clear.exit_code, 2);
  EXPECT_NE(clear.err.find("refusing to send a token in the clear"),
            std::string::npos)
      << clear.err;
}

TEST_F(SecurityTest, AbuseLimitsPerIdentity) {
  SecureFleet limited;
  limited.Start({"--user-max-jobs", "1", "--user-max-requests-per-hour", "30"});
  HttpTestServer target;
  std::string slow = WriteTempFile(target.Url("/delay/3000") + "\n");
  CommandResult first =
      RunCommand(limited.Fetchctl("submit", "submit", {"--detach", slow}));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  // A second job at once is refused; another identity is not affected.
  CommandResult second =
      RunCommand(limited.Fetchctl("submit", "submit", {"--detach", slow}));
  EXPECT_EQ(second.exit_code, 2) << second.err;
  EXPECT_NE(second.err.find("alice already has 1 jobs running "
                            "(--user-max-jobs 1)"),
            std::string::npos)
      << second.err;
  CommandResult bob =
      RunCommand(limited.Fetchctl("submit", "bob", {"--detach", slow}));
  EXPECT_EQ(bob.exit_code, 0) << bob.err;
  // 40 lines pass bob's hourly 30 (1 used): refused with the reason.
  std::string lines;
  for (int i = 0; i < 40; ++i) lines += target.Url("/") + "\n";
  CommandResult cancel = RunCommand(limited.Fetchctl(
      "cancel", "bob", {std::string(absl::StripAsciiWhitespace(bob.out))}));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  CommandResult big =
      RunCommand(limited.Fetchctl("submit", "bob", {WriteTempFile(lines)}));
  EXPECT_EQ(big.exit_code, 2) << big.err;
  EXPECT_NE(big.err.find("--user-max-requests-per-hour 30; the job is "
                         "cancelled"),
            std::string::npos)
      << big.err;
  // The refused job ended: cancelled, its input closed (no zombie).
  size_t at = big.err.find("job j-");
  ASSERT_NE(at, std::string::npos) << big.err;
  std::string refused_id =
      big.err.substr(at + 4, big.err.find('\n', at) - at - 4);
  CommandResult status =
      RunCommand(limited.Fetchctl("status", "bob", {refused_id}));
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("state:      cancelled"), std::string::npos)
      << status.out;
  EXPECT_EQ(status.out.find("input still arriving"), std::string::npos)
      << status.out;
}

}  // namespace
}  // namespace fetchfleet::testing
