// ThreadSanitizer annotations for an uninstrumented Abseil (linked into the TSan test binaries
// only; CTXMEM_TSAN=ON, scripts/tsan.sh).
//
// Debian's libabsl_synchronization is not built with -fsanitize=thread, so TSan cannot see an
// absl::Mutex being taken or released (the lock word is changed by uninstrumented atomics and
// futex calls) and would report every ABSL_GUARDED_BY member touched by two threads as a race.
// The executable therefore defines the public lock/unlock/wait members of absl::Mutex and
// absl::CondVar itself: each tells TSan what happens (the __tsan_mutex_* annotations Abseil
// uses in its own TSan builds) and calls the library's implementation, found with
// dlsym(RTLD_NEXT). Being defined in the executable, these also interpose the calls from the
// shared libraries (gRPC's mutexes), so their hand-offs through a mutex are seen as well.
// absl::Notification is annotated the same way (below).
//
// Limits: accesses made while absl evaluates a Condition inside a lock operation are ignored
// (they run between pre_lock and post_lock); Await and CondVar waits are annotated as an
// exclusive unlock + lock even when the condition already holds (a conservative extra edge).

#include <absl/base/options.h>
#include <absl/synchronization/mutex.h>
#include <absl/synchronization/notification.h>
#include <absl/time/time.h>
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

static_assert(ABSL_OPTION_USE_INLINE_NAMESPACE == 1,
              "the mangled names below assume Abseil's inline namespace");

namespace {

#define CTXMEM_TSAN_STR2(x) #x
#define CTXMEM_TSAN_STR(x) CTXMEM_TSAN_STR2(x)

// The library's definition of the member whose Itanium-mangled name is
// _Z<nested>4absl<len><inline namespace><suffix>, e.g. "N" and "5Mutex4LockEv" for
// Mutex::Lock(); `nested` is "NK" for a const member.
template <typename Fn>
Fn Real(const char* suffix, const char* nested = "N") {
  const char* ns = CTXMEM_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name =
      std::string("_Z") + nested + "4absl" + std::to_string(std::strlen(ns)) + ns + suffix;
  void* fn = dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "absl_mutex_annotations: %s not found in the loaded Abseil\n",
                 name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

// Only the outermost call on a thread is annotated: the library's timed variants call their
// deadline variants through the PLT, i.e. through the definitions below again.
thread_local int t_depth = 0;

class Scope {
 public:
  Scope() : outer_(t_depth++ == 0) {}
  ~Scope() { --t_depth; }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  bool outer() const { return outer_; }

 private:
  const bool outer_;
};

constexpr unsigned kRead = __tsan_mutex_read_lock;
constexpr unsigned kTry = __tsan_mutex_try_lock;
constexpr unsigned kTryFailed = __tsan_mutex_try_lock_failed;

// A wait that releases `mu` and holds it again on return.
void BeforeWait(void* mu) {
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
}
void AfterWait(void* mu) { __tsan_mutex_post_lock(mu, 0, 0); }

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

using MutexFn = void (*)(Mutex*);
using MutexTryFn = bool (*)(Mutex*);
using MutexCondFn = void (*)(Mutex*, const Condition&);
using MutexCondTimeoutFn = bool (*)(Mutex*, const Condition&, Duration);
using MutexCondDeadlineFn = bool (*)(Mutex*, const Condition&, Time);

void Mutex::Lock() {
  static const MutexFn real = Real<MutexFn>("5Mutex4LockEv");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, 0);
  real(this);
  if (scope.outer()) __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::Unlock() {
  static const MutexFn real = Real<MutexFn>("5Mutex6UnlockEv");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_unlock(this, 0);
  real(this);
  if (scope.outer()) __tsan_mutex_post_unlock(this, 0);
}

bool Mutex::TryLock() {
  static const MutexTryFn real = Real<MutexTryFn>("5Mutex7TryLockEv");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, kTry);
  const bool locked = real(this);
  if (scope.outer()) __tsan_mutex_post_lock(this, locked ? kTry : kTry | kTryFailed, 0);
  return locked;
}

void Mutex::ReaderLock() {
  static const MutexFn real = Real<MutexFn>("5Mutex10ReaderLockEv");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, kRead);
  real(this);
  if (scope.outer()) __tsan_mutex_post_lock(this, kRead, 0);
}

void Mutex::ReaderUnlock() {
  static const MutexFn real = Real<MutexFn>("5Mutex12ReaderUnlockEv");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_unlock(this, kRead);
  real(this);
  if (scope.outer()) __tsan_mutex_post_unlock(this, kRead);
}

bool Mutex::ReaderTryLock() {
  static const MutexTryFn real = Real<MutexTryFn>("5Mutex13ReaderTryLockEv");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, kRead | kTry);
  const bool locked = real(this);
  if (scope.outer())
    __tsan_mutex_post_lock(this, locked ? kRead | kTry : kRead | kTry | kTryFailed, 0);
  return locked;
}

