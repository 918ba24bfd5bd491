/**
 * Measures the floor of bench scenario 1 (proxy throughput) with `wrk` as the scenario runs it
 * (2 threads, 64 keep-alive connections, 10 s after a 2 s warm-up, GET /fast), against:
 *
 *   direct       the bench's origin, straight
 *   relay        through the C byte relay (bench/floor/relay-floor.c): the least any proxy does
 *   fetch-proxy  through bench/floor/fetch-proxy.ts: Bun.serve + fetch and nothing else, the
 *                ceiling of pushpin-ts's own design
 *
 *   gcc -O2 -Wall -o /tmp/relay-floor bench/floor/relay-floor.c
 *   bun bench/floor/http-floor.ts /tmp/relay-floor [--repeat 3] [--seconds 10]
 *
 * The order rotates every repeat. It prints requests/s, p99, the CPU per 1 000 requests of the
 * process in the middle and of the origin, and how busy the whole machine was.
 */
import { parseArgs } from "node:util"
import { spawnChild } from "../child.ts"
import { cpuMs } from "../processes.ts"
import { FULL_SIZES } from "../scenario.ts"
import { Scope } from "../scope.ts"
import { median } from "../stats.ts"
import { runWrk } from "../wrk.ts"
import { BadArguments, busyCoresSince, machineTicks, positiveInteger, RelayFailed, startRelay } from "./relay.ts"

const USAGE = "usage: bun bench/floor/http-floor.ts <compiled relay-floor> [--repeat N] [--seconds N]"

const SIDES = ["direct", "relay", "fetch-proxy"] as const
type Side = (typeof SIDES)[number]

interface Options {
  readonly relayPath: string
  readonly repeat: number
  readonly seconds: number
}

const parseOptions = (argv: ReadonlyArray<string>): Options => {
  const { values, positionals } = parseArgs({ args: [...argv], allowPositionals: true, options: { repeat: { type: "string" }, seconds: { type: "string" } } })
  const relayPath = positionals[0]
  if (relayPath === undefined || positionals.length !== 1) throw new BadArguments(USAGE)
  return { relayPath, repeat: positiveInteger(values.repeat, "repeat", 1), seconds: positiveInteger(values.seconds, "seconds", FULL_SIZES.wrkDurationS) }
}

interface Sample {
  readonly okRps: number
  readonly p99Ms: number
  readonly machineBusyCores: number
  readonly originMsPer1k: number
  /** The relay's or the fetch proxy's CPU per 1 000 requests; absent for direct. */
  readonly middleMsPer1k?: number
}

/** Where wrk points, and the CPU time (ms) of what sits between it and the origin. */
interface Middle {
  readonly port: number
  readonly cpuMs: () => Promise<number>
}

const openMiddle = async (side: Side, originPort: number, options: Options, scope: Scope): Promise<Middle> => {
  switch (side) {
    case "direct":
      return { port: originPort, cpuMs: async () => 0 }
    case "relay": {
      const relay = await startRelay(options.relayPath, originPort, scope)
      // The relay reports its CPU time once, when stopped; a second read is not needed.
      return {
        port: relay.port,
        cpuMs: async () => {
          const totals = await relay.stop()
          if (totals.originFailures > 0) throw new RelayFailed(`relay could not reach the origin ${totals.originFailures} times`)
          return totals.cpuMs
        }
      }
    }
    case "fetch-proxy": {
      const proxy = spawnChild("floor/fetch-proxy.ts", { originPort }, scope)
      const port = Number((await proxy.next("listening", 10_000)).port)
      return { port, cpuMs: async () => cpuMs(proxy.pid) }
    }
  }
}

const measure = async (side: Side, originPort: number, originPid: number, options: Options): Promise<Sample> => {
  const scope = new Scope()
  try {
    const middle = await openMiddle(side, originPort, options, scope)
    const url = `http://127.0.0.1:${middle.port}/fast`
    const load = { url, threads: FULL_SIZES.wrkThreads, connections: FULL_SIZES.wrkConnections }
    await runWrk({ ...load, durationS: FULL_SIZES.wrkWarmupS })
    // The relay's total covers the warm-up too; the fetch proxy's is read before and after.
    const middleBefore = side === "fetch-proxy" ? await middle.cpuMs() : 0
    const originBefore = cpuMs(originPid)
    const ticksBefore = machineTicks()
    const result = await runWrk({ ...load, durationS: options.seconds })
    const machineBusyCores = busyCoresSince(ticksBefore)
    const originMs = cpuMs(originPid) - originBefore
    const middleMs = (await middle.cpuMs()) - middleBefore
    const thousands = result.requests / 1000
    const totalThousands = side === "relay" ? thousands + (result.requestsPerSec * FULL_SIZES.wrkWarmupS) / 1000 : thousands
    return {
      okRps: (result.requests - result.non2xx) / result.durationS,
      p99Ms: result.p99Ms,
      machineBusyCores,
      originMsPer1k: originMs / thousands,
      ...(side === "direct" ? {} : { middleMsPer1k: middleMs / totalThousands })
    }
  } finally {
    await scope.close()
  }
}

const format = (label: string, sample: Sample): string =>
  `${label.padEnd(16)} ${Math.round(sample.okRps).toString().padStart(7)} requests/s   p99 ${sample.p99Ms.toFixed(2)} ms` +
  (sample.middleMsPer1k === undefined ? "" : `   in between ${sample.middleMsPer1k.toFixed(1)} ms CPU per 1 000`) +
  `   origin ${sample.originMsPer1k.toFixed(1)} ms CPU per 1 000   machine busy ${sample.machineBusyCores.toFixed(2)} cores`

const main = async (): Promise<void> => {
  const options = parseOptions(process.argv.slice(2))
  const say = (text: string) => process.stdout.write(`${text}\n`)
  say(`http-floor: wrk -t${FULL_SIZES.wrkThreads} -c${FULL_SIZES.wrkConnections} -d${options.seconds}s, ${options.repeat} repeat(s); ${new Date().toISOString()}`)
  const runScope = new Scope()
  try {
    const origin = spawnChild("origin.ts", { slowMs: FULL_SIZES.burstOriginDelayMs }, runScope)
    const originPort = Number((await origin.next("listening", 10_000)).port)
    const samples: Record<Side, Array<Sample>> = { direct: [], relay: [], "fetch-proxy": [] }
    for (let repeat = 1; repeat <= options.repeat; repeat++) {
      // Rotated, so no side always meets the freshest machine.
      const order = SIDES.map((_, index) => SIDES[(index + repeat - 1) % SIDES.length] as Side)
      for (const side of order) {
        const sample = await measure(side, originPort, origin.pid, options)
        samples[side].push(sample)
        say(format(`#${repeat} ${side}`, sample))
      }
    }
    if (options.repeat > 1) {
      say(`medians of ${options.repeat}:`)
      for (const side of SIDES) {
        const of = (pick: (sample: Sample) => number | undefined) =>
          median(samples[side].map(pick).filter((value): value is number => value !== undefined))
        const middle = of((sample) => sample.middleMsPer1k)
        say(
          format(side, {
            okRps: of((sample) => sample.okRps),
            p99Ms: of((sample) => sample.p99Ms),
            machineBusyCores: of((sample) => sample.machineBusyCores),
            originMsPer1k: of((sample) => sample.originMsPer1k),
            ...(Number.isNaN(middle) ? {} : { middleMsPer1k: middle })
          })
        )
      }
    }
  } finally {
    await runScope.close()
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`http-floor: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exit(1)
})
