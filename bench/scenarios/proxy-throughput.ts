/**
 * 1. Proxy throughput: keep-alive GETs from wrk to a fast origin through each server, and to
 * the origin directly (the ceiling on this machine).
 */
import { atLeastTimes, atMostTimes, metric, type Scenario } from "../scenario.ts"
import { runWrk } from "../wrk.ts"
import { cpuMs } from "../processes.ts"
import { serverFor } from "./common.ts"

export const proxyThroughput: Scenario = {
  id: "proxy-throughput",
  title: "1. proxy throughput (wrk → server → origin)",
  description:
    "wrk (2 threads, 64 keep-alive connections, 10 s after a 2 s warm-up) GETs a 33-byte body from a Bun origin " +
    "through each server, and from the origin directly (the ceiling). Counts only 2xx/3xx responses.",
  sides: ["ceiling", "pushpin-ts", "pushpin"],
  ceilingLabel: "origin direct",
  metrics: [
    metric("okRps", "requests/s (2xx only)", "", 0),
    metric("p50Ms", "p50 latency", "ms", 2),
    metric("p99Ms", "p99 latency", "ms", 2),
    metric("errors", "non-2xx + socket errors", "", 0, false),
    metric("cpuMsPer1k", "server CPU per 1 000 requests", "ms", 1),
    metric("cores", "server CPU in use", "cores", 2)
  ],
  goals: [
    atLeastTimes("okRps", "req/s ≥ 10× Pushpin", 10),
    atLeastTimes("okRps", "req/s ≥ 40% of origin direct", 0.4, "ceiling"),
    atMostTimes("p99Ms", "p99 ≤ Pushpin's", 1)
  ],
  timeoutMs: (sizes) => (sizes.wrkDurationS + sizes.wrkWarmupS) * 1000 + 90_000,
  measure: async (side, context) => {
    const server = side === "ceiling" ? undefined : await serverFor(side, context)
    const port = server?.httpPort ?? context.originPort
    const serverCpuMs = () => server?.cpuMs() ?? cpuMs(context.originPid)
    const url = `http://127.0.0.1:${port}/fast`
    const { wrkThreads: threads, wrkConnections: connections } = context.sizes
    await runWrk({ url, threads, connections, durationS: context.sizes.wrkWarmupS })
    const cpuBefore = serverCpuMs()
    const result = await runWrk({ url, threads, connections, durationS: context.sizes.wrkDurationS })
    const cpuUsed = serverCpuMs() - cpuBefore
    const errors = result.non2xx + result.socketErrors
    return {
      okRps: (result.requests - result.non2xx) / result.durationS,
      rps: result.requestsPerSec,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      errors,
      cpuMsPer1k: cpuUsed / (result.requests / 1000),
      cores: cpuUsed / 1000 / result.durationS
    }
  }
}
