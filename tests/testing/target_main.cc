// fetchfleet-testserver: the tests' HTTP server as a program, for `make demo`
// and by hand. Prints "listening on 127.0.0.1:PORT" and serves until
// SIGTERM/SIGINT.
#include <signal.h>

#include <cstdio>

#include "common/server_main.h"
#include "tests/testing/http_test_server.h"

int main() {
  sigset_t signals = fetchfleet::BlockTerminationSignals();
  fetchfleet::testing::HttpTestServer server;
  std::printf("listening on 127.0.0.1:%d\n", server.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server.Stop();
  return 0;
}
