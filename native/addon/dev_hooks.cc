// Tools for kvtrim's own tests and benchmarks, not part of the product: compiled in only with
// KVTRIM_DEV_HOOKS (emulator builds and `build-native.js --dev`), where the binding exports
// them as one object, binding.dev (lib/dev.ts is their documented test-only entry):
// streamCreate / streamDestroy (a CUDA stream of kvtrim's own; users pass their runtime's),
// emulator (the emulator's schedule, seed, SM count and spin limit), geometry (the launch
// geometry compress would use), benchCompress (compress timed with CUDA events) and
// copyBandwidth (device-to-device copy bandwidth).
#ifdef KVTRIM_DEV_HOOKS
#include <memory>

#include "../cuda/dev_tools.h"
#include "args.h"
#include "bindings.h"
#include "device_buffer.h"
#include "errors.h"
#include "options.h"

namespace kvtrim::addon {

namespace {

int read_device_index(Napi::Env env, Napi::Value v) {
  return int(read_int(env, v, Code::InvalidArgument, "device", 0, 1 << 20));
}

// A device (keys, values, options) triple read, bound and planned as compress does it.
struct Pair {
  TensorArg keys, values;
  CompressJob job;
  Pair(Napi::Env env, Napi::Value kv, Napi::Value vv, Napi::Value ov) {
    CompressOptions o;
    decode_compress_options(env, ov, OptionsFor::Compress, &o);
    read_tensor(env, kv, "keys", &keys);
    read_tensor(env, vv, "values", &values);
    check_args(env, o, &keys, &values, Use::Now);
    if (!keys.on_device) throw_error(env, Code::InvalidArgument, "Expected device tensors");
    bind_tensor(env, &keys, Use::Now);
    bind_tensor(env, &values, Use::Now);
    job = plan_compress(env, keys, values, o, false);
  }
};

Napi::Value StreamCreate(const Napi::CallbackInfo& i) {
  void* s = nullptr;
  throw_if(i.Env(), cuda::stream_create(read_device_index(i.Env(), i[0]), &s));
  return Napi::BigInt::New(i.Env(), uint64_t(uintptr_t(s)));
}

Napi::Value StreamDestroy(const Napi::CallbackInfo& i) {
  void* s = reinterpret_cast<void*>(uintptr_t(read_u64(i.Env(), i[1], Code::InvalidArgument, "stream")));
  throw_if(i.Env(), cuda::stream_destroy(read_device_index(i.Env(), i[0]), s));
  return i.Env().Undefined();
}

Napi::Value Emulator(const Napi::CallbackInfo& i) {
  if (!i[0].IsObject()) throw_error(i.Env(), Code::InvalidArgument, "Expected emulator({ schedule, seed })");
  Napi::Object o = i[0].As<Napi::Object>();
  const std::string sch = o.Get("schedule").ToString().Utf8Value();
  const uint64_t seed = uint64_t(o.Get("seed").ToNumber().DoubleValue());
  const int sms = o.Get("sms").IsNumber() ? o.Get("sms").ToNumber().Int32Value() : 0;
  const uint64_t spins = o.Get("spinLimit").IsNumber() ? uint64_t(o.Get("spinLimit").ToNumber().DoubleValue()) : 0;
  throw_if(i.Env(), cuda::configure_emulator(sch, seed, sms, spins));
  return i.Env().Undefined();
}

// The launch geometry compress would use for a device pair.
Napi::Value Geometry(const Napi::CallbackInfo& i) {
  Napi::Env e = i.Env();
  Pair p(e, i[0], i[1], i[2]);
  cuda::Geometry g{};
  throw_if(e, cuda::compress_geometry(p.keys.device(), p.job, &g));
  Napi::Object r = Napi::Object::New(e);
  const std::pair<const char*, double> counts[] = {{"threads", g.threads}, {"blocksPerRow", g.blocks_per_row},
      {"blocks", g.blocks}, {"residentBlocks", g.resident_blocks}, {"multiprocessors", g.sms}};
  for (const auto& [name, n] : counts) r.Set(name, Napi::Number::New(e, n));
  r.Set("cooperative", g.cooperative);
  return r;
}

// (keysList, valuesList, options, outKeysList, outValuesList, indicesList, warmup, reps)
Napi::Value BenchCompress(const Napi::CallbackInfo& i) {
  Napi::Env e = i.Env();
  for (int j = 0; j < 6; ++j) {
    if (j != 2 && !i[j].IsArray()) throw_error(e, Code::InvalidArgument, "Expected benchCompress(keys[], values[], options, outKeys[], outValues[], outIndices[], warmup, reps)");
  }
  Napi::Array ks = i[0].As<Napi::Array>(), vs = i[1].As<Napi::Array>();
  Napi::Array oks = i[3].As<Napi::Array>(), ovs = i[4].As<Napi::Array>(), ois = i[5].As<Napi::Array>();
  const int warmup = int(read_int(e, i[6], Code::InvalidArgument, "warmup", 0, 1 << 20));
  const int reps = int(read_int(e, i[7], Code::InvalidArgument, "reps", 1, 1 << 20));
  std::vector<CompressJob> jobs;
  std::vector<std::unique_ptr<Pair>> keep;  // pinned until the timing is done
  for (uint32_t j = 0; j < ks.Length(); ++j) {
    Napi::Value ok = oks.Get(j), ov = ovs.Get(j), oi = ois.Get(j);
    auto p = std::make_unique<Pair>(e, ks.Get(j), vs.Get(j), i[2]);
    CompressJob job = p->job;
    const size_t rows_k = size_t(job.shape.batch * job.shape.heads * job.plan.max_kept);
    const size_t esz = size_t(dtype_size(job.dtype));
    DeviceBuffer* bk = DeviceBuffer::From(e, ok, "outKeys");
    DeviceBuffer* bv = DeviceBuffer::From(e, ov, "outValues");
    DeviceBuffer* bi = DeviceBuffer::From(e, oi, "outIndices");
    if (bk->bytes() < rows_k * size_t(job.shape.key_dim) * esz || bv->bytes() < rows_k * size_t(job.shape.value_dim) * esz ||
        bi->bytes() < rows_k * sizeof(int32_t)) {
      throw_error(e, Code::DataLength, "benchCompress: an output buffer is too small for the compressed cache");
    }
    job.out_keys = bk->data(e, "outKeys");
    job.out_values = bv->data(e, "outValues");
    job.out_indices = static_cast<int32_t*>(bi->data(e, "outIndices"));
    jobs.push_back(std::move(job));
    keep.push_back(std::move(p));
  }
  if (jobs.empty()) throw_error(e, Code::InvalidArgument, "benchCompress: no inputs");
  std::vector<float> ms;
  throw_if(e, cuda::time_compress(keep[0]->keys.device(), jobs, warmup, reps, &ms));
  Napi::Float32Array r = Napi::Float32Array::New(e, ms.size());
  for (size_t j = 0; j < ms.size(); ++j) r[j] = ms[j];
  return r;
}

Napi::Value CopyBandwidth(const Napi::CallbackInfo& i) {
  double bw = 0;
  Napi::Env e = i.Env();
  throw_if(e, cuda::copy_bandwidth(read_device_index(e, i[0]),
                                   size_t(read_int(e, i[1], Code::InvalidArgument, "bytes", 1, int64_t(1) << 40)),
                                   int(read_int(e, i[2], Code::InvalidArgument, "reps", 1, 1 << 20)), &bw));
  return Napi::Number::New(e, bw);
}

}  // namespace

Napi::Object DevHooks(Napi::Env env) {
  Napi::Object dev = Napi::Object::New(env);
  dev.Set("streamCreate", guarded(env, "streamCreate", StreamCreate));
  dev.Set("streamDestroy", guarded(env, "streamDestroy", StreamDestroy));
  dev.Set("emulator", guarded(env, "emulator", Emulator));
  dev.Set("geometry", guarded(env, "geometry", Geometry));
  dev.Set("benchCompress", guarded(env, "benchCompress", BenchCompress));
  dev.Set("copyBandwidth", guarded(env, "copyBandwidth", CopyBandwidth));
  return dev;
}

}  // namespace kvtrim::addon
#endif  // KVTRIM_DEV_HOOKS
