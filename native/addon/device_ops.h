// Device tensors and the operations on them: N-API glue over native/cuda/cuda_backend.h.
#pragma once
#include <napi.h>

namespace kvtrim::addon {

// Registers DeviceBuffer and the cuda* functions on the binding's exports.
void InitDevice(Napi::Env env, Napi::Object exports);

}  // namespace kvtrim::addon
