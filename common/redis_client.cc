#include "common/redis_client.h"

#include <openssl/evp.h>
#include <sys/epoll.h>

#include <algorithm>

#include "absl/random/distributions.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/logging.h"
#include "common/redact.h"

namespace fetchfleet {

// ---------------------------------------------------------------------------
// RedisUrl

namespace {

int HexValue(char c) {
  if (absl::ascii_isdigit(c)) return c - '0';
  c = absl::ascii_tolower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// PercentDecode: %XX escapes (RFC 3986); a malformed one is an error.
std::optional<std::string> PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    int high = HexValue(text[i + 1]), low = HexValue(text[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return out;
}

// PercentEncode: what ToString shows of a user name, unreserved characters
// as they are.
std::string PercentEncode(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
      out += c;
    else
      absl::StrAppendFormat(&out, "%%%02X", static_cast<unsigned char>(c));
  }
  return out;
}

}  // namespace

absl::StatusOr<RedisUrl> RedisUrl::Parse(absl::string_view text) {
  // The URL is quoted with its userinfo redacted: this message goes to
  // stderr and logs.
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("redis URL \"", RedactUrl(text), "\": ", why,
                     " (want redis://[[user]:password@]host[:port][/db])"));
  };
  constexpr absl::string_view kScheme = "redis://";
  if (!absl::StartsWith(text, kScheme)) return bad("must start with redis://");
  absl::string_view rest = text.substr(kScheme.size());
  RedisUrl url;
  // The last '@': a password with a raw '@' still parses.
  size_t at = rest.rfind('@');
  if (at != absl::string_view::npos) {
    absl::string_view user_info = rest.substr(0, at);
    size_t colon = user_info.find(':');
    // As redis-cli: "user:password", ":password", or "password" alone.
    std::optional<std::string> user = PercentDecode(
        colon == absl::string_view::npos ? absl::string_view()
                                         : user_info.substr(0, colon));
    std::optional<std::string> password = PercentDecode(
        colon == absl::string_view::npos ? user_info
                                         : user_info.substr(colon + 1));
    if (!user || !password)
      return bad("a % in the user or password must start a %XX escape");
    url.user = *std::move(user);
    url.password = *std::move(password);
    rest = rest.substr(at + 1);
  }
  size_t slash = rest.find('/');
  absl::string_view host_port = rest.substr(0, slash);
  if (slash != absl::string_view::npos) {
    absl::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!absl::SimpleAtoi(db, &url.db) || url.db < 0))
      return bad("the database must be a number");
  }
  // "[v6]:port" or "host:port"; the port is optional.
  absl::string_view host = host_port, port;
  bool has_port = false;
  if (absl::StartsWith(host_port, "[")) {
    size_t close = host_port.find(']');
    if (close == absl::string_view::npos) return bad("a '[' without ']'");
    host = host_port.substr(1, close - 1);
    absl::string_view after = host_port.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("want [address]:port");
      port = after.substr(1);
      has_port = true;
    }
  } else if (size_t colon = host_port.rfind(':');
             colon != absl::string_view::npos) {
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
    has_port = true;
  }
  if (has_port &&
      (!absl::SimpleAtoi(port, &url.port) || url.port < 1 || url.port > 65535))
    return bad("the port must be from 1 to 65535");
  if (host.empty()) return bad("the host is missing");
  url.host = std::string(host);
  return url;
}

std::string RedisUrl::ToString() const {
  std::string user_info;
  if (!user.empty() || !password.empty()) {
    user_info = absl::StrCat(PercentEncode(user), ":",
                             password.empty() ? "" : "***", "@");
  }
  bool ipv6 = absl::StrContains(host, ':');
  return absl::StrCat("redis://", user_info, ipv6 ? "[" : "", host,
                      ipv6 ? "]" : "", ":", port,
                      db != 0 ? absl::StrCat("/", db) : "");
}

// ---------------------------------------------------------------------------
// RedisScript

RedisScript::RedisScript(std::string body) : body_(std::move(body)) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(body_.data(), body_.size(), digest, &length, EVP_sha1(), nullptr);
  for (unsigned int i = 0; i < length; ++i)
    absl::StrAppendFormat(&sha1_, "%02x", digest[i]);
}

// ---------------------------------------------------------------------------
// Replies

