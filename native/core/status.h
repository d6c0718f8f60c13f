// Status values returned by everything below native/addon: nothing there throws or exits;
// the addon turns a failed Status into a KvtrimError whose `code` is code_name(code).
// The codes come from codes.def, the one table shared with lib/errors.ts.
#pragma once
#include <string>
#include <utility>

namespace kvtrim {

enum class Code {
  Ok,
#define KVTRIM_CODE(name, js, meaning) name,
#include "codes.def"
#undef KVTRIM_CODE
};

// The JS `code` string ("INVALID_ARGUMENT", ...; "OK" for Ok).
const char* code_name(Code code);

struct Status {
  Code code = Code::Ok;
  std::string message;

  bool ok() const { return code == Code::Ok; }
  static Status success() { return {}; }
  static Status error(Code c, std::string msg) { return Status{c, std::move(msg)}; }
};

}  // namespace kvtrim
