#include "status.h"

namespace kvtrim {

const char* code_name(Code code) {
  switch (code) {
    case Code::Ok: return "OK";
#define KVTRIM_CODE(name, js, meaning) \
    case Code::name: return js;
#include "codes.def"
#undef KVTRIM_CODE
  }
  return "INTERNAL";
}

}  // namespace kvtrim
