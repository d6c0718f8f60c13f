// Mutation-testing harness (test/emu/mutants/run.py): kvtrim's kernels on small fixed inputs,
// straight through the emulator (no addon). Prints one digest per case of everything the kernel
// wrote, or the launch error; run.py compares a mutant's digests with the original's under every
// schedule (the plain emulator) and looks for ThreadSanitizer reports (the TSan build).
// Built against a copy of native/cuda whose kernels run.py mutates: -I<copy>.
#include "kernels/compress.cuh"
#include "kernels/uncertainty.cuh"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace kvtrim::cuda;

template <class T>
static T* dev(size_t n, int fill = 0) {
  T* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(T) + 16) != cudaSuccess) std::abort();
  std::memset(p, fill, n * sizeof(T));
  return p;
}
static uint64_t fnv(uint64_t h, const void* p, size_t n) {
  const unsigned char* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
static uint64_t rnd(uint64_t& s) {
  s = s * 6364136223846793005ull + 1442695040888963407ull;
  return s >> 33;
}

// One compress launch: rows rows of S tokens, D fp16 elements; k kept (sink 2, recent 8).
static void compress_case(const char* name, int rows, int S, int D, int k, int G, bool in_place, bool norm) {
  uint64_t s = 12345;
  const int rb = D * 2;
  unsigned char* keys = dev<unsigned char>(size_t(rows) * S * rb);
  unsigned char* values = dev<unsigned char>(size_t(rows) * S * rb);
  for (size_t i = 0; i < size_t(rows) * S * D; ++i) {
    const unsigned h = unsigned(((rnd(s) & 1) << 15) | ((10 + rnd(s) % 8) << 10) | (rnd(s) & 0x3FF));
    reinterpret_cast<unsigned short*>(keys)[i] = (unsigned short)h;
    reinterpret_cast<unsigned short*>(values)[i] = (unsigned short)(h ^ 0x1234);
  }
  for (int r = 0; r < rows; ++r)  // duplicate rows: ties
    std::memcpy(keys + (size_t(r) * S + 7) * rb, keys + (size_t(r) * S + 30) * rb, rb);
  int* lengths = dev<int>(1);
  int* kept = dev<int>(1);
  lengths[0] = S;
  kept[0] = k;
  int sort_n = 1;
  while (sort_n < k) sort_n <<= 1;
  CompressArgs a{};
  a.keys = keys;
  a.values = values;
  a.out_keys = in_place ? keys : dev<unsigned char>(size_t(rows) * k * rb, 0x5A);
  a.out_values = in_place ? values : dev<unsigned char>(size_t(rows) * k * rb, 0x5A);
  a.out_indices = dev<int>(size_t(rows) * k, 0x5A);
  a.heads = rows;
  a.seq = S;
  a.key_row_bytes = a.value_row_bytes = rb;
  a.kmax = k;
  a.out_seq = in_place ? S : k;
  a.lengths = lengths;
  a.kept = kept;
  a.sink = 2;
  a.recent = 8;
  a.high = 0;
  a.order_norm = norm;
  a.in_place = in_place;
  a.split = G;
  a.copy_unit = 16;
  a.norm.head_dim = D;
  a.norm.chunks = (D + 7) / 8;
  int p2 = 1;
  while (p2 < a.norm.chunks) p2 <<= 1;
  a.norm.lanes = p2 < 32 ? p2 : 32;
  a.norm.local = p2 / a.norm.lanes;
  a.norm.vec = 1;
  a.keys32 = dev<unsigned>(size_t(rows) * S);
  a.hist = dev<unsigned>(size_t(rows) * 3 * kRadixBins);
  a.counts = dev<unsigned>(size_t(rows) * G * 2);
  a.barrier = dev<unsigned>(size_t(rows));
  a.sortbuf = dev<unsigned long long>(size_t(rows) * sort_n);
  a.sort_n = sort_n;
  const cudaError_t e = kvtrim::emu::launch(&compress_kernel<kF16, 16>, dim3(unsigned(rows * G)), dim3(kCompressThreads),
                                            compress_smem_bytes(kCompressThreads), nullptr, G > 1, a);
  uint64_t h = 0xcbf29ce484222325ull;
  if (e != cudaSuccess) {
    std::printf("%s error %s\n", name, cudaGetErrorName(e));
    return;
  }
  const size_t out_rows = size_t(rows) * (in_place ? S : k);
  h = fnv(h, a.out_keys, out_rows * rb);
  h = fnv(h, a.out_values, out_rows * rb);
  h = fnv(h, a.out_indices, size_t(rows) * k * 4);
  std::printf("%s %016llx\n", name, (unsigned long long)h);
}

static void uncertainty_case(const char* name, bool window, bool bad_input, unsigned grid = 0) {
  uint64_t s = 777;
  UncertaintyArgs a{};
  const int rows = 3, n = 200, W = 2, S = 60, D = 16;
  a.window_mode = window;
  a.threshold = 0.9;
  if (!window) {
    float* att = dev<float>(size_t(rows) * n);
    for (int i = 0; i < rows * n; ++i) att[i] = float(rnd(s) % 1000) / 997.0f;
    if (bad_input) att[n + 17] = att[n + 90] = att[2 * n + 5] = -1.0f;  // several threads and rows
    a.att = reinterpret_cast<const unsigned char*>(att);
    a.att_kind = kF32;
    a.rows = rows;
    a.n = n;
  } else {
    float* q = dev<float>(size_t(W) * D);
    float* k = dev<float>(size_t(S) * D);
    for (int i = 0; i < W * D; ++i) q[i] = float(int(rnd(s) % 200) - 100) / 50.0f;
    for (int i = 0; i < S * D; ++i) k[i] = float(int(rnd(s) % 200) - 100) / 50.0f;
    a.q = reinterpret_cast<const unsigned char*>(q);
    a.k = reinterpret_cast<const unsigned char*>(k);
    a.q_kind = a.k_kind = kF32;
    a.rows = W;
    a.q_heads = a.kv_heads = 1;
    a.window = W;
    a.seq = S;
    a.head_dim = D;
    a.causal = 1;
    a.scale = std::sqrt(double(D));
  }
  const int longest = window ? S : n;
  a.sort_n = 1;
  while (a.sort_n < longest) a.sort_n <<= 1;
  const unsigned blocks = grid ? grid : unsigned(a.rows);  // grid < rows: the grid-stride loop
  a.scratch = dev<double>(size_t(blocks) * a.sort_n);
  a.counts = dev<int>(size_t(a.rows));
  a.bad = dev<unsigned long long>(1, window ? 0 : 0xFF);
  const cudaError_t e = kvtrim::emu::launch(&uncertainty_kernel, dim3(blocks), dim3(kUncertaintyThreads), sizeof(double) * (kUncertaintyThreads / 32),
                                            nullptr, false, a);
  if (e != cudaSuccess) {
    std::printf("%s error %s\n", name, cudaGetErrorName(e));
    return;
  }
  uint64_t h = fnv(0xcbf29ce484222325ull, a.counts, size_t(a.rows) * 4);
  h = fnv(h, a.bad, 8);
  std::printf("%s %016llx\n", name, (unsigned long long)h);
}

int main(int argc, char** argv) {
  const char* sch = argc > 1 ? argv[1] : "deterministic";
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  kvtrim::emu::set_schedule(!std::strcmp(sch, "random") ? kvtrim::emu::Schedule::Random
                            : !std::strcmp(sch, "priority") ? kvtrim::emu::Schedule::Priority
                                                            : kvtrim::emu::Schedule::Deterministic,
                            seed);
  kvtrim::emu::set_spin_limit(20000);
  const char* only = argc > 3 ? argv[3] : "";  // "compress", "split" or "uncertainty": a subset
  const bool all = !*only;
  if (all || !std::strcmp(only, "compress")) {
    compress_case("position", 1, 300, 64, 150, 1, false, false);
    compress_case("norm-order", 1, 150, 64, 60, 1, false, true);
    compress_case("in-place", 1, 300, 64, 150, 1, true, false);
    compress_case("norm-2-tiles", 1, 1100, 16, 600, 1, false, true);  // k > blockDim
    compress_case("all-middle", 1, 100, 16, 95, 1, false, false);     // no selection needed
  }
  if (all || !std::strcmp(only, "compress") || !std::strcmp(only, "split"))
    compress_case("split2", 1, 1100, 64, 500, 2, false, false);
  if (all || !std::strcmp(only, "uncertainty")) {
    uncertainty_case("uncertainty-weights", false, false);
    uncertainty_case("uncertainty-bad-weight", false, true);
    uncertainty_case("uncertainty-window", true, false);
    uncertainty_case("uncertainty-stride", false, false, 1);  // one block, three rows
  }
  return 0;
}
