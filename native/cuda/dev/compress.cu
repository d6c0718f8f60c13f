// Kernel workbench for the fused compress (llm.c's dev/cuda pattern): no Node, no addon.
//
// For each case it generates a random cache (fixed-seed PRNG, never zeros; exact norm ties
// planted on purpose), computes the expected output with native/core alone (the contract's row
// norm, select_row, a plain gather, written out below; for the other scorers score.h's scores,
// score_key and select_keys), checks cuda::token_scores against those scores, runs the product launcher
// (cuda::compress, or cuda::compress_layers) over the <kind, unit, split, order> variants, compares
// every output bit (keys, values, indices; the padding of ragged rows; in place, the rows left
// alone), times the call with CUDA events (dev_tools.h: time_compress) and prints one table row
// with the geometry that ran (dev_tools.h: compress_geometry). Exits 1 on any mismatch, printing
// the first differing position.
//
// The variants are reached through the launcher, never by launching kernels here:
//   kind   <- dtype (float16, bfloat16, float32)
//   unit   <- the copy unit the launcher (compress.cu) picks: 16 when keys, values and both outputs are 16-byte
//             aligned and every row is a multiple of 16 bytes, else the element size (2 for the
//             16-bit types, 4 for float32); an offset base pointer forces the narrow unit
//   split  <- KVTRIM_SPLIT=n (read by the launcher on every call; honoured only for order
//             'position', not in place, on a cooperative device, and capped at resident / rows)
//   order  <- 'position' / 'norm', plus score, sink / recent, ragged lengths, in place, layers.
//   phase A <- the scorer: low/high-norm get the norm variant, the others (kv-norm, keydiff,
//             project, given) the other-scorers variant (compress.cuh: PhaseA).
//
// Build and run: `bash scripts/workbench.sh` (nvcc on a GPU machine, else g++ + the emulator).
//   build-workbench/compress [--seed N] [--only SUBSTR] [--bench] [--reps N]
//                            [--schedule deterministic|random|priority] [--sms N]   (emulator)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../../core/job.h"
#include "../../core/norm.h"
#include "../../core/plan.h"
#include "../../core/score.h"
#include "../../core/select.h"
#include "../../core/selection.h"
#include "common.h"

using namespace wb;
using kvtrim::CompressJob;
using kvtrim::CompressParams;
using kvtrim::Order;
using kvtrim::Plan;
using kvtrim::Score;
using kvtrim::Selection;
using kvtrim::Shape;

static const char* kUsage =
    "usage: compress [--seed N] [--only SUBSTR] [--bench] [--reps N] [--schedule S] [--sms N]\n"
    "  --bench     large shapes for a real GPU (GB/s and the ratio to cudaMemcpy's bandwidth)\n"
    "  --only S    run only the cases whose name contains S\n"
    "  --reps N    timed repetitions per case (default 1 on the emulator, 20 on a GPU)\n"
    "  --schedule, --sms   the emulator's schedule and SM count (emulator builds only)\n";

// ---- cases ---------------------------------------------------------------------------------

struct Case {
  std::string name;
  DType dtype = DType::F16;
  int64_t B = 1, H = 1, S = 1, Dk = 128, Dv = 128;
  double ratio = 0.5;       // keepRatio, unless keep >= 0
  int64_t keep = -1;        // absolute k per row
  Order order = Order::Position;
  Score score = Score::LowNorm;
  int64_t sink = 0, recent = 0;
  std::vector<int64_t> lengths;  // ragged valid lengths; empty = all S
  int split = 0;            // 0: the launcher's own choice; n: KVTRIM_SPLIT=n
  int misalign = 0;         // bytes added to the keys' base pointer (forces the narrow unit)
  bool in_place = false;
  int layers = 0;           // > 0: cuda::compress_layers over this many layers
  bool nans = false;        // NaN elements in ~1/16 of the key rows
  bool specials = false;    // zero, Inf and NaN key and value rows; NaN, +-0, +-Inf given scores
  int emu_sms = 0;          // emulator only: the SM count for this case (0: the run's)
  int want_unit = 0, want_split = 0;  // the variant the case is meant to reach (0: not checked)
  // Other launcher switches for this case only, e.g. {"KVTRIM_COMPRESS_VERSION", "2"} for a
  // kernel version the launcher selects by environment (README.md: adding a kernel version).
  std::vector<std::pair<std::string, std::string>> env;
  // Per-row kept counts (docs/policies.md "Selection modes"): the plan is make_plan(...,
  // head_keep) with counts drawn at random in [min(len, sink + recent), len] (Random), or
  // kvtrim::selection_counts of the reference scores (Threshold at the median valid middle
  // score, which is itself a score: ties at t; Adaptive with `alpha`). PerHead: keep_count.
  Selection counts = Selection::PerHead;
  bool random_counts = false;
  double alpha = 0.2;
};

static const char* score_name(Score s) {
  switch (s) {
    case Score::LowNorm: return "low";
    case Score::HighNorm: return "high";
    case Score::KvNorm: return "kvn";
    case Score::KeyDiff: return "kdiff";
    case Score::Project: return "proj";
    case Score::Given: return "given";
  }
  return "?";
}

static std::string order_name(const Case& c) {
  std::string o = c.order == Order::Norm ? "norm" : "pos";
  return c.score == Score::LowNorm ? o : o + "/" + score_name(c.score);
}

static Case with(Case c, DType t, Order o) {
  c.dtype = t;
  c.order = o;
  c.name += std::string("-") + kvtrim::dtype_name(t) + (o == Order::Norm ? "-norm" : "");
  return c;
}

static const char* short_kind(DType t) { return t == DType::F16 ? "f16" : t == DType::BF16 ? "bf16" : "f32"; }

