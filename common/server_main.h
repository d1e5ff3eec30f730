// What the server binaries' main() functions share: termination signals and the
// flag/log set-up that every server does the same way.
#pragma once

#include <signal.h>

#include <optional>
#include <string>

#include "common/flags.h"
#include "common/redis_client.h"

namespace fetchfleet {

// BlockTerminationSignals blocks SIGTERM and SIGINT in the calling thread and
// in every thread it starts afterwards, so that one thread can take them with
// sigwait; it also ignores SIGPIPE. Call it first in main(), before any thread
// starts.
sigset_t BlockTerminationSignals();

// ParseServerFlags adds --log-level and --log-format to `flags`, parses the
// command line and environment, and sets up logging for `component`. It returns
// the status main() should exit with now (0 after --help, 2 for a bad flag or a
// stray argument), or nullopt to go on.
std::optional<int> ParseServerFlags(FlagSet* flags, int argc, char** argv,
                                    const char* component);

// ParseRedisFlag reads --redis: empty leaves `url` unset; a bad URL is
// reported on stderr and returns false (exit 2).
bool ParseRedisFlag(const std::string& text, std::optional<RedisUrl>* url);

}  // namespace fetchfleet
