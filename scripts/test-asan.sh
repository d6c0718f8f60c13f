#!/usr/bin/env bash
# The host addon built with AddressSanitizer + UBSan (build-asan/), running the host suites and
# the crash suite: an out-of-bounds access, a use after free or undefined behaviour anywhere in
# native/ becomes a failure. Node itself is not instrumented, so the runtimes are preloaded.
# LeakSanitizer runs at each process's exit; Node leaks on purpose at exit, so
# scripts/lsan-filter.js fails the run only on leaks allocated by kvtrim's own code.
# Budget: ~6 minutes on 2 cores (build ~2 min, suites ~4 min).
set -euo pipefail
cd "$(dirname "$0")/.."
KVTRIM_CUDA=OFF KVTRIM_SANITIZE=1 KVTRIM_OUT=build-asan node scripts/build-native.js
logs=$(mktemp -d)
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:log_path=$logs/asan:exitcode=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
export KVTRIM_ADDON_DIR=build-asan
set +e
npx vitest run test/compress.test.ts test/inplace.test.ts test/norms.test.ts test/errors.test.ts \
  test/uncertainty.test.ts test/budgets.test.ts test/cache.test.ts test/compressor.test.ts \
  test/correlation.test.ts ${KVTRIM_ASAN_EXTRA:-}
status=$?
# The crash suite: child processes under ASan are several times slower; two at a time.
KVTRIM_CRASH_TIMEOUT_MS=480000 npx vitest run test/crash.test.ts --maxConcurrency 2 --testTimeout 600000 || status=1
set -e
unset LD_PRELOAD
node scripts/lsan-filter.js "$logs" || status=1
exit $status