// The scorers other than the norms (docs/policies.md "Scorers"): each x dtype x order on small
// ragged rows with sink and recent and zero / Inf / NaN rows (the vector path for float16 and
// float32 with Dv != Dk, the scalar path for bfloat16 with Dk = 66); then split rows (G = 3;
// keydiff must stay at G = 1), in place, and both kinds of layers launch. Every case also checks
// cuda::token_scores against score.h (run() does, before the compress), and so do the norm cases.
static void scorer_cases(std::vector<Case>* v) {
  const Score scorers[] = {Score::KvNorm, Score::KeyDiff, Score::Project, Score::Given};
  for (Score sc : scorers) {
    for (DType t : {DType::F16, DType::BF16, DType::F32}) {
      for (Order o : {Order::Position, Order::Norm}) {
        Case c;
        c.score = sc, c.dtype = t, c.order = o;
        c.B = 2, c.H = 2, c.S = 300, c.lengths = {300, 171};
        c.Dk = t == DType::BF16 ? 66 : 128, c.Dv = t == DType::F32 ? 64 : (t == DType::BF16 ? 40 : 128);
        c.ratio = 0.35, c.sink = 3, c.recent = 16, c.specials = true;
        c.name = std::string("score-") + score_name(sc) + "-" + short_kind(t) + (o == Order::Norm ? "-norm" : "-pos");
        v->push_back(c);
      }
    }
    Case g;  // split rows: G = 3 where the scorer allows it, G = 1 for keydiff whatever is asked
    g.score = sc, g.B = 1, g.H = 1, g.S = 1600, g.Dk = g.Dv = 65, g.split = 3, g.specials = true;
    g.ratio = 0.2, g.sink = 2, g.recent = 40, g.want_split = sc == Score::KeyDiff ? 1 : 3;
    g.name = std::string("score-") + score_name(sc) + "-f16-G3" + (sc == Score::KeyDiff ? "-ignored" : "");
    v->push_back(g);
    Case ip;  // in place (G = 1), ragged
    ip.score = sc, ip.dtype = DType::BF16, ip.B = 2, ip.H = 2, ip.S = 256, ip.lengths = {256, 99};
    ip.sink = 4, ip.recent = 8, ip.ratio = 0.3, ip.in_place = true, ip.specials = true;
    ip.name = std::string("score-") + score_name(sc) + "-bf16-inplace";
    v->push_back(ip);
    Case l;  // one launch for all layers (unit 16), each layer with its own vectors / scores
    l.score = sc, l.B = 1, l.H = 2, l.S = 200, l.layers = 3, l.sink = 1, l.recent = 4, l.specials = true;
    l.name = std::string("score-") + score_name(sc) + "-layers-1launch";
    v->push_back(l);
  }
  Case pj;  // per-job layers fallback (unit 4, float32, odd rows), order 'norm'
  pj.score = Score::KeyDiff, pj.dtype = DType::F32, pj.order = Order::Norm, pj.B = 2, pj.H = 1, pj.S = 150;
  pj.Dk = 33, pj.Dv = 17, pj.layers = 2, pj.lengths = {150, 64}, pj.specials = true;
  pj.name = "score-kdiff-layers-perjob-f32-norm";
  v->push_back(pj);
  Case e;  // keydiff with an empty row and a one-token row; the given scores with keep 0
  e.score = Score::KeyDiff, e.B = 3, e.H = 1, e.S = 70, e.Dk = e.Dv = 8, e.keep = 20, e.lengths = {0, 1, 70};
  e.name = "score-kdiff-empty-rows";
  v->push_back(e);
  Case z = e;
  z.score = Score::Given, z.keep = 0, z.name = "score-given-keep0";
  v->push_back(z);
}

static std::string counts_name(const Case& c) {
  if (c.random_counts) return "hk";
  if (c.counts == Selection::Threshold) return "thr";
  if (c.counts == Selection::Adaptive) return "ada" + (c.alpha == 0.2 ? std::string() : std::to_string(c.alpha).substr(0, 3));
  return "";
}

// Ragged heads (docs/policies.md "Selection modes"): every row of a batch entry keeps its own
// count, so rows of one launch have different k (and the outputs padding after each row's own
// k, up to the plan's kmax). Random head_keep counts (extremes included: only the protected
// tokens, every token), threshold counts and adaptive counts (selection.h) over: every dtype,
// G = 1 / 3 forced and the launcher's own split on long rows, order 'norm', empty and one-token
// entries, in place, both layers launches, and the other scorers (the counts come from the
// same scorer's reference scores; given scores with NaN / Inf / ties).
static void ragged_head_cases(std::vector<Case>* v) {
  const DType kinds[] = {DType::F16, DType::BF16, DType::F32};
  for (DType t : kinds) {
    for (int g : {1, 3, 0}) {  // 0: order 'norm'
      Case c;
      c.dtype = t, c.B = 2, c.H = 4, c.S = 1200, c.lengths = {1200, 777};
      c.Dk = c.Dv = t == DType::BF16 ? 66 : 128;
      c.sink = 4, c.recent = 32, c.random_counts = true;
      c.order = g == 0 ? Order::Norm : Order::Position;
      c.split = g == 0 ? 2 : g, c.want_split = g == 0 ? 1 : g;
      c.name = std::string("heads-hk-") + short_kind(t) + (g == 0 ? "-norm" : "-G" + std::to_string(g));
      v->push_back(c);
    }
  }
  for (Selection sel : {Selection::Threshold, Selection::Adaptive}) {
    const std::string nm = sel == Selection::Threshold ? "thr" : "ada";
    for (DType t : kinds) {
      for (int g : {1, 3, 0}) {
        Case c;
        c.dtype = t, c.B = 2, c.H = 4, c.S = 1000, c.lengths = {1000, 613};
        c.Dk = c.Dv = t == DType::F32 ? 66 : 128;
        c.sink = 2, c.recent = 16, c.ratio = 0.3, c.counts = sel;
        c.score = t == DType::BF16 ? Score::HighNorm : Score::LowNorm;
        c.order = g == 0 ? Order::Norm : Order::Position;
        c.split = g == 0 ? 2 : g, c.want_split = g == 0 ? 1 : g;
        c.name = "heads-" + nm + "-" + short_kind(t) + (t == DType::BF16 ? "-high" : "") +
                 (g == 0 ? "-norm" : "-G" + std::to_string(g));
        v->push_back(c);
      }
    }
    for (Score sc : {Score::KvNorm, Score::KeyDiff, Score::Project, Score::Given}) {
      Case c;
      c.score = sc, c.dtype = sc == Score::Given ? DType::BF16 : DType::F16, c.counts = sel;
      c.B = 2, c.H = 3, c.S = 300, c.lengths = {300, 171}, c.Dk = 128, c.Dv = 64;
      c.sink = 3, c.recent = 16, c.ratio = 0.35, c.specials = true;
      c.name = "heads-" + nm + "-" + score_name(sc) + "-" + short_kind(c.dtype);
      v->push_back(c);
      if (sc != Score::KeyDiff) {  // split rows with this scorer (keydiff stays at G = 1)
        Case g = c;
        g.B = 1, g.H = 2, g.S = 1600, g.lengths.clear(), g.Dk = g.Dv = 65, g.split = 3, g.want_split = 3;
        g.name += "-G3";
        v->push_back(g);
      }
    }
  }
  {
    Case a;  // alpha 0 (a pure global pick) and 1 ('per-head'), threshold -Inf / +Inf (all / none)
    a.B = 2, a.H = 4, a.S = 500, a.lengths = {500, 260}, a.sink = 2, a.recent = 8, a.ratio = 0.25;
    a.counts = Selection::Adaptive, a.alpha = 0.0, a.split = 3, a.want_split = 3, a.name = "heads-ada0-f16-G3";
    v->push_back(a);
    Case b = a;
    b.alpha = 1.0, b.split = 0, b.want_split = 0, b.name = "heads-ada1-f16";
    v->push_back(b);
  }
  {
    Case c;  // empty and one-token entries, all-protected and full rows (random counts), norm order
    c.name = "heads-hk-empty-rows-f16", c.B = 4, c.H = 3, c.S = 160, c.Dk = 64, c.Dv = 72;
    c.lengths = {0, 1, 160, 25}, c.sink = 3, c.recent = 5, c.random_counts = true;
    v->push_back(c);
    Case d = c;
    d.order = Order::Norm, d.name = "heads-hk-empty-rows-f16-norm";
    v->push_back(d);
    Case e = c;
    e.counts = Selection::Adaptive, e.random_counts = false, e.ratio = 0.5, e.name = "heads-ada-empty-rows-f16";
    v->push_back(e);
  }
  {
    Case c;  // one long row per head: the launcher's own split (cooperative), ragged heads
    c.name = "heads-ada-split-auto-f16", c.B = 1, c.H = 2, c.S = 2000, c.Dk = c.Dv = 65;
    c.counts = Selection::Adaptive, c.alpha = 0.1, c.ratio = 0.2, c.sink = 4, c.recent = 64;
    v->push_back(c);
    Case d = c;
    d.counts = Selection::PerHead, d.random_counts = true, d.split = 7, d.name = "heads-hk-split-bf16-G7", d.dtype = DType::BF16;
    v->push_back(d);
  }
  {
    Case c;  // in place: each head's kept rows to the front of its own row, the rest left alone
    c.name = "heads-hk-inplace-u2-f16", c.B = 2, c.H = 3, c.S = 512, c.Dk = c.Dv = 66;
    c.lengths = {512, 301}, c.sink = 4, c.recent = 16, c.in_place = true, c.random_counts = true;
    v->push_back(c);
    Case d = c;
    d.name = "heads-ada-inplace-u16-bf16", d.dtype = DType::BF16, d.Dk = d.Dv = 128, d.random_counts = false;
    d.counts = Selection::Adaptive, d.ratio = 0.25, d.split = 3, d.want_split = 1;  // KVTRIM_SPLIT ignored in place
    v->push_back(d);
    Case e = c;
    e.name = "heads-thr-inplace-given-f32", e.dtype = DType::F32, e.score = Score::Given, e.specials = true;
    e.random_counts = false, e.counts = Selection::Threshold;
    v->push_back(e);
  }
  {
    Case c;  // one launch for all layers (unit 16), each layer its own counts
    c.name = "heads-hk-layers-1launch-f16", c.B = 2, c.H = 2, c.S = 256, c.layers = 3, c.lengths = {256, 100};
    c.sink = 1, c.recent = 4, c.random_counts = true;
    v->push_back(c);
    Case d = c;
    d.name = "heads-ada-layers-1launch-kdiff", d.score = Score::KeyDiff, d.random_counts = false, d.counts = Selection::Adaptive;
    v->push_back(d);
    Case e;  // per-job fallback (unit 4), order 'norm', threshold counts
    e.name = "heads-thr-layers-perjob-f32-norm", e.dtype = DType::F32, e.order = Order::Norm, e.B = 2, e.H = 2;
    e.S = 400, e.Dk = e.Dv = 65, e.layers = 2, e.lengths = {400, 222}, e.counts = Selection::Threshold;
    v->push_back(e);
  }
}

