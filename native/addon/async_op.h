// The one asynchronous worker behind every Promise form (host and device). An operation is
// prepared on the main thread, runs on the libuv pool, and settles exactly once on the main
// thread. It owns a reference to everything it reads or writes until it settles, and when
// its environment is shutting down (a worker thread ending) it is dropped quietly, its memory
// freed, without calling into JS: nothing here can throw past a libuv callback.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/status.h"

namespace kvtrim::addon {

class Operation {
 public:
  virtual ~Operation() = default;
  // The work. Off the main thread in the Promise form: touches no JS.
  virtual Status run() = 0;
  // Main thread, after run() succeeded: the result, or a failed Status (an input that changed
  // while the work ran).
  virtual Status finish(Napi::Env env, Napi::Value* result) = 0;
  // Main thread, once, whatever the outcome: what must go as soon as the work is done.
  // (Everything the operation holds -- references to its inputs and outputs, pinned device
  // buffers -- is released when it is destroyed, right after.)
  virtual void settled() {}
  // Whether the work is so small that running it now, on the main thread, costs less than the
  // hop to a worker thread and back (tens of microseconds): run_async then runs it at once and
  // returns a Promise already settled. Host work only: device work keeps its stream order.
  virtual bool tiny() const { return false; }
};

// Host inputs of at most this many bytes in all make a tiny() operation (compress of 32 KiB
// takes ~10 us of work on one core, the hop ~30-40 us of latency).
constexpr size_t kTinyInputBytes = size_t(32) << 10;

// Runs `op` now (the ...Sync forms): its result, or a thrown KvtrimError.
Napi::Value run_now(Napi::Env env, Operation& op);
// Queues `op` on the libuv pool and returns its Promise (a tiny() one runs at once, its
// Promise settled before this returns: its callbacks still run later, as for any Promise).
Napi::Value run_async(Napi::Env env, std::unique_ptr<Operation> op, const char* name);

// run(), with any C++ exception turned into a Status (nothing may escape a worker thread).
Status run_guarded(Operation& op);

// A binding function's two forms in one: an Op (with prepare(info, async)) made, prepared,
// then run now (the ...Sync form) or queued (the Promise form, named `name` for async hooks).
template <class Op>
Napi::Value start(const Napi::CallbackInfo& info, bool async, const char* name) {
  auto op = std::make_unique<Op>();
  op->prepare(info, async);
  if (!async) return run_now(info.Env(), *op);
  return run_async(info.Env(), std::move(op), name);
}

}  // namespace kvtrim::addon
