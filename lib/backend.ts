// backend(): which paths exist, and why CUDA is not used when it is not.
import { binding } from './binding'

export interface BackendInfo {
  /** Where host tensors run. */
  default: 'cpu'
  cpu: { available: true; threads: number; isa: 'avx2+f16c' | 'portable' }
  cuda: {
    /** This binary holds CUDA code. */
    compiled: boolean
    /** A driver, a device and a kernel launch that works: the GPU could run kvtrim's code. */
    usable: boolean
    /** Whether kvtrim runs anything on the GPU in this process. */
    used: boolean
    /** Why CUDA is not used, in words a user can act on ('' when it is). */
    reason: string
    /** e.g. 13000 for CUDA 13.0; 0 without a driver */
    driverVersion: number
    runtimeVersion: number
    architectures: string
    devices: Array<{ index: number; name: string; computeCapability: string; multiprocessors: number; totalMemory: number }>
  }
}

/** Reports the native paths of this build and what this machine allows. */
export function backend(): BackendInfo {
  const b = binding().backend()
  let reason = b.cuda.reason
  if (process.env.KVTRIM_FORCE_CPU === '1') reason = 'KVTRIM_FORCE_CPU=1 is set'
  else if (b.cuda.usable) {
    reason = 'this version of kvtrim runs every operation on host tensors, on the CPU path; the CUDA kernels and device tensors come in a later version'
  }
  return {
    default: 'cpu',
    cpu: { available: true, threads: b.cpu.threads, isa: b.cpu.isa },
    cuda: { ...b.cuda, used: false, reason },
  }
}
