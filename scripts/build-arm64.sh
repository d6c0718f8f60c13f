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

# glibc floor 2.17 (KVTRIM_ARM64_GLIBC_COMPAT=0: without it, 2.34): native/glibc/
# symbol_versions_aarch64.cc binds what gcc 12's libstdc++ and the addon take from glibc 2.18-2.36
# to GLIBC_2.17 versions or replaces it, one -Wl,--wrap per KVTRIM_COMPAT_* line (as
# CMakeLists.txt does with symbol_versions.cc for x86-64). It is compiled here and handed to the
# link as an object in the linker flags, so CMakeLists.txt needs no change.
# Once CMakeLists.txt's KVTRIM_PORTABLE knows aarch64 (MERGE-NOTES-arm64.md, item 7), it does all
# of this itself and the script just turns it on.
LDFLAGS="-static-libstdc++ -Wl,--exclude-libs,ALL -Wl,--gc-sections -s"
GLIBC_MAX=${KVTRIM_ARM64_GLIBC_MAX:-}
PORTABLE=OFF
if [ "${KVTRIM_ARM64_GLIBC_COMPAT:-1}" = 1 ] && grep -q 'symbol_versions_aarch64' CMakeLists.txt; then
  PORTABLE=ON
  LDFLAGS=""
  GLIBC_MAX=${GLIBC_MAX:-GLIBC_2.17}
elif [ "${KVTRIM_ARM64_GLIBC_COMPAT:-1}" = 1 ]; then
  COMPAT_SRC=native/glibc/symbol_versions_aarch64.cc
  COMPAT_OBJ=$ROOT/$OUT/symbol_versions_aarch64.o
  mkdir -p "$OUT"
  if [ ! -f "$COMPAT_OBJ" ] || [ "$COMPAT_SRC" -nt "$COMPAT_OBJ" ]; then
    "${PREFIX}g++" -std=c++17 -O2 -fPIC -fvisibility=hidden -Wall -Wextra -DKVTRIM_ARM64_GLIBC_COMPAT \
      -c "$COMPAT_SRC" -o "$COMPAT_OBJ"
  fi
  WRAPS=$(grep -oE '^KVTRIM_COMPAT_(OLD|NEW)\([A-Za-z0-9_]+' "$COMPAT_SRC" | sed -E 's/.*\(/-Wl,--wrap=/' | tr '\n' ' ')
  LDFLAGS="$LDFLAGS $WRAPS $COMPAT_OBJ -Wl,--push-state,--no-as-needed -l:libpthread.so.0 -l:libdl.so.2 -Wl,--pop-state"
  GLIBC_MAX=${GLIBC_MAX:-GLIBC_2.17}
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
rm -f "$OUT/Release/kvtrim.node"  # relink: CMake does not track the compat object in the flags
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
neon_asm=$("${PREFIX}objdump" -d "$OUT"/CMakeFiles/kvtrim.dir/native/cpu/norms_neon.cc.o)
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