// The default set: small enough for the emulator (a few seconds on one core), and every path.
// First the grid of <kind, unit, split, order>: kind by dtype; unit 16 with 256/512-byte rows
// (head_dim 128), the narrow unit with head_dim 66 (132 / 264-byte rows: 2 for 16-bit, 4 for
// float32); split G = 1 and G = 3 forced (order 'position' only: 'norm' never splits); both
// orders. Ragged lengths, sink and recent on every grid case. Then the paths the grid misses.
static std::vector<Case> default_cases() {
  std::vector<Case> v;
  const DType kinds[] = {DType::F16, DType::BF16, DType::F32};
  for (DType t : kinds) {
    for (int64_t d : {int64_t(128), int64_t(66)}) {
      for (int g : {1, 3, 0}) {  // g = 0 stands for order 'norm' (G = 1 whatever is asked)
        Case c;
        c.dtype = t;
        c.B = 2, c.H = 2, c.S = 1200, c.Dk = c.Dv = d;
        c.lengths = {1200, 777};
        c.ratio = 0.4, c.sink = 4, c.recent = 32;
        c.order = g == 0 ? Order::Norm : Order::Position;
        c.split = g == 0 ? 2 : g;
        const int unit = d == 128 ? 16 : kvtrim::dtype_size(t);
        c.want_unit = unit, c.want_split = g == 0 ? 1 : g;
        c.name = std::string("grid-") + short_kind(t) + "-u" + std::to_string(unit) +
                 (g == 0 ? "-norm(G=2 ignored)" : "-G" + std::to_string(g) + "-pos");
        v.push_back(c);
      }
    }
  }
  Case a;  // 16-byte rows everywhere: unit 16, vector norm loads
  a.name = "aligned";
  a.B = 1, a.H = 2, a.S = 512, a.Dk = a.Dv = 128;
  Case s;  // one long row: the launcher's own split choice (cooperative launch), 130-byte rows
  s.name = "split";
  s.B = 1, s.H = 1, s.S = 2000, s.Dk = s.Dv = 65;
  for (DType t : kinds) {
    v.push_back(with(s, t, Order::Position));
    v.back().name += "-auto";
  }
  {
    Case c = with(s, DType::BF16, Order::Position);
    c.split = 7, c.ratio = 0.1, c.sink = 2, c.recent = 100, c.name = "split-bf16-G7-keep0.1-sink-rec";
    v.push_back(c);
    Case d = with(s, DType::F16, Order::Position);
    d.split = 1000, d.name += "-G1000-capped";  // capped at resident / rows by the launcher (8 here)
    d.emu_sms = 4;  // emulated: 4 SMs (8 resident blocks); 264 blocks x 512 fibers exceed the host's maps
    if (emulated()) d.want_split = 8;
    v.push_back(d);
  }
  {
    Case c = with(a, DType::F16, Order::Position);  // offset base: unit 2 despite 256-byte rows
    c.misalign = 2, c.want_unit = 2, c.name = "unaligned-base-float16";
    v.push_back(c);
    Case d = with(a, DType::F32, Order::Norm);  // float32 offset base: unit 4
    d.misalign = 4, d.want_unit = 4, d.name = "unaligned-base-float32-norm";
    v.push_back(d);
  }
  {
    Case c = with(a, DType::BF16, Order::Position);  // NaN rows dropped first; high-norm ranking
    c.nans = true, c.score = Score::HighNorm, c.name = "nan-high-bfloat16";
    v.push_back(c);
    Case d = with(a, DType::F32, Order::Norm);
    d.nans = true, d.name = "nan-float32-norm";
    v.push_back(d);
    Case e = with(s, DType::F16, Order::Position);  // high-norm on the split path
    e.score = Score::HighNorm, e.split = 3, e.nans = true, e.name = "nan-high-float16-G3";
    v.push_back(e);
  }
  {
    Case c;  // ragged with an empty and a full row, absolute keep: padding rows and index -1
    c.name = "ragged-keep-float16", c.B = 3, c.H = 1, c.S = 160, c.Dk = 64, c.Dv = 72;
    c.keep = 40, c.lengths = {0, 160, 25};
    v.push_back(c);
    Case d = c;  // the same, order 'norm', and all-sink: nothing chosen by rank
    d.order = Order::Norm, d.sink = 200, d.name = "ragged-allsink-float16-norm";
    v.push_back(d);
  }
  {
    Case c = with(a, DType::F16, Order::Position);  // in place, narrow unit, ragged
    c.Dk = c.Dv = 66, c.B = 2, c.lengths = {512, 301}, c.sink = 4, c.recent = 16;
    c.in_place = true, c.name = "inplace-u2-float16";
    v.push_back(c);
    Case d = with(a, DType::BF16, Order::Position);  // in place, unit 16 (KVTRIM_SPLIT ignored)
    d.in_place = true, d.ratio = 0.25, d.sink = 8, d.split = 3, d.want_split = 1, d.name = "inplace-u16-bfloat16-G3-ignored";
    v.push_back(d);
  }
  {
    Case c = with(a, DType::F16, Order::Position);  // one launch for all layers (unit 16)
    c.S = 256, c.layers = 3, c.name = "layers-1launch-float16";
    v.push_back(c);
    Case d = with(s, DType::F32, Order::Norm);  // per-job fallback (unit 4)
    d.S = 400, d.layers = 2, d.name = "layers-perjob-float32-norm";
    v.push_back(d);
  }
  scorer_cases(&v);
  ragged_head_cases(&v);
  return v;
}

