// kvtrim's host memory: large outputs come from a recycled, bounded pool (its figures and a
// way to give its idle memory back to the system).
import { binding } from './binding'
import { KvtrimError } from './errors'

export interface MemoryStats {
  /** Bytes the pool may map, in use and idle together: KVTRIM_POOL_MB (default 1024 MiB) or setPoolLimit(). */
  poolLimit: number
  /** Pooled bytes held by live output arrays (also counted in process.memoryUsage().external). */
  pooledInUse: number
  /** Pooled bytes waiting for reuse; releaseMemory() unmaps them. */
  pooledIdle: number
  /** Outputs served from idle pooled memory. */
  reused: number
  /** Outputs served by a new pooled mapping. */
  mapped: number
  /** Outputs the pool declined (over a limit): they are ordinary memory that the GC frees. */
  declined: number
}

/** The output pool's figures (process-wide: shared by the main thread and every worker). */
export function memoryStats(): MemoryStats {
  return binding().memoryStats()
}

/** Unmaps the pool's idle memory now; returns the bytes released. */
export function releaseMemory(): number {
  return binding().releaseMemory()
}

/**
 * Sets the most memory the output pool may map, in use and idle together (0 turns it off:
 * every output is then ordinary memory). Idle memory over the new limit is released at once.
 */
export function setPoolLimit(bytes: number): void {
  if (typeof bytes !== 'number' || !Number.isSafeInteger(bytes) || bytes < 0) {
    throw new KvtrimError(`Expected bytes to be a non-negative integer but received ${String(bytes)}`, 'INVALID_ARGUMENT')
  }
  binding().setPoolLimit(bytes)
}
