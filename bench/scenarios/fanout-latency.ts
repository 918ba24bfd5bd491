/**
 * 2. Fan-out latency: one channel held by many streams; each publish is stamped with the
 * shared monotonic clock and every subscriber measures publish-to-delivery on arrival. Each
 * publish waits until the previous one reached every subscriber, so this is latency, not a
 * queue building up.
 */
import { monotonicUs } from "../clock.ts"
import { publishBody } from "../messages.ts"
import { sleep } from "../processes.ts"
import { atMostTimes, type Goal, metric, type Scenario } from "../scenario.ts"
import { quantile } from "../stats.ts"
import { collectHeldReports, freshChannel, openHeldStreams, streamTargetFor } from "./common.ts"

/** How long one publish may take to reach everyone before the next goes out regardless. */
const DELIVERY_WAIT_MS = 10_000
/** After one stalled publish, wait less for the rest (the report shows what was missing). */
const DELIVERY_WAIT_AFTER_STALL_MS = 1_000
/** A pause between publishes so each one meets an idle server. */
const PUBLISH_GAP_MS = 100

const completeAndInOrder: Goal = {
  label: "pushpin-ts: every subscriber got every message, in order",
  judge: (samples) => {
    const missing = samples.max("pushpin-ts", "missing")
    const disorder = samples.max("pushpin-ts", "outOfOrder") + samples.max("pushpin-ts", "duplicates")
    return { pass: missing === 0 && disorder === 0, detail: `worst sample: ${missing} missing, ${disorder} out of order or repeated` }
  }
}

export const fanoutLatency: Scenario = {
  id: "fanout-latency",
  title: "2. fan-out latency (held streams on one channel)",
  description:
    "10 000 streams held on one channel through the built-in test route (`GET /stream?channel=`), opened from two " +
    "client processes; 20 publishes to the HTTP publish API, each stamped with CLOCK_MONOTONIC and sent once the previous " +
    "one reached every subscriber; latency = arrival − stamp, per subscriber and message. Ceiling: bench/bare-fanout.ts.",
  sides: ["pushpin-ts", "pushpin", "ceiling"],
  ceilingLabel: "bare fan-out",
  metrics: [
    metric("p50Ms", "p50 publish→delivery", "ms", 1),
    metric("p99Ms", "p99 publish→delivery", "ms", 1),
    metric("maxMs", "max publish→delivery", "ms", 1),
    metric("held", "streams held", "", 0, false),
    metric("missing", "deliveries missing", "", 0, false),
    metric("outOfOrder", "out of order", "", 0, false),
    metric("setupS", "time to open the streams", "s", 1),
    metric("setupFailures", "setup failures (replaced)", "", 0, false),
    metric("cpuMsPerPublish", "server CPU per publish to all", "ms", 1)
  ],
  goals: [atMostTimes("p99Ms", "p99 ≤ 0.1× Pushpin's", 0.1), completeAndInOrder],
  timeoutMs: (sizes) => 240_000 + sizes.fanoutPublishes * (DELIVERY_WAIT_MS + PUBLISH_GAP_MS),
  measure: async (side, context) => {
    const server = await streamTargetFor(side, context)
    const channel = freshChannel("fanout")
    const publishes = context.sizes.fanoutPublishes
    const streams = await openHeldStreams(server, context, { count: context.sizes.heldStreams, channel, expect: publishes })
    const cpuBefore = server.cpuMs()
    let waitMs = DELIVERY_WAIT_MS
    let stalled = 0
    for (let seq = 1; seq <= publishes; seq++) {
      const response = await fetch(`${server.publishUrl}/publish/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: publishBody(channel, seq, monotonicUs())
      })
      await response.arrayBuffer()
      if (response.status !== 200) throw new Error(`publish ${seq} answered ${response.status}`)
      const everyone = await Promise.allSettled(streams.clients.map((client) => client.next("progress", waitMs, (message) => message.seq === seq)))
      if (everyone.some((outcome) => outcome.status === "rejected")) {
        stalled++
        waitMs = DELIVERY_WAIT_AFTER_STALL_MS
      }
      await sleep(PUBLISH_GAP_MS)
    }
    const cpuUsed = server.cpuMs() - cpuBefore
    if (stalled > 0) context.note(`${stalled} publishes did not reach every subscriber in time`)
    const merged = await collectHeldReports(streams.clients)
    return {
      p50Ms: quantile(merged.latenciesUs, 0.5) / 1000,
      p99Ms: quantile(merged.latenciesUs, 0.99) / 1000,
      maxMs: quantile(merged.latenciesUs, 1) / 1000,
      held: merged.held,
      missing: merged.expected - merged.received,
      outOfOrder: merged.outOfOrder,
      duplicates: merged.duplicates,
      lostHeld: merged.lostHeld,
      setupS: streams.setupMs / 1000,
      setupFailures: streams.setupFailures,
      cpuMsPerPublish: cpuUsed / publishes
    }
  }
}
