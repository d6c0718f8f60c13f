// Tensor arguments, host or device, read in two steps so that no JS runs between taking a data
// pointer and using it: read_tensor reads every JS-visible property (getters, Proxies and
// array elements may run user code), then bind_tensor takes the data pointer, which runs none.
// Host and device tensors are read by the same code and checked by the same rules (type, dims,
// then native/core's shape checks); only where the data lives differs. This is where an
// operation learns where it runs (the PyTorch rule: where its data lives).
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "../core/job.h"
#include "../core/plan.h"
#include "../core/tensor.h"

namespace kvtrim::addon {

class DeviceBuffer;

// How an operation uses a host tensor: now (a ...Sync form), or later, off the main thread,
// reading it or (in place) writing it. Device tensors are pinned whatever the use.
enum class Use { Now, Later, WriteLater };

// A tensor argument: { type, data, dims } on the host, or a device tensor { type, buffer,
// dims } whose buffer is a kvtrim DeviceBuffer (lib's DeviceTensor is one as it is). view.dtype
// and view.dims after read_tensor, view.data and view.length after bind_tensor.
struct TensorArg {
  std::string name;
  TensorView view;
  bool on_device = false;
  // host
  Napi::Reference<Napi::Value> array;  // the typed array, held until the operation settles
  bool resizable = false;              // on a resizable (non-shared) ArrayBuffer
  bool must_copy = false;              // borrowing it later would not be safe: copy it
  size_t bytes = 0;                    // byte length when bound
  std::unique_ptr<char[]> snapshot;    // the copy read by an async operation (resizable input)
  // read_tensor's values, checked by check_fields (handles of the call that read them)
  bool is_object = false;
  Napi::Value raw_type, raw_data, raw_dims;
  double raw_rank = -2;                     // dims' length; -2: not an array, -1: not a count
  std::vector<Napi::Value> raw_dim_values;  // when dims is an array of at most 8 entries
  // device
  DeviceBuffer* buffer = nullptr;
  Napi::ObjectReference keep;  // the tensor object, holding its buffer alive
  bool pinned = false;         // unpinned when the argument goes (main thread, once settled)

  TensorArg() = default;
  TensorArg(const TensorArg&) = delete;
  TensorArg& operator=(const TensorArg&) = delete;
  ~TensorArg();
  int device() const;
};

// Reads every JS property of the tensor (type, data -- or buffer when there is no data --,
// dims and its entries) and learns where it lives; checks nothing yet.
void read_tensor(Napi::Env env, Napi::Value v, const char* name, TensorArg* out);

// Checks what read_tensor read: an object, a known type, data a typed array of the type's
// width (host) and dims an array of at most 8 integers. For later use a host buffer is also
// made safe to borrow while the work runs: a plain ArrayBuffer is marked untransferable
// (Node's markAsUntransferable, as Node does for its own Buffer pool: a transfer then copies,
// or throws on newer Node, instead of taking the memory away); a SharedArrayBuffer needs
// nothing (it is never detached and only grows).
void check_fields(Napi::Env env, TensorArg* t, Use use);

// Takes the data pointer (a device buffer is pinned; a disposed one is DISPOSED, or
// INVALID_ARGUMENT when a getter of this very call disposed it). Use::Later on a resizable host buffer (or
// where Node cannot mark a buffer) copies it first: a shrink could unmap it under the worker.
// Use::WriteLater refuses one: an in-place result must land in the caller's memory.
void bind_tensor(Napi::Env env, TensorArg* a, Use use);

// A host typed array taken as it is (DeviceBuffer's upload and download): bound at once.
void bind_array(Napi::Env env, Napi::Value v, const char* call, const char* name, TensorArg* a);

// keys and values (or queries and keys) both on the host or both on one device: DEVICE_MISMATCH.
void check_same_place(Napi::Env env, const TensorArg& a, const TensorArg& b);

// After an async operation: a failed Status when the caller's host buffer was detached or
// resized while the work ran (its result may mix old and new data, or the memory was gone).
Status check_unchanged(Napi::Env env, const TensorArg& a, const char* op);

// An integer-valued JS number in [lo, hi]; the message names the argument.
int64_t read_int(Napi::Env env, Napi::Value v, Code code, const std::string& name,
                 int64_t lo = -9007199254740991, int64_t hi = 9007199254740991);

// A bigint that is an unsigned 64-bit value, without loss; the message names the argument.
uint64_t read_u64(Napi::Env env, Napi::Value v, Code code, const std::string& name);

}  // namespace kvtrim::addon
