#include "errors.h"

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
    throw Napi::TypeError::New(info.Env(), "Expected setErrorClass(constructor)");
  }
  AddonData* data = info.Env().GetInstanceData<AddonData>();
  data->error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

}  // namespace kvtrim::addon
