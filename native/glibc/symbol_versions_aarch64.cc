// glibc compatibility for the linux-arm64 prebuild: the aarch64 counterpart of
// symbol_versions.cc (which is x86-64 assembly), in the same format: one KVTRIM_COMPAT_OLD /
// KVTRIM_COMPAT_NEW line per symbol, each linked with `-Wl,--wrap=<symbol>` (scripts/build-arm64.sh
// reads the lines from here, as CMakeLists.txt does for x86-64), so that the addon linked on
// Debian 12 (cross glibc 2.36, gcc 12) loads on glibc 2.17, the first glibc with aarch64 support.
//
// What the addon (with gcc 12's static libstdc++) takes from glibc newer than 2.17, and what is
// done about each:
// - pthread_create, pthread_detach (GLIBC_2.34: glibc 2.34 moved libpthread into libc), and
//   dlsym, pthread_once, pthread_key_create, pthread_getspecific, pthread_setspecific (2.34, used
//   by the fallback below): bound to their GLIBC_2.17 versions, which 2.34 and later keep as
//   compatibility symbols. __wrap_<sym> is a tail branch to <sym>@GLIBC_2.17, so arguments and
//   the return address are untouched. The addon also names libpthread.so.0 and libdl.so.2 as
//   dependencies, where those functions live before 2.34.
// - exp (GLIBC_2.29, libm's new exp without the SVID error wrapper): bound to exp@GLIBC_2.17.
// - __libc_single_threaded (2.32; libstdc++ reads it to skip atomics in a single-threaded
//   process): a constant 0, "assume threads", which is always correct.
// - __cxa_thread_atexit_impl (2.18; destroys thread_local objects): the libc one when present
//   (looked up with dlsym), else a pthread-key list that runs them at thread exit in reverse
//   order of registration.
// Compiled only when KVTRIM_ARM64_GLIBC_COMPAT is defined (scripts/build-arm64.sh), on aarch64.
#if defined(__aarch64__) && defined(__linux__) && defined(KVTRIM_ARM64_GLIBC_COMPAT)
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

#include "wrap.h"  // KVTRIM_COMPAT_OLD

KVTRIM_COMPAT_OLD(dlsym, GLIBC_2.17)
KVTRIM_COMPAT_OLD(exp, GLIBC_2.17)
KVTRIM_COMPAT_OLD(pthread_create, GLIBC_2.17)
KVTRIM_COMPAT_OLD(pthread_detach, GLIBC_2.17)
KVTRIM_COMPAT_OLD(pthread_getspecific, GLIBC_2.17)
KVTRIM_COMPAT_OLD(pthread_key_create, GLIBC_2.17)
KVTRIM_COMPAT_OLD(pthread_once, GLIBC_2.17)
KVTRIM_COMPAT_OLD(pthread_setspecific, GLIBC_2.17)

#define KVTRIM_COMPAT_NEW(sym)  // replaced by a definition of __wrap_<sym> below
KVTRIM_COMPAT_NEW(__libc_single_threaded)
KVTRIM_COMPAT_NEW(__cxa_thread_atexit_impl)

#define KVTRIM_HIDDEN extern "C" __attribute__((visibility("hidden")))

extern "C" {
__attribute__((visibility("hidden"))) char __wrap___libc_single_threaded = 0;
}

#include "thread_atexit.h"

#endif
