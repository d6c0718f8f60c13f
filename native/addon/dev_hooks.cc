// Tools for tests and benchmarks on device tensors: the emulator's schedule, the launch
// geometry compress would use, compress timed with CUDA events, and the copy bandwidth.
#include <memory>

#include "../cuda/dev_tools.h"
#include "args.h"
#include "device_buffer.h"
#include "errors.h"

namespace kvtrim::addon {

void InitDeviceTools(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaStreamCreate", guarded(env, "cudaStreamCreate", [](const Napi::CallbackInfo& i) -> Napi::Value {
    void* s = nullptr;
    throw_if(i.Env(), cuda::stream_create(int(read_int(i.Env(), i[0], Code::InvalidArgument, "device", 0, 1 << 20)), &s));
    return Napi::Value(Napi::BigInt::New(i.Env(), uint64_t(uintptr_t(s))));
  }));
  exports.Set("cudaStreamDestroy", guarded(env, "cudaStreamDestroy", [](const Napi::CallbackInfo& i) -> Napi::Value {
    void* s = reinterpret_cast<void*>(uintptr_t(read_u64(i.Env(), i[1], Code::InvalidArgument, "stream")));
    throw_if(i.Env(), cuda::stream_destroy(int(read_int(i.Env(), i[0], Code::InvalidArgument, "device", 0, 1 << 20)), s));
    return i.Env().Undefined();
  }));
  exports.Set("cudaEmulator", guarded(env, "cudaEmulator", [](const Napi::CallbackInfo& i) -> Napi::Value {
    if (!i[0].IsObject()) throw_error(i.Env(), Code::InvalidArgument, "Expected cudaEmulator({ schedule, seed })");
    Napi::Object o = i[0].As<Napi::Object>();
    const std::string sch = o.Get("schedule").ToString().Utf8Value();
    const uint64_t seed = uint64_t(o.Get("seed").ToNumber().DoubleValue());
    const int sms = o.Get("sms").IsNumber() ? o.Get("sms").ToNumber().Int32Value() : 0;
    const uint64_t spins = o.Get("spinLimit").IsNumber() ? uint64_t(o.Get("spinLimit").ToNumber().DoubleValue()) : 0;
    throw_if(i.Env(), cuda::configure_emulator(sch, seed, sms, spins));
    return i.Env().Undefined();
  }));
  exports.Set("cudaGeometry", guarded(env, "cudaGeometry", [](const Napi::CallbackInfo& i) -> Napi::Value {
    // Launch geometry compress would use for a device pair: for tests and the benchmark.
    Napi::Env e = i.Env();
    DeviceArg k, v;
    read_device(e, i[0], "keys", &k);
    read_device(e, i[1], "values", &v);
    CompressArgs args;
    read_params(e, i[2], k.view.dims.empty() ? -1 : k.view.dims[0], &args);
    bind_device(e, &k);
    bind_device(e, &v);
    const CompressJob job = plan_compress(e, k.view, v.view, args, false);
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
  exports.Set("cudaBenchCompress", guarded(env, "cudaBenchCompress", [](const Napi::CallbackInfo& i) -> Napi::Value {
    // (keysList, valuesList, options, outKeysList, outValuesList, indicesList, warmup, reps)
    Napi::Env e = i.Env();
    for (int j = 0; j < 6; ++j) {
      if (j != 2 && !i[j].IsArray()) throw_error(e, Code::InvalidArgument, "Expected cudaBenchCompress(keys[], values[], options, outKeys[], outValues[], outIndices[], warmup, reps)");
    }
    Napi::Array ks = i[0].As<Napi::Array>(), vs = i[1].As<Napi::Array>();
    Napi::Array oks = i[3].As<Napi::Array>(), ovs = i[4].As<Napi::Array>(), ois = i[5].As<Napi::Array>();
    const int warmup = int(read_int(e, i[6], Code::InvalidArgument, "warmup", 0, 1 << 20));
    const int reps = int(read_int(e, i[7], Code::InvalidArgument, "reps", 1, 1 << 20));
    std::vector<CompressJob> jobs;
    std::vector<std::unique_ptr<DeviceArg>> keep;  // pinned until the timing is done
    std::vector<Napi::ObjectReference> outs;
    int device = 0;
    for (uint32_t j = 0; j < ks.Length(); ++j) {
      auto k = std::make_unique<DeviceArg>(), v = std::make_unique<DeviceArg>();
      read_device(e, ks.Get(j), "keys", k.get());
      read_device(e, vs.Get(j), "values", v.get());
      CompressArgs args;
      read_params(e, i[2], k->view.dims.empty() ? -1 : k->view.dims[0], &args);
      Napi::Value ok = oks.Get(j), ov = ovs.Get(j), oi = ois.Get(j);
      bind_device(e, k.get());
      bind_device(e, v.get());
      device = k->buffer->device();
      CompressJob job = plan_compress(e, k->view, v->view, args, false);
      auto out = [&](Napi::Value b) { return DeviceBuffer::From(e, b, "out")->data(e, "out"); };
      if (DeviceBuffer::From(e, ok, "outKeys")->bytes() < size_t(job.shape.batch * job.shape.heads * job.plan.max_kept * job.shape.key_dim * dtype_size(job.dtype)) ||
          DeviceBuffer::From(e, ov, "outValues")->bytes() < size_t(job.shape.batch * job.shape.heads * job.plan.max_kept * job.shape.value_dim * dtype_size(job.dtype)) ||
          DeviceBuffer::From(e, oi, "outIndices")->bytes() < size_t(job.shape.batch * job.shape.heads * job.plan.max_kept) * sizeof(int32_t)) {
        throw_error(e, Code::DataLength, "cudaBenchCompress: an output buffer is too small for the compressed cache");
      }
      job.out_keys = out(ok);
      job.out_values = out(ov);
      job.out_indices = static_cast<int32_t*>(out(oi));
      jobs.push_back(std::move(job));
      keep.push_back(std::move(k));
      keep.push_back(std::move(v));
    }
    if (jobs.empty()) throw_error(e, Code::InvalidArgument, "cudaBenchCompress: no inputs");
    std::vector<float> ms;
    throw_if(e, cuda::time_compress(device, jobs, warmup, reps, &ms));
    Napi::Float32Array r = Napi::Float32Array::New(e, ms.size());
    for (size_t j = 0; j < ms.size(); ++j) r[j] = ms[j];
    return Napi::Value(r);
  }));
  exports.Set("cudaCopyBandwidth", guarded(env, "cudaCopyBandwidth", [](const Napi::CallbackInfo& i) -> Napi::Value {
    double bw = 0;
    Napi::Env e = i.Env();
    throw_if(e, cuda::copy_bandwidth(int(read_int(e, i[0], Code::InvalidArgument, "device", 0, 1 << 20)),
                                     size_t(read_int(e, i[1], Code::InvalidArgument, "bytes", 1, int64_t(1) << 40)),
                                     int(read_int(e, i[2], Code::InvalidArgument, "reps", 1, 1 << 20)), &bw));
    return Napi::Value(Napi::Number::New(i.Env(), bw));
  }));
}

}  // namespace kvtrim::addon
