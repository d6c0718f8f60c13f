// Kernel workbench for the key norms (llm.c's dev/cuda pattern): no Node, no addon.
//
// For every element type and the head_dim edge cases (1, 7, 8, 9, 64, 65, 128, 1024, and a few
// more: one chunk, a partial chunk, a power of two, one past it, the maximum), with the keys'
// base 16-byte aligned (vector loads where head_dim % 8 == 0) and offset by one element (scalar
// loads), it generates random keys (fixed-seed PRNG, never zeros) with special rows planted:
// NaN with random payloads and signs, Inf, subnormal / tiny values (for bfloat16 the values
// below ~1e-20 where an FMA would round differently), values whose squares overflow, and rows
// spanning many binades (where the summation order shows). It runs cuda::key_norms, compares
// every output bit with native/core's row_norm_scalar (the contract's order, norm.h), times
// the call and prints a table. Exits 1 on any mismatch, printing the first differing row.
//
// key_norms has no event-timed twin in dev_tools.h; it synchronizes before returning, so the
// host clock around it times the whole operation (launch included).
//
// Build and run: `bash scripts/workbench.sh` (nvcc on a GPU machine, else g++ + the emulator).
//   build-workbench/norms [--seed N] [--only SUBSTR] [--bench] [--reps N]
//                         [--schedule deterministic|random|priority] [--sms N]   (emulator)
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../../core/norm.h"
#include "../kernels/norms.cuh"
#include "common.h"

using namespace wb;

static const char* kUsage =
    "usage: norms [--seed N] [--only SUBSTR] [--bench] [--reps N] [--schedule S] [--sms N]\n"
    "  --bench     one layer of a large cache per case, for a real GPU (GB/s vs cudaMemcpy)\n"
    "  --only S    run only the cases whose name contains S\n"
    "  --reps N    timed repetitions per case (default 1 on the emulator, 20 on a GPU)\n"
    "  --schedule, --sms   the emulator's schedule and SM count (emulator builds only)\n";

struct Case {
  std::string name;
  DType dtype;
  int64_t rows, head_dim;
  int offset;  // elements added to the base pointer: 0 (aligned) or 1 (scalar loads)
};

static const char* short_kind(DType t) { return t == DType::F16 ? "f16" : t == DType::BF16 ? "bf16" : "f32"; }

static std::vector<Case> cases(bool bench) {
  std::vector<Case> v;
  const DType kinds[] = {DType::F16, DType::BF16, DType::F32};
  const int64_t dims[] = {1, 7, 8, 9, 16, 63, 64, 65, 96, 127, 128, 129, 256, 512, 1000, 1024};
  for (DType t : kinds) {
    for (int64_t d : dims) {
      if (bench && d != 64 && d != 128 && d != 256) continue;
      for (int off : {0, 1}) {
        if (bench && off) continue;
        // Emulator-sized: ~200K elements per case; --bench: one layer of [1, 8, 32768, D].
        const int64_t rows = bench ? 8 * 32768 : std::max<int64_t>(61, 200000 / d);
        v.push_back(Case{std::string(short_kind(t)) + "-d" + std::to_string(d) + (off ? "-offset" : ""), t, rows, d, off});
      }
    }
  }
  return v;
}

// Magnitudes by binade: e = exponent relative to 1.0, for each type's own bias and width.
static uint32_t bits_with_exp(DType t, int e, Rng& r) {
  const uint64_t x = r.next();
  const uint32_t sign = uint32_t(x & 1);
  switch (t) {
    case DType::F16: {
      const int be = e + 15;
      if (be <= 0) return (sign << 15) | uint32_t(1 + (x >> 8) % 0x3FF);  // subnormal, never zero
      return (sign << 15) | (uint32_t(std::min(be, 30)) << 10) | uint32_t((x >> 8) & 0x3FF);
    }
    case DType::BF16: {
      const int be = e + 127;
      if (be <= 0) return (sign << 15) | uint32_t(1 + (x >> 8) % 0x7F);
      return (sign << 15) | (uint32_t(std::min(be, 254)) << 7) | uint32_t((x >> 8) & 0x7F);
    }
    case DType::F32: {
      const int be = e + 127;
      if (be <= 0) return (sign << 31) | uint32_t(1 + (x >> 8) % 0x7FFFFF);
      return (sign << 31) | (uint32_t(std::min(be, 254)) << 23) | uint32_t((x >> 8) & 0x7FFFFF);
    }
  }
  return 0;
}

// Row kinds, by row index: the specials every few rows, plain random rows otherwise.
static const char* row_kind(int64_t row) {
  switch (row % 11) {
    case 3: return "nan";
    case 5: return "inf";
    case 7: return "tiny";
    case 8: return "huge";
    case 9: return "wide";
    default: return "plain";
  }
}

