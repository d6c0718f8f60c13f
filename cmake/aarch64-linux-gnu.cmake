# CMake toolchain file: cross-compile kvtrim for linux-arm64 (AArch64, glibc) with Debian's
# cross gcc (apt-get install g++-aarch64-linux-gnu). Used by scripts/build-arm64.sh.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(KVTRIM_CROSS_PREFIX "aarch64-linux-gnu-" CACHE STRING "Prefix of the cross tools")
set(CMAKE_C_COMPILER ${KVTRIM_CROSS_PREFIX}gcc)
set(CMAKE_CXX_COMPILER ${KVTRIM_CROSS_PREFIX}g++)
find_program(KVTRIM_CROSS_STRIP ${KVTRIM_CROSS_PREFIX}strip)
if(KVTRIM_CROSS_STRIP)
  set(CMAKE_STRIP ${KVTRIM_CROSS_STRIP})
endif()

# Debian's multiarch cross sysroot.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# No aarch64 CUDA target libraries on this machine: the CPU path only.
set(KVTRIM_CUDA OFF CACHE STRING "Build the CUDA path: AUTO, ON or OFF" FORCE)
