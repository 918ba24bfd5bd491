import { describe, expect, test } from "bun:test"
import { livenessReport, LIVENESS_STALE_MS, OriginProber, probeTcp, readinessReport, type ProbeOutcome } from "../../src/metrics/health.ts"
import { deadPort, startOrigin } from "../support/origin.ts"

const deps = [
  { route: "routes:1", origins: [{ host: "127.0.0.1", port: 1 }, { host: "127.0.0.1", port: 2 }] },
  { route: "routes:2", origins: [{ host: "127.0.0.1", port: 2 }] }
]

describe("health", () => {
  test("liveness fails only when the heartbeat is stale", () => {
    expect(livenessReport(1000, 1500).ok).toBe(true)
    const stale = livenessReport(1000, 1000 + LIVENESS_STALE_MS + 1)
    expect(stale.ok).toBe(false)
    expect(stale.lines[0]).toContain("stale")
  })

  test("readiness: a route is served while one of its origins is up; each origin is named once", () => {
    const outcomes = new Map<string, ProbeOutcome>([["127.0.0.1:1", { up: false, reason: "ECONNREFUSED" }], ["127.0.0.1:2", { up: true }]])
    const ready = readinessReport(false, deps, outcomes)
    expect(ready.ok).toBe(true)
    expect(ready.lines).toEqual(["lifecycle: running", "origin 127.0.0.1:1: down (ECONNREFUSED)", "origin 127.0.0.1:2: up"])

    const down = readinessReport(false, deps, new Map<string, ProbeOutcome>([["127.0.0.1:1", { up: true }], ["127.0.0.1:2", { up: false, reason: "ECONNREFUSED" }]]))
    expect(down.ok).toBe(false)
    expect(down.lines).toContain("route routes:2: no origin reachable")
    expect(down.lines).not.toContain("route routes:1: no origin reachable")
  })

  test("readiness fails while stopping, whatever the origins", () => {
    expect(readinessReport(true, [], new Map()).ok).toBe(false)
  })

  test("origin probes over real sockets, cached briefly", async () => {
    const origin = startOrigin(() => new Response("ok"))
    const dead = deadPort()
    let probes = 0
    const prober = new OriginProber((address) => {
      probes++
      return probeTcp(address, 1000)
    })
    const dependencies = [{ route: "r", origins: [{ host: "127.0.0.1", port: origin.port }, { host: "127.0.0.1", port: dead }] }]
    const first = await prober.check(dependencies, 0)
    expect(first.get(`127.0.0.1:${origin.port}`)).toEqual({ up: true })
    expect(first.get(`127.0.0.1:${dead}`)).toEqual({ up: false, reason: "ECONNREFUSED" })
    await prober.check(dependencies, 500)
    expect(probes).toBe(2)
    await prober.check(dependencies, 5000)
    expect(probes).toBe(4)
    await origin.stop()
  })
})
