// FlagSet: kebab-case command-line flags (`--max-inflight 512` or
// `--max-inflight=512`), each also read from the environment as
// FETCHFLEET_<FLAG> (upper-cased, '-' as '_'), the command line winning.
// Abseil's flags cannot spell kebab-case names or repeat a flag, hence this.
//
// Not thread-safe: build and parse it in main() before starting threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace fetchfleet {

class FlagSet {
 public:
  // `env_prefix` is e.g. "FETCHFLEET_"; empty means flags are not read from the
  // environment.
  FlagSet(std::string usage, std::string env_prefix);

  // Each registration binds a flag to a variable whose current value is the
  // default.
  void String(std::string name, std::string* value, std::string help);
  void Int(std::string name, int64_t* value, std::string help);
  void Double(std::string name, double* value, std::string help);
  void Bool(std::string name, bool* value, std::string help);
  void Duration(std::string name, absl::Duration* value, std::string help);
  // A repeatable flag: every occurrence appends (the environment's value is
  // comma-separated).
  void StringList(std::string name, std::vector<std::string>* values,
                  std::string help);

  // Parse reads the environment, then argv[first..argc). It returns the
  // positional arguments, or InvalidArgument naming the bad flag. `--help`
  // yields a NotFound status whose message is the usage text.
  absl::StatusOr<std::vector<std::string>> Parse(int argc, char** argv,
                                                 int first = 1);

  std::string Usage() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string default_text;
    bool is_bool = false;
    bool repeatable = false;
    std::function<absl::Status(absl::string_view)> set;
    std::function<void()> clear;  // repeatable flags only
  };
  Flag* Find(absl::string_view name);
  void Add(Flag flag);

  std::string usage_;
  std::string env_prefix_;
  std::vector<Flag> flags_;
};

}  // namespace fetchfleet
