// RedisClient: one asynchronous Redis connection (hiredis' async API) driven by
// an EventLoop. Commands are pipelined on the one connection; replies come back
// in order on the loop thread.
//
// Never blocks the loop: connect is non-blocking, and a command that gets no
// reply within `command_timeout` tears the connection down (every pending
// command then fails with Unavailable) and a reconnect follows with capped,
// jittered backoff. While disconnected, commands fail at once (on the next loop
// turn) instead of queueing: callers decide what waiting means.
//
// A connection is up only after its handshake (AUTH when the URL has a
// password, SELECT for a db other than 0, then PING) succeeded: a wrong or
// missing password is a failed connect like a refused one, retried with the
// growing backoff and logged once until the reason changes or the connection
// comes up.
//
// Lua scripts go by EVALSHA; a NOSCRIPT reply (a restarted or flushed Redis)
// resends the script by EVAL, which caches it again.
//
// Loop thread only.
#pragma once

#include <hiredis/async.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/random/random.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/event_loop.h"

namespace fetchfleet {

// RedisUrl: redis://[[user]:password@]host[:port][/db], as redis-cli reads
// it: "user:password@" names a Redis 6+ ACL user (AUTH user password),
// ":password@" or "password@" the default user (AUTH password). User and
// password are percent-decoded, so a password with '@' or ':' is written
// %40 or %3A.
struct RedisUrl {
  std::string host;
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;

  // Parse's errors never quote the password.
  static absl::StatusOr<RedisUrl> Parse(absl::string_view text);
  // Printable: the user is shown, the password only as ***.
  std::string ToString() const;
};

// RedisReply is an owned copy of a reply. Error replies never get here: they
// arrive as a non-OK status.
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kStatus, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string str;  // kString and kStatus
  std::vector<RedisReply> elements;
};

// CopyRedisReply copies a hiredis reply (errors become kNil: RedisClient turns
// them into a status before this).
RedisReply CopyRedisReply(const redisReply& reply);

// SubscribedMessage: the payload of a pub/sub push ["message", channel,
// payload], or nullopt for anything else (the ["subscribe", channel, n]
// confirmation, a malformed push).
std::optional<std::string> SubscribedMessage(const redisReply& reply);

// RedisScript: a Lua script and its SHA1, for EVALSHA.
class RedisScript {
 public:
  explicit RedisScript(std::string body);
  const std::string& body() const { return body_; }
  const std::string& sha1() const { return sha1_; }

 private:
  std::string body_;
  std::string sha1_;
};

// RedisStats hears the end of every command: its round trip from send to
// reply, and how it ended (an error reply is "error"; a connection that was
// down or got lost is "unavailable"). One serves all of a process's
// connections, so it must be thread-safe.
class RedisStats {
 public:
  enum class Result { kOk, kError, kUnavailable };
  virtual ~RedisStats() = default;
  virtual void OnCommand(Result result, absl::Duration round_trip) = 0;
};

class RedisClient {
 public:
  struct Options {
    RedisUrl url;
    absl::Duration command_timeout = absl::Milliseconds(500);
    absl::Duration connect_timeout = absl::Seconds(1);
    absl::Duration min_backoff = absl::Milliseconds(50);
    absl::Duration max_backoff = absl::Seconds(2);
    RedisStats* stats = nullptr;  // may be null; must outlive the client
  };
  using Callback = absl::AnyInvocable<void(absl::StatusOr<RedisReply>)>;

  RedisClient(EventLoop* loop, Options options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Start connects, and keeps reconnecting until destroyed.
  void Start();
  bool connected() const { return connected_; }
  // on_state_change runs on the loop after each connect (true) and loss
  // (false).
  void set_on_state_change(absl::AnyInvocable<void(bool up)> callback) {
    on_state_change_ = std::move(callback);
  }

  // Command sends one command; `done` runs exactly once, on the loop thread.
  void Command(std::vector<std::string> args, Callback done);
  // EvalSha runs `script` (EVALSHA, falling back to EVAL on NOSCRIPT).
  void EvalSha(const RedisScript& script, std::vector<std::string> keys,
               std::vector<std::string> args, Callback done);

  // Subscribe turns this client into a subscriber of `channel` (send it no
  // other command): `on_message` gets each message's payload. The
  // subscription is renewed after every reconnect; on_state_change(true) then
  // tells the owner that messages may have been missed in between.
  void Subscribe(std::string channel,
                 absl::AnyInvocable<void(std::string payload)> on_message);

 private:
  struct Pending;

  void Connect();
  void ScheduleReconnect();
  // OnConnected: the socket is up; the handshake starts. OnReady: it passed.
  void OnConnected();
  void OnHandshakeReply(absl::string_view step, bool last,
                        absl::StatusOr<RedisReply> reply);
  void OnReady();
  // NoteFailure logs `why` unless it is the failure logged last: once per
  // outage and reason, not once per retry. `misconfigured` (a refused AUTH or
  // SELECT, which waiting alone does not cure) logs it as an error.
  void NoteFailure(const std::string& why, bool misconfigured = false);
  // Teardown notes `why` and frees the context; hiredis then fails every
  // pending command.
  void Teardown(const std::string& why, bool misconfigured = false);
  void OnContextGone();
  void SendNow(std::vector<std::string> args, Callback done);
  void CheckTimeouts();
  void SendSubscribe();
  static void OnPush(redisAsyncContext* context, void* reply, void* privdata);
  void FailLater(Callback done, absl::Status status);

  // hiredis hooks
  static void OnReply(redisAsyncContext* context, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* context, int status);
  static void OnDisconnect(const redisAsyncContext* context, int status);
  static void AddRead(void* self);
  static void DelRead(void* self);
  static void AddWrite(void* self);
  static void DelWrite(void* self);
  static void Cleanup(void* self);
  void UpdateWatch();

  EventLoop* const loop_;
  const Options options_;
  absl::BitGen gen_;
  redisAsyncContext* context_ = nullptr;
  int fd_ = -1;
  bool want_read_ = false;
  bool want_write_ = false;
  bool connected_ = false;
  bool up_reported_ = false;       // on_state_change_ last heard `true`
  bool handshake_failed_ = false;  // this connection's handshake
  // The failure logged last, cleared when a connection comes up; named in
  // the error of a command refused meanwhile.
  std::string last_failure_;
  bool stopping_ = false;
  absl::Duration backoff_;
  EventLoop::TimerId reconnect_timer_ = 0;
  EventLoop::TimerId watchdog_timer_ = 0;
  absl::Time connect_deadline_ = absl::InfiniteFuture();
  // Deadlines of commands on the wire, oldest first (replies come in order).
  std::deque<absl::Time> deadlines_;
  absl::AnyInvocable<void(bool)> on_state_change_;
  std::string channel_;  // subscriber mode when set
  absl::AnyInvocable<void(std::string)> on_message_;
};

}  // namespace fetchfleet
