#!/usr/bin/env bash
# The kernel workbench (native/cuda/dev/README.md): builds native/cuda/dev/compress.cu and
# norms.cu into build-workbench/, then runs both (each checks every output bit against
# native/core and prints a timing table; non-zero exit on any mismatch).
#   - nvcc for the GPU when nvcc AND a GPU are usable (nvidia-smi works), into build-workbench/gpu;
#   - else g++ against kvtrim's CUDA emulator (native/cuda/emu), into build-workbench/emu.
# Usage: bash scripts/workbench.sh [--nvcc | --emu] [--build-only] [-- ARGS for both binaries]
#   --nvcc        force the nvcc build (e.g. a compile-only check on a machine without a GPU)
#   --emu         force the emulator build
#   --build-only  build, do not run
#   ARGS          e.g. --bench (large shapes, for a GPU), --seed N, --only SUBSTR, --reps N,
#                 --schedule priority (emulator)
# Environment: CXX (g++), NVCC (nvcc), WORKBENCH_ARCH (sm_XY; default: the GPU's, else sm_90),
# WORKBENCH_OUT (build-workbench), CUDA_INCLUDE (/usr/local/cuda/include, for the emulator).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mode="" build_only=0 args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --nvcc) mode=nvcc ;;
    --emu) mode=emu ;;
    --build-only) build_only=1 ;;
    --) shift; args=("$@"); break ;;
    *) args+=("$1") ;;
  esac
  shift
done

nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
if [ -z "$mode" ]; then
  if [ -x "$nvcc" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then mode=nvcc; else mode=emu; fi
fi

out="${WORKBENCH_OUT:-$root/build-workbench}/$([ "$mode" = nvcc ] && echo gpu || echo emu)"
mkdir -p "$out/obj"
# The launchers (native/cuda/*.cu: globbed, the file split may change), the CPU reference
# (native/core/*.cc); the no-CUDA stubs (native/cuda/*_none.cc) are not part of either build.
lib_srcs=(native/cuda/*.cu native/core/*.cc)
benches=(compress norms)
t0=$(date +%s)
# Rebuild an object only when something under native/ is newer (headers included).
stale() { [ ! -f "$1" ] || [ -n "$(find native -path native/cuda/dev -prune -o -newer "$1" -type f -print -quit)" ]; }

if [ "$mode" = nvcc ]; then
  [ -x "$nvcc" ] || { echo "workbench: nvcc not found (set NVCC)"; exit 2; }
  arch="${WORKBENCH_ARCH:-}"
  if [ -z "$arch" ] && command -v nvidia-smi >/dev/null 2>&1; then
    cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .' || true)
    [ -n "$cap" ] && arch="sm_$cap"
  fi
  arch="${arch:-sm_90}"
  # The numeric contract: no FMA contraction on the device (--fmad=false) or the host, no fast-math.
  flags=(-std=c++17 -O2 -arch="$arch" --fmad=false -Xcompiler=-ffp-contract=off,-fno-fast-math,-pthread -I"$root")
  echo "== workbench: nvcc ($("$nvcc" --version | grep -o 'release [0-9.]*'), $arch) into $out"
  objs=()
  for src in "${lib_srcs[@]}"; do
    o="$out/obj/$(echo "$src" | tr / _).o"
    if stale "$o"; then "$nvcc" "${flags[@]}" -c "$src" -o "$o"; fi
    objs+=("$o")
  done
  for b in "${benches[@]}"; do
    "$nvcc" "${flags[@]}" "native/cuda/dev/$b.cu" "${objs[@]}" -o "$out/$b"
  done
else
  cxx="${CXX:-g++}"
  cuda_inc="${CUDA_INCLUDE:-/usr/local/cuda/include}"
  # As CMakeLists.txt's KVTRIM_EMULATE build: the .cu files as C++ (-xc++) against emu/emu.h,
  # CUDA's include directory only for <vector_types.h> (the emulator has its own otherwise).
  flags=(-std=c++17 -O2 -ffp-contract=off -fno-fast-math -Wno-unknown-pragmas -pthread -I"$root")
  [ -f "$cuda_inc/vector_types.h" ] && flags+=(-I"$cuda_inc")
  echo "== workbench: $cxx + the CUDA emulator into $out"
  objs=()
  for src in "${lib_srcs[@]}" native/cuda/emu/*.cc; do
    o="$out/obj/$(echo "$src" | tr / _).o"
    if stale "$o"; then "$cxx" "${flags[@]}" -xc++ -c "$src" -o "$o"; fi
    objs+=("$o")
  done
  for b in "${benches[@]}"; do
    "$cxx" "${flags[@]}" -Wall -Wextra -Werror -xc++ -c "native/cuda/dev/$b.cu" -o "$out/obj/$b.o"
    "$cxx" -pthread "$out/obj/$b.o" "${objs[@]}" -o "$out/$b"
  done
fi
echo "== built ${benches[*]} in $(( $(date +%s) - t0 )) s"
[ "$build_only" = 1 ] && exit 0

status=0
for b in "${benches[@]}"; do
  echo
  echo "== $out/$b ${args[*]:-}"
  "$out/$b" ${args[@]+"${args[@]}"} || status=$?
done
exit $status
