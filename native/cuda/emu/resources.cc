// Per-kernel resources: nvcc's sm_90 registers and static shared memory (ptxas_sm90.inc) for a
// kernel named from its address (the symbol table of its binary, since the addon's symbols are
// hidden, so dladdr alone does not name them), and the occupancy they allow.
#include "emu_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace kvtrim {
namespace emu {
namespace detail {

namespace {
struct PtxasEntry {
  const char* mangled;
  int regs, static_smem, threads, dynamic_smem, blocks;
};
const PtxasEntry kPtxas[] = {
#include "ptxas_sm90.inc"
};

struct SymbolTable {
  std::unordered_map<uintptr_t, std::string> by_offset;  // function offset in the file -> name
};
// The defined function symbols of an ELF file (.symtab, else .dynsym), read once per file.
const SymbolTable& symbols_of(const std::string& file) {
  static std::map<std::string, SymbolTable> cache;  // guarded by g_mu
  auto it = cache.find(file);
  if (it != cache.end()) return it->second;
  SymbolTable& t = cache[file];
  const int fd = open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return t;
  struct stat st;
  void* m = fstat(fd, &st) == 0 ? mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  close(fd);
  if (m == MAP_FAILED) return t;
  const auto* base = static_cast<const unsigned char*>(m);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(base);
  if (size_t(st.st_size) >= sizeof(Elf64_Ehdr) && std::memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
      eh->e_ident[EI_CLASS] == ELFCLASS64 && eh->e_shoff + size_t(eh->e_shnum) * sizeof(Elf64_Shdr) <= size_t(st.st_size)) {
    const auto* sh = reinterpret_cast<const Elf64_Shdr*>(base + eh->e_shoff);
    for (const unsigned want : {unsigned(SHT_SYMTAB), unsigned(SHT_DYNSYM)}) {
      for (unsigned i = 0; i < eh->e_shnum; ++i) {
        if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum) continue;
        const auto* sym = reinterpret_cast<const Elf64_Sym*>(base + sh[i].sh_offset);
        const char* str = reinterpret_cast<const char*>(base + sh[sh[i].sh_link].sh_offset);
        for (size_t k = 0; k < sh[i].sh_size / sizeof(Elf64_Sym); ++k)
          if (ELF64_ST_TYPE(sym[k].st_info) == STT_FUNC && sym[k].st_value && sym[k].st_shndx != SHN_UNDEF)
            t.by_offset.emplace(uintptr_t(sym[k].st_value), str + sym[k].st_name);
      }
      if (!t.by_offset.empty()) break;
    }
  }
  munmap(m, size_t(st.st_size));
  return t;
}

std::unordered_map<const void*, FuncInfo> g_func_info;  // guarded by g_mu
}  // namespace

const FuncInfo& func_info_locked(const void* func) {
  auto it = g_func_info.find(func);
  if (it != g_func_info.end()) return it->second;
  FuncInfo info;
  Dl_info dl;
  if (func && dladdr(func, &dl) && dl.dli_fname) {
    if (dl.dli_sname) info.name = dl.dli_sname;
    const bool pie = dl.dli_fbase != nullptr;
    const uintptr_t off = reinterpret_cast<uintptr_t>(func) - (pie ? reinterpret_cast<uintptr_t>(dl.dli_fbase) : 0);
    if (info.name.empty()) {
      const SymbolTable& t = symbols_of(dl.dli_fname);
      auto s = t.by_offset.find(off);
      if (s == t.by_offset.end()) s = t.by_offset.find(reinterpret_cast<uintptr_t>(func));  // non-PIE
      if (s != t.by_offset.end()) info.name = s->second;
    }
  }
  for (const PtxasEntry& e : kPtxas)
    if (info.name == e.mangled) {
      info.regs = e.regs;
      info.static_smem = e.static_smem;
    }
  return g_func_info.emplace(func, std::move(info)).first->second;
}

int occupancy(const cudaDeviceProp& p, unsigned threads, size_t smem, int regs) {
  if (threads == 0) return 0;
  const unsigned warps = (threads + 31) / 32;
  int n = p.maxThreadsPerMultiProcessor / int(warps * 32);
  n = std::min(n, p.maxBlocksPerMultiProcessor > 0 ? p.maxBlocksPerMultiProcessor : 32);
  const size_t per_block = smem + kReservedSmemPerBlock;
  n = std::min<int>(n, int(p.sharedMemPerMultiprocessor / per_block));
  if (regs > 0) {
    const long per_warp = (long(regs) * 32 + 255) / 256 * 256;
    if (per_warp * long(warps) > long(p.regsPerBlock)) return 0;
    n = std::min<int>(n, int(long(p.regsPerMultiprocessor) / (per_warp * long(warps))));
  }
  return std::max(n, 0);
}

// For tests (env KVTRIM_EMU_OCCUPANCY_REPORT=file, written at the first launch of the process):
// every kernel of the ptxas table that this binary holds, with the emulator's blocks per SM and
// the ptxas-derived figure. One JSON object per line.
void write_occupancy_report_locked(const cudaDeviceProp& p, const void* any_func) {
  const char* path = std::getenv("KVTRIM_EMU_OCCUPANCY_REPORT");
  if (!path || !*path) return;
  Dl_info dl;
  if (!dladdr(any_func, &dl) || !dl.dli_fname) return;
  const SymbolTable& t = symbols_of(dl.dli_fname);
  FILE* out = std::fopen(path, "w");
  if (!out) return;
  for (const PtxasEntry& e : kPtxas) {
    const void* addr = nullptr;
    for (const auto& s : t.by_offset)
      if (s.second == e.mangled) addr = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(dl.dli_fbase) + s.first);
    int emulated = -1, regs = 0;
    if (addr) {
      const FuncInfo& fi = func_info_locked(addr);
      regs = fi.regs;
      emulated = occupancy(p, unsigned(e.threads), size_t(e.dynamic_smem + fi.static_smem), fi.regs);
    }
    std::fprintf(out, "{\"kernel\":\"%s\",\"found\":%s,\"regs\":%d,\"emulated\":%d,\"ptxas\":%d}\n",
                 e.mangled, addr ? "true" : "false", regs, emulated, e.blocks);
  }
  std::fclose(out);
}

}  // namespace detail
}  // namespace emu
}  // namespace kvtrim
