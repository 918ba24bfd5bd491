/**
 * `npm run bench`: runs the scenarios against pushpin-ts and, when installed, Pushpin 1.36,
 * alternating the two within each repeat (ABBA order across repeats, so neither always runs
 * first), and prints medians, ratios and goal verdicts; the JSON goes to bench/results/.
 *
 * Everything listens and connects on 127.0.0.1 only. Every measurement has a hard timeout,
 * after which what it started is stopped and the run goes on.
 */
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs"
import { availableParallelism, release } from "node:os"
import { dirname, join, resolve } from "node:path"
import { spawnChild } from "./child.ts"
import { BENCH_OVERRIDES, SHARED_LIMITS } from "./config.ts"
import { BadOption, parseOptions, USAGE } from "./options.ts"
import { openFileLimits, withTimeout } from "./processes.ts"
import { renderMarkdown, renderScenario, type SampleRecord, type ScenarioResult, summarize } from "./report.ts"
import { FULL_SIZES, type Metrics, QUICK_SIZES, type Scenario, type Side, type Sizes } from "./scenario.ts"
import { burst } from "./scenarios/burst.ts"
import { fanoutLatency } from "./scenarios/fanout-latency.ts"
import { memory } from "./scenarios/memory.ts"
import { proxyThroughput } from "./scenarios/proxy-throughput.ts"
import { publishThroughput } from "./scenarios/publish-throughput.ts"
import { startup } from "./scenarios/startup.ts"
import { websocketEcho } from "./scenarios/websocket-echo.ts"
import { Scope } from "./scope.ts"
import { type CpuProfileTarget, PUSHPIN_TS_BINARY, pushpinInstalled, pushpinVersion, sweepAbandonedDirs } from "./servers.ts"
import { wrkInstalled } from "./wrk.ts"

const SCENARIOS: ReadonlyArray<Scenario> = [proxyThroughput, fanoutLatency, memory, publishThroughput, burst, websocketEcho, startup]
const REPO = resolve(import.meta.dir, "..")
/** File descriptors a held-stream run needs beyond the streams (listeners, origin, logs). */
const FD_HEADROOM = 1_000

const say = (text: string) => process.stderr.write(`${text}\n`)

const selectScenarios = (only: ReadonlyArray<string>): Array<Scenario> => {
  if (only.length === 0) return [...SCENARIOS]
  return only.map((name) => {
    const byNumber = /^\d+$/.test(name) ? SCENARIOS[Number(name) - 1] : undefined
    const found = byNumber ?? SCENARIOS.find((scenario) => scenario.id === name)
    if (found === undefined) throw new BadOption(`no scenario ${JSON.stringify(name)}; known: ${SCENARIOS.map((s, i) => `${i + 1} ${s.id}`).join(", ")}`)
    return found
  })
}

const newestSourceMtime = (dir: string): number => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestSourceMtime(path) : statSync(path).mtimeMs)
  }
  return newest
}

const ensureBinary = (rebuild: boolean): void => {
  let exists = true
  try {
    statSync(PUSHPIN_TS_BINARY)
  } catch {
    exists = false
  }
  if (exists && !rebuild) {
    if (newestSourceMtime(join(REPO, "src")) > statSync(PUSHPIN_TS_BINARY).mtimeMs) {
      say("note: src/ is newer than ./pushpin-ts; pass --build to benchmark the current source")
    }
    return
  }
  say("building ./pushpin-ts ...")
  const result = Bun.spawnSync([process.execPath, "build.ts"], { cwd: REPO, stdout: "inherit", stderr: "inherit" })
  if (result.exitCode !== 0) throw new Error("bun build.ts failed")
}

const machine = () => {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown"
  return {
    nproc: availableParallelism(),
    kernel: release(),
    cpu,
    bun: Bun.version,
    pushpin: pushpinVersion() ?? "not installed",
    openFiles: openFileLimits()
  }
}