RedisReply CopyRedisReply(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i)
        out.elements.push_back(CopyRedisReply(*reply.element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

std::optional<std::string> SubscribedMessage(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3)
    return std::nullopt;
  const redisReply* kind = reply.element[0];
  const redisReply* payload = reply.element[2];
  if (kind->type != REDIS_REPLY_STRING ||
      absl::string_view(kind->str, kind->len) != "message" ||
      payload->type != REDIS_REPLY_STRING)
    return std::nullopt;
  return std::string(payload->str, payload->len);
}

// ---------------------------------------------------------------------------
// RedisClient

// One command on the wire: hiredis hands this back with the reply.
struct RedisClient::Pending {
  RedisClient* client;
  Callback done;
  absl::Time sent;
};

RedisClient::RedisClient(EventLoop* loop, Options options)
    : loop_(loop),
      options_(std::move(options)),
      backoff_(options_.min_backoff) {}

RedisClient::~RedisClient() {
  stopping_ = true;
  if (reconnect_timer_ != 0) loop_->CancelTimer(reconnect_timer_);
  if (watchdog_timer_ != 0) loop_->CancelTimer(watchdog_timer_);
  // Pending commands are dropped without running their callbacks: their owners
  // are going away with this client.
  if (context_ != nullptr) redisAsyncFree(context_);
}

void RedisClient::Start() {
  Connect();
  CheckTimeouts();
}

void RedisClient::Connect() {
  reconnect_timer_ = 0;
  if (stopping_) return;
  redisAsyncContext* context =
      redisAsyncConnect(options_.url.host.c_str(), options_.url.port);
  if (context == nullptr || context->err) {
    NoteFailure(context ? context->errstr : "out of memory");
    if (context != nullptr) redisAsyncFree(context);
    ScheduleReconnect();
    return;
  }
  context_ = context;
  fd_ = context->c.fd;
  // Watch before installing the hooks: redisAsyncSetConnectCallback already
  // calls addWrite, which updates this watch.
  want_read_ = false;
  want_write_ = true;  // a non-blocking connect completes as writability
  loop_->WatchFd(fd_, EPOLLOUT, [this](uint32_t events) {
    redisAsyncContext* context = context_;
    if (context == nullptr) return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) redisAsyncHandleRead(context);
    // The read may have freed the context.
    if (context_ == context && (events & (EPOLLOUT | EPOLLERR)))
      redisAsyncHandleWrite(context);
  });
  context->data = this;
  context->ev.data = this;
  context->ev.addRead = &RedisClient::AddRead;
  context->ev.delRead = &RedisClient::DelRead;
  context->ev.addWrite = &RedisClient::AddWrite;
  context->ev.delWrite = &RedisClient::DelWrite;
  context->ev.cleanup = &RedisClient::Cleanup;
  redisAsyncSetConnectCallback(context, &RedisClient::OnConnect);
  redisAsyncSetDisconnectCallback(context, &RedisClient::OnDisconnect);
  connect_deadline_ = loop_->Now() + options_.connect_timeout;
}

void RedisClient::ScheduleReconnect() {
  if (stopping_ || reconnect_timer_ != 0) return;
  absl::Duration delay =
      absl::Uniform(gen_, 0.5, 1.0) * backoff_;  // jitter: workers spread out
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
  reconnect_timer_ = loop_->RunAfter(delay, [this] { Connect(); });
}

void RedisClient::OnConnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisClient*>(context->data);
  if (status != REDIS_OK) {
    self->NoteFailure(absl::StrCat("connect failed: ", context->errstr));
    return;  // hiredis frees the context next; Cleanup schedules the retry
  }
  self->OnConnected();
}

void RedisClient::OnConnected() {
  connect_deadline_ = absl::InfiniteFuture();
  handshake_failed_ = false;
  // Pipelined, each under the command timeout. The PING comes last so that
  // a Redis that wants a password and got none says NOAUTH here, once,
  // rather than to every caller's first command; and so that the backoff
  // keeps growing while the handshake fails.
  const RedisUrl& url = options_.url;
  std::vector<std::pair<std::string, std::vector<std::string>>> steps;
  if (!url.user.empty()) {
    steps.push_back({"AUTH", {"AUTH", url.user, url.password}});
  } else if (!url.password.empty()) {
    steps.push_back({"AUTH", {"AUTH", url.password}});
  }
  if (url.db != 0)
    steps.push_back({"SELECT", {"SELECT", absl::StrCat(url.db)}});
  steps.push_back({"PING", {"PING"}});
  for (size_t i = 0; i < steps.size(); ++i) {
    bool last = i + 1 == steps.size();
    SendNow(std::move(steps[i].second),
            [this, step = steps[i].first, last](absl::StatusOr<RedisReply> r) {
              OnHandshakeReply(step, last, std::move(r));
            });
  }
}

