#include "common/server_main.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/logging.h"

namespace fetchfleet {

sigset_t BlockTerminationSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return signals;
}

std::optional<int> ParseServerFlags(FlagSet* flags, int argc, char** argv,
                                    const char* component) {
  std::string log_level = "info";
  std::string log_format = "text";
  flags->String("log-level", &log_level, "debug, info, warning or error");
  flags->String("log-format", &log_format,
                "text (for people), json (one object per line) or auto "
                "(json when stderr is not a terminal)");
  auto args = flags->Parse(argc, argv);
  if (!args.ok()) {
    bool help = absl::IsNotFound(args.status());
    std::fprintf(help ? stdout : stderr, "%s%s\n", help ? "" : "error: ",
                 std::string(args.status().message()).c_str());
    return help ? 0 : 2;
  }
  if (!args->empty()) {
    std::fprintf(stderr, "error: unexpected argument \"%s\"\n%s\n",
                 (*args)[0].c_str(), flags->Usage().c_str());
    return 2;
  }
  LogLevel level;
  if (!ParseLogLevel(log_level, &level)) {
    std::fprintf(stderr,
                 "error: --log-level: \"%s\" is not debug, info, warning or "
                 "error\n",
                 log_level.c_str());
    return 2;
  }
  LogFormat format;
  if (!ParseLogFormat(log_format, ::isatty(STDERR_FILENO) == 1, &format)) {
    std::fprintf(stderr,
                 "error: --log-format: \"%s\" is not text, json or auto\n",
                 log_format.c_str());
    return 2;
  }
  SetLogLevel(level);
  SetLogFormat(format);
  SetLogComponent(component);
  return std::nullopt;
}

bool ParseRedisFlag(const std::string& text, std::optional<RedisUrl>* url) {
  if (text.empty()) return true;
  auto parsed = RedisUrl::Parse(text);
  if (!parsed.ok()) {
    std::fprintf(stderr, "--redis: %s\n",
                 std::string(parsed.status().message()).c_str());
    return false;
  }
  *url = *parsed;
  return true;
}

}  // namespace fetchfleet
