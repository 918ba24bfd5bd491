/**
 * What a benchmark scenario is: a measurement taken once per side per repeat, the metrics it
 * yields, and goals judged on the medians of the same run.
 */
import type { Scope } from "./scope.ts"
import type { CpuProfileTarget, ServerKind } from "./servers.ts"

/**
 * A server under test, or the ceiling: the same load against the least that can answer it
 * (the origin directly, or a bare fan-out server), which shows what the clients, the kernel
 * and the shared cores cost on their own.
 */
export type Side = ServerKind | "ceiling"

export type Metrics = Readonly<Record<string, number>>

export interface MetricSpec {
  readonly key: string
  readonly label: string
  readonly unit: string
  readonly digits: number
  /** Whether the ratio pushpin-ts / Pushpin is worth showing for it. */
  readonly ratio: boolean
}

/** Count and time parameters; `--quick` picks the small set. */
export interface Sizes {
  readonly wrkThreads: number
  readonly wrkConnections: number
  readonly wrkDurationS: number
  readonly wrkWarmupS: number
  readonly heldStreams: number
  readonly heldStreamsPerClient: number
  readonly fanoutPublishes: number
  readonly publishSubscribers: number
  readonly publishCount: number
  readonly publishConcurrency: number
  readonly burstRequests: number
  readonly burstOriginDelayMs: number
  readonly wsClients: number
  readonly wsDurationS: number
  readonly startupRuns: number
}

export const FULL_SIZES: Sizes = {
  wrkThreads: 2,
  wrkConnections: 64,
  wrkDurationS: 10,
  wrkWarmupS: 2,
  heldStreams: 10_000,
  heldStreamsPerClient: 5_000,
  fanoutPublishes: 20,
  publishSubscribers: 100,
  publishCount: 10_000,
  publishConcurrency: 16,
  burstRequests: 2_000,
  burstOriginDelayMs: 2_000,
  wsClients: 100,
  wsDurationS: 10,
  startupRuns: 5
}

export const QUICK_SIZES: Sizes = {
  ...FULL_SIZES,
  wrkDurationS: 3,
  wrkWarmupS: 1,
  heldStreams: 1_000,
  fanoutPublishes: 10,
  publishCount: 1_000,
  burstRequests: 500,
  wsClients: 20,
  wsDurationS: 3,
  startupRuns: 3
}

export interface MeasureContext {
  readonly sizes: Sizes
  readonly originPort: number
  /** The origin process, whose CPU time is the ceiling side's in the proxy scenarios. */
  readonly originPid: number
  /** Set with --cpu-prof: pushpin-ts runs from source under the profiler, writing here. */
  readonly cpuProfile: CpuProfileTarget | undefined
  /** Everything started here is stopped when the measurement ends or times out. */
  readonly scope: Scope
  /** Progress for the console (stderr). */
  readonly note: (text: string) => void
}

/** A scenario's samples, per side, for goals to judge. */
export interface Samples {
  readonly median: (side: Side, key: string) => number
  /** The largest value any sample of this side had (e.g. lost messages). */
  readonly max: (side: Side, key: string) => number
  readonly has: (side: Side) => boolean
}

export interface GoalVerdict {
  /** undefined when it cannot be judged (e.g. Pushpin is not installed). */
  readonly pass: boolean | undefined
  readonly detail: string
}

export interface Goal {
  readonly label: string
  readonly judge: (samples: Samples) => GoalVerdict
}

export interface Scenario {
  readonly id: string
  readonly title: string
  /** What it does, for the README and `--help`. */
  readonly description: string
  readonly sides: ReadonlyArray<Side>
  /** What the "ceiling" side is in this scenario, when it has one. */
  readonly ceilingLabel?: string
  readonly metrics: ReadonlyArray<MetricSpec>
  readonly goals: ReadonlyArray<Goal>
  /** Hard limit for one measurement (one side, one repeat), servers' start and stop included. */
  readonly timeoutMs: (sizes: Sizes) => number
  readonly measure: (side: Side, context: MeasureContext) => Promise<Metrics>
}

export const metric = (key: string, label: string, unit: string, digits: number, ratio = true): MetricSpec => ({
  key,
  label,
  unit,
  digits,
  ratio
})

const format = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : "n/a")

/** pushpin-ts's median of `key` against `factor` × the other side's, in one direction. */
const timesGoal = (bound: "at least" | "at most") => (key: string, label: string, factor: number, other: Side = "pushpin"): Goal => ({
  label,
  judge: (samples) => {
    if (!samples.has(other) || !samples.has("pushpin-ts")) return { pass: undefined, detail: `no ${other} samples` }
    const ours = samples.median("pushpin-ts", key)
    const theirs = samples.median(other, key)
    const ratio = ours / theirs
    return bound === "at least"
      ? { pass: ratio >= factor, detail: `${format(ratio, 2)}× (${format(ours)} vs ${format(theirs)})` }
      : { pass: ratio <= factor, detail: `${format(ratio, 3)}× (${format(ours, 2)} vs ${format(theirs, 2)})` }
  }
})

/** pushpin-ts's median of `key` must be at least `factor` × the other side's. */
export const atLeastTimes = timesGoal("at least")

/** pushpin-ts's median of `key` must be at most `factor` × the other side's. */
export const atMostTimes = timesGoal("at most")
