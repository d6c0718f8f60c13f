// Device memory of device tensors: allocation, release, and copies between host and device.
#include "cuda_backend.h"
#include "runtime.h"

namespace kvtrim::cuda {

Status device_alloc(int device, size_t bytes, void** ptr) {
  return with_device(device, [&] {
    *ptr = nullptr;
    if (bytes == 0) return Status::success();
    return cuda_status(cudaMalloc(ptr, bytes), "cudaMalloc");
  });
}

Status device_free(int device, void* ptr) {
  return with_device(device, [&] { return cuda_status(cudaFree(ptr), "cudaFree"); });
}

Status copy_to_device(int device, void* dst, const void* src, size_t bytes, void* stream) {
  return with_device(device, [&] {
    if (bytes == 0) return Status::success();
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, as_stream(stream)));
    return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
  });
}

Status copy_to_host(int device, void* dst, const void* src, size_t bytes, void* stream) {
  return with_device(device, [&] {
    if (bytes == 0) return Status::success();
    KVTRIM_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, as_stream(stream)));
    return cuda_status(cudaStreamSynchronize(as_stream(stream)), "cudaStreamSynchronize");
  });
}

}  // namespace kvtrim::cuda
