#include "fetchctl/interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

namespace fetchfleet::fetchctl {
namespace {

std::mutex mu;
std::function<void(int)> current;  // guarded by mu
std::atomic<int> received{0};

sigset_t Signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

[[noreturn]] void Die(int sig) {
  // As the signal would have: the default action, from this thread.
  ::signal(sig, SIG_DFL);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(sig);
  ::_exit(128 + sig);
}

void WaitForSignals() {
  sigset_t set = Signals();
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    std::lock_guard<std::mutex> lock(mu);
    if (current == nullptr || received.load() != 0) Die(sig);
    received.store(sig);
    current(sig);
  }
}

}  // namespace

void InstallInterruptHandler() {
  sigset_t set = Signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread(WaitForSignals).detach();
}

InterruptScope::InterruptScope(grpc::ClientContext* context)
    : InterruptScope([context](int) { context->TryCancel(); }) {}

InterruptScope::InterruptScope(std::function<void(int)> on_signal) {
  std::lock_guard<std::mutex> lock(mu);
  current = std::move(on_signal);
}

InterruptScope::~InterruptScope() {
  std::lock_guard<std::mutex> lock(mu);
  current = nullptr;
}

int InterruptScope::signal() const { return received.load(); }

}  // namespace fetchfleet::fetchctl
