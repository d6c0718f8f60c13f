#!/usr/bin/env bash
# Packaging test (issue 8): what `npm install kvtrim` gives a user.
#  1. the prebuilt addon (npm run prebuildify; reused when newer than native/ and CMakeLists.txt):
#     glibc/libstdc++ symbol versions, stripped, no libcudart/libstdc++ dependency
#  2. npm pack: what the tarball holds (and not), its size
#  3. install it into an empty project with --ignore-scripts and a PATH holding node, npm and a few
#     shell tools only (no cmake, nvcc, g++, c++, cc, make, ninja): require() and import() run
#     keyNorms and compress and agree with an inline reference (scripts/pack-check.cjs)
#  4. prebuild removed, scripts blocked: loading throws KvtrimError BINDING_NOT_FOUND naming the
#     commands to run
#  5. prebuild removed, scripts allowed (normal PATH): a missing cmake is named in one line; the
#     source fallback (`npm rebuild kvtrim`, i.e. the install script) builds the CPU path
#     (KVTRIM_CUDA=OFF, to save CI time) and it passes the same checks
# KVTRIM_PACK_KEEP=1 keeps the temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=pack-test
. scripts/install-check.sh  # ROOT, step, die and the install helpers

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kvtrim-pack.XXXXXX")
if [ "${KVTRIM_PACK_KEEP:-0}" != 1 ]; then trap 'rm -rf "$TMP"' EXIT; else echo "pack-test: keeping $TMP"; fi

# ---- 1. the prebuild ---------------------------------------------------------------------
PREBUILD=prebuilds/linux-x64/node.napi.glibc.node
PREBUILD_ARM64=prebuilds/linux-arm64/node.napi.glibc.node  # cross-built and tested under qemu by npm run test:arm64
if [ ! -f "$PREBUILD" ] || [ -n "$(find native CMakeLists.txt scripts/prebuild-node-gyp.js -newer "$PREBUILD" -print -quit)" ]; then
  step "npm run prebuildify (no prebuild, or sources newer than it)"
  npm run --silent prebuildify
