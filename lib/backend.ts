// backend(): which paths exist, and why CUDA is not used when it is not.
import { binding } from './binding'

export interface BackendInfo {
  /** Where tensor(..., { device: 'auto' }) puts data: 'cuda' when a GPU is usable, else 'cpu'. */
  default: 'cpu' | 'cuda'
  cpu: { available: true; threads: number; isa: 'avx2+f16c' | 'neon' | 'portable' }
  cuda: {
    /** This binary holds CUDA code. */
    compiled: boolean
    /** The CUDA code runs on kvtrim's CPU emulator (KVTRIM_EMULATE_CUDA=1 with `npm run build:emu`). */
    emulated: boolean
    /** A driver, a device and a kernel launch that works: device tensors can be used. */
    usable: boolean
    /** Whether 'auto' places tensors on the GPU in this process. */
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
  const forced = process.env.KVTRIM_FORCE_CPU === '1'
  const used = b.cuda.usable && !forced
  const reason = forced ? 'KVTRIM_FORCE_CPU=1 is set' : used ? '' : b.cuda.reason
  return {
    default: used ? 'cuda' : 'cpu',
    cpu: { available: true, threads: b.cpu.threads, isa: b.cpu.isa },
    cuda: { ...b.cuda, used, reason },
  }
}
