// Tools for tests and benchmarks on device tensors: the emulator's schedule, the launch
// geometry compress would use, compress timed with CUDA events, and the copy bandwidth.
#include "../cuda/ops.h"
#include "args.h"
#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

void InitDeviceTools(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaStreamCreate", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    void* s = nullptr;
    throw_if(i.Env(), cuda::stream_create(i[0].As<Napi::Number>().Int32Value(), &s));
    return Napi::Value(Napi::BigInt::New(i.Env(), uint64_t(uintptr_t(s))));
  }));
  exports.Set("cudaStreamDestroy", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    bool lossless = true;
    void* s = reinterpret_cast<void*>(uintptr_t(i[1].As<Napi::BigInt>().Uint64Value(&lossless)));
    throw_if(i.Env(), cuda::stream_destroy(i[0].As<Napi::Number>().Int32Value(), s));
    return i.Env().Undefined();
  }));
  exports.Set("cudaEmulator", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    Napi::Object o = i[0].As<Napi::Object>();
    const std::string sch = o.Get("schedule").ToString().Utf8Value();
    const uint64_t seed = uint64_t(o.Get("seed").ToNumber().DoubleValue());
    const int sms = o.Get("sms").IsNumber() ? o.Get("sms").ToNumber().Int32Value() : 0;
    const uint64_t spins = o.Get("spinLimit").IsNumber() ? uint64_t(o.Get("spinLimit").ToNumber().DoubleValue()) : 0;
    throw_if(i.Env(), cuda::configure_emulator(sch, seed, sms, spins));
    return i.Env().Undefined();
  }));
  exports.Set("cudaGeometry", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    // Launch geometry compress would use for a device pair: for tests and the benchmark.
    Napi::Env e = i.Env();
    DeviceArg k = read_device(e, i[0], "keys"), v = read_device(e, i[1], "values");
    const CompressJob job = plan_compress(e, k.view, v.view, i[2], false);
    cuda::Geometry g{};
    throw_if(e, cuda::compress_geometry(k.buffer->device(), job, &g));
    Napi::Object r = Napi::Object::New(e);
    r.Set("threads", g.threads);
    r.Set("blocksPerRow", g.blocks_per_row);
    r.Set("blocks", g.blocks);
    r.Set("residentBlocks", g.resident_blocks);
    r.Set("multiprocessors", g.sms);
    r.Set("cooperative", g.cooperative);
    return Napi::Value(r);
  }));
  exports.Set("cudaBenchCompress", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    // (keysList, valuesList, options, outKeysList, outValuesList, indicesList, warmup, reps)
    Napi::Env e = i.Env();
    Napi::Array ks = i[0].As<Napi::Array>(), vs = i[1].As<Napi::Array>();
    Napi::Array oks = i[3].As<Napi::Array>(), ovs = i[4].As<Napi::Array>(), ois = i[5].As<Napi::Array>();
    std::vector<CompressJob> jobs;
    std::vector<DeviceArg> keep;
    int device = 0;
    for (uint32_t j = 0; j < ks.Length(); ++j) {
      DeviceArg k = read_device(e, ks.Get(j), "keys"), v = read_device(e, vs.Get(j), "values");
      device = k.buffer->device();
      CompressJob job = plan_compress(e, k.view, v.view, i[2], false);
      auto out = [&](Napi::Array a) { return DeviceBuffer::Unwrap(a.Get(j).As<Napi::Object>())->data(e, "out"); };
      job.out_keys = out(oks);
      job.out_values = out(ovs);
      job.out_indices = static_cast<int32_t*>(out(ois));
      jobs.push_back(std::move(job));
      keep.push_back(std::move(k));
      keep.push_back(std::move(v));
    }
    std::vector<float> ms;
    throw_if(e, cuda::time_compress(device, jobs, i[6].As<Napi::Number>().Int32Value(), i[7].As<Napi::Number>().Int32Value(), &ms));
    Napi::Float32Array r = Napi::Float32Array::New(e, ms.size());
    for (size_t j = 0; j < ms.size(); ++j) r[j] = ms[j];
    return Napi::Value(r);
  }));
  exports.Set("cudaCopyBandwidth", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    double bw = 0;
    throw_if(i.Env(), cuda::copy_bandwidth(i[0].As<Napi::Number>().Int32Value(), size_t(i[1].As<Napi::Number>().DoubleValue()),
                                           i[2].As<Napi::Number>().Int32Value(), &bw));
    return Napi::Value(Napi::Number::New(i.Env(), bw));
  }));
}

}  // namespace kvtrim::addon
