// KVTRIM_COMPAT_OLD(sym, ver), shared by both symbol-version files: the addon is linked with
// -Wl,--wrap=<sym> (one flag per KVTRIM_COMPAT_* line, read by CMakeLists.txt), so its calls go
// to __wrap_<sym>, which is one tail branch to <sym>@<ver>, the old version glibc keeps as a
// compatibility symbol. Arguments and the return address are untouched. Only the branch and the
// ELF type syntax differ between the architectures.
#pragma once

#if defined(__x86_64__)
#define KVTRIM_WRAP_TYPE "@function"
#define KVTRIM_WRAP_BRANCH(target) "\tjmp " target "@PLT\n"
#elif defined(__aarch64__)
#define KVTRIM_WRAP_TYPE "%function\n.p2align 2"
#define KVTRIM_WRAP_BRANCH(target) "\tb " target "\n"
#else
#error "native/glibc is for x86-64 and aarch64"
#endif

#define KVTRIM_COMPAT_OLD(sym, ver)                                      \
  __asm__(".symver kvtrim_compat_" #sym ", " #sym "@" #ver "\n"         \
          ".pushsection .text\n"                                         \
          ".globl __wrap_" #sym "\n"                                     \
          ".hidden __wrap_" #sym "\n"                                    \
          ".type __wrap_" #sym ", " KVTRIM_WRAP_TYPE "\n"                \
          "__wrap_" #sym ":\n" KVTRIM_WRAP_BRANCH("kvtrim_compat_" #sym) \
          ".size __wrap_" #sym ", .-__wrap_" #sym "\n"                   \
          ".popsection\n");