void RedisClient::OnHandshakeReply(absl::string_view step, bool last,
                                   absl::StatusOr<RedisReply> reply) {
  if (handshake_failed_) return;  // the steps after a failed one
  if (reply.ok()) {
    if (last) OnReady();
    return;
  }
  // Unavailable: the connection ended (or timed out, which Teardown noted);
  // Cleanup reconnects.
  if (absl::IsUnavailable(reply.status())) return;
  handshake_failed_ = true;
  std::string message(reply.status().message());
  // Redis does not echo the password, but nothing here may print it.
  if (!options_.url.password.empty())
    absl::StrReplaceAll({{options_.url.password, "***"}}, &message);
  std::string why;
  if (absl::StartsWith(message, "NOAUTH")) {
    why =
        absl::StrCat("Redis wants a password (", message,
                     "); put it in the URL: redis://[user]:password@host:port");
  } else if (step == "AUTH" && !options_.url.user.empty() &&
             absl::StrContains(message, "wrong number of arguments")) {
    why = absl::StrCat("AUTH failed: ", message,
                       " (a user name needs Redis 6 or later)");
  } else {
    why = absl::StrCat(step, " failed: ", message);
  }
  Teardown(why, /*misconfigured=*/true);
}

void RedisClient::OnReady() {
  connected_ = true;
  last_failure_.clear();
  backoff_ = options_.min_backoff;
  if (!channel_.empty()) SendSubscribe();
  FF_LOG(INFO) << "redis " << options_.url.ToString() << " connected";
  up_reported_ = true;
  if (on_state_change_) on_state_change_(true);
}

void RedisClient::OnDisconnect(const redisAsyncContext* /*context*/,
                               int /*status*/) {
  // Cleanup (which always runs) handles every way a context ends.
}

void RedisClient::NoteFailure(const std::string& why, bool misconfigured) {
  if (why == last_failure_) return;
  last_failure_ = why;
  if (misconfigured) {
    FF_LOG(ERROR) << "redis " << options_.url.ToString() << ": " << why
                  << "; reconnecting with backoff";
  } else {
    FF_LOG(WARNING) << "redis " << options_.url.ToString() << ": " << why
                    << "; reconnecting with backoff";
  }
}

void RedisClient::Teardown(const std::string& why, bool misconfigured) {
  if (context_ == nullptr) return;
  NoteFailure(why, misconfigured);
  redisAsyncFree(context_);  // deferred by hiredis when inside its callback
}

void RedisClient::Cleanup(void* self_ptr) {
  static_cast<RedisClient*>(self_ptr)->OnContextGone();
}

void RedisClient::OnContextGone() {
  if (fd_ >= 0) loop_->UnwatchFd(fd_);
  fd_ = -1;
  context_ = nullptr;
  deadlines_.clear();
  connect_deadline_ = absl::InfiniteFuture();
  connected_ = false;
  if (stopping_) return;
  ScheduleReconnect();
  if (up_reported_) {
    up_reported_ = false;
    FF_LOG(WARNING) << "redis " << options_.url.ToString()
                    << " connection lost";
    // Not from inside hiredis: the observer may send commands.
    loop_->RunAfter(absl::ZeroDuration(), [this] {
      if (on_state_change_) on_state_change_(connected_);
    });
  }
}

void RedisClient::AddRead(void* self_ptr) {
  auto* self = static_cast<RedisClient*>(self_ptr);
  self->want_read_ = true;
  self->UpdateWatch();
}
void RedisClient::DelRead(void* self_ptr) {
  auto* self = static_cast<RedisClient*>(self_ptr);
  self->want_read_ = false;
  self->UpdateWatch();
}
void RedisClient::AddWrite(void* self_ptr) {
  auto* self = static_cast<RedisClient*>(self_ptr);
  self->want_write_ = true;
  self->UpdateWatch();
}
void RedisClient::DelWrite(void* self_ptr) {
  auto* self = static_cast<RedisClient*>(self_ptr);
  self->want_write_ = false;
  self->UpdateWatch();
}

void RedisClient::UpdateWatch() {
  if (fd_ < 0) return;
  loop_->UpdateFd(fd_,
                  (want_read_ ? EPOLLIN : 0u) | (want_write_ ? EPOLLOUT : 0u));
}

void RedisClient::FailLater(Callback done, absl::Status status) {
  loop_->RunAfter(
      absl::ZeroDuration(),
      [done = std::move(done), status]() mutable { done(std::move(status)); });
}

void RedisClient::Command(std::vector<std::string> args, Callback done) {
  if (!connected_ || context_ == nullptr) {
    if (options_.stats != nullptr) {
      options_.stats->OnCommand(RedisStats::Result::kUnavailable,
                                absl::ZeroDuration());
    }
    FailLater(std::move(done),
              absl::UnavailableError(absl::StrCat(
                  "redis ", options_.url.ToString(), " is not connected",
                  last_failure_.empty() ? "" : " (", last_failure_,
                  last_failure_.empty() ? "" : ")")));
    return;
  }
  SendNow(std::move(args), std::move(done));
}

