/**
 * `/live` and `/ready`.
 *
 * Liveness fails only when the process is wedged: a heartbeat fiber beats every second, and
 * when the last beat is too old, Effect's scheduler or the event loop is stuck. (If the event
 * loop is blocked outright, nothing answers at all and the probe times out, which also fails.)
 *
 * Readiness fails fast when a dependency is down: the process is stopping, or a route has no
 * origin that accepts a TCP connection. Origins are probed with a short connect timeout and the
 * outcome is kept for a moment, so frequent probes do not become a connection storm.
 */
import { connect } from "node:net"
import type { Route } from "../config/types.ts"

/** A heartbeat older than this means the process is wedged. */
export const LIVENESS_STALE_MS = 5000

/** How long an origin probe may take before the origin counts as down. */
export const ORIGIN_PROBE_TIMEOUT_MS = 1000

/** Probe outcomes are reused for this long. */
export const ORIGIN_PROBE_CACHE_MS = 1000

export interface HealthReport {
  readonly ok: boolean
  /** One line per check, e.g. `origin 127.0.0.1:8080: up`. */
  readonly lines: ReadonlyArray<string>
}

export const livenessReport = (lastBeatAt: number, now: number): HealthReport => {
  const age = now - lastBeatAt
  return age <= LIVENESS_STALE_MS
    ? { ok: true, lines: [`heartbeat: ${age} ms ago`] }
    : { ok: false, lines: [`heartbeat: stale (${age} ms ago, limit ${LIVENESS_STALE_MS} ms)`] }
}

export interface OriginAddress {
  readonly host: string
  readonly port: number
}

export type ProbeOutcome = { readonly up: true } | { readonly up: false; readonly reason: string }

const authority = (origin: OriginAddress): string =>
  `${origin.host.includes(":") ? `[${origin.host}]` : origin.host}:${origin.port}`

/** The origins each route depends on; routes served in-process (the test route) depend on none. */
export const routeDependencies = (routes: ReadonlyArray<Route>): ReadonlyArray<{ readonly route: string; readonly origins: ReadonlyArray<OriginAddress> }> =>
  routes.flatMap((route) => {
    const origins: Array<OriginAddress> = []
    for (const target of route.targets) if (target.kind === "origin") origins.push({ host: target.host, port: target.port })
    return origins.length === 0 ? [] : [{ route: route.source, origins }]
  })

/**
 * Ready when not stopping and every route has at least one origin up (a route with failover
 * is served while one of its targets answers).
 */
export const readinessReport = (
  stopping: boolean,
  dependencies: ReturnType<typeof routeDependencies>,
  outcomes: ReadonlyMap<string, ProbeOutcome>
): HealthReport => {
  const lines: Array<string> = [stopping ? "lifecycle: stopping" : "lifecycle: running"]
  let ok = !stopping
  const reported = new Set<string>()
  for (const dependency of dependencies) {
    let anyUp = false
    for (const origin of dependency.origins) {
      const key = authority(origin)
      const outcome = outcomes.get(key)
      if (outcome?.up === true) anyUp = true
      if (reported.has(key)) continue
      reported.add(key)
      lines.push(`origin ${key}: ${outcome === undefined ? "unknown" : outcome.up ? "up" : `down (${outcome.reason})`}`)
    }
    if (!anyUp) {
      ok = false
      lines.push(`route ${dependency.route}: no origin reachable`)
    }
  }
  return { ok, lines }
}

export const probeTcp = (origin: OriginAddress, timeoutMs: number): Promise<ProbeOutcome> =>
  new Promise((resolve) => {
    const socket = connect({ host: origin.host, port: origin.port })
    const finish = (outcome: ProbeOutcome) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(outcome)
    }
    const timer = setTimeout(() => finish({ up: false, reason: `no connection within ${timeoutMs} ms` }), timeoutMs)
    socket.once("connect", () => finish({ up: true }))
    socket.once("error", (error: NodeJS.ErrnoException) => finish({ up: false, reason: error.code ?? error.message }))
  })

/** Probes every origin the routes need, reusing outcomes younger than `ORIGIN_PROBE_CACHE_MS`. */
export class OriginProber {
  private readonly cache = new Map<string, { readonly at: number; readonly outcome: Promise<ProbeOutcome> }>()

  constructor(private readonly probe: (origin: OriginAddress) => Promise<ProbeOutcome>) {}

  async check(dependencies: ReturnType<typeof routeDependencies>, now: number): Promise<ReadonlyMap<string, ProbeOutcome>> {
    const pending = new Map<string, Promise<ProbeOutcome>>()
    for (const dependency of dependencies) {
      for (const origin of dependency.origins) {
        const key = authority(origin)
        if (pending.has(key)) continue
        let cached = this.cache.get(key)
        if (cached === undefined || now - cached.at > ORIGIN_PROBE_CACHE_MS) {
          cached = { at: now, outcome: this.probe(origin) }
          this.cache.set(key, cached)
        }
        pending.set(key, cached.outcome)
      }
    }
    // Origins no route names any more (after a reload) are forgotten.
    for (const key of this.cache.keys()) if (!pending.has(key)) this.cache.delete(key)
    const outcomes = new Map<string, ProbeOutcome>()
    for (const [key, outcome] of pending) outcomes.set(key, await outcome)
    return outcomes
  }
}