// --bench: the shapes of bench/gpu.ts and a few more, for a real GPU.
static std::vector<Case> bench_cases() {
  std::vector<Case> v;
  Case m;
  m.name = "llama-8kv";
  m.B = 1, m.H = 8, m.S = 32768, m.Dk = m.Dv = 128;
  for (DType t : {DType::F16, DType::BF16, DType::F32}) v.push_back(with(m, t, Order::Position));
  v.push_back(with(m, DType::F16, Order::Norm));
  for (Score sc : {Score::KvNorm, Score::KeyDiff, Score::Project, Score::Given}) {  // the other phase A
    Case c = with(m, DType::F16, Order::Position);
    c.score = sc, c.name += std::string("-") + score_name(sc);
    v.push_back(c);
  }
  {
    Case c = with(m, DType::F16, Order::Position);
    c.ratio = 0.1, c.sink = 4, c.recent = 64, c.name += "-keep0.1-sink-recent";
    v.push_back(c);
    Case d = with(m, DType::F16, Order::Position);
    d.in_place = true, d.name += "-inplace";
    v.push_back(d);
    Case e = with(m, DType::F16, Order::Position);
    e.Dk = e.Dv = 64, e.name += "-d64";
    v.push_back(e);
  }
  Case many;  // many rows: one block per row
  many.name = "many-rows";
  many.B = 4, many.H = 32, many.S = 4096;
  v.push_back(with(many, DType::F16, Order::Position));
  Case lng;  // few long rows: the split path against G = 1
  lng.name = "long-rows";
  lng.B = 1, lng.H = 2, lng.S = 131072;
  for (int g : {0, 1}) {
    Case c = with(lng, DType::F16, Order::Position);
    c.split = g, c.name += g == 0 ? "-auto" : "-G1";
    v.push_back(c);
  }
  {  // ragged heads (selection modes): the per-row counts of an adaptive pick over the low-norm
     // scores (alpha 0.2, keepRatio 0.5: the same H * k rows in all), and random counts
     // uniform in [0, len] (mean 0.5, kmax ~ len: the padding is most of the output)
    Case c = with(m, DType::F16, Order::Position);
    c.counts = Selection::Adaptive, c.name += "-heads-adaptive";
    v.push_back(c);
    Case d = with(m, DType::F16, Order::Position);
    d.random_counts = true, d.name += "-heads-random";
    v.push_back(d);
    Case e = c;
    e.in_place = true, e.name += "-inplace";
    v.push_back(e);
  }
  Case lay;
  lay.name = "layers8";
  lay.B = 1, lay.H = 8, lay.S = 8192, lay.layers = 8;
  v.push_back(with(lay, DType::F16, Order::Position));
  return v;
}

// ---- one instance: host data, device buffers, the job ----------------------------------------

struct Instance {
  std::vector<unsigned char> hk, hv;  // inputs
  std::vector<float> vectors, given;  // project's [H, Dk] (host, as job.h says), given [B, H, S]
  DevBuf dk, dv, ok, ov, di, ds;      // ds: the given scores on the device
  std::vector<int64_t> head_keep;     // Case::random_counts: drawn by generate()
  std::string counts_problem;         // an invariant of selection_counts that did not hold
  CompressJob job{};
};

static uint64_t name_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  return h;
}

// Zero key rows (norm 0: keydiff's zero score, nothing added to its anchor), keys with an
// infinite element (norm Inf: keydiff NaN; kv-norm Inf, or NaN times a zero value row), NaN
// elements, and zero / infinite value rows.
static void plant_specials(const Case& c, Rng& r, Instance* in) {
  const int esz = kvtrim::dtype_size(c.dtype);
  const uint32_t inf = c.dtype == DType::F16 ? 0x7C00u : c.dtype == DType::BF16 ? 0x7F80u : 0x7F800000u;
  const uint32_t sign = c.dtype == DType::F32 ? 0x80000000u : 0x8000u;
  for (int64_t tok = 0; tok < c.B * c.H * c.S; ++tok) {
    const uint32_t pick = r.below(24);
    unsigned char* k = in->hk.data() + size_t(tok * c.Dk * esz);
    unsigned char* v = in->hv.data() + size_t(tok * c.Dv * esz);
    if (pick == 0) std::memset(k, 0, size_t(c.Dk * esz));
    else if (pick == 1) put_bits(c.dtype, k, r.below(uint32_t(c.Dk)), inf | (r.below(2) ? sign : 0u));
    else if (pick == 2) put_bits(c.dtype, k, r.below(uint32_t(c.Dk)), inf | 1u | (r.below(2) ? sign : 0u));  // NaN
    else if (pick == 3) std::memset(v, 0, size_t(c.Dv * esz));
    else if (pick == 4) put_bits(c.dtype, v, r.below(uint32_t(c.Dv)), inf);
    else if (pick == 5) {  // an infinite key with a zero value row: Inf * 0
      put_bits(c.dtype, k, 0, inf);
      std::memset(v, 0, size_t(c.Dv * esz));
    }
  }
}

