// glibc compatibility for the portable (prebuilt) addon: KVTRIM_PORTABLE=ON links this file and
// one `-Wl,--wrap=<symbol>` per KVTRIM_COMPAT_* line below (CMakeLists.txt reads them from here),
// so that a binary linked on Debian 12 (glibc 2.36, gcc 12) loads on glibc 2.17 and newer.
//
// Where the newer symbol versions come from, and what is done about each:
// - glibc 2.34 moved libpthread, libdl and librt into libc and gave their functions a new version
//   (pthread_create@GLIBC_2.34, dlopen@GLIBC_2.34, ...). The static CUDA runtime and libstdc++
//   call them. KVTRIM_COMPAT_OLD binds each to its old version, which every glibc has (2.34 and
//   later keep it as a compatibility symbol): __wrap_<sym> is a tail jump to <sym>@<old version>,
//   so arguments and the return address (dlsym's RTLD_NEXT) are untouched. The addon also names
//   libpthread.so.0, libdl.so.2 and librt.so.1 as dependencies, where those functions live before 2.34.
// - The static libstdc++ of gcc 12 reads __libc_single_threaded (2.32) to skip atomics in a
//   single-threaded process: here it is a constant 0, "assume threads", which is always correct.
// - It calls getentropy (2.25) and arc4random (2.36) for std::random_device: replaced by the
//   getrandom system call, with /dev/urandom where the kernel lacks it.
// - It calls __cxa_thread_atexit_impl (2.18) to destroy thread_local objects (native/cpu uses
//   thread_local vectors): the libc one when present, else a pthread-key list that runs them at
//   thread exit in reverse order of registration.
// - glibc 2.29 gave libm's exp a new version (a faster implementation without the SVID error
//   wrapper); the old exp@GLIBC_2.2.5 stays as a compatibility symbol: bound to that.
// clock_gettime@GLIBC_2.17 is left as it is: it sets the floor, glibc 2.17 (CentOS 7, manylinux2014).
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "wrap.h"  // KVTRIM_COMPAT_OLD

KVTRIM_COMPAT_OLD(dlclose, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(exp, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(dlerror, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(dlmopen, GLIBC_2.3.4)
KVTRIM_COMPAT_OLD(dlopen, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(dlsym, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(dlvsym, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_condattr_setpshared, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_create, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_detach, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_getspecific, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_join, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_key_create, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_key_delete, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_kill, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_mutex_trylock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_mutexattr_destroy, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_mutexattr_init, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_mutexattr_setpshared, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_mutexattr_settype, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_once, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_destroy, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_init, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_rdlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_timedrdlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_timedwrlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_tryrdlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_trywrlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_unlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlock_wrlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlockattr_destroy, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlockattr_init, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_rwlockattr_setpshared, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_setspecific, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_spin_destroy, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_spin_init, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_spin_lock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_spin_trylock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(pthread_spin_unlock, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(sem_destroy, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(sem_init, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(sem_post, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(sem_timedwait, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(sem_trywait, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(sem_wait, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(shm_open, GLIBC_2.2.5)
KVTRIM_COMPAT_OLD(shm_unlink, GLIBC_2.2.5)

#define KVTRIM_COMPAT_NEW(sym)  // replaced by a definition of __wrap_<sym> below
KVTRIM_COMPAT_NEW(__libc_single_threaded)
KVTRIM_COMPAT_NEW(getentropy)
KVTRIM_COMPAT_NEW(arc4random)
KVTRIM_COMPAT_NEW(__cxa_thread_atexit_impl)

#define KVTRIM_HIDDEN extern "C" __attribute__((visibility("hidden")))

extern "C" {
__attribute__((visibility("hidden"))) char __wrap___libc_single_threaded = 0;
}

namespace {

int fill_random(void* buf, size_t len) {
  unsigned char* p = static_cast<unsigned char*>(buf);
  while (len > 0) {
    long n = syscall(SYS_getrandom, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    len -= size_t(n);
  }
  if (len == 0) return 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  while (len > 0) {
    ssize_t n = read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    p += n;
    len -= size_t(n);
  }
  close(fd);
  return len == 0 ? 0 : -1;
}


}  // namespace

KVTRIM_HIDDEN int __wrap_getentropy(void* buf, size_t len) {
  if (len > 256) {
    errno = EIO;
    return -1;
  }
  if (fill_random(buf, len) != 0) {
    errno = EIO;
    return -1;
  }
  return 0;
}

KVTRIM_HIDDEN uint32_t __wrap_arc4random(void) {
  uint32_t v = 0;
  if (fill_random(&v, sizeof v) != 0) abort();  // as arc4random: it never returns an error
  return v;
}

#include "thread_atexit.h"
