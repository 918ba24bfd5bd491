/**
 * 7. Startup: from spawning the binary to the first TCP connection its HTTP port accepts,
 * polled with connect attempts. For Pushpin the binary is the runner (`pushpin`), whose condure
 * accepts; zurl, which the runner does not start, is started before the clock starts.
 */
import { isAlive, sleep, trackPid, tryConnect, untrackPid, withParentDeathSignal } from "../processes.ts"
import { type Goal, metric, type Scenario } from "../scenario.ts"
import { prepareServer, stopPrepared } from "../servers.ts"
import { median } from "../stats.ts"

const START_GOAL_MS = 150
/** A start slower than this is a failure, not a slow start. */
const START_TIMEOUT_MS = 20_000
/** One connect attempt may wait this long (a refused connect returns at once). */
const CONNECT_ATTEMPT_MS = 100

const startGoal: Goal = {
  label: `pushpin-ts: start to first accepted connection < ${START_GOAL_MS} ms`,
  judge: (samples) => {
    const value = samples.median("pushpin-ts", "startMs")
    return { pass: value < START_GOAL_MS, detail: `${value.toFixed(1)} ms` }
  }
}

export const startup: Scenario = {
  id: "startup",
  title: "7. startup (spawn → first accepted connection)",
  description:
    "Spawns the server 5 times per sample (fresh config dir each time) and polls its HTTP port with TCP connects from " +
    "the moment of spawn; a sample is the median of those runs. Pushpin's clock starts at the runner, zurl runs already.",
  sides: ["pushpin-ts", "pushpin"],
  metrics: [
    metric("startMs", "start → first accepted connection", "ms", 1),
    metric("minMs", "fastest run", "ms", 1),
    metric("maxMs", "slowest run", "ms", 1)
  ],
  goals: [startGoal],
  timeoutMs: (sizes) => sizes.startupRuns * (START_TIMEOUT_MS + 10_000),
  measure: async (side, context) => {
    if (side === "ceiling") throw new Error("startup has no ceiling side")
    const runs: Array<number> = []
    for (let run = 0; run < context.sizes.startupRuns; run++) {
      // Always the binary: startup is about the shipped executable, even with --cpu-prof.
      const prepared = prepareServer(side, context.originPort)
      const spawned = [...(await prepared.startHelpers())]
      let stopping: Promise<void> | undefined
      const stop = () => (stopping ??= stopPrepared(prepared, spawned))
      context.scope.add(stop)
      const begun = performance.now()
      const proc = Bun.spawn(withParentDeathSignal(prepared.argv), { cwd: prepared.dir, stdin: "ignore", stdout: "ignore", stderr: "ignore" })
      trackPid(proc.pid)
      spawned.push(proc)
      let acceptedMs: number | undefined
      while (acceptedMs === undefined && performance.now() - begun < START_TIMEOUT_MS && isAlive(proc.pid)) {
        if (await tryConnect(prepared.ports.http, CONNECT_ATTEMPT_MS)) acceptedMs = performance.now() - begun
        else await sleep(1)
      }
      await stop()
      untrackPid(proc.pid)
      if (acceptedMs === undefined) throw new Error(`${side} did not accept a connection within ${START_TIMEOUT_MS} ms`)
      runs.push(acceptedMs)
    }
    return { startMs: median(runs), minMs: Math.min(...runs), maxMs: Math.max(...runs) }
  }
}
