/**
 * Measures the floor of bench scenario 6 (WebSocket echo through the proxy) with the C relay
 * of bench/floor/relay-floor.c, which you compile first:
 *
 *   gcc -O2 -Wall -o /tmp/relay-floor bench/floor/relay-floor.c
 *   bun bench/floor/relay-floor.ts /tmp/relay-floor [--repeat 3] [--clients 100] [--seconds 10]
 *
 * It starts the bench's echo origin once, then for each repeat runs the bench's echo client
 * (100 clients, one 64-byte message in flight each, 10 s, as scenario 6 does) twice: straight
 * to the origin, and through a fresh relay. The order flips every repeat. It prints
 * messages/s, round trips, CPU per message of the relay and the origin, and how busy the whole
 * machine was, which shows whether the two cores, not the relay, set the rate.
 */
import { availableParallelism } from "node:os"
import { parseArgs } from "node:util"
import { type ChildMessage, spawnChild } from "../child.ts"
import { cpuMs } from "../processes.ts"
import { FULL_SIZES } from "../scenario.ts"
import { CONNECT_TIMEOUT_MS, MESSAGE_BYTES } from "../scenarios/websocket-echo.ts"
import { Scope } from "../scope.ts"
import { median } from "../stats.ts"
import { BadArguments, busyCoresSince, machineTicks, positiveInteger, RelayFailed, startRelay } from "./relay.ts"

/** Beyond the measured seconds and the connect deadline: the client's own start and report. */
const CLIENT_REPORT_SLACK_MS = 30_000

const USAGE = "usage: bun bench/floor/relay-floor.ts <compiled relay-floor> [--repeat N] [--clients N] [--seconds N]"

interface Options {
  readonly relayPath: string
  readonly repeat: number
  readonly clients: number
  readonly seconds: number
}

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: { repeat: { type: "string" }, clients: { type: "string" }, seconds: { type: "string" } }
  })
  const relayPath = positionals[0]
  if (relayPath === undefined || positionals.length !== 1) throw new BadArguments(USAGE)
  return {
    relayPath,
    repeat: positiveInteger(values.repeat, "repeat", 1),
    clients: positiveInteger(values.clients, "clients", FULL_SIZES.wsClients),
    seconds: positiveInteger(values.seconds, "seconds", FULL_SIZES.wsDurationS)
  }
}

/** One run of the echo client, as bench/scenarios/websocket-echo.ts runs it. */
interface EchoRun {
  readonly messagesPerS: number
  readonly messages: number
  readonly ms: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly connected: number
  readonly problems: number
}

const runEchoClient = async (port: number, options: Options, scope: Scope): Promise<EchoRun> => {
  const client = spawnChild(
    "ws-echo-client.ts",
    {
      url: `ws://127.0.0.1:${port}/echo`,
      clients: options.clients,
      durationMs: options.seconds * 1000,
      messageBytes: MESSAGE_BYTES,
      connectTimeoutMs: CONNECT_TIMEOUT_MS
    },
    scope
  )
  const done: ChildMessage = await client.next("done", options.seconds * 1000 + CONNECT_TIMEOUT_MS + CLIENT_REPORT_SLACK_MS)
  const messages = Number(done.messages)
  const ms = Number(done.ms)
  return {
    messagesPerS: messages / (ms / 1000),
    messages,
    ms,
    p50Ms: Number(done.p50Ms),
    p99Ms: Number(done.p99Ms),
    connected: Number(done.connected),
    problems: Number(done.mismatched) + Number(done.closed) + Number(done.failed)
  }
}

type Side = "direct" | "relay"

interface Sample {
  readonly run: EchoRun
  readonly originUsPerMessage: number
  readonly machineBusyCores: number
  /** Only through the relay. */
  readonly relayUsPerMessage?: number
  readonly relayCores?: number
  /** The share of the relay's CPU time spent in the kernel (0..1). */
  readonly relayKernelShare?: number
}

const measureDirect = async (originPort: number, originPid: number, options: Options): Promise<Sample> => {
  const scope = new Scope()
  try {
    const originCpuBefore = cpuMs(originPid)
    const ticksBefore = machineTicks()
    const run = await runEchoClient(originPort, options, scope)
    return {
      run,
      machineBusyCores: busyCoresSince(ticksBefore),
      originUsPerMessage: ((cpuMs(originPid) - originCpuBefore) * 1000) / Math.max(1, run.messages)
    }
  } finally {
    await scope.close()
  }
}