void RedisClient::SendNow(std::vector<std::string> args, Callback done) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  absl::Time now = loop_->Now();
  auto* pending = new Pending{this, std::move(done), now};
  if (redisAsyncCommandArgv(context_, &RedisClient::OnReply, pending,
                            static_cast<int>(argv.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    Callback callback = std::move(pending->done);
    delete pending;
    FailLater(std::move(callback),
              absl::UnavailableError("redis connection is closing"));
    return;
  }
  deadlines_.push_back(now + options_.command_timeout);
}

void RedisClient::OnReply(redisAsyncContext* /*context*/, void* reply,
                          void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  RedisClient* self = pending->client;
  if (self->stopping_) return;
  if (!self->deadlines_.empty()) self->deadlines_.pop_front();
  if (RedisStats* stats = self->options_.stats; stats != nullptr) {
    RedisStats::Result result =
        reply == nullptr ? RedisStats::Result::kUnavailable
        : static_cast<redisReply*>(reply)->type == REDIS_REPLY_ERROR
            ? RedisStats::Result::kError
            : RedisStats::Result::kOk;
    stats->OnCommand(result, self->loop_->Now() - pending->sent);
  }
  if (reply == nullptr) {
    // The connection ended with this command unanswered; it may or may not
    // have run.
    self->connected_ = false;
    pending->done(absl::UnavailableError("redis connection lost"));
    return;
  }
  auto* r = static_cast<redisReply*>(reply);
  if (r->type == REDIS_REPLY_ERROR) {
    pending->done(absl::FailedPreconditionError(std::string(r->str, r->len)));
    return;
  }
  pending->done(CopyRedisReply(*r));
}

void RedisClient::EvalSha(const RedisScript& script,
                          std::vector<std::string> keys,
                          std::vector<std::string> args, Callback done) {
  std::vector<std::string> command;
  command.reserve(3 + keys.size() + args.size());
  command.push_back("EVALSHA");
  command.push_back(script.sha1());
  command.push_back(absl::StrCat(keys.size()));
  for (std::string& key : keys) command.push_back(std::move(key));
  for (std::string& arg : args) command.push_back(std::move(arg));
  // On NOSCRIPT the same command goes again as EVAL with the body.
  std::vector<std::string> fallback = command;
  fallback[0] = "EVAL";
  fallback[1] = script.body();
  Command(std::move(command), [this, fallback = std::move(fallback),
                               done = std::move(done)](
                                  absl::StatusOr<RedisReply> reply) mutable {
    if (!reply.ok() && absl::StartsWith(reply.status().message(), "NOSCRIPT")) {
      Command(std::move(fallback), std::move(done));
      return;
    }
    done(std::move(reply));
  });
}

void RedisClient::CheckTimeouts() {
  watchdog_timer_ = 0;
  if (stopping_) return;
  absl::Time now = loop_->Now();
  if (context_ != nullptr && !connected_ && now > connect_deadline_) {
    Teardown("connect timed out");
  } else if (context_ != nullptr && !deadlines_.empty() &&
             deadlines_.front() < now) {
    Teardown(absl::StrCat("no reply within ",
                          absl::FormatDuration(options_.command_timeout)));
  }
  watchdog_timer_ = loop_->RunAfter(
      std::max(options_.command_timeout / 4, absl::Milliseconds(5)),
      [this] { CheckTimeouts(); });
}

void RedisClient::Subscribe(
    std::string channel,
    absl::AnyInvocable<void(std::string payload)> on_message) {
  channel_ = std::move(channel);
  on_message_ = std::move(on_message);
  if (connected_ && context_ != nullptr) SendSubscribe();
}

void RedisClient::SendSubscribe() {
  // No deadline: a subscription's replies are pushes that come when they
  // come. hiredis keeps the callback for every message on the channel.
  const char* argv[] = {"SUBSCRIBE", channel_.data()};
  size_t lengths[] = {9, channel_.size()};
  if (redisAsyncCommandArgv(context_, &RedisClient::OnPush, this, 2, argv,
                            lengths) != REDIS_OK) {
    Teardown("SUBSCRIBE failed");
  }
}

void RedisClient::OnPush(redisAsyncContext* /*context*/, void* reply,
                         void* privdata) {
  auto* self = static_cast<RedisClient*>(privdata);
  if (reply == nullptr || self->stopping_) return;  // the context is going
  // The ["subscribe", channel, n] confirmation is skipped.
  std::optional<std::string> payload =
      SubscribedMessage(*static_cast<redisReply*>(reply));
  if (payload && self->on_message_) self->on_message_(*std::move(payload));
}

}  // namespace fetchfleet
