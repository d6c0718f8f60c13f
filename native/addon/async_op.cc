#include "async_op.h"

#include <new>
#include <string>

#include "errors.h"

namespace kvtrim::addon {

namespace {

// The Promise is made by the Promise constructor, its resolve and reject functions held by
// references: unlike a napi_deferred, a reference can be deleted without running JS, so a task
// whose environment is ending frees everything it holds.
struct Task {
  napi_async_work work = nullptr;
  Napi::FunctionReference resolve, reject;
  std::unique_ptr<Operation> op;
  Status status;
};

// The executor, one function per environment (made on first use): the intrinsic Promise
// constructor calls it at once, with the task that run_async put in AddonData::executor_task.
napi_value Executor(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2] = {nullptr, nullptr};
  void* data = nullptr;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, &data) == napi_ok && argc == 2) {
    AddonData* d = static_cast<AddonData*>(data);
    Task* t = static_cast<Task*>(d->executor_task);
    d->executor_task = nullptr;
    if (t != nullptr) {
      t->resolve = Napi::Persistent(Napi::Function(env, argv[0]));
      t->reject = Napi::Persistent(Napi::Function(env, argv[1]));
    }
  }
  return nullptr;
}

// The Promise of `t` (its resolve and reject held by t), or an empty value.
Napi::Value new_promise(Napi::Env env, AddonData* data, Task* t) {
  if (data->executor.IsEmpty()) {
    napi_value fn = nullptr;
    if (napi_create_function(env, "executor", NAPI_AUTO_LENGTH, Executor, data, &fn) != napi_ok) return Napi::Value();
    data->executor = Napi::Persistent(Napi::Function(env, fn));
  }
  struct Slot {  // cleared however the constructor returns
    AddonData* d;
    ~Slot() { d->executor_task = nullptr; }
  } slot{data};
  data->executor_task = t;
  return data->promise_class.New({data->executor.Value()});
}

void Execute(napi_env, void* data) {
  Task* t = static_cast<Task*>(data);
  t->status = run_guarded(*t->op);
}

// Settles the promise. Every N-API call may fail here when the environment is going away
// (JS cannot run then): each failure ends the attempt, and the task is freed regardless.
void Complete(napi_env raw, napi_status status, void* data) {
  std::unique_ptr<Task> t(static_cast<Task*>(data));
  napi_delete_async_work(raw, t->work);
  Napi::Env env(raw);
  bool settled = false;
  try {
    Napi::HandleScope scope(env);
    Status s = status == napi_cancelled ? Status::error(Code::Internal, "the operation was cancelled")
                                        : t->status;
    Napi::Value result;
    if (s.ok()) s = t->op->finish(env, &result);
    t->op->settled();
    settled = true;
    if (s.ok()) {
      t->resolve.Call({result});
    } else {
      Napi::Error e = make_error(env, s.code, s.message);
      t->reject.Call({e.Value()});
    }
  } catch (const Napi::Error& e) {
    // finish() or the error itself could not be made: reject with what was thrown, if JS can
    // still see it; when the environment is going away nobody is left to.
    if (!settled) t->op->settled();
    try {
      if (!e.IsEmpty()) t->reject.Call({e.Value()});
    } catch (...) {
    }
  } catch (...) {
    if (!settled) t->op->settled();
  }
}

}  // namespace

Status run_guarded(Operation& op) {
  try {
    return op.run();
  } catch (const std::bad_alloc&) {
    return Status::error(Code::OutOfMemory, "out of memory while running the operation");
  } catch (const std::exception& e) {
    return Status::error(Code::Internal, std::string("internal error: ") + e.what());
  } catch (...) {
    return Status::error(Code::Internal, "internal error");
  }
}

Napi::Value run_now(Napi::Env env, Operation& op) {
  Status s = run_guarded(op);
  Napi::Value result;
  try {
    if (s.ok()) s = op.finish(env, &result);
  } catch (...) {
    op.settled();
    throw;
  }
  op.settled();
  throw_if(env, s);
  return result;
}

namespace {

// A tiny operation: run now, its Promise settled at once (resolved with the result, or
// rejected with the error, as a queued one would be). The Promise is new_promise's, as a queued
// one's: where settling fails (a worker being terminated runs no JS), the resolve and reject
// references still go with `t`; a napi_deferred could only be freed by settling it (it leaked).
Napi::Value run_tiny(Napi::Env env, Operation& op) {
  AddonData* data = env.GetInstanceData<AddonData>();
  Task t;
  Napi::Value promise = data == nullptr || data->promise_class.IsEmpty() ? Napi::Value() : new_promise(env, data, &t);
  if (promise.IsEmpty() || t.resolve.IsEmpty() || t.reject.IsEmpty()) {
    op.settled();
    throw Napi::Error::New(env);
  }
  Napi::Value outcome;
  bool ok = false, settled = false;
  try {
    Status s = run_guarded(op);
    if (s.ok()) s = op.finish(env, &outcome);
    op.settled();
    settled = true;
    ok = s.ok();
    if (!ok) outcome = make_error(env, s.code, s.message).Value();
  } catch (const Napi::Error& e) {
    // finish() or the error could not be made: reject with what was thrown
    if (!settled) op.settled();
    ok = false;
    outcome = e.IsEmpty() ? Napi::Value(env.Undefined()) : e.Value();
  }
  napi_value argv[1] = {outcome}, ignored = nullptr;
  const napi_value fn = ok ? t.resolve.Value() : t.reject.Value();
  if (napi_call_function(env, env.Undefined(), fn, 1, argv, &ignored) != napi_ok) throw Napi::Error::New(env);
  return promise;
}

}  // namespace

Napi::Value run_async(Napi::Env env, std::unique_ptr<Operation> op, const char* name) {
  if (op->tiny()) return run_tiny(env, *op);
  auto t = std::make_unique<Task>();
  t->op = std::move(op);
  AddonData* data = env.GetInstanceData<AddonData>();
  napi_value resource_name = nullptr;
  Napi::Value promise;
  if (data == nullptr || data->promise_class.IsEmpty() || (promise = new_promise(env, data, t.get())).IsEmpty()) {
    t->op->settled();
    throw_error(env, Code::Internal, std::string("could not start ") + name);
  }
  if (t->resolve.IsEmpty() || t->reject.IsEmpty() ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, nullptr, resource_name, Execute, Complete, t.get(), &t->work) != napi_ok) {
    t->op->settled();
    throw_error(env, Code::Internal, std::string("could not start ") + name);
  }
  if (napi_queue_async_work(env, t->work) != napi_ok) {
    napi_delete_async_work(env, t->work);
    t->op->settled();
    throw_error(env, Code::Internal, std::string("could not queue ") + name);
  }
  t.release();  // owned by the libuv request until Complete
  return promise;
}

}  // namespace kvtrim::addon
