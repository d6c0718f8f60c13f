#include "probe.h"

namespace kvtrim::cuda {

Probe probe() {
  Probe p;
  p.reason = "this build of kvtrim has no CUDA code (nvcc was not found when it was built, or "
             "KVTRIM_CUDA=OFF was set); rebuild with the CUDA toolkit on PATH to get it";
  return p;
}

}  // namespace kvtrim::cuda
