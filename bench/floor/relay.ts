/**
 * What the floor drivers share: the compiled C relay (bench/floor/relay-floor.c) as a child
 * process, how busy the whole machine was during a run, and their option checks.
 */
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { trackPid, untrackPid, withParentDeathSignal, withTimeout } from "../processes.ts"
import type { Scope } from "../scope.ts"

/** The relay prints its port at once; anything slower means it failed to start. */
const RELAY_START_TIMEOUT_MS = 5_000
/** After SIGTERM the relay only prints one line. */
const RELAY_STOP_TIMEOUT_MS = 5_000

export class BadArguments extends Error {
  readonly _tag = "BadArguments"
}

export const positiveInteger = (text: string | undefined, name: string, fallback: number): number => {
  if (text === undefined) return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value < 1) throw new BadArguments(`--${name} must be a positive integer, got ${JSON.stringify(text)}`)
  return value
}

export class RelayFailed extends Error {
  readonly _tag = "RelayFailed"
}

/** What the relay prints on SIGTERM (see relay-floor.c). */
export interface RelayTotals {
  readonly cpuMs: number
  readonly sysMs: number
  readonly bytesToOrigin: number
  readonly bytesToClient: number
  readonly connections: number
  readonly originFailures: number
}

const isRelayTotals = (value: unknown): value is RelayTotals => {
  if (typeof value !== "object" || value === null) return false
  const record = value as Record<string, unknown>
  return ["cpuMs", "sysMs", "bytesToOrigin", "bytesToClient", "connections", "originFailures"].every((key) => typeof record[key] === "number")
}

/** Busy and total jiffies of the whole machine (first line of /proc/stat). */
export interface MachineTicks {
  readonly busy: number
  readonly total: number
}

export const machineTicks = (): MachineTicks => {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0)
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0)
  return { busy: total - idle, total }
}

export const busyCoresSince = (before: MachineTicks): number => {
  const after = machineTicks()
  const total = after.total - before.total
  return total === 0 ? 0 : ((after.busy - before.busy) / total) * availableParallelism()
}

/** Lines of a child's stdout, one at a time. */
const lineReader = (stream: ReadableStream<Uint8Array>): (() => Promise<string | undefined>) => {
  const reader = stream.getReader()
  const decoder = new TextDecoder()
  let pending = ""
  return async () => {
    for (;;) {
      const newline = pending.indexOf("\n")
      if (newline >= 0) {
        const line = pending.slice(0, newline)
        pending = pending.slice(newline + 1)
        return line
      }
      const { done, value } = await reader.read()
      if (done) return undefined
      pending += decoder.decode(value, { stream: true })
    }
  }
}

export interface Relay {
  readonly port: number
  /** SIGTERM, then the totals it prints. */
  readonly stop: () => Promise<RelayTotals>
}

export const startRelay = async (relayPath: string, originPort: number, scope: Scope): Promise<Relay> => {
  const proc = Bun.spawn(withParentDeathSignal([relayPath, "0", String(originPort)]), { stdout: "pipe", stderr: "inherit" })
  trackPid(proc.pid)
  scope.add(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL")
    await proc.exited
    untrackPid(proc.pid)
  })
  const nextLine = lineReader(proc.stdout)
  const portLine = await withTimeout("relay start", RELAY_START_TIMEOUT_MS, nextLine())
  const port = Number(portLine)
  if (!Number.isInteger(port) || port <= 0) throw new RelayFailed(`relay printed ${JSON.stringify(portLine)} instead of its port`)
  const stop = async (): Promise<RelayTotals> => {
    proc.kill("SIGTERM")
    const totalsLine = await withTimeout("relay stop", RELAY_STOP_TIMEOUT_MS, nextLine())
    const totals: unknown = totalsLine === undefined ? undefined : JSON.parse(totalsLine)
    if (!isRelayTotals(totals)) throw new RelayFailed(`relay printed ${JSON.stringify(totalsLine)} on SIGTERM`)
    return totals
  }
  return { port, stop }
}
