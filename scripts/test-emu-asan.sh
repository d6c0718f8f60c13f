#!/usr/bin/env bash
# The CUDA suites (test/cuda) on the emulator built with AddressSanitizer and UBSan: out-of-bounds
# shared or global memory and misaligned 16-byte accesses in the kernels become failures.
# Node itself is not instrumented, so the runtimes are preloaded.
set -euo pipefail
cd "$(dirname "$0")/.."
KVTRIM_SANITIZE=1 KVTRIM_EMU_OUT=build-emu-asan node scripts/build-native.js --emulate
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
KVTRIM_EMU_DIR=build-emu-asan KVTRIM_EMULATE_CUDA=1 KVTRIM_REQUIRE_CUDA=1 npx vitest run test/cuda
