/**
 * 3. Memory per idle held stream: the server's RSS idle, with the streams held, and after the
 * clients closed them. Pushpin's RSS is the sum over all its processes (runner, condure,
 * pushpin-proxy, pushpin-handler and zurl).
 */
import { sleep } from "../processes.ts"
import { type Goal, metric, type Scenario } from "../scenario.ts"
import { freshChannel, openHeldStreams, serverFor } from "./common.ts"

/** Let a fresh server finish starting (JIT, first allocations) before the idle reading. */
const IDLE_SETTLE_MS = 1_000
/** After the streams are frozen, before reading RSS with them held. */
const HELD_SETTLE_MS = 2_000
/** After the clients closed everything, before reading RSS again. */
const AFTER_CLOSE_SETTLE_MS = 5_000
const PER_STREAM_GOAL_KB = 8
/** "Near idle" after close: at least this share of what the streams took is given back. */
const RETURNED_GOAL_PERCENT = 80

const perStreamGoal: Goal = {
  label: `pushpin-ts: ≤ ${PER_STREAM_GOAL_KB} KB RSS per held stream`,
  judge: (samples) => {
    const value = samples.median("pushpin-ts", "perStreamKb")
    return { pass: value <= PER_STREAM_GOAL_KB, detail: `${value.toFixed(2)} KB` }
  }
}

const returnedGoal: Goal = {
  label: `pushpin-ts: RSS back near idle after close (≥ ${RETURNED_GOAL_PERCENT}% of the streams' memory returned)`,
  judge: (samples) => {
    const returned = samples.median("pushpin-ts", "returnedPercent")
    const after = samples.median("pushpin-ts", "afterMb")
    const idle = samples.median("pushpin-ts", "idleMb")
    return { pass: returned >= RETURNED_GOAL_PERCENT, detail: `${returned.toFixed(0)}% returned (idle ${idle.toFixed(1)} MB, after close ${after.toFixed(1)} MB)` }
  }
}

export const memory: Scenario = {
  id: "memory",
  title: "3. memory per held idle stream",
  description:
    "RSS (sum of VmRSS over the server's processes) 1 s after start, with 10 000 idle streams held (2 s after they all " +
    "opened and settled), and 5 s after the clients closed them. Per stream = (held − idle) / streams.",
  sides: ["pushpin-ts", "pushpin"],
  metrics: [
    metric("perStreamKb", "RSS per held stream", "KB", 2),
    metric("idleMb", "RSS idle", "MB", 1),
    metric("heldMb", "RSS with streams held", "MB", 1),
    metric("afterMb", "RSS after close", "MB", 1),
    metric("returnedPercent", "streams' memory returned", "%", 0, false),
    metric("held", "streams held", "", 0, false)
  ],
  goals: [perStreamGoal, returnedGoal],
  timeoutMs: () => 240_000,
  measure: async (side, context) => {
    const server = await serverFor(side, context)
    await sleep(IDLE_SETTLE_MS)
    const idleKb = server.rssKb()
    const streams = await openHeldStreams(server, context, { count: context.sizes.heldStreams, channel: freshChannel("memory"), expect: 0 })
    await sleep(HELD_SETTLE_MS)
    const heldKb = server.rssKb()
    for (const client of streams.clients) client.send("close")
    await Promise.all(streams.clients.map((client) => client.next("closed", 30_000)))
    // Exiting closes whatever a client could not end politely.
    for (const client of streams.clients) await client.kill()
    await sleep(AFTER_CLOSE_SETTLE_MS)
    const afterKb = server.rssKb()
    const grown = heldKb - idleKb
    return {
      perStreamKb: grown / streams.held,
      idleMb: idleKb / 1024,
      heldMb: heldKb / 1024,
      afterMb: afterKb / 1024,
      returnedPercent: grown > 0 ? ((heldKb - afterKb) / grown) * 100 : Number.NaN,
      held: streams.held,
      processes: server.pids().length
    }
  }
}