static void generate(const Case& c, Rng& r, std::vector<unsigned char>* host) {
  const int esz = kvtrim::dtype_size(c.dtype);
  host->assign(size_t((c.rows * c.head_dim + c.offset) * esz), 0);
  void* base = host->data() + size_t(c.offset * esz);
  const int tiny = c.dtype == DType::F16 ? -20 : (c.dtype == DType::BF16 ? -70 : -130);  // subnormal / ~1e-21 / subnormal
  const int huge = c.dtype == DType::F16 ? 15 : 100;
  for (int64_t row = 0; row < c.rows; ++row) {
    const std::string kind = row_kind(row);
    for (int64_t i = 0; i < c.head_dim; ++i) {
      uint32_t b = random_bits(c.dtype, r);
      if (kind == "tiny") b = bits_with_exp(c.dtype, tiny + int(r.below(8)), r);
      else if (kind == "huge") b = bits_with_exp(c.dtype, huge - int(r.below(4)), r);
      else if (kind == "wide") b = bits_with_exp(c.dtype, int(r.below(40)) - 20, r);
      put_bits(c.dtype, base, row * c.head_dim + i, b);
    }
    if (kind == "nan" || kind == "inf") {
      const uint32_t sign = uint32_t(r.below(2));
      const uint32_t payload = kind == "inf" ? 0u : 1u + r.below(c.dtype == DType::F16 ? 0x3FF : c.dtype == DType::BF16 ? 0x7F : 0x7FFFFF);
      const uint32_t bits = c.dtype == DType::F16 ? (sign << 15) | 0x7C00u | payload
                          : c.dtype == DType::BF16 ? (sign << 15) | 0x7F80u | payload
                                                   : (sign << 31) | 0x7F800000u | payload;
      put_bits(c.dtype, base, row * c.head_dim + r.below(uint32_t(c.head_dim)), bits);
    }
  }
}

static uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

static double host_ms(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv, kUsage);
  start(o, "key norms (native/cuda, cuda::key_norms)");
  const double copy_bps = copy_floor();
  std::printf("%-16s %-9s %8s %6s %-7s %-22s %10s %8s %6s  %s\n", "case", "kind", "rows", "D", "base", "lanes x local, loads",
              "ms", "GB/s", "%copy", "bits");
  const int reps = reps_for(o);
  int failed = 0, ran = 0;
  const auto t_all = std::chrono::steady_clock::now();
  for (const Case& c : cases(o.bench)) {
    if (!o.only.empty() && c.name.find(o.only) == std::string::npos) continue;
    ++ran;
    const int esz = kvtrim::dtype_size(c.dtype);
    Rng r(o.seed ^ name_hash(c.name));
    std::vector<unsigned char> host;
    generate(c, r, &host);
    const size_t in_bytes = size_t(c.rows * c.head_dim * esz);
    DevBuf keys(in_bytes, size_t(c.offset * esz)), out(size_t(c.rows) * sizeof(float));
    keys.upload(host.data() + size_t(c.offset * esz));
    out.fill(0xA5);  // poison: a row the kernel skips cannot pass

    auto t0 = std::chrono::steady_clock::now();
    check(cu::key_norms(kDevice, c.dtype, keys.ptr(), c.rows, c.head_dim, static_cast<float*>(out.ptr()), nullptr), "key_norms");
    std::vector<float> ms{float(host_ms(t0))};
    std::vector<uint32_t> got(size_t(c.rows));
    out.download(got.data());

    std::string diff;
    for (int64_t row = 0; row < c.rows && diff.empty(); ++row) {
      const float want = kvtrim::row_norm_scalar(c.dtype, host.data() + size_t((c.offset + row * c.head_dim) * esz), c.head_dim);
      const uint32_t wb = kvtrim::f32_to_bits(want);
      if (wb == got[size_t(row)]) continue;
      char buf[200];
      std::snprintf(buf, sizeof buf, "row %" PRId64 " (%s): want 0x%08x (%.9g), got 0x%08x (%.9g)", row, row_kind(row), wb,
                    double(want), got[size_t(row)], double(kvtrim::bits_to_f32(got[size_t(row)])));
      diff = buf;
    }
    if (!emulated() || o.reps > 0) {
      ms.clear();
      for (int i = 0; i < reps + 3; ++i) {
        t0 = std::chrono::steady_clock::now();
        check(cu::key_norms(kDevice, c.dtype, keys.ptr(), c.rows, c.head_dim, static_cast<float*>(out.ptr()), nullptr), "key_norms");
        if (i >= 3) ms.push_back(float(host_ms(t0)));
      }
    }
    // The launch geometry: norms.cuh's own norm_geometry (what the launcher passes the kernel).
    const cu::NormGeometry ng = cu::norm_geometry(c.head_dim, keys.ptr());
    char geo[40];
    std::snprintf(geo, sizeof geo, "%2d x %d, %s", ng.lanes, ng.local, ng.vec ? "16-byte" : "scalar");
    const double t = median(ms), bytes = double(in_bytes) + 4.0 * double(c.rows);
    const double gbs = gb_per_s(bytes, t);
    const bool ok = diff.empty();
    failed += !ok;
    std::printf("%-16s %-9s %8" PRId64 " %6" PRId64 " %-7s %-22s %10.3f %8.2f %5.1f%%  %s%s\n", c.name.c_str(),
                kvtrim::dtype_name(c.dtype), c.rows, c.head_dim, c.offset ? "+1 elem" : "aligned", geo, t, gbs,
                pct_of_floor(gbs, copy_bps), ok ? "ok" : "MISMATCH ", diff.c_str());
    std::fflush(stdout);
  }
  return finish(ran, failed, "mismatched", host_ms(t_all) / 1e3,
                "lanes x local, loads: norms.cuh's norm_geometry; GB/s over keys read + norms written; host-clock "
                "times around key_norms", o);
}
