// RedisServer: a real redis-server for tests, on a free loopback port, without
// persistence; or, when FETCHFLEET_TEST_REDIS is set (e.g.
// redis://127.0.0.1:6379 for a Redis in Docker), that server. Tests keep to
// their own keys (see UniqueKey) so they can share one server. A server with
// passwords or ACL users (Options) is always started here: an external one
// cannot be configured. Not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/testing/subprocess.h"

namespace fetchfleet::testing {

class RedisServer {
 public:
  // An ACL user with a password and every right (Redis 6+).
  struct User {
    std::string name;
    std::string password;
  };
  struct Options {
    // requirepass: the default user's password (AUTH password).
    std::string requirepass;
    // --user NAME on >PASSWORD ~* &* +@all, for AUTH NAME PASSWORD.
    std::vector<User> users;
  };

  RedisServer();  // starts redis-server and waits until it answers PING
  explicit RedisServer(Options options);  // always a local redis-server
  ~RedisServer();                         // stops a server it started

  // redis://127.0.0.1:PORT, without credentials (an external server's URL as
  // given).
  const std::string& url() const { return url_; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // The server process (-1 when external), e.g. to SIGSTOP it.
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  // External: FETCHFLEET_TEST_REDIS named the server; Kill/Restart are not
  // possible then.
  bool external() const { return external_; }

  // Kill SIGKILLs the server (its data is gone: it keeps none on disk);
  // Restart starts it again on the same port and waits until it answers.
  void Kill();
  void Restart();

  // Cli runs redis-cli against this server (as the default user, with
  // requirepass when set) and returns its stdout.
  std::string Cli(const std::vector<std::string>& args) const;

 private:
  void Start();

  std::string external_user_;      // from FETCHFLEET_TEST_REDIS's URL
  std::string external_password_;  // (for Cli)
  std::string host_ = "127.0.0.1";
  int port_ = 0;
  std::string url_;
  bool external_ = false;
  Options options_;
  std::unique_ptr<Subprocess> process_;
};

// UniqueKey returns `prefix` with a random suffix: a rate key no other test
// run uses.
std::string UniqueKey(const std::string& prefix);

// FreeLoopbackPort asks the kernel for a port nobody listens on.
int FreeLoopbackPort();

}  // namespace fetchfleet::testing