const main = async (): Promise<number> => {
  const options = parseOptions(process.argv.slice(2))
  if (options.help) {
    const list = SCENARIOS.map((scenario, index) => `  ${index + 1} ${scenario.id}\n      ${scenario.description}`).join("\n")
    process.stdout.write(`${USAGE}\nScenarios (full sizes; --quick uses fewer streams, requests and seconds):\n${list}\n`)
    return 0
  }
  const scenarios = selectScenarios(options.only)
  const sizes = options.quick ? QUICK_SIZES : FULL_SIZES
  if (!wrkInstalled() && scenarios.includes(proxyThroughput)) throw new BadOption("wrk is not installed (apt-get install wrk)")
  const limits = openFileLimits()
  if (limits.hard < sizes.heldStreams + FD_HEADROOM) {
    throw new BadOption(`the open-files hard limit (${limits.hard}) is below ${sizes.heldStreams + FD_HEADROOM}; raise it (ulimit -Hn) or use --quick`)
  }
  sweepAbandonedDirs()
  ensureBinary(options.build)
  const withPushpin = pushpinInstalled()
  if (!withPushpin) say("Pushpin is not installed (apt-get install pushpin zurl): measuring pushpin-ts alone, ratio goals are n/a")

  const info = machine()
  const started = new Date()
  say(
    `bench: ${options.quick ? "quick" : "full"} run, ${options.repeat} repeat(s), ${info.nproc} cores (${info.cpu}), kernel ${info.kernel}, ` +
      `bun ${info.bun}, ${info.pushpin}; open files soft ${limits.soft} / hard ${limits.hard}`
  )
  say("load generators, origin and servers share these cores; compare ratios within one run, not absolute numbers across machines")

  const out = resolve(REPO, options.out)
  const profileDir = join(dirname(out), "profiles")
  if (options.cpuProf) {
    mkdirSync(profileDir, { recursive: true })
    say(`--cpu-prof: pushpin-ts runs from src/ under the profiler; its numbers are not comparable; profiles go to ${profileDir}`)
  }
  const runScope = new Scope()
  const results: Array<ScenarioResult> = []
  try {
    const origin = spawnChild("origin.ts", { slowMs: sizes.burstOriginDelayMs }, runScope)
    const originPort = Number((await origin.next("listening", 10_000)).port)
    const originPid = origin.pid

    for (const scenario of scenarios) {
      const sides = scenario.sides.filter((side) => side !== "pushpin" || withPushpin)
      say(`\n${scenario.title}`)
      const samples: Array<SampleRecord> = []
      for (let repeat = 0; repeat < options.repeat; repeat++) {
        // ABBA: the servers take turns going first.
        const order = repeat % 2 === 0 ? sides : [...sides].reverse()
        for (const side of order) {
          const cpuProfile = options.cpuProf ? { dir: profileDir, name: `${scenario.id}-${repeat + 1}` } : undefined
          samples.push(await measureOnce(scenario, side, repeat, { originPort, originPid, cpuProfile }, sizes))
        }
      }
      const result = summarize({ ...scenario, sides }, samples)
      results.push(result)
      say("")
      process.stdout.write(`\n${renderScenario({ ...scenario, sides }, result)}\n`)
    }
  } finally {
    await runScope.close()
  }

  const goals = results.flatMap((result) => result.goals.map((goal) => ({ scenario: result.id, ...goal })))
  process.stdout.write(`\nGoals: ${goals.filter((goal) => goal.pass === true).length} pass, ${goals.filter((goal) => goal.pass === false).length} fail, ${goals.filter((goal) => goal.pass === undefined).length} n/a\n`)
  for (const goal of goals) process.stdout.write(`  ${goal.pass === undefined ? "n/a " : goal.pass ? "PASS" : "FAIL"}  [${goal.scenario}] ${goal.label}: ${goal.detail}\n`)

  mkdirSync(dirname(out), { recursive: true })
  const record = {
    date: started.toISOString(),
    durationS: (Date.now() - started.getTime()) / 1000,
    machine: info,
    options: { quick: options.quick, repeat: options.repeat, only: options.only, cpuProf: options.cpuProf },
    sizes,
    config: { sharedWithDebianDefaults: SHARED_LIMITS, changedFromDebianDefaults: BENCH_OVERRIDES },
    scenarios: results
  }
  writeFileSync(out, `${JSON.stringify(record, null, 2)}\n`)
  const markdown = out.replace(/\.json$/, ".md")
  writeFileSync(markdown, `${renderMarkdown(scenarios, results)}\n`)
  process.stdout.write(`\nresults: ${out} (Markdown tables: ${markdown}); ${record.durationS.toFixed(0)} s\n`)
  return 0
}

const measureOnce = async (
  scenario: Scenario,
  side: Side,
  repeat: number,
  environment: { readonly originPort: number; readonly originPid: number; readonly cpuProfile: CpuProfileTarget | undefined },
  sizes: Sizes
): Promise<SampleRecord> => {
  const scope = new Scope()
  const begun = performance.now()
  const note = (text: string) => say(`    ${side}: ${text}`)
  const work = scenario.measure(side, { sizes, ...environment, scope, note })
  try {
    const metrics: Metrics = await withTimeout(`${scenario.id} ${side}`, scenario.timeoutMs(sizes), work)
    const seconds = (performance.now() - begun) / 1000
    say(`  #${repeat + 1} ${side.padEnd(10)} ${summaryLine(metrics)}  (${seconds.toFixed(1)} s)`)
    return { side, repeat, seconds, metrics }
  } catch (error) {
    // The abandoned measurement may still be running; closing its scope stops its processes.
    work.catch(() => undefined)
    const seconds = (performance.now() - begun) / 1000
    const message = error instanceof Error ? error.message : String(error)
    say(`  #${repeat + 1} ${side.padEnd(10)} FAILED after ${seconds.toFixed(1)} s: ${message.slice(0, 2000)}`)
    return { side, repeat, seconds, error: message.slice(0, 4000) }
  } finally {
    await scope.close()
  }
}

const summaryLine = (metrics: Metrics): string =>
  Object.entries(metrics)
    .map(([key, value]) => `${key}=${Number.isInteger(value) ? value : value.toFixed(2)}`)
    .join(" ")

try {
  process.exitCode = await main()
} catch (error) {
  if (error instanceof BadOption) {
    process.stderr.write(`bench: ${error.message}\n\n${USAGE}`)
    process.exitCode = 2
  } else {
    throw error
  }
}
