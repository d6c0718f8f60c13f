#include "async_op.h"

#include <new>
#include <string>

#include "errors.h"

namespace kvtrim::addon {

namespace {

struct Task {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  std::unique_ptr<Operation> op;
  Status status;
};

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
      napi_resolve_deferred(raw, t->deferred, result);
    } else {
      Napi::Error e = make_error(env, s.code, s.message);
      napi_reject_deferred(raw, t->deferred, e.Value());
    }
  } catch (const Napi::Error& e) {
    // finish() or the error itself could not be made: reject with what was thrown, if JS can
    // still see it; when the environment is going away nobody is left to.
    if (!settled) t->op->settled();
    if (!e.IsEmpty()) napi_reject_deferred(raw, t->deferred, e.Value());
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

Napi::Value run_async(Napi::Env env, std::unique_ptr<Operation> op, const char* name) {
  auto t = std::make_unique<Task>();
  t->op = std::move(op);
  napi_value promise = nullptr, resource_name = nullptr;
  if (napi_create_promise(env, &t->deferred, &promise) != napi_ok ||
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
  return Napi::Value(env, promise);
}

}  // namespace kvtrim::addon
