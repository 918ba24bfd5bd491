/**
 * 4. Publish throughput: a publisher process sends N publishes (16 in flight) to a channel
 * held by 100 streams, rate limiting off; the rate is the number of publishes that reached all
 * subscribers divided by the time from the first publish to the last delivery.
 */
import { spawnChild } from "../child.ts"
import { atLeastTimes, type Goal, metric, type Scenario } from "../scenario.ts"
import { quantile } from "../stats.ts"
import { collectHeldReports, freshChannel, openHeldStreams, streamTargetFor } from "./common.ts"

/** After the publisher finished, how long deliveries may still trickle in. */
const DRAIN_WAIT_MS = 30_000

const allDelivered: Goal = {
  label: "pushpin-ts: every publish reached every subscriber",
  judge: (samples) => {
    const missing = samples.max("pushpin-ts", "missing")
    return { pass: missing === 0, detail: `worst sample: ${missing} deliveries missing` }
  }
}

export const publishThroughput: Scenario = {
  id: "publish-throughput",
  title: "4. publish throughput (100 subscribers, rate limits off)",
  description:
    "100 streams held on one channel; a publisher process POSTs 10 000 one-item publishes (16 in flight) to the HTTP " +
    "publish API; rate = publishes delivered to all 100 / (last delivery − first publish). message_rate and " +
    "message_hwm are 0 (off) on both. Ceiling: bench/bare-fanout.ts.",
  sides: ["pushpin-ts", "pushpin", "ceiling"],
  ceilingLabel: "bare fan-out",
  metrics: [
    metric("deliveredPerS", "publishes/s fully delivered", "/s", 0),
    metric("acceptedPerS", "publishes/s accepted by the API", "/s", 0),
    metric("p99Ms", "p99 publish→delivery", "ms", 1),
    metric("missing", "deliveries missing", "", 0, false),
    metric("failedPublishes", "publishes refused", "", 0, false),
    metric("cpuUsPerDelivery", "server CPU per delivery", "µs", 2),
    metric("cores", "server CPU in use", "cores", 2)
  ],
  goals: [atLeastTimes("deliveredPerS", "publishes/s ≥ 10× Pushpin", 10), allDelivered],
  timeoutMs: () => 240_000,
  measure: async (side, context) => {
    const server = await streamTargetFor(side, context)
    const channel = freshChannel("throughput")
    const count = context.sizes.publishCount
    const streams = await openHeldStreams(server, context, { count: context.sizes.publishSubscribers, channel, expect: count })
    const cpuBefore = server.cpuMs()
    const publisher = spawnChild(
      "publisher.ts",
      { publishUrl: server.publishUrl, channel, count, concurrency: context.sizes.publishConcurrency },
      context.scope
    )
    const done = await publisher.next("done", 180_000)
    const startUs = Number(done.startUs)
    const endUs = Number(done.endUs)
    const ok = Number(done.ok)
    await Promise.allSettled(streams.clients.map((client) => client.next("complete", DRAIN_WAIT_MS)))
    const cpuUsed = server.cpuMs() - cpuBefore
    const merged = await collectHeldReports(streams.clients)
    const fullyDelivered = merged.received / Math.max(1, merged.held)
    return {
      deliveredPerS: fullyDelivered / ((merged.lastReceiveUs - startUs) / 1e6),
      acceptedPerS: ok / ((endUs - startUs) / 1e6),
      p99Ms: quantile(merged.latenciesUs, 0.99) / 1000,
      missing: merged.expected - merged.received,
      failedPublishes: Number(done.failed),
      held: merged.held,
      cpuUsPerDelivery: (cpuUsed * 1000) / Math.max(1, merged.received),
      cores: cpuUsed / ((merged.lastReceiveUs - startUs) / 1000),
      clientCpuMs: merged.clientCpuMs,
      elapsedMs: (merged.lastReceiveUs - startUs) / 1000
    }
  }
}