static void generate(const Case& c, Rng& r, Instance* in) {
  const int esz = kvtrim::dtype_size(c.dtype);
  const int64_t tokens = c.B * c.H * c.S;
  in->hk.resize(size_t(tokens * c.Dk * esz));
  in->hv.resize(size_t(tokens * c.Dv * esz));
  for (int64_t i = 0; i < tokens * c.Dk; ++i) put_bits(c.dtype, in->hk.data(), i, random_bits(c.dtype, r));
  for (int64_t i = 0; i < tokens * c.Dv; ++i) put_bits(c.dtype, in->hv.data(), i, random_bits(c.dtype, r));
  const size_t kb = size_t(c.Dk * esz);
  for (int64_t row = 0; row < c.B * c.H; ++row) {
    unsigned char* base = in->hk.data() + size_t(row * c.S) * kb;
    for (int64_t t = 1; t < c.S; ++t) {
      if (r.below(8) == 0) std::memcpy(base + size_t(t) * kb, base + size_t(r.below(uint32_t(t))) * kb, kb);  // exact tie
      if (c.nans && r.below(16) == 0) {
        const uint32_t sign = uint32_t(r.below(2));
        const uint32_t nan = c.dtype == DType::F16 ? (sign << 15) | 0x7C00u | (1u + r.below(0x3FF))
                           : c.dtype == DType::BF16 ? (sign << 15) | 0x7F80u | (1u + r.below(0x7F))
                                                    : (sign << 31) | 0x7F800000u | (1u + r.below(0x7FFFFF));
        put_bits(c.dtype, base + size_t(t) * kb, r.below(uint32_t(c.Dk)), nan);
      }
    }
  }
  if (c.specials) plant_specials(c, r, in);
  in->vectors.resize(size_t(c.H * c.Dk));
  for (float& f : in->vectors) f = kvtrim::bits_to_f32(random_bits(DType::F32, r));
  in->given.resize(size_t(tokens));
  for (int64_t i = 0; i < tokens; ++i) {
    uint32_t bits = random_bits(DType::F32, r);
    const uint32_t pick = c.specials ? r.below(40) : 99;
    if (pick == 0) bits = (r.below(2) << 31) | 0x7F800000u | (1u + r.below(0x7FFFFF));  // NaN, any sign and payload
    else if (pick == 1) bits = r.below(2) << 31;                                        // +0 / -0
    else if (pick == 2) bits = (r.below(2) << 31) | 0x7F800000u;                        // +-Inf
    else if (pick < 6 && i % c.S > 0) bits = kvtrim::f32_to_bits(in->given[size_t(i - 1 - r.below(uint32_t(i % c.S)))]);  // a tie
    in->given[size_t(i)] = kvtrim::bits_to_f32(bits);
  }
  if (c.random_counts) {  // per row in [protected, len]: a quarter each at the two ends
    in->head_keep.resize(size_t(c.B * c.H));
    for (int64_t row = 0; row < c.B * c.H; ++row) {
      const int64_t len = c.lengths.empty() ? c.S : c.lengths[size_t(row / c.H)];
      const int64_t lo = std::min(len, c.sink + c.recent), span = len - lo;
      const uint32_t pick = r.below(4);
      in->head_keep[size_t(row)] = pick == 0 ? lo : pick == 1 ? len : lo + int64_t(r.below(uint32_t(span + 1)));
    }
  }
}

static std::vector<float> reference_scores(const CompressJob& j, const Instance& in);

// The plan's per-row counts for Case::counts, from the reference scores of the case's scorer
// (what tokenScores returns, and what the addon hands selection_counts), and make_plan again
// with them as head_keep. The invariants of docs/policies.md are checked on the way.
static void selection_plan(const Case& c, Instance* in) {
  CompressJob& j = in->job;
  const int64_t rows = c.B * c.H;
  std::vector<int64_t> hk(in->head_keep);
  if (!c.random_counts) {
    const std::vector<float> scores = reference_scores(j, *in);
    CompressParams sp = j.params;
    sp.selection = c.counts, sp.alpha = c.alpha;
    if (c.counts == Selection::Threshold) {  // the median of the valid middle scores (not NaN)
      std::vector<float> mid;
      for (int64_t row = 0; row < rows; ++row) {
        int64_t mb = 0, me = 0;
        kvtrim::protected_span(j.plan.lengths[size_t(row / c.H)], c.sink, c.recent, &mb, &me);
        for (int64_t t = mb; t < me; ++t) {
          const float x = scores[size_t(row * c.S + t)];
          if (x == x) mid.push_back(x);
        }
      }
      if (!mid.empty()) {
        std::nth_element(mid.begin(), mid.begin() + mid.size() / 2, mid.end());
        sp.threshold = mid[mid.size() / 2];
      }
    }
    std::vector<int32_t> counts(static_cast<size_t>(rows));
    kvtrim::selection_counts(j.shape, sp, j.plan, scores.data(), counts.data());
    hk.assign(counts.begin(), counts.end());
    for (int64_t b = 0; b < c.B; ++b) {  // docs/policies.md: Σ_h k_h = H·k, each >= p + f; threshold's count
      int64_t mb = 0, me = 0;
      const int64_t len = j.plan.lengths[size_t(b)];
      const int64_t prot = kvtrim::protected_span(len, c.sink, c.recent, &mb, &me);
      int64_t sum = 0, kb = j.plan.kept_of(b * c.H);
      const int64_t m = kb - prot, f = std::min(m, int64_t(std::floor(c.alpha * double(m))));
      for (int64_t h = 0; h < c.H; ++h) {
        const int64_t row = b * c.H + h, k = hk[size_t(row)];
        sum += k;
        int64_t want = -1;
        if (c.counts == Selection::Threshold) {
          want = prot;
          for (int64_t t = mb; t < me; ++t) want += scores[size_t(row * c.S + t)] >= sp.threshold;
        }
        const bool bad = c.counts == Selection::Threshold ? k != want : (k < prot + f || k > len);
        if (bad && in->counts_problem.empty())
          in->counts_problem = "selection_counts row " + std::to_string(row) + ": " + std::to_string(k) +
                               (want >= 0 ? ", want " + std::to_string(want) : " outside [p + f, len]");
      }
      if (c.counts == Selection::Adaptive && sum != c.H * kb && in->counts_problem.empty())
        in->counts_problem = "selection_counts entry " + std::to_string(b) + ": sum " + std::to_string(sum) +
                             ", want H * k = " + std::to_string(c.H * kb);
    }
  }
  check(kvtrim::make_plan(j.shape, j.params, c.lengths.empty() ? nullptr : c.lengths.data(), int64_t(c.lengths.size()),
                          &j.plan, &hk),
        "make_plan(head_keep)");
}

static void setup(const Case& c, Instance* in) {
  const int esz = kvtrim::dtype_size(c.dtype);
  CompressJob& j = in->job;
  j.dtype = c.dtype;
  j.shape = Shape{c.B, c.H, c.S, c.Dk, c.Dv};
  CompressParams p;
  p.use_ratio = c.keep < 0;
  p.keep_ratio = c.ratio;
  p.keep = c.keep < 0 ? 0 : c.keep;
  p.order = c.order;
  p.score = c.score;
  p.sink = c.sink;
  p.recent = c.recent;
  j.params = p;
  check(kvtrim::make_plan(j.shape, p, c.lengths.empty() ? nullptr : c.lengths.data(), int64_t(c.lengths.size()), &j.plan),
        "make_plan");
  if (c.random_counts || c.counts != Selection::PerHead) selection_plan(c, in);
  const int64_t rows = c.B * c.H, kmax = j.plan.max_kept;
  in->dk = DevBuf(in->hk.size(), size_t(c.misalign));
  in->dv = DevBuf(in->hv.size());
  in->dk.upload(in->hk.data());
  in->dv.upload(in->hv.data());
  j.keys = in->dk.ptr();
  j.values = in->dv.ptr();
  j.in_place = c.in_place;
  if (c.in_place) {
    j.out_keys = in->dk.ptr();
    j.out_values = in->dv.ptr();
  } else {
    in->ok = DevBuf(size_t(rows * kmax * c.Dk * esz));
    in->ov = DevBuf(size_t(rows * kmax * c.Dv * esz));
    in->ok.fill(0xA5);  // poison: a row the kernel forgets to write cannot pass as zero padding
    in->ov.fill(0xA5);
    j.out_keys = in->ok.ptr();
    j.out_values = in->ov.ptr();
  }
  in->di = DevBuf(size_t(rows * std::max<int64_t>(kmax, 1)) * sizeof(int32_t));
  in->di.fill(0xA5);
  j.out_indices = static_cast<int32_t*>(in->di.ptr());
  if (c.score == Score::Given) {
    in->ds = DevBuf(in->given.size() * sizeof(float));
    in->ds.upload(in->given.data());
    j.scores = static_cast<const float*>(in->ds.ptr());
  }
  if (c.score == Score::Project) j.vectors = in->vectors.data();
}