const measureRelay = async (originPort: number, originPid: number, options: Options): Promise<Sample> => {
  const scope = new Scope()
  try {
    const relay = await startRelay(options.relayPath, originPort, scope)
    const originCpuBefore = cpuMs(originPid)
    const ticksBefore = machineTicks()
    const run = await runEchoClient(relay.port, options, scope)
    const machineBusyCores = busyCoresSince(ticksBefore)
    const originUsPerMessage = ((cpuMs(originPid) - originCpuBefore) * 1000) / Math.max(1, run.messages)
    // The relay's whole life: the run plus its clients' handshakes and a few idle milliseconds.
    const totals = await relay.stop()
    if (totals.originFailures > 0) throw new RelayFailed(`relay could not reach the origin ${totals.originFailures} times`)
    return {
      run,
      machineBusyCores,
      originUsPerMessage,
      relayUsPerMessage: (totals.cpuMs * 1000) / Math.max(1, run.messages),
      relayCores: totals.cpuMs / run.ms,
      relayKernelShare: totals.cpuMs === 0 ? 0 : totals.sysMs / totals.cpuMs
    }
  } finally {
    await scope.close()
  }
}

const formatSample = (label: string, sample: Sample): string => {
  const { run } = sample
  const relay =
    sample.relayUsPerMessage === undefined ? "" : `   relay CPU ${sample.relayUsPerMessage.toFixed(2)} µs/msg (${(sample.relayCores ?? 0).toFixed(2)} cores, ` +
        `${Math.round((sample.relayKernelShare ?? 0) * 100)} % in the kernel)`
  return (
    `${label.padEnd(10)} ${Math.round(run.messagesPerS).toString().padStart(7)} messages/s   p50 ${run.p50Ms.toFixed(2)} ms   p99 ${run.p99Ms.toFixed(2)} ms` +
    `${relay}   origin CPU ${sample.originUsPerMessage.toFixed(2)} µs/msg   machine busy ${sample.machineBusyCores.toFixed(2)} cores` +
    `   (${run.connected} clients, ${run.problems} problems)`
  )
}

const formatMedians = (label: string, samples: ReadonlyArray<Sample>): string => {
  const of = (pick: (sample: Sample) => number | undefined) =>
    median(samples.map(pick).filter((value): value is number => value !== undefined))
  const relayUs = of((sample) => sample.relayUsPerMessage)
  return (
    `${label.padEnd(10)} ${Math.round(of((sample) => sample.run.messagesPerS)).toString().padStart(7)} messages/s` +
    `   p50 ${of((sample) => sample.run.p50Ms).toFixed(2)} ms   p99 ${of((sample) => sample.run.p99Ms).toFixed(2)} ms` +
    (Number.isNaN(relayUs) ? "" : `   relay CPU ${relayUs.toFixed(2)} µs/msg`) +
    `   origin CPU ${of((sample) => sample.originUsPerMessage).toFixed(2)} µs/msg   machine busy ${of((sample) => sample.machineBusyCores).toFixed(2)} cores`
  )
}

const main = async (): Promise<void> => {
  const options = parseOptions(process.argv.slice(2))
  const say = (text: string) => process.stdout.write(`${text}\n`)
  say(
    `relay-floor: ${options.clients} WebSocket clients, one ${MESSAGE_BYTES}-byte message in flight each, ${options.seconds} s, ` +
      `${options.repeat} repeat(s); ${availableParallelism()} cores; ${new Date().toISOString()}`
  )
  const runScope = new Scope()
  try {
    const origin = spawnChild("origin.ts", { slowMs: FULL_SIZES.burstOriginDelayMs }, runScope)
    const originPort = Number((await origin.next("listening", 10_000)).port)
    const samples: Record<Side, Array<Sample>> = { direct: [], relay: [] }
    for (let repeat = 1; repeat <= options.repeat; repeat++) {
      // ABBA, as the bench does: neither side always meets the fresher machine.
      const order: ReadonlyArray<Side> = repeat % 2 === 1 ? ["direct", "relay"] : ["relay", "direct"]
      for (const side of order) {
        const sample = side === "direct" ? await measureDirect(originPort, origin.pid, options) : await measureRelay(originPort, origin.pid, options)
        samples[side].push(sample)
        say(formatSample(`#${repeat} ${side}`, sample))
      }
    }
    if (options.repeat > 1) {
      say(`medians of ${options.repeat}:`)
      say(formatMedians("direct", samples.direct))
      say(formatMedians("relay", samples.relay))
    }
  } finally {
    await runScope.close()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`relay-floor: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
