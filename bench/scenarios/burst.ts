/**
 * 5. Burst: many simultaneous requests to a slow origin at the servers' default limits, what
 * became of each, and how fast a normal request is served right after.
 */
import { spawnChild } from "../child.ts"
import { type Goal, metric, type Scenario } from "../scenario.ts"
import { serverFor } from "./common.ts"

/** A request without an answer after this long is a hang (the origin answers in 2 s). */
const HANG_MS = 30_000
const NORMAL_REQUEST_TIMEOUT_MS = 10_000
const NORMAL_SERVICE_GOAL_MS = 1_000

const statusCount = (statuses: unknown, code: string): number => {
  if (typeof statuses !== "object" || statuses === null) return 0
  const value = (statuses as Record<string, unknown>)[code]
  return typeof value === "number" ? value : 0
}

const allServed: Goal = {
  label: "pushpin-ts: every request of the burst served (200)",
  judge: (samples) => {
    const notServed = samples.max("pushpin-ts", "notServed")
    return { pass: notServed === 0, detail: `worst sample: ${notServed} not served` }
  }
}

const normalService: Goal = {
  label: `pushpin-ts: a normal request right after is served within ${NORMAL_SERVICE_GOAL_MS} ms`,
  judge: (samples) => {
    const slowest = samples.max("pushpin-ts", "afterMs")
    const failures = samples.max("pushpin-ts", "afterFailed")
    return { pass: slowest <= NORMAL_SERVICE_GOAL_MS && failures === 0, detail: `slowest sample: ${slowest.toFixed(0)} ms` }
  }
}

export const burst: Scenario = {
  id: "burst",
  title: "5. burst (simultaneous requests to a 2 s origin)",
  description:
    "A client process opens 2 000 connections at once, each sending one `GET /slow` (the origin answers after 2 s, " +
    "`Connection: close`), and counts 200s, 502s, 503s, other statuses, resets (closed without a response) and hangs " +
    `(no answer within ${HANG_MS / 1000} s). Right after, one \`GET /fast\` is timed.`,
  sides: ["pushpin-ts", "pushpin"],
  metrics: [
    metric("ok", "200", "", 0, false),
    metric("s502", "502", "", 0, false),
    metric("s503", "503", "", 0, false),
    metric("otherStatus", "other statuses", "", 0, false),
    metric("resets", "resets / connect errors", "", 0, false),
    metric("hangs", "hangs", "", 0, false),
    metric("burstS", "burst duration", "s", 1),
    metric("afterMs", "normal request right after", "ms", 1)
  ],
  goals: [allServed, normalService],
  timeoutMs: () => HANG_MS + 90_000,
  measure: async (side, context) => {
    const server = await serverFor(side, context)
    const count = context.sizes.burstRequests
    const client = spawnChild("burst-client.ts", { port: server.httpPort, path: "/slow", count, hangMs: HANG_MS }, context.scope)
    const done = await client.next("done", HANG_MS + 30_000)
    const began = performance.now()
    let afterFailed = 0
    try {
      const response = await fetch(`http://127.0.0.1:${server.httpPort}/fast`, { signal: AbortSignal.timeout(NORMAL_REQUEST_TIMEOUT_MS) })
      await response.arrayBuffer()
      if (response.status !== 200) afterFailed = 1
    } catch {
      afterFailed = 1
    }
    const afterMs = performance.now() - began
    const ok = statusCount(done.statuses, "200")
    const s502 = statusCount(done.statuses, "502")
    const s503 = statusCount(done.statuses, "503")
    const answered = Object.values(done.statuses as Record<string, number>).reduce((sum, value) => sum + value, 0)
    const resets = Number(done.resets) + Number(done.connectErrors)
    return {
      ok,
      s502,
      s503,
      otherStatus: answered - ok - s502 - s503,
      resets,
      hangs: Number(done.hangs),
      notServed: count - ok,
      burstS: Number(done.ms) / 1000,
      p99Ms: Number(done.p99Ms),
      afterMs,
      afterFailed
    }
  }
}
