#include "errors.h"

#include <new>

namespace kvtrim::addon {

Napi::Error make_error(Napi::Env env, Code code, const std::string& message) {
  AddonData* data = env.GetInstanceData<AddonData>();
  if (data != nullptr && !data->error_class.IsEmpty()) {
    Napi::Object e = data->error_class.New({Napi::String::New(env, message),
                                            Napi::String::New(env, code_name(code))});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, message);  // raw binding used without the facade
  e.Set("code", Napi::String::New(env, code_name(code)));
  return e;
}

void throw_error(Napi::Env env, Code code, const std::string& message) {
  throw make_error(env, code, message);
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) {
    throw_error(info.Env(), Code::InvalidArgument, "Expected setErrorClass(constructor)");
  }
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  data->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Function guarded(Napi::Env env, const char* name, Callback fn) {
  return Napi::Function::New(env, [fn](const Napi::CallbackInfo& info) -> Napi::Value {
    ++info.Env().GetInstanceData<AddonData>()->calls;
    try {
      return fn(info);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw_error(info.Env(), Code::OutOfMemory, "out of memory");
    } catch (const std::exception& e) {
      throw_error(info.Env(), Code::Internal, std::string("internal error: ") + e.what());
    }
  }, name);
}

namespace {

// The ArrayBuffer under a typed array; *shared when it is a SharedArrayBuffer.
bool buffer_of(Napi::Env env, Napi::TypedArray arr, napi_value* buffer, bool* shared) {
  if (napi_get_typedarray_info(env, arr, nullptr, nullptr, nullptr, buffer, nullptr) != napi_ok) return false;
  bool is_ab = false;
  napi_is_arraybuffer(env, *buffer, &is_ab);
  *shared = !is_ab;
  return true;
}

}  // namespace

bool is_resizable(Napi::Env env, Napi::TypedArray arr) {
  AddonData* data = env.GetInstanceData<AddonData>();
  napi_value buffer = nullptr;
  bool shared = false;
  if (!buffer_of(env, arr, &buffer, &shared) || shared) return false;
  if (data == nullptr || data->resizable_getter.IsEmpty()) return false;
  return data->resizable_getter.Call(buffer, {}).ToBoolean().Value();
}

bool is_array(Napi::Env env, Napi::Value v) {
  if (v.IsArray()) return true;
  if (!v.IsObject()) return false;
  AddonData* data = env.GetInstanceData<AddonData>();
  return data->array_is_array.Call({v}).ToBoolean().Value();
}

bool mark_untransferable(Napi::Env env, Napi::TypedArray arr) {
  AddonData* data = env.GetInstanceData<AddonData>();
  napi_value buffer = nullptr;
  bool shared = false;
  if (!buffer_of(env, arr, &buffer, &shared)) return false;
  if (shared) return true;
  if (data == nullptr || data->mark_untransferable.IsEmpty()) return false;
  data->mark_untransferable.Call({buffer});
  return true;
}

void init_errors(Napi::Env env, AddonData* data) {
  data->promise_class = Napi::Persistent(env.Global().Get("Promise").As<Napi::Function>());
  Napi::Object object = env.Global().Get("Object").As<Napi::Object>();
  data->array_is_array = Napi::Persistent(env.Global().Get("Array").As<Napi::Object>().Get("isArray").As<Napi::Function>());
  data->string_fn = Napi::Persistent(env.Global().Get("String").As<Napi::Function>());
  Napi::Object proto = env.Global().Get("ArrayBuffer").As<Napi::Object>().Get("prototype").As<Napi::Object>();
  Napi::Value desc = object.Get("getOwnPropertyDescriptor").As<Napi::Function>().Call(object, {proto, Napi::String::New(env, "resizable")});
  if (desc.IsObject()) {
    Napi::Value get = desc.As<Napi::Object>().Get("get");
    if (get.IsFunction()) data->resizable_getter = Napi::Persistent(get.As<Napi::Function>());
  }
  // process.getBuiltinModule (Node >= 20.16) reaches worker_threads without require().
  Napi::Value process = env.Global().Get("process");
  Napi::Value getter = process.IsObject() ? process.As<Napi::Object>().Get("getBuiltinModule") : env.Undefined();
  if (getter.IsFunction()) {
    Napi::Value wt = getter.As<Napi::Function>().Call(process, {Napi::String::New(env, "node:worker_threads")});
    Napi::Value mark = wt.IsObject() ? wt.As<Napi::Object>().Get("markAsUntransferable") : env.Undefined();
    if (mark.IsFunction()) data->mark_untransferable = Napi::Persistent(mark.As<Napi::Function>());
  }
}

}  // namespace kvtrim::addon
