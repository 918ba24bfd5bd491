/**
 * CLOCK_MONOTONIC in microseconds, read through libc, so that every process on the machine
 * reads the same clock: a publisher stamps a message and a subscriber process subtracts on
 * arrival. (Bun's process.hrtime and performance.now count from each process's own start, and
 * wall-clock time can be slewed.)
 */
import { dlopen, FFIType, ptr } from "bun:ffi"

const libc = dlopen("libc.so.6", { clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 } })
const CLOCK_MONOTONIC = 1
const timespec = new BigInt64Array(2)
const timespecPointer = ptr(timespec)

export const monotonicUs = (): number => {
  libc.symbols.clock_gettime(CLOCK_MONOTONIC, timespecPointer)
  return Number(timespec[0]) * 1_000_000 + Math.floor(Number(timespec[1]) / 1000)
}
