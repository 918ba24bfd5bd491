/**
 * wrk (Debian's /usr/bin/wrk 4.1) as the HTTP load generator: a separate process with its own
 * threads, run with `--latency` so the output has percentiles.
 */
import { trackPid, untrackPid } from "./processes.ts"

export interface WrkResult {
  readonly requests: number
  readonly durationS: number
  readonly requestsPerSec: number
  /** Responses that were not 2xx/3xx (they still count in wrk's requests/sec). */
  readonly non2xx: number
  readonly socketErrors: number
  readonly p50Ms: number
  readonly p99Ms: number
}

export class WrkFailed extends Error {
  readonly _tag = "WrkFailed"
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

export const parseDurationMs = (text: string): number => {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim())
  if (match === null) return Number.NaN
  return Number(match[1]) * (UNIT_MS[match[2] ?? ""] ?? Number.NaN)
}

/** Reads wrk's text report (pure, so it is testable against captured output). */
export const parseWrkOutput = (text: string): WrkResult => {
  const totals = /(\d+) requests in ([\d.]+)(us|ms|s|m),/.exec(text)
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(text)
  const p50 = /^\s+50%\s+(\S+)$/m.exec(text)
  const p99 = /^\s+99%\s+(\S+)$/m.exec(text)
  if (totals === null || rate === null || p50 === null || p99 === null) throw new WrkFailed(`unexpected wrk output:\n${text}`)
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  const socketErrors = socket === null ? 0 : [1, 2, 3, 4].reduce((sum, index) => sum + Number(socket[index]), 0)
  return {
    requests: Number(totals[1]),
    durationS: parseDurationMs(`${totals[2]}${totals[3]}`) / 1000,
    requestsPerSec: Number(rate[1]),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors,
    p50Ms: parseDurationMs(p50[1] ?? ""),
    p99Ms: parseDurationMs(p99[1] ?? "")
  }
}

export interface WrkOptions {
  readonly url: string
  readonly threads: number
  readonly connections: number
  readonly durationS: number
}

export const wrkInstalled = (): boolean => Bun.which("wrk") !== null

export const runWrk = async (options: WrkOptions): Promise<WrkResult> => {
  const wrk = Bun.which("wrk")
  if (wrk === null) throw new WrkFailed("wrk is not installed (Debian package `wrk`)")
  const proc = Bun.spawn(
    [wrk, "--latency", `-t${options.threads}`, `-c${options.connections}`, `-d${options.durationS}s`, "--timeout", "10s", options.url],
    // wrk ends itself after the duration; the spawn timeout is the hard stop if it does not.
    { stdout: "pipe", stderr: "pipe", timeout: (options.durationS + 15) * 1000, killSignal: "SIGKILL" }
  )
  trackPid(proc.pid)
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
    if (code !== 0) throw new WrkFailed(`wrk exited with ${code}: ${stderr}${stdout}`)
    return parseWrkOutput(stdout)
  } finally {
    untrackPid(proc.pid)
  }
}
