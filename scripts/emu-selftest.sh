#!/usr/bin/env bash
# Builds and runs the self-test of kvtrim's CUDA emulator (native/cuda/emu) twice: plain, and
# under AddressSanitizer + UBSan. Exits non-zero on any failure. Needs only g++ (the CUDA include
# directory is used for <vector_types.h> when present).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${EMU_SELFTEST_OUT:-$root/build/emu-selftest}"
mkdir -p "$out"
cxx="${CXX:-g++}"
cuda_inc="${CUDA_INCLUDE:-/usr/local/cuda/include}"
flags=(-std=c++17 -O1 -g -ffp-contract=off -Wall -Wextra -Werror -pthread)
[ -f "$cuda_inc/vector_types.h" ] && flags+=(-I"$cuda_inc")
srcs=("$root/test/emu/selftest.cc" "$root"/native/cuda/emu/*.cc)
san=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)

echo "== building (plain and asan+ubsan) in $out"
"$cxx" "${flags[@]}" "${srcs[@]}" -o "$out/selftest" &
p1=$!
"$cxx" "${flags[@]}" "${san[@]}" "${srcs[@]}" -o "$out/selftest-asan" &
p2=$!
wait $p1
wait $p2

echo "== plain"
"$out/selftest"
echo "== asan + ubsan"
# detect_stack_use_after_return: fibers switch stacks; keep ASan's fake stacks off.
ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=0:abort_on_error=1:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
  "$out/selftest-asan"
# The sanitizers see through the fibers: an out-of-bounds shared memory write and a misaligned
# 16-byte load in a kernel must be reported.
for mode in smem-overflow:heap-buffer-overflow misaligned-uint4:misaligned; do
  flag="--${mode%%:*}"
  want="${mode#*:}"
  if ASAN_OPTIONS="detect_leaks=0:detect_stack_use_after_return=0" UBSAN_OPTIONS="halt_on_error=1" \
      "$out/selftest-asan" "$flag" >"$out/crash.log" 2>&1; then
    echo "FAIL: $flag was not caught under asan+ubsan"; cat "$out/crash.log"; exit 1
  fi
  if ! grep -q "$want" "$out/crash.log"; then
    echo "FAIL: $flag: no '$want' report"; cat "$out/crash.log"; exit 1
  fi
  echo "sanitizers catch $flag: $(grep -m1 -o "$want[^(]*" "$out/crash.log")"
done
echo "== emulator self-test passed"