void Mutex::LockWhen(const Condition& cond) {
  static const MutexCondFn real = Real<MutexCondFn>("5Mutex8LockWhenERKNS0_9ConditionE");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, 0);
  real(this, cond);
  if (scope.outer()) __tsan_mutex_post_lock(this, 0, 0);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const MutexCondFn real = Real<MutexCondFn>("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, kRead);
  real(this, cond);
  if (scope.outer()) __tsan_mutex_post_lock(this, kRead, 0);
}

// The timed LockWhen variants hold the lock on return whatever they return.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const MutexCondTimeoutFn real =
      Real<MutexCondTimeoutFn>("5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, timeout);
  if (scope.outer()) __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const MutexCondDeadlineFn real =
      Real<MutexCondDeadlineFn>("5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, 0);
  const bool met = real(this, cond, deadline);
  if (scope.outer()) __tsan_mutex_post_lock(this, 0, 0);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const MutexCondTimeoutFn real =
      Real<MutexCondTimeoutFn>("5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, kRead);
  const bool met = real(this, cond, timeout);
  if (scope.outer()) __tsan_mutex_post_lock(this, kRead, 0);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const MutexCondDeadlineFn real =
      Real<MutexCondDeadlineFn>("5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Scope scope;
  if (scope.outer()) __tsan_mutex_pre_lock(this, kRead);
  const bool met = real(this, cond, deadline);
  if (scope.outer()) __tsan_mutex_post_lock(this, kRead, 0);
  return met;
}

void Mutex::Await(const Condition& cond) {
  static const MutexCondFn real = Real<MutexCondFn>("5Mutex5AwaitERKNS0_9ConditionE");
  const Scope scope;
  if (scope.outer()) BeforeWait(this);
  real(this, cond);
  if (scope.outer()) AfterWait(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const MutexCondTimeoutFn real =
      Real<MutexCondTimeoutFn>("5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const Scope scope;
  if (scope.outer()) BeforeWait(this);
  const bool met = real(this, cond, timeout);
  if (scope.outer()) AfterWait(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const MutexCondDeadlineFn real =
      Real<MutexCondDeadlineFn>("5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const Scope scope;
  if (scope.outer()) BeforeWait(this);
  const bool met = real(this, cond, deadline);
  if (scope.outer()) AfterWait(this);
  return met;
}

using CondVarWaitFn = void (*)(CondVar*, Mutex*);
using CondVarTimeoutFn = bool (*)(CondVar*, Mutex*, Duration);
using CondVarDeadlineFn = bool (*)(CondVar*, Mutex*, Time);

void CondVar::Wait(Mutex* mu) {
  static const CondVarWaitFn real = Real<CondVarWaitFn>("7CondVar4WaitEPNS0_5MutexE");
  const Scope scope;
  if (scope.outer()) BeforeWait(mu);
  real(this, mu);
  if (scope.outer()) AfterWait(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const CondVarTimeoutFn real =
      Real<CondVarTimeoutFn>("7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  const Scope scope;
  if (scope.outer()) BeforeWait(mu);
  const bool timed_out = real(this, mu, timeout);
  if (scope.outer()) AfterWait(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const CondVarDeadlineFn real =
      Real<CondVarDeadlineFn>("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  const Scope scope;
  if (scope.outer()) BeforeWait(mu);
  const bool timed_out = real(this, mu, deadline);
  if (scope.outer()) AfterWait(mu);
  return timed_out;
}

// absl::Notification's waits return on an atomic flag read inside the library, without
// taking its mutex, so Notify -> WaitForNotification* is annotated as a release/acquire pair.
// (HasBeenNotified is inline and reads that flag without such an edge; ctxmem does not use it.)
using NotifyFn = void (*)(Notification*);
using WaitNotificationFn = void (*)(const Notification*);
using WaitNotificationTimeoutFn = bool (*)(const Notification*, Duration);
using WaitNotificationDeadlineFn = bool (*)(const Notification*, Time);

void Notification::Notify() {
  static const NotifyFn real = Real<NotifyFn>("12Notification6NotifyEv");
  const Scope scope;
  if (scope.outer()) __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  static const WaitNotificationFn real =
      Real<WaitNotificationFn>("12Notification19WaitForNotificationEv", "NK");
  const Scope scope;
  real(this);
  if (scope.outer()) __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const WaitNotificationTimeoutFn real = Real<WaitNotificationTimeoutFn>(
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE", "NK");
  const Scope scope;
  const bool notified = real(this, timeout);
  if (scope.outer() && notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const WaitNotificationDeadlineFn real = Real<WaitNotificationDeadlineFn>(
      "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE", "NK");
  const Scope scope;
  const bool notified = real(this, deadline);
  if (scope.outer() && notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
