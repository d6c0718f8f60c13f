#!/usr/bin/env bash
# Cross-builds the kvtrim addon for linux-arm64 (AArch64, glibc), CPU path only, and puts it
# where node-gyp-build looks for it: prebuilds/linux-arm64/node.napi.glibc.node (the name
# `npm run prebuildify` gives the x64 one: --napi --tag-libc --name node.napi).
#
# Same cmake-js route as x64 (CMakeLists.txt, node-api-headers, offline), with:
#  - cmake/aarch64-linux-gnu.cmake: Debian's cross g++ (apt-get install g++-aarch64-linux-gnu);
#  - KVTRIM_CUDA=OFF: no aarch64 CUDA target libraries here;
#  - the distribution link of KVTRIM_PORTABLE (which CMakeLists.txt allows on x86-64 only, its
#    glibc symbol-version file being x86-64 assembly): libstdc++ linked in statically with its
#    symbols hidden, libgcc_s dynamic, --gc-sections, stripped;
#  - native/glibc/symbol_versions_aarch64.cc: glibc floor 2.17 (below).
# Incremental in build-arm64/; KVTRIM_ARM64_CLEAN=1 starts from an empty one.
# Prints the size, the newest GLIBC_ symbol version it needs and its NEEDED libraries, and
# fails if it needs anything from the system libstdc++ or if any fused multiply-add made it
# into the CPU norm code.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=build-arm64
DEST=prebuilds/linux-arm64/node.napi.glibc.node
PREFIX=${KVTRIM_CROSS_PREFIX:-aarch64-linux-gnu-}
die() { echo "build-arm64: $*" >&2; exit 1; }

command -v "${PREFIX}g++" >/dev/null || die "${PREFIX}g++ not found (apt-get install g++-aarch64-linux-gnu)"
command -v cmake >/dev/null || die "cmake not found"
[ "${KVTRIM_ARM64_CLEAN:-0}" = 1 ] && rm -rf "$OUT"

# glibc floor 2.17: KVTRIM_PORTABLE=ON (CMakeLists.txt) links native/glibc/symbol_versions_aarch64.cc,
# which binds what gcc 12's libstdc++ and the addon take from glibc 2.18-2.36 to GLIBC_2.17
# versions, with static libstdc++, hidden and stripped. KVTRIM_ARM64_GLIBC_COMPAT=0 builds
# without it (floor 2.34), to compare.
LDFLAGS=""
GLIBC_MAX=${KVTRIM_ARM64_GLIBC_MAX:-}
PORTABLE=ON
GLIBC_MAX=${GLIBC_MAX:-GLIBC_2.17}
if [ "${KVTRIM_ARM64_GLIBC_COMPAT:-1}" != 1 ]; then
  PORTABLE=OFF
  GLIBC_MAX=${KVTRIM_ARM64_GLIBC_MAX:-}
  LDFLAGS="-static-libstdc++ -Wl,--exclude-libs,ALL -Wl,--gc-sections -s"
fi

# (cmake-js sets CMAKE_CXX_FLAGS itself, after any --CD one, hence CMAKE_CXX_FLAGS_RELEASE; -O3
# -DNDEBUG is CMake's Release default.)
CMAKE_JS=$(node -p "require.resolve('cmake-js/bin/cmake-js', { paths: ['$ROOT'] })")
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2}
node "$CMAKE_JS" configure --out "$OUT" --arch arm64 \
  --CDCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/aarch64-linux-gnu.cmake" \
  --CDKVTRIM_CROSS_PREFIX="$PREFIX" \
  --CDKVTRIM_CUDA=OFF --CDKVTRIM_PORTABLE=$PORTABLE --CDKVTRIM_EMULATE=OFF --CDKVTRIM_SANITIZE=OFF \
  --CDCMAKE_CXX_FLAGS_RELEASE="-O3 -DNDEBUG$([ $PORTABLE = ON ] || echo ' -ffunction-sections -fdata-sections')" \
  --CDCMAKE_SHARED_LINKER_FLAGS="$LDFLAGS"
node "$CMAKE_JS" build --out "$OUT"

SO=$OUT/Release/kvtrim.node
[ -f "$SO" ] || die "$SO was not produced"
[ "$(od -An -tx1 -j18 -N2 "$SO" | tr -d ' ')" = b700 ] || die "$SO is not an AArch64 ELF"

# No fused multiply-add anywhere in the CPU norms (the contract: square and add rounded apart).
OBJS=$(find "$OUT" -name 'norms*.o' -o -name 'compress.cc.o' | sort)
[ -n "$OBJS" ] || die "no CPU norm objects found under $OUT"
if "${PREFIX}objdump" -d $OBJS | grep -E '\s(fmla|fmls|fmadd|fmsub|fnmadd|fnmsub)\s'; then
  die "fused multiply-add instructions in the CPU norm code (above): the build lost -ffp-contract=off"
fi
NEON_OBJ=$(find "$OUT" -name norms_neon.cc.o | head -1)
[ -n "$NEON_OBJ" ] || die "norms_neon.cc.o not found under $OUT"
neon_asm=$("${PREFIX}objdump" -d "$NEON_OBJ")
grep -q fcvtl <<<"$neon_asm" || die "norms_neon.cc.o has no FCVTL: the NEON path was not compiled"

mkdir -p "$(dirname "$DEST")"
cp "$SO" "$DEST"
syms=$("${PREFIX}objdump" -T "$DEST")
glibc=$(grep -o 'GLIBC_[0-9.]*' <<<"$syms" | sort -Vu | tail -1)
glibcxx=$(grep -o 'GLIBCXX_[0-9.]*\|CXXABI_[0-9.]*' <<<"$syms" | sort -Vu | tail -1 || true)
needed=$("${PREFIX}objdump" -p "$DEST" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
echo "build-arm64: $DEST: $(stat -c %s "$DEST") bytes; needs $glibc (e.g. $(grep "$glibc" <<<"$syms" | awk '{print $NF}' | sort | head -4 | tr '\n' ' ')), libstdc++ ${glibcxx:-none (linked in)}; NEEDED: $needed"
[ -z "$glibcxx" ] || die "the arm64 prebuild needs $glibcxx from the system libstdc++"
grep -q 'libstdc++' <<<"$needed" && die "the arm64 prebuild links libstdc++ dynamically"
sections=$("${PREFIX}objdump" -h "$DEST")
grep -q '\.debug_\|\.symtab' <<<"$sections" && die "the arm64 prebuild is not stripped"
# The floor is a check: GLIBC_2.17 with the compat file (KVTRIM_ARM64_GLIBC_MAX overrides).
if [ -n "$GLIBC_MAX" ] && [ "$(printf '%s\n' "$glibc" "$GLIBC_MAX" | sort -V | tail -1)" != "$GLIBC_MAX" ]; then
  die "the arm64 prebuild needs $glibc (allowed: up to $GLIBC_MAX)"
fi
for lib in libpthread.so.0 libdl.so.2; do
  [ "${KVTRIM_ARM64_GLIBC_COMPAT:-1}" != 1 ] || grep -q "$lib" <<<"$needed" || die "the arm64 prebuild does not name $lib (needed before glibc 2.34)"
done
exit 0