// ---- the CPU reference: native/core only ---------------------------------------------------

struct Expected {
  std::vector<unsigned char> keys, values;
  std::vector<int32_t> indices;
};

// Every token's score [B, H, S] by native/core/score.h, canonical, NaN at padding: what
// cuda::token_scores must return, and (through score_key) what compress ranks.
static std::vector<float> reference_scores(const CompressJob& j, const Instance& in) {
  const Shape& s = j.shape;
  const int esz = kvtrim::dtype_size(j.dtype);
  const size_t kb = size_t(s.key_dim * esz), vb = size_t(s.value_dim * esz);
  const float nan = kvtrim::bits_to_f32(kvtrim::kCanonicalNaN);
  std::vector<float> out(size_t(s.batch * s.heads * s.seq), nan), norms(size_t(s.seq) + 1), anchor(size_t(s.key_dim));
  std::vector<float> chunks(size_t(kvtrim::num_token_chunks(s.seq) * s.key_dim) + 1);
  for (int64_t row = 0; row < s.batch * s.heads; ++row) {
    const int64_t len = j.plan.lengths[size_t(row / s.heads)], h = row % s.heads;
    const unsigned char* krow = in.hk.data() + size_t(row * s.seq) * kb;
    const unsigned char* vrow = in.hv.data() + size_t(row * s.seq) * vb;
    float* o = out.data() + size_t(row * s.seq);
    for (int64_t t = 0; t < len; ++t) norms[size_t(t)] = kvtrim::row_norm_scalar(j.dtype, krow + size_t(t) * kb, s.key_dim);
    if (j.params.score == Score::KeyDiff)
      kvtrim::keydiff_anchor_scalar(j.dtype, krow, norms.data(), len, s.key_dim, chunks.data(), anchor.data());
    for (int64_t t = 0; t < len; ++t) {
      const unsigned char* k = krow + size_t(t) * kb;
      const float n = norms[size_t(t)];
      float v = 0;
      switch (j.params.score) {
        case Score::LowNorm: v = -n; break;
        case Score::HighNorm: v = n; break;
        case Score::KvNorm: v = n * kvtrim::row_norm_scalar(j.dtype, vrow + size_t(t) * vb, s.value_dim); break;
        case Score::KeyDiff: v = kvtrim::keydiff_score(kvtrim::row_dot_scalar(j.dtype, k, anchor.data(), s.key_dim), n); break;
        case Score::Project: v = -kvtrim::row_dot_scalar(j.dtype, k, in.vectors.data() + size_t(h * s.key_dim), s.key_dim); break;
        case Score::Given: v = in.given[size_t(row * s.seq + t)]; break;
      }
      o[t] = kvtrim::canonical_score(v);
    }
  }
  return out;
}

// Per (batch, head) row: the contract's norm of every valid token (norm.h: row_norm_scalar),
// the kept positions (select.h: select_row), and a plain gather; for the other scorers,
// score_key of reference_scores and select.h's select_keys. Out of place, slots past the
// row's k are zero rows with index -1; in place, the first k rows are replaced and the rest stay.
static Expected reference(const CompressJob& j, const Instance& in) {
  const std::vector<unsigned char>& hk = in.hk;
  const std::vector<unsigned char>& hv = in.hv;
  const bool by_norm = j.params.score == Score::LowNorm || j.params.score == Score::HighNorm;
  const std::vector<float> scores = by_norm ? std::vector<float>() : reference_scores(j, in);
  const Shape& s = j.shape;
  const int esz = kvtrim::dtype_size(j.dtype);
  const size_t kb = size_t(s.key_dim * esz), vb = size_t(s.value_dim * esz);
  const int64_t kmax = j.plan.max_kept, out_seq = j.in_place ? s.seq : kmax;
  Expected e;
  if (j.in_place) {
    e.keys = hk;
    e.values = hv;
  } else {
    e.keys.assign(size_t(s.batch * s.heads * kmax) * kb, 0);
    e.values.assign(size_t(s.batch * s.heads * kmax) * vb, 0);
  }
  e.indices.assign(size_t(s.batch * s.heads * kmax), -1);
  std::vector<float> norms(size_t(s.seq) + 1);
  std::vector<uint32_t> keys32(size_t(s.seq) + 1);
  std::vector<uint64_t> kept64(size_t(s.seq) + 1);
  std::vector<int32_t> sel(size_t(s.seq) + 1);
  for (int64_t b = 0; b < s.batch; ++b) {
    const int64_t len = j.plan.lengths[size_t(b)];
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t row = b * s.heads + h, k = j.plan.kept_of(row);
      const unsigned char* krow = hk.data() + size_t(row * s.seq) * kb;
      const unsigned char* vrow = hv.data() + size_t(row * s.seq) * vb;
      if (by_norm) {
        for (int64_t t = 0; t < len; ++t) norms[size_t(t)] = kvtrim::row_norm_scalar(j.dtype, krow + size_t(t) * kb, s.key_dim);
        kvtrim::select_row(norms.data(), len, k, j.params.sink, j.params.recent, j.params.score, j.params.order,
                           kvtrim::SelectScratch{keys32.data(), kept64.data()}, sel.data());
      } else {
        for (int64_t t = 0; t < len; ++t) keys32[size_t(t)] = kvtrim::score_key(kvtrim::f32_to_bits(scores[size_t(row * s.seq + t)]));
        kvtrim::select_keys(keys32.data(), len, k, j.params.sink, j.params.recent, j.params.order, kept64.data(), sel.data());
      }
      for (int64_t q = 0; q < k; ++q) {
        const int64_t t = sel[size_t(q)];
        e.indices[size_t(row * kmax + q)] = int32_t(t);
        std::memcpy(e.keys.data() + size_t(row * out_seq + q) * kb, krow + size_t(t) * kb, kb);
        std::memcpy(e.values.data() + size_t(row * out_seq + q) * vb, vrow + size_t(t) * vb, vb);
      }
    }
  }
  return e;
}

// ---- bit comparison --------------------------------------------------------------------------

// First differing element of a [B, H, slots, D] tensor, or "" when every bit agrees.
static std::string first_diff(const char* what, DType t, const std::vector<unsigned char>& want,
                              const std::vector<unsigned char>& got, int64_t H, int64_t slots, int64_t D) {
  const int esz = kvtrim::dtype_size(t);
  const int64_t n = int64_t(want.size()) / esz;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t a = get_bits(t, want.data(), i), g = get_bits(t, got.data(), i);
    if (a == g) continue;
    const int64_t d = i % D, slot = (i / D) % slots, row = i / D / slots;
    char buf[200];
    std::snprintf(buf, sizeof buf, "%s[b=%" PRId64 ", h=%" PRId64 ", slot=%" PRId64 ", d=%" PRId64 "]: want 0x%0*x, got 0x%0*x",
                  what, row / H, row % H, slot, d, esz * 2, a, esz * 2, g);
    return buf;
  }
  return "";
}

