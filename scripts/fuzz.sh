#!/usr/bin/env bash
# libFuzzer over native/core and native/cpu (fuzz/compress_fuzz.cc), with ASan and UBSan.
# Builds build-fuzz/compress_fuzz with clang (installs clang-14 from Debian's packages when no
# clang with libFuzzer is found and we are root), then fuzzes for FUZZ_SECONDS (default 60) from
# the committed seed corpus fuzz/corpus/ (read only: new inputs go to a scratch directory), and
# replays every input found once more with KVTRIM_ISA=portable (the dispatch's other path).
# Fails on any crash, sanitizer report, timeout or contract violation; the reproducer is kept
# in build-fuzz/ (replay: build-fuzz/compress_fuzz <file>).
# FUZZ_SECONDS=n, FUZZ_ARGS="extra libFuzzer flags" (e.g. -jobs=2 -workers=2), FUZZ_BUILD_ONLY=1,
# KVTRIM_FUZZ_STATS=1 (build-fuzz/fuzz.log ends with how many valid cases of each selection mode ran).
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-fuzz
seconds=${FUZZ_SECONDS:-60}
mkdir -p "$out"

find_clang() {
  for c in "${CXX_FUZZ:-}" clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || continue
    # it must link libFuzzer (the compiler-rt package may be missing)
    if echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
        "$c" -x c++ - -fsanitize=fuzzer -o "$out/.probe" >/dev/null 2>&1; then
      rm -f "$out/.probe"
      echo "$c"
      return 0
    fi
  done
  return 1
}

if ! cxx=$(find_clang); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "fuzz: no clang with libFuzzer; installing clang-14 and libclang-rt-14-dev (Debian)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null ||
      { apt-get update >/dev/null && apt-get install -y --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null; }
    cxx=$(find_clang) || { echo "fuzz: clang-14 installed but cannot link libFuzzer" >&2; exit 1; }
  else
    echo "fuzz: needs clang++ with libFuzzer (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 1
  fi
fi

# The numeric contract's flags as in CMakeLists.txt (no FMA contraction, no fast-math): the
# fuzzer checks bit-exact norms.
flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -ffp-contract=off -fno-fast-math -pthread
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
srcs=(fuzz/compress_fuzz.cc native/core/*.cc native/cpu/*.cc)
echo "fuzz: building $out/compress_fuzz with $($cxx --version | head -1)"
start=$(date +%s)
"$cxx" "${flags[@]}" "${srcs[@]}" -o "$out/compress_fuzz"
echo "fuzz: built in $(($(date +%s) - start)) s"
[ "${FUZZ_BUILD_ONLY:-0}" = 1 ] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
work="$out/corpus"   # what this run finds; fuzz/corpus stays as committed
mkdir -p "$work"
echo "fuzz: $seconds s from fuzz/corpus ($(find fuzz/corpus -type f | wc -l) seeds)"
rc=0
# shellcheck disable=SC2086
"$out/compress_fuzz" "$work" fuzz/corpus -max_total_time="$seconds" -timeout=20 -max_len=4096 \
  -rss_limit_mb=4096 -print_final_stats=1 -artifact_prefix="$out/" ${FUZZ_ARGS:-} >"$out/fuzz.log" 2>&1 || rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^(stat::|SUMMARY|==[0-9]+==ERROR)|kvtrim fuzz|runtime error|Test unit written' \
  "$out/fuzz.log" || true
if [ "$rc" != 0 ]; then
  echo "fuzz: FAILED (exit $rc); the full log is $out/fuzz.log" >&2
  tail -60 "$out/fuzz.log" >&2
  exit 1
fi
echo "fuzz: replaying $(find "$work" fuzz/corpus -type f | wc -l) inputs with KVTRIM_ISA=portable"
KVTRIM_ISA=portable "$out/compress_fuzz" -runs=0 "$work" fuzz/corpus >"$out/portable.log" 2>&1 ||
  { echo "fuzz: FAILED on the portable path; log $out/portable.log" >&2; tail -60 "$out/portable.log" >&2; exit 1; }
echo "fuzz: ok"