fi
[ -f "$PREBUILD" ] || die "$PREBUILD was not produced"
ls prebuilds/linux-x64 | grep -qvx 'node.napi.glibc.node' && die "unexpected files in prebuilds/linux-x64: $(ls prebuilds/linux-x64)"
step "prebuild $PREBUILD: $(stat -c %s "$PREBUILD") bytes"
if command -v objdump >/dev/null; then
  syms=$(objdump -T "$PREBUILD")
  glibc=$(grep -o 'GLIBC_[0-9.]*' <<<"$syms" | sort -Vu | tail -1)
  glibcxx=$(grep -o 'GLIBCXX_[0-9.]*\|CXXABI_[0-9.]*' <<<"$syms" | sort -Vu | tail -1 || true)
  needed=$(objdump -p "$PREBUILD" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
  echo "   needs $glibc, libstdc++ ${glibcxx:-none (linked in)}; NEEDED: $needed"
  [ "$(printf '%s\n' "$glibc" GLIBC_2.17 | sort -V | tail -1)" = GLIBC_2.17 ] || die "the prebuild needs $glibc (floor is GLIBC_2.17)"
  [ -z "$glibcxx" ] || die "the prebuild needs $glibcxx from the system libstdc++"
  grep -q 'libstdc++\|libcudart\|libcuda\.' <<<"$needed" && die "the prebuild links $needed"
  sections=$(objdump -h "$PREBUILD")
  grep -q '\.debug_\|\.symtab' <<<"$sections" && die "the prebuild is not stripped"
  grep -q '\.nv_fatbin' <<<"$sections" || die "the prebuild holds no CUDA fatbin"
fi

# ---- 2. npm pack ---------------------------------------------------------------------------
step "npm pack"
npm pack --silent --pack-destination "$TMP" >"$TMP/pack.out"
TGZ="$TMP/$(tail -1 "$TMP/pack.out")"
[ -f "$TGZ" ] || die "npm pack produced no tarball"
tar tzf "$TGZ" | sed 's|^package/||' | sort >"$TMP/files"
[ -f "$PREBUILD_ARM64" ] || die "$PREBUILD_ARM64 is missing: run npm run test:arm64 (or scripts/build-arm64.sh) first"
for f in "$PREBUILD" "$PREBUILD_ARM64" dist/index.js dist/index.mjs dist/index.d.ts dist/index.d.mts binding.d.ts CMakeLists.txt \
  scripts/build-native.js native/addon/addon.cc native/cuda/probe.cu native/glibc/symbol_versions.cc docs/install.md \
  README.md LICENSE package.json; do
  grep -qxF "$f" "$TMP/files" || die "the tarball lacks $f"
done
if grep -E '^(test|bench|examples|lib|\.ci|build|build-emu|node_modules|native/cuda/emu|native/cuda/dev)/|\.map$|\.tgz$' "$TMP/files"; then
  die "the tarball holds files users do not need (above)"
fi
unpacked=$(mkdir "$TMP/unpacked" && tar xzf "$TGZ" -C "$TMP/unpacked" && du -sb "$TMP/unpacked" | cut -f1)
echo "   $(basename "$TGZ"): $(stat -c %s "$TGZ") bytes packed, $unpacked bytes unpacked, $(wc -l <"$TMP/files") files"

# ---- 3. install with no build tools and no install scripts ----------------------------------
BIN="$TMP/bin"
mkdir -p "$BIN"
ln -s "$(command -v node)" "$BIN/node"
ln -s "$(readlink -f "$(command -v npm)")" "$BIN/npm"
restricted_bin "$BIN" cmake nvcc g++ c++ gcc cc make ninja
APP="$TMP/app"
test_app "$APP" kvtrim-pack-test
cd "$APP"
step "npm install --ignore-scripts <tarball>, PATH=$BIN (no cmake, nvcc, g++, c++, make)"
PATH="$BIN" npm install --silent --ignore-scripts --no-audit --no-fund --prefer-offline "$TGZ"
[ ! -e node_modules/kvtrim/build ] || die "the installed package has a build/ directory"
loaded=$(PATH="$BIN" node -p "require('node-gyp-build').path('node_modules/kvtrim')")
[ "$loaded" = "$APP/node_modules/kvtrim/$PREBUILD" ] || die "node-gyp-build picked $loaded"
PATH="$BIN" node pack-check.cjs cjs expect-cuda-compiled
PATH="$BIN" node pack-check.cjs esm expect-cuda-compiled

# ---- 4. no prebuild, no install scripts: the load error says what to run -------------------
step "prebuild removed, scripts blocked: the load error"
rm -rf node_modules/kvtrim/prebuilds
PATH="$BIN" node -e "
  const { keyNormsSync, KvtrimError } = require('kvtrim')
  try { keyNormsSync({ type: 'float32', data: new Float32Array(8), dims: [1, 1, 1, 8] }) }
  catch (e) {
    if (!(e instanceof KvtrimError) || e.code !== 'BINDING_NOT_FOUND') throw e
    for (const s of ['npm install --save-dev cmake-js', 'scripts/build-native.js', 'linux-x64'])
      if (!e.message.includes(s)) throw new Error('the BINDING_NOT_FOUND message lacks: ' + s + '\n' + e.message)
    console.log('   ' + e.message.split('\n').join('\n   '))
    process.exit(0)
  }
  throw new Error('kvtrim loaded without an addon')"

# ---- 5. no prebuild, scripts allowed: the source fallback ----------------------------------
step "source fallback: the build tools, then a missing cmake"
npm install --silent --no-audit --no-fund --prefer-offline --save-dev cmake-js@^8 node-addon-api@^8 node-api-headers@^1
rm -rf node_modules/kvtrim/prebuilds node_modules/kvtrim/build
if PATH="$BIN" node node_modules/kvtrim/scripts/build-native.js >"$TMP/nocmake.log" 2>&1; then die "a build without cmake succeeded"; fi
grep -q '`cmake` was not found' "$TMP/nocmake.log" || { cat "$TMP/nocmake.log"; die "a missing cmake was not named"; }
echo "   $(head -1 "$TMP/nocmake.log")"
step "source fallback: KVTRIM_CUDA=OFF npm rebuild kvtrim (runs the install script)"
KVTRIM_CUDA=OFF npm rebuild kvtrim --foreground-scripts >"$TMP/rebuild.log" 2>&1 || { tail -30 "$TMP/rebuild.log"; die "npm rebuild kvtrim failed"; }
[ -f node_modules/kvtrim/build/Release/kvtrim.node ] || { tail -30 "$TMP/rebuild.log"; die "npm rebuild kvtrim built nothing"; }
node pack-check.cjs cjs expect-cpu-only
node pack-check.cjs esm expect-cpu-only
cd "$ROOT"
step "passed"