static std::string compare(const Case& c, Instance& in) {
  const CompressJob& j = in.job;
  const Expected e = reference(j, in);
  const int64_t kmax = j.plan.max_kept, slots = c.in_place ? c.S : kmax;
  std::vector<unsigned char> gk(e.keys.size()), gv(e.values.size());
  std::vector<int32_t> gi(e.indices.size());
  check(cu::copy_to_host(kDevice, gk.data(), j.out_keys, gk.size(), nullptr), "copy_to_host");
  check(cu::copy_to_host(kDevice, gv.data(), j.out_values, gv.size(), nullptr), "copy_to_host");
  check(cu::copy_to_host(kDevice, gi.data(), j.out_indices, gi.size() * sizeof(int32_t), nullptr), "copy_to_host");
  for (size_t i = 0; i < gi.size(); ++i) {
    if (gi[i] == e.indices[i]) continue;
    const int64_t slot = int64_t(i) % std::max<int64_t>(kmax, 1), row = int64_t(i) / std::max<int64_t>(kmax, 1);
    char buf[200];
    std::snprintf(buf, sizeof buf, "indices[b=%" PRId64 ", h=%" PRId64 ", slot=%" PRId64 "]: want %d, got %d (row keeps %" PRId64 ")",
                  row / c.H, row % c.H, slot, e.indices[i], gi[i], j.plan.kept_of(row));
    return buf;
  }
  std::string d = first_diff("keys", c.dtype, e.keys, gk, c.H, slots, c.Dk);
  if (d.empty()) d = first_diff("values", c.dtype, e.values, gv, c.H, slots, c.Dv);
  return d;
}

// cuda::token_scores on the instance's (fresh) inputs against reference_scores, bit for bit.
static std::string compare_scores(const Case& c, const Instance& in) {
  const std::vector<float> want = reference_scores(in.job, in);
  DevBuf out(want.size() * sizeof(float) + 4);
  out.fill(0xA5);
  kvtrim::ScoreJob sj;
  sj.job = in.job;
  sj.out = static_cast<float*>(out.ptr());
  const Status st = cu::token_scores(kDevice, sj, nullptr);
  if (!st.ok()) return "token_scores: " + st.message;
  std::vector<float> got(want.size());
  check(cu::copy_to_host(kDevice, got.data(), out.ptr(), got.size() * sizeof(float), nullptr), "copy_to_host");
  for (size_t i = 0; i < want.size(); ++i) {
    const uint32_t a = kvtrim::f32_to_bits(want[i]), g = kvtrim::f32_to_bits(got[i]);
    if (a == g) continue;
    const int64_t t = int64_t(i) % c.S, row = int64_t(i) / c.S;
    char buf[200];
    std::snprintf(buf, sizeof buf, "token_scores[b=%" PRId64 ", h=%" PRId64 ", t=%" PRId64 "]: want 0x%08x, got 0x%08x",
                  row / c.H, row % c.H, t, a, g);
    return buf;
  }
  return "";
}

// ---- running a case ----------------------------------------------------------------------------

// KVTRIM_SPLIT and the case's other variables for the duration of one case (the launcher
// reads KVTRIM_SPLIT on every call); restored afterwards.
struct CaseEnv {
  std::vector<std::pair<std::string, std::string>> saved;  // name, value ("\x01": was unset)
  void set(const std::string& name, const char* value) {
    const char* old = std::getenv(name.c_str());
    saved.emplace_back(name, old ? old : "\x01");
    if (value) setenv(name.c_str(), value, 1);
    else unsetenv(name.c_str());
  }
  explicit CaseEnv(const Case& c) {
    set("KVTRIM_SPLIT", c.split > 0 ? std::to_string(c.split).c_str() : nullptr);
    for (const auto& kv : c.env) set(kv.first, kv.second.c_str());
  }
  ~CaseEnv() {
    for (auto it = saved.rbegin(); it != saved.rend(); ++it) {
      if (it->second == "\x01") unsetenv(it->first.c_str());
      else setenv(it->first.c_str(), it->second.c_str(), 1);
    }
  }
};

// The emulated SM count for the duration of one case (configure_emulator also sets the schedule).
struct EmuSms {
  const Options& o;
  bool set;
  EmuSms(int sms, const Options& opt) : o(opt), set(sms > 0 && emulated()) {
    if (set) check(cu::configure_emulator(o.schedule.empty() ? "deterministic" : o.schedule, o.seed, sms, 0), "configure_emulator");
  }
  ~EmuSms() {
    if (set) check(cu::configure_emulator(o.schedule.empty() ? "deterministic" : o.schedule, o.seed, o.sms, 0), "configure_emulator");
  }
};


// The bytes the op must move: every valid token's scoring input (its key row for the norms and
// project, key and value rows for kv-norm, the key row 3 times for keydiff, 4 bytes for given
// scores), each kept key and value row read and written once, padding rows written, indices
// written. Scratch not counted.
static double bytes_moved(const CompressJob& j) {
  const Shape& s = j.shape;
  const double esz = kvtrim::dtype_size(j.dtype), kb = double(s.key_dim) * esz, vb = double(s.value_dim) * esz;
  const Score sc = j.params.score;
  const double scored = sc == Score::KvNorm ? kb + vb : sc == Score::KeyDiff ? 3 * kb : sc == Score::Given ? 4.0 : kb;
  double total = 0;
  for (int64_t row = 0; row < s.batch * s.heads; ++row) {
    const double len = double(j.plan.lengths[size_t(row / s.heads)]), k = double(j.plan.kept_of(row));
    const double pad = j.in_place ? 0 : double(j.plan.max_kept) - k;
    total += len * scored + 2 * k * (kb + vb) + pad * (kb + vb) + 4.0 * double(j.plan.max_kept);
  }
  return total;
}

struct Row {
  std::string result;  // "ok" or the first difference
  double ms = 0, bytes = 0;
  std::string geometry;
  int unit = 0;
  int64_t kmax = 0;
};

