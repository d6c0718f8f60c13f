// backend(): which paths this binary has and what this machine lets it use.
#include "../cpu/norms.h"
#include "../cpu/parallel.h"
#include "../cuda/probe.h"
#include "bindings.h"

namespace kvtrim::addon {

Napi::Value Backend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("threads", cpu::thread_count());
  cpu.Set("isa", cpu::norm_isa());

  const cuda::Probe p = cuda::probe();
  Napi::Object c = Napi::Object::New(env);
  c.Set("compiled", p.compiled);
  c.Set("emulated", p.emulated);
  c.Set("usable", p.usable);
  c.Set("reason", p.reason);
  c.Set("driverVersion", p.driver_version);
  c.Set("runtimeVersion", p.runtime_version);
  c.Set("architectures", p.architectures);
  Napi::Array devices = Napi::Array::New(env, p.devices.size());
  for (size_t i = 0; i < p.devices.size(); ++i) {
    const cuda::DeviceInfo& d = p.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", d.index);
    o.Set("name", d.name);
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    o.Set("multiprocessors", d.sm_count);
    o.Set("totalMemory", double(d.total_memory));
    devices.Set(uint32_t(i), o);
  }
  c.Set("devices", devices);

  Napi::Object r = Napi::Object::New(env);
  r.Set("cpu", cpu);
  r.Set("cuda", c);
  return r;
}

}  // namespace kvtrim::addon
