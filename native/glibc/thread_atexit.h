// The __cxa_thread_atexit_impl replacement both symbol-version files share (glibc < 2.18 has
// none): the libc one when present (looked up with dlsym), else a pthread-key list that runs the
// thread_local destructors at thread exit. Included once by the file of the build's architecture
// (each defines KVTRIM_HIDDEN and includes dlfcn.h, pthread.h and stdlib.h first).
#pragma once

namespace {

// Fallback for glibc < 2.18: thread_local destructors kept per thread, run at thread exit.
struct ThreadDtor {
  void (*fn)(void*);
  void* obj;
  ThreadDtor* next;
};
pthread_key_t dtor_key;
pthread_once_t dtor_once = PTHREAD_ONCE_INIT;

void run_thread_dtors(void* head) {
  for (ThreadDtor* d = static_cast<ThreadDtor*>(head); d != nullptr;) {
    ThreadDtor* next = d->next;
    d->fn(d->obj);
    free(d);
    d = next;
  }
}
void make_dtor_key() { pthread_key_create(&dtor_key, run_thread_dtors); }

using AtexitImpl = int (*)(void (*)(void*), void*, void*);

}  // namespace

KVTRIM_HIDDEN int __wrap___cxa_thread_atexit_impl(void (*fn)(void*), void* obj, void* dso) {
  static const AtexitImpl impl =
      reinterpret_cast<AtexitImpl>(dlsym(RTLD_DEFAULT, "__cxa_thread_atexit_impl"));
  if (impl != nullptr) return impl(fn, obj, dso);
  pthread_once(&dtor_once, make_dtor_key);
  ThreadDtor* d = static_cast<ThreadDtor*>(malloc(sizeof(ThreadDtor)));
  if (d == nullptr) return -1;
  *d = ThreadDtor{fn, obj, static_cast<ThreadDtor*>(pthread_getspecific(dtor_key))};
  pthread_setspecific(dtor_key, d);
  return 0;
}