static double host_ms(const std::chrono::steady_clock::time_point& t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

static Row run(const Case& c, const Options& o) {
  Row out;
  Rng r(o.seed ^ name_hash(c.name));
  const int layers = std::max(1, c.layers);
  // Timing cycles through copies of the inputs so that they do not stay in L2 (GPU only).
  const double in_bytes = double(c.B * c.H * c.S * (c.Dk + c.Dv) * kvtrim::dtype_size(c.dtype));
  const int copies = (emulated() || c.layers > 0) ? 1 : int(std::min(4.0, std::max(1.0, std::ceil(256e6 / in_bytes))));
  std::vector<Instance> inst(size_t(layers * copies));
  for (int l = 0; l < layers; ++l) generate(c, r, &inst[size_t(l)]);
  for (size_t i = size_t(layers); i < inst.size(); ++i) {
    inst[i].hk = inst[0].hk;
    inst[i].hv = inst[0].hv;
    inst[i].vectors = inst[0].vectors;
    inst[i].given = inst[0].given;
    inst[i].head_keep = inst[0].head_keep;
  }
  for (Instance& in : inst) setup(c, &in);
  CaseEnv env(c);
  EmuSms sms(c.emu_sms, o);

  cu::Geometry g{};
  check(cu::compress_geometry(kDevice, inst[0].job, &g), "compress_geometry");
  char geo[120];
  std::snprintf(geo, sizeof geo, "%4dx%d G=%-3d res %d%s", g.blocks, g.threads, g.blocks_per_row,
                g.resident_blocks, g.cooperative ? " coop" : "");
  out.geometry = geo;
  out.unit = g.copy_unit;  // the launcher's own choice (compress_geometry reports plan_launch's)
  out.kmax = inst[0].job.plan.max_kept;
  // A case that no longer reaches its variant fails: the table must not claim what did not run.
  std::string missed;
  if (c.want_unit && out.unit != c.want_unit) missed = "unit " + std::to_string(out.unit) + ", wanted " + std::to_string(c.want_unit);
  if (c.want_split && g.blocks_per_row != c.want_split)
    missed = "G " + std::to_string(g.blocks_per_row) + ", wanted " + std::to_string(c.want_split);
  if (!missed.empty()) missed = "variant not reached: " + missed;
  for (int l = 0; l < layers && missed.empty(); ++l) missed = inst[size_t(l)].counts_problem;
  for (int l = 0; l < layers; ++l) out.bytes += bytes_moved(inst[size_t(l)].job);
  const int reps = reps_for(o);
  // tokenScores first (compress in place rewrites the inputs); its mismatch is the case's
  std::string scores_diff;
  for (int l = 0; l < layers && scores_diff.empty(); ++l) scores_diff = compare_scores(c, inst[size_t(l)]);
  if (!scores_diff.empty()) missed = scores_diff;

  if (c.layers > 0) {
    std::vector<CompressJob> jobs;
    for (int l = 0; l < layers; ++l) jobs.push_back(inst[size_t(l)].job);
    void* stream = nullptr;  // the layers run on a stream of kvtrim's own
    check(cu::stream_create(kDevice, &stream), "stream_create");
    auto t0 = std::chrono::steady_clock::now();
    Status st = cu::compress_layers(kDevice, jobs, stream);
    double first = host_ms(t0);
    if (!st.ok()) die(c.name + ": compress_layers: " + st.message);
    for (int l = 0; l < layers && out.result.empty(); ++l) {
      out.result = compare(c, inst[size_t(l)]);
      if (!out.result.empty()) out.result = "layer " + std::to_string(l) + ": " + out.result;
    }
    std::vector<float> ms{float(first)};
    if (!emulated() || o.reps > 0) {  // compress_layers has no event-timed twin: host clock
      ms.clear();
      for (int i = 0; i < reps + 3; ++i) {
        t0 = std::chrono::steady_clock::now();
        check(cu::compress_layers(kDevice, jobs, stream), "compress_layers");
        if (i >= 3) ms.push_back(float(host_ms(t0)));
      }
    }
    check(cu::stream_destroy(kDevice, stream), "stream_destroy");
    out.ms = median(ms);
    if (out.result.empty()) out.result = missed;
    if (g.copy_unit == 16) {  // cuda_backend.h: one launch, one block per row, no split rows
      int64_t blocks = 0;
      for (const CompressJob& jb : jobs) blocks += jb.shape.batch * jb.shape.heads;
      std::snprintf(geo, sizeof geo, "%4" PRId64 "x%d G=1   1 launch*", blocks, g.threads);
      out.geometry = geo;
    } else {
      out.geometry = std::string(geo) + " per job*";  // compress() per layer: its own geometry
    }
    if (out.result.empty()) out.result = "ok";
    return out;
  }

  // The checked call: the first compress on fresh inputs, with events around it.
  std::vector<float> ms;
  Status st = cu::time_compress(kDevice, {inst[0].job}, 0, 1, &ms);
  if (!st.ok()) die(c.name + ": compress: " + st.message);
  out.result = compare(c, inst[0]);
  if (out.result.empty()) out.result = missed;
  if (out.result.empty()) out.result = "ok";
  out.ms = median(ms);
  if (!emulated() || o.reps > 0) {  // steady state (in place: on the already compressed cache)
    std::vector<CompressJob> jobs;
    for (const Instance& in : inst) jobs.push_back(in.job);
    check(cu::time_compress(kDevice, jobs, 3, reps, &ms), "time_compress");
    out.ms = median(ms);
  }
  return out;
}

static std::string shape_string(const Case& c) {
  std::string s = "[" + std::to_string(c.B) + "," + std::to_string(c.H) + "," + std::to_string(c.S) + "," + std::to_string(c.Dk) + "]";
  if (c.Dv != c.Dk) s += " Dv " + std::to_string(c.Dv);
  if (c.layers > 0) s += " x" + std::to_string(c.layers);
  return s;
}

int main(int argc, char** argv) {
  const Options o = parse_options(argc, argv, kUsage);
  if (std::getenv("KVTRIM_SPLIT")) std::printf("note: KVTRIM_SPLIT from the environment is ignored (set per case)\n");
  unsetenv("KVTRIM_SPLIT");
  start(o, "compress (native/cuda, cuda::compress / compress_layers)");
  const double copy_bps = copy_floor();

  const std::vector<Case> cases = o.bench ? bench_cases() : default_cases();
  std::printf("%-34s %-9s %-20s %-9s %-14s %4s %5s %-34s %6s %10s %8s %6s  %s\n", "case", "kind", "shape", "order",
              "sink/rec", "unit", "split", "geometry (blocks x threads)", "k", "ms", "GB/s", "%copy", "bits");
  int failed = 0, ran = 0;
  const auto t_all = std::chrono::steady_clock::now();
  for (const Case& c : cases) {
    if (!o.only.empty() && c.name.find(o.only) == std::string::npos) continue;
    const Row row = run(c, o);
    ++ran;
    const bool ok = row.result == "ok";
    failed += !ok;
    const double gbs = gb_per_s(row.bytes, row.ms);
    char sr[40];
    const std::string hk = counts_name(c);
    std::snprintf(sr, sizeof sr, "%" PRId64 "/%" PRId64 "%s%s%s", c.sink, c.recent, c.lengths.empty() ? "" : " rag",
                  hk.empty() ? "" : " ", hk.c_str());
    std::printf("%-34s %-9s %-20s %-9s %-14s %4d %5s %-34s %6" PRId64 " %10.3f %8.2f %5.1f%%  %s%s\n", c.name.c_str(),
                kvtrim::dtype_name(c.dtype), shape_string(c).c_str(), order_name(c).c_str(), sr, row.unit,
                c.split > 0 ? ("=" + std::to_string(c.split)).c_str() : "auto", row.geometry.c_str(), row.kmax, row.ms, gbs,
                pct_of_floor(gbs, copy_bps), ok ? "ok" : "FAIL: ", ok ? "" : row.result.c_str());
    std::fflush(stdout);
  }
  return finish(ran, failed, "failed", host_ms(t_all) / 1e3,
                "split: KVTRIM_SPLIT=n, 'auto' = the launcher's choice; unit: the launcher's copy unit; GB/s over "
                "the bytes the op must move; *: compress_layers, host-clock time", o);
}
