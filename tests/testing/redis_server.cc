#include "tests/testing/redis_server.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fetchfleet::testing {

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string UniqueKey(const std::string& prefix) {
  std::random_device rd;
  return absl::StrCat(prefix, "-", rd() % 1000000);
}

RedisServer::RedisServer() {
  const char* external = std::getenv("FETCHFLEET_TEST_REDIS");
  if (external != nullptr && *external != '\0') {
    external_ = true;
    url_ = external;
    // redis://[:password@]host:port[/db]: redis-cli needs host and port.
    absl::string_view rest = url_;
    absl::ConsumePrefix(&rest, "redis://");
    size_t at = rest.rfind('@');
    if (at != absl::string_view::npos) {
      // [user]:password (not percent-decoded: test passwords are plain).
      absl::string_view userinfo = rest.substr(0, at);
      size_t colon = userinfo.find(':');
      external_user_ = std::string(userinfo.substr(0, colon));
      if (colon != absl::string_view::npos)
        external_password_ = std::string(userinfo.substr(colon + 1));
    }
    rest = rest.substr(at == absl::string_view::npos ? 0 : at + 1);
    rest = rest.substr(0, rest.find('/'));
    std::pair<std::string, std::string> host_port =
        absl::StrSplit(rest, absl::MaxSplits(':', 1));
    host_ = host_port.first;
    if (!absl::SimpleAtoi(host_port.second, &port_)) port_ = 6379;
    return;
  }
  port_ = FreeLoopbackPort();
  url_ = absl::StrCat("redis://127.0.0.1:", port_);
  Start();
}

RedisServer::RedisServer(Options options) : options_(std::move(options)) {
  port_ = FreeLoopbackPort();
  url_ = absl::StrCat("redis://127.0.0.1:", port_);
  Start();
}

RedisServer::~RedisServer() { process_.reset(); }

void RedisServer::Start() {
  std::vector<std::string> argv = {"/usr/bin/redis-server",
                                   "--port",
                                   absl::StrCat(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--daemonize",
                                   "no"};
  if (!options_.requirepass.empty())
    argv.insert(argv.end(), {"--requirepass", options_.requirepass});
  // One config line per user: its words are the arguments up to the next --.
  for (const User& user : options_.users) {
    argv.insert(argv.end(),
                {"--user", user.name, "on", absl::StrCat(">", user.password),
                 "~*", "&*", "+@all"});
  }
  process_ = std::make_unique<Subprocess>(std::move(argv));
  auto ready = process_->WaitForOutput("Ready to accept connections");
  ASSERT_TRUE(ready.ok()) << ready.status() << "\n" << process_->Stdout();
}

void RedisServer::Kill() {
  ASSERT_FALSE(external_) << "cannot kill an external Redis";
  process_->Signal(SIGKILL);
  process_->Wait();
}

void RedisServer::Restart() {
  ASSERT_FALSE(external_) << "cannot restart an external Redis";
  Start();
}

std::string RedisServer::Cli(const std::vector<std::string>& args) const {
  // -h/-p and the password as flags: redis-cli 7.0's -u takes no password
  // for the default user (":password@").
  std::vector<std::string> argv = {"/usr/bin/redis-cli", "-h", host_, "-p",
                                   absl::StrCat(port_)};
  const std::string& password =
      external_ ? external_password_ : options_.requirepass;
  if (external_ && !external_user_.empty())
    argv.insert(argv.end(), {"--user", external_user_});
  if (!password.empty())
    argv.insert(argv.end(), {"-a", password, "--no-auth-warning"});
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult result = RunCommand(argv);
  return result.out;
}

}  // namespace fetchfleet::testing
