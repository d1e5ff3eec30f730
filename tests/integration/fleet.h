// Fleet: a coordinator and workers as real processes on loopback, for
// integration tests. Ports are picked by the kernel (port 0) and read back from
// the "listening on" line.
#pragma once

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/subprocess.h"

namespace fetchfleet::testing {

class Fleet {
 public:
  explicit Fleet(std::vector<std::string> coordinator_flags = {}) {
    std::vector<std::string> argv = {BinaryPath("fetchfleet-coordinator"),
                                     "--listen", "127.0.0.1:0",
                                     "--heartbeat-interval", "200ms"};
    argv.insert(argv.end(), coordinator_flags.begin(), coordinator_flags.end());
    coordinator_ = std::make_unique<Subprocess>(argv);
    auto port = coordinator_->WaitForPort();
    EXPECT_TRUE(port.ok()) << port.status();
    address_ = "127.0.0.1:" + std::to_string(port.ok() ? *port : 0);
  }

  // On a failed test, show what the servers said: the first thing one wants to
  // read.
  ~Fleet() {
    if (!::testing::Test::HasFailure()) return;
    std::cerr << "--- coordinator stderr (tail):\n"
              << Tail(coordinator_->Stderr());
    for (const auto& worker : workers_) {
      std::cerr << "--- worker stderr (tail):\n" << Tail(worker->Stderr());
    }
  }

  const std::string& address() const { return address_; }
  Subprocess* coordinator() { return coordinator_.get(); }

  // AddWorker starts a worker that may reach loopback, and waits until it is
  // connected.
  Subprocess* AddWorker(const std::string& name,
                        std::vector<std::string> flags = {}) {
    std::vector<std::string> argv = {BinaryPath("fetchfleet-worker"),
                                     "--coordinator",
                                     address_,
                                     "--name",
                                     name,
                                     "--allow-cidr",
                                     "127.0.0.0/8"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    workers_.push_back(std::make_unique<Subprocess>(argv));
    auto connected = coordinator_->WaitForOutput("worker " + name + " (");
    EXPECT_TRUE(connected.ok()) << connected.status();
    return workers_.back().get();
  }

  std::vector<std::string> Fetchctl(std::vector<std::string> args) const {
    std::vector<std::string> argv = {BinaryPath("fetchctl"), "--coordinator",
                                     address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

 private:
  static std::string Tail(const std::string& text) {
    return text.size() > 4000 ? text.substr(text.size() - 4000) : text;
  }

  std::unique_ptr<Subprocess> coordinator_;
  std::vector<std::unique_ptr<Subprocess>> workers_;
  std::string address_;
};

// ParseResults parses JSON Lines; it fails the test on a line that is not a
// JSON object.
inline std::vector<nlohmann::json> ParseResults(const std::string& out) {
  std::vector<nlohmann::json> results;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    std::string line = out.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    EXPECT_TRUE(j.is_object()) << "not a JSON object: " << line;
    if (j.is_object()) results.push_back(std::move(j));
  }
  return results;
}

}  // namespace fetchfleet::testing
