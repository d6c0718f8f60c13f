#!/usr/bin/env bash
# kvtrim's CUDA emulator under ThreadSanitizer (native/cuda/emu/README.md, "ThreadSanitizer"):
# every GPU thread is a TSan fiber, so unordered conflicting accesses are reported whatever the
# schedule. Three parts, all required:
#   1. the emulator's self-test, TSan build: clean; its two intentionally racy kernels reported;
#   2. the race zoo: every classic bug kernel reported, every fixed twin clean (one process each);
#   3. kvtrim's kernels (test/emu/tsan.test.ts, every kernel and path, three schedules): no report;
#   4. where nvcc exists: the emulator's register table (native/cuda/emu/ptxas_sm90.inc) is
#      what ptxas says today (the occupancy test, test/cuda/occupancy.test.ts, relies on it).
# Usage: scripts/test-emu-tsan.sh [selftest|zoo|kernels|ptxas]... (default: all four)
# Env: EMU_TSAN_OUT (work dir, default build/emu-tsan), KVTRIM_EMU_TSAN_FIBERS (TSan fibers kept
# alive before exited ones are destroyed, default 2048).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="${EMU_TSAN_OUT:-$root/build/emu-tsan}"
mkdir -p "$out"
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(selftest zoo kernels ptxas)
want() { local p; for p in "${parts[@]}"; do [ "$p" = "$1" ] && return 0; done; return 1; }
libtsan="$(gcc -print-file-name=libtsan.so)"
# exitcode=0: a report is found in the logs, not through exit codes (vitest's workers would die).
base_opts="exitcode=0:halt_on_error=0:io_sync=0:clear_shadow_mmap_threshold=1048576"
reports() { cat "$@" 2>/dev/null | grep -c "WARNING: ThreadSanitizer" || true; }
start=$(date +%s)

# In the background, on the second core while the single-threaded self-test runs: the addon's
# TSan build, then the register table check.
bg_log="$out/background.log"
: >"$bg_log"
(
  if want kernels; then
    CMAKE_BUILD_PARALLEL_LEVEL=1 KVTRIM_EMU_OUT=build-emu-tsan KVTRIM_CMAKE_ARGS=--CDKVTRIM_EMU_TSAN=ON \
      node scripts/build-native.js --emulate >"$out/build.log" 2>&1 || { echo "build failed" >>"$bg_log"; exit 1; }
  fi
  if want ptxas; then
    if command -v nvcc >/dev/null; then
      node scripts/ptxas-report.js --emu-table --check >>"$bg_log" 2>&1 || exit 1
    else
      echo "nvcc not found: the register table is not re-checked against ptxas" >>"$bg_log"
    fi
  fi
) &
bg=$!

if want selftest || want zoo; then
  cxx="${CXX:-g++}"
  cuda_inc="${CUDA_INCLUDE:-/usr/local/cuda/include}"
  flags=(-std=c++17 -O1 -g -ffp-contract=off -Wall -Wextra -Werror -pthread -DKVTRIM_EMU_TSAN=1)
  [ -f "$cuda_inc/vector_types.h" ] && flags+=(-I"$cuda_inc")
  echo "== building the TSan self-test in $out (the emulator uninstrumented, the kernels instrumented)"
  mkdir -p "$out/emu"
  rm -f "$out"/emu/*.o
  (for src in native/cuda/emu/*.cc; do
    "$cxx" "${flags[@]}" -c "$src" -o "$out/emu/$(basename "$src" .cc).o" || exit 1
  done) &
  p1=$!
  "$cxx" "${flags[@]}" -fsanitize=thread -c test/emu/selftest.cc -o "$out/selftest.o"
  wait $p1
  "$cxx" -fsanitize=thread "$out/selftest.o" "$out"/emu/*.o -o "$out/selftest-tsan"
fi

if want selftest; then
  echo "== self-test under TSan"
  rm -f "$out"/self.log*
  TSAN_OPTIONS="$base_opts:log_path=$out/self.log" "$out/selftest-tsan" >"$out/self.out" 2>&1 || { cat "$out/self.out"; exit 1; }
  tail -1 "$out/self.out"
  if [ "$(reports "$out"/self.log*)" != 0 ]; then
    echo "FAIL: TSan reports in the emulator's self-test:"; cat "$out"/self.log*; exit 1
  fi
  rm -f "$out"/races.log*
  TSAN_OPTIONS="$base_opts:log_path=$out/races.log" "$out/selftest-tsan" --races >/dev/null
  n=$(reports "$out"/races.log*)
  if [ "${n:-0}" -lt 2 ]; then
    echo "FAIL: the self-test's two racy kernels gave ${n:-0} TSan reports, want >= 2"; exit 1
  fi
  echo "self-test clean; its racy kernels: $n reports"
fi

if want zoo; then
  echo "== race zoo: each bug reported, each fixed twin clean"
  fail=0
  for z in $("$out/selftest-tsan" --zoo-list); do
    for v in "$z" "$z-fixed"; do
      rm -f "$out/zoo.log"*
      TSAN_OPTIONS="$base_opts:log_path=$out/zoo.log" "$out/selftest-tsan" --zoo "$v" >/dev/null
      n=$(reports "$out/zoo.log"*)
      first=$(grep -h -m1 -A2 'WARNING: ThreadSanitizer' "$out/zoo.log"* 2>/dev/null | sed -n 3p | sed 's/^ *//; s/ (selftest.*//' || true)
      if [ "$v" = "$z" ]; then
        if [ "$n" = 0 ]; then echo "FAIL: $v: not reported"; fail=1; else printf '  %-24s reported: %s\n' "$v" "$first"; fi
      else
        if [ "$n" != 0 ]; then echo "FAIL: $v: reported"; cat "$out/zoo.log"*; fail=1; else printf '  %-24s clean\n' "$v"; fi
      fi
    done
  done
  [ $fail = 0 ] || exit 1
fi

if want kernels; then
  echo "== kvtrim's kernels under TSan (build-emu-tsan)"
  wait $bg || { cat "$bg_log"; tail -30 "$out/build.log"; exit 1; }
  bg=
  rm -f "$out"/kernels.log*
  # Node is not instrumented: TSan is preloaded, and reports only come from instrumented code
  # (ignore_noninstrumented_modules), which is the kernels' translation units.
  LD_PRELOAD="$libtsan" TSAN_OPTIONS="$base_opts:ignore_noninstrumented_modules=1:log_path=$out/kernels.log" \
    KVTRIM_EMU_TSAN_SUITE=1 KVTRIM_EMU_DIR=build-emu-tsan KVTRIM_EMULATE_CUDA=1 KVTRIM_REQUIRE_CUDA=1 \
    node node_modules/vitest/vitest.mjs run test/emu/tsan.test.ts --no-file-parallelism
  if [ "$(reports "$out"/kernels.log*)" != 0 ]; then
    echo "FAIL: TSan reports in kvtrim's kernels:"; cat "$out"/kernels.log*; exit 1
  fi
  echo "kvtrim's kernels: no TSan report"
fi
if [ -n "$bg" ]; then wait $bg || { cat "$bg_log"; exit 1; }; fi
if want ptxas; then
  echo "== the emulator's sm_90 register table against ptxas"
  cat "$bg_log"
fi
echo "== emulator TSan checks passed in $(( $(date +%s) - start )) s"
