/**
 * Building blocks the scenarios share: a server started inside the measurement's scope, and a
 * set of held streams spread over load-generator processes.
 */
import { type Child, spawnChild } from "../child.ts"
import { HOLD_HOST } from "../config.ts"
import { cpuMs, sleep } from "../processes.ts"
import type { MeasureContext, Side } from "../scenario.ts"
import { type BenchServer, startServer } from "../servers.ts"
import type { HeldClientConfig } from "../held-client.ts"

export const serverFor = async (side: Side, context: MeasureContext): Promise<BenchServer> => {
  if (side === "ceiling") throw new Error("the ceiling is not a server under test")
  const server = await startServer(side, context.originPort, side === "pushpin-ts" ? context.cpuProfile : undefined)
  context.scope.add(() => server.stop())
  return server
}

/** Where held streams are opened and publishes sent. */
export interface StreamTarget {
  readonly httpPort: number
  readonly publishUrl: string
  /** CPU time its processes used so far, in ms. */
  readonly cpuMs: () => number
}

/** A server under test, or for the ceiling side bench/bare-fanout.ts. */
export const streamTargetFor = async (side: Side, context: MeasureContext): Promise<StreamTarget> => {
  if (side !== "ceiling") return serverFor(side, context)
  const bare = spawnChild("bare-fanout.ts", {}, context.scope)
  const listening = await bare.next("listening", 10_000)
  return {
    httpPort: Number(listening.httpPort),
    publishUrl: `http://127.0.0.1:${Number(listening.publishPort)}`,
    cpuMs: () => cpuMs(bare.pid)
  }
}

/** Pushpin 1.36 re-requests holds ~1 s after a channel's first subscription; let that pass. */
const SETTLE_AFTER_OPEN_MS = 2_000
/** How long opening `count` streams may take (Pushpin opens ~1 000 per second here). */
const OPEN_TIMEOUT_MS = 90_000
/** Connections between connect and "[stream opened]" per client process. */
const OPEN_CONCURRENCY = 200

export interface HeldStreams {
  readonly clients: ReadonlyArray<Child>
  readonly held: number
  readonly setupMs: number
  /** Streams the server ended during setup and that were replaced, plus failed attempts. */
  readonly setupFailures: number
}

const numberField = (message: Readonly<Record<string, unknown>>, key: string): number => {
  const value = message[key]
  return typeof value === "number" ? value : 0
}

/**
 * Opens `count` held streams on `channel` (the built-in test route, `GET /stream?channel=`),
 * waits for the server to settle, and freezes the set: from then on every stream counts.
 */
export const openHeldStreams = async (
  server: StreamTarget,
  context: MeasureContext,
  options: { readonly count: number; readonly channel: string; readonly expect: number }
): Promise<HeldStreams> => {
  const perClient = context.sizes.heldStreamsPerClient
  const clientCount = Math.max(1, Math.ceil(options.count / perClient))
  const started = performance.now()
  const clients = Array.from({ length: clientCount }, (_, index) => {
    const config: HeldClientConfig = {
      port: server.httpPort,
      host: HOLD_HOST,
      path: `/stream?channel=${encodeURIComponent(options.channel)}`,
      count: Math.min(perClient, options.count - index * perClient),
      openConcurrency: OPEN_CONCURRENCY,
      openTimeoutMs: OPEN_TIMEOUT_MS,
      expect: options.expect
    }
    return spawnChild("held-client.ts", config, context.scope)
  })
  const opened = await Promise.all(clients.map((client) => client.next("opened", OPEN_TIMEOUT_MS + 10_000)))
  const setupMs = performance.now() - started
  const open = opened.reduce((sum, message) => sum + numberField(message, "open"), 0)
  context.note(`${open}/${options.count} streams open in ${(setupMs / 1000).toFixed(1)} s`)
  await sleep(SETTLE_AFTER_OPEN_MS)
  for (const client of clients) client.send("freeze")
  const frozen = await Promise.all(clients.map((client) => client.next("frozen", 60_000)))
  const held = frozen.reduce((sum, message) => sum + numberField(message, "held"), 0)
  const setupFailures = frozen.reduce((sum, message) => sum + numberField(message, "replaced") + numberField(message, "failedAttempts"), 0)
  if (setupFailures > 0) context.note(`${setupFailures} streams failed or were ended by the server during setup and were replaced`)
  return { clients, held, setupMs, setupFailures }
}

export interface HeldReport {
  readonly held: number
  readonly lostHeld: number
  readonly received: number
  readonly expected: number
  readonly outOfOrder: number
  readonly duplicates: number
  readonly unexpected: number
  readonly lastReceiveUs: number
  /** CPU time the client processes used in all, in ms (to see whether they were the bottleneck). */
  readonly clientCpuMs: number
  readonly latenciesUs: Array<number>
}

/** Every client's "report", merged. */
export const collectHeldReports = async (clients: ReadonlyArray<Child>): Promise<HeldReport> => {
  for (const client of clients) client.send("report")
  const reports = await Promise.all(clients.map((client) => client.next("report", 30_000)))
  const latenciesUs: Array<number> = []
  for (const message of reports) {
    const values = message.latenciesUs
    if (Array.isArray(values)) for (const value of values) if (typeof value === "number") latenciesUs.push(value)
  }
  const sum = (key: string) => reports.reduce((total, message) => total + numberField(message, key), 0)
  return {
    held: sum("held"),
    lostHeld: sum("lostHeld"),
    received: sum("received"),
    expected: sum("expected"),
    outOfOrder: sum("outOfOrder"),
    duplicates: sum("duplicates"),
    unexpected: sum("unexpected"),
    lastReceiveUs: Math.max(0, ...reports.map((message) => numberField(message, "lastReceiveUs"))),
    clientCpuMs: sum("cpuMs"),
    latenciesUs
  }
}

/** A unique channel per measurement, so nothing carries over between runs. */
let channelCounter = 0
export const freshChannel = (prefix: string): string => `${prefix}-${process.pid}-${++channelCounter}`
