// Unpacking of JS arguments into core types, in two steps so that no JS runs between taking a
// data pointer and using it: read_* reads every JS-visible property (getters, Proxies and
// array elements may run user code), then bind_* takes the data pointers, which runs none.
// Only what JS types demand is checked here (an object, a typed array of the dtype's width,
// not detached); shapes and values are checked by native/core so every backend applies one
// set of rules.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "../core/job.h"
#include "../core/plan.h"
#include "../core/tensor.h"

namespace kvtrim::addon {

class Operation;

// A host tensor { type, data, dims }: view.dtype and view.dims after read_host, view.data and
// view.length after bind_host.
struct HostArg {
  std::string name;
  TensorView view;
  Napi::Reference<Napi::Value> array;  // the typed array, held until the operation settles
  bool resizable = false;              // on a resizable (non-shared) ArrayBuffer
  bool must_copy = false;              // borrowing it later would not be safe: copy it
  size_t bytes = 0;                    // byte length when bound
  std::unique_ptr<char[]> snapshot;    // the copy read by an async operation (resizable input)
};

// How an operation uses a host tensor: now (a ...Sync form), or later, off the main thread,
// reading it or (in place) writing it.
enum class Use { Now, Later, WriteLater };

// Reads every JS property of the tensor. For later use it also makes the buffer safe to
// borrow while the work runs: a plain ArrayBuffer is marked untransferable (Node's
// markAsUntransferable, as Node does for its own Buffer pool: a transfer then copies, or
// throws on newer Node, instead of taking the memory away); a SharedArrayBuffer needs nothing
// (it is never detached and only grows).
void read_host(Napi::Env env, Napi::Value v, const char* name, HostArg* out, Use use = Use::Now);

// Takes the data pointer. Use::Later on a resizable buffer (or where Node cannot mark a buffer)
// copies it first: a shrink could unmap it under the worker. Use::WriteLater refuses one: an
// in-place result must land in the caller's memory.
void bind_host(Napi::Env env, HostArg* a, Use use);

// After an async operation: a failed Status when the caller's buffer was detached or resized
// while the work ran (its result may mix old and new data, or the memory was gone).
Status check_unchanged(Napi::Env env, const HostArg& a, const char* op);

// Compress options, already typed by the facade: { keepRatio?, keep?, order, score, sink,
// recent, lengths? (array of integers) }. At most `batch` lengths are read.
struct CompressArgs {
  CompressParams params;
  std::vector<int64_t> lengths;
  bool has_lengths = false;
};
void read_params(Napi::Env env, Napi::Value v, int64_t batch, CompressArgs* out);

// Checks a (keys, values, options) triple and plans it: the job, without its data pointers.
// The same for host and device tensors, so both paths apply one set of rules.
CompressJob plan_compress(Napi::Env env, const TensorView& keys, const TensorView& values,
                          const CompressArgs& args, bool in_place);

// An integer-valued JS number in [lo, hi]; the message names the argument.
int64_t read_int(Napi::Env env, Napi::Value v, Code code, const std::string& name,
                 int64_t lo = -9007199254740991, int64_t hi = 9007199254740991);

// A bigint that is an unsigned 64-bit value, without loss; the message names the argument.
uint64_t read_u64(Napi::Env env, Napi::Value v, Code code, const std::string& name);

}  // namespace kvtrim::addon
