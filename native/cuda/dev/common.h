// Shared helpers of the kernel workbench (native/cuda/dev/*.cu), in the spirit of llm.c's
// dev/cuda/common.h: a fixed-seed PRNG, random elements that are never zero, device buffers,
// error exits, a median. Plain C++ over the stable interfaces only (cuda_backend.h,
// dev_tools.h, native/core); no CUDA types, so the same file builds with nvcc and with g++
// against the emulator.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "../../core/dtype.h"
#include "../../core/status.h"
#include "../cuda_backend.h"
#include "../dev_tools.h"
#include "../probe.h"

namespace wb {

using kvtrim::DType;
using kvtrim::Status;
namespace cu = kvtrim::cuda;

// Whether the kernels run on kvtrim's emulator (probe.h), asked once: it scales the work.
inline bool emulated() {
  static const bool emu = cu::probe().emulated;
  return emu;
}

constexpr int kDevice = 0;

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "workbench: %s\n", what.c_str());
  std::exit(2);
}

inline void check(const Status& s, const char* what) {
  if (!s.ok()) die(std::string(what) + ": " + s.message);
}

// splitmix64: small, fast, and the same sequence on every machine for a given seed.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return uint32_t(next() % n); }
};

// One random element's bits: random sign and mantissa, exponent for magnitudes in [2^-4, 2^3):
// never zero, never subnormal, Inf or NaN (the cases that want those put them in explicitly).
inline uint32_t random_bits(DType t, Rng& r) {
  const uint64_t x = r.next();
  const uint32_t sign = uint32_t(x & 1), e = uint32_t((x >> 1) % 7);  // 7 binades
  switch (t) {
    case DType::F16: return (sign << 15) | ((11 + e) << 10) | uint32_t((x >> 8) & 0x3FF);
    case DType::BF16: return (sign << 15) | ((123 + e) << 7) | uint32_t((x >> 8) & 0x7F);
    case DType::F32: return (sign << 31) | ((123 + e) << 23) | uint32_t((x >> 8) & 0x7FFFFF);
  }
  return 0;
}

inline void put_bits(DType t, void* base, int64_t i, uint32_t bits) {
  if (t == DType::F32) static_cast<uint32_t*>(base)[i] = bits;
  else static_cast<uint16_t*>(base)[i] = uint16_t(bits);
}

inline uint32_t get_bits(DType t, const void* base, int64_t i) {
  return t == DType::F32 ? static_cast<const uint32_t*>(base)[i] : static_cast<const uint16_t*>(base)[i];
}

// Device memory with an optional byte offset from the allocation (an unaligned base forces
// the launchers' narrower copy unit and the norms' scalar loads).
struct DevBuf {
  void* base = nullptr;
  size_t bytes = 0;
  size_t offset = 0;
  DevBuf() = default;
  DevBuf(size_t n, size_t off = 0) : bytes(n), offset(off) {
    check(cu::device_alloc(kDevice, n + off + 16, &base), "device_alloc");
  }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  DevBuf(DevBuf&& o) noexcept : base(o.base), bytes(o.bytes), offset(o.offset) { o.base = nullptr; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    std::swap(base, o.base);
    bytes = o.bytes;
    offset = o.offset;
    return *this;
  }
  ~DevBuf() {
    if (base) cu::device_free(kDevice, base);
  }
  void* ptr() const { return static_cast<unsigned char*>(base) + offset; }
  void upload(const void* src) { check(cu::copy_to_device(kDevice, ptr(), src, bytes, nullptr), "copy_to_device"); }
  void download(void* dst) const { check(cu::copy_to_host(kDevice, dst, ptr(), bytes, nullptr), "copy_to_host"); }
  void fill(unsigned char byte) {
    std::vector<unsigned char> v(bytes, byte);
    upload(v.data());
  }
};

inline double median(std::vector<float> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Options every workbench takes: --seed, --bench, --only, --reps, and the emulator's schedule.
struct Options {
  uint64_t seed = 1234;
  bool bench = false;
  std::string only;         // run only the cases whose name contains this
  int reps = -1;            // timed repetitions (default: 1 on the emulator, 20 on a GPU)
  std::string schedule;     // emulator only: deterministic | random | priority
  int sms = 0;              // emulator only: SM count (0: the default H100's)
};

inline Options parse_options(int argc, char** argv, const char* usage) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--seed") o.seed = std::strtoull(value().c_str(), nullptr, 0);
    else if (a == "--bench") o.bench = true;
    else if (a == "--only") o.only = value();
    else if (a == "--reps") o.reps = std::atoi(value().c_str());
    else if (a == "--schedule") o.schedule = value();
    else if (a == "--sms") o.sms = std::atoi(value().c_str());
    else if (a == "-h" || a == "--help") {
      std::printf("%s", usage);
      std::exit(0);
    } else {
      die("unknown argument " + a + "\n" + usage);
    }
  }
  return o;
}

// Device checks and the emulator's controls; prints one header line.
inline void start(const Options& o, const char* what) {
  const cu::Probe p = cu::probe();
  if (!p.usable) die("no CUDA device: " + p.reason);
  if (emulated() && (!o.schedule.empty() || o.sms > 0)) {
    check(cu::configure_emulator(o.schedule.empty() ? "deterministic" : o.schedule, o.seed, o.sms, 0),
          "configure_emulator");
  } else if (!emulated() && (!o.schedule.empty() || o.sms > 0)) {
    die("--schedule and --sms are emulator options");
  }
  std::printf("kvtrim workbench: %s, seed %llu, %s%s\n", what, (unsigned long long)o.seed,
              emulated() ? "EMULATED device (times are host-clock, not GPU speed)" : "GPU",
              o.bench ? ", --bench shapes" : "");
}

inline int reps_for(const Options& o) { return o.reps > 0 ? o.reps : (emulated() ? 1 : 20); }

// The card's device-to-device copy bandwidth (bytes read + written per second), printed: the
// floor every row's GB/s is compared with.
inline double copy_floor() {
  double bps = 0;
  check(cu::copy_bandwidth(kDevice, emulated() ? (8u << 20) : (512u << 20), emulated() ? 2 : 10, &bps), "copy_bandwidth");
  std::printf("cudaMemcpy device-to-device: %.1f GB/s (read + write)\n\n", bps / 1e9);
  return bps;
}

// GB/s of `bytes` moved in `ms`, and that as a percentage of the copy floor.
inline double gb_per_s(double bytes, double ms) { return ms > 0 ? bytes / (ms * 1e6) : 0; }
inline double pct_of_floor(double gbs, double floor_bps) { return floor_bps > 0 ? 100.0 * gbs * 1e9 / floor_bps : 0.0; }

// The closing line of a run and its exit status: non-zero when a case failed or none ran.
inline int finish(int ran, int failed, const char* failed_word, double seconds, const char* legend, const Options& o) {
  std::printf("\n%d cases, %d %s, %.1f s (%s)\n", ran, failed, failed_word, seconds, legend);
  if (ran == 0) die("no case matches --only " + o.only);
  return failed ? 1 : 0;
}

}  // namespace wb
