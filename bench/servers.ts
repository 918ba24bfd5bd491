/**
 * Starts the two servers under test, each in its own temp dir with the pushpin.conf from
 * bench/config.ts, fresh loopback ports and its logs in files:
 *
 * - pushpin-ts: `./pushpin-ts run --config <dir>/pushpin.conf --logfile <dir>/log/pushpin-ts.log`;
 * - Pushpin 1.36 (Debian): a private zurl first (Pushpin's runner does not start it when
 *   condure is the connection manager), then `pushpin --config <dir>/pushpin.conf`, which starts
 *   condure, pushpin-proxy and pushpin-handler.
 *
 * Readiness is the same for both, and the same as test/support/reference-pushpin.ts: the test
 * handler answers on the HTTP port, the publish API answers, and a stream hold opens (Pushpin's
 * proxy connects its handler socket after the HTTP port already answers).
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { join, resolve } from "node:path"
import type { Subprocess } from "bun"
import {
  type BenchPorts,
  type ConfPaths,
  pushpinConfSections,
  READY_HOST,
  renderIni,
  routesFile,
  zurlConfSections,
  zurlSpecs
} from "./config.ts"
import {
  cpuMs,
  freePorts,
  isAlive,
  pidsMentioning,
  rssKb,
  sleep,
  trackPid,
  trackPidFinder,
  untrackPid,
  withParentDeathSignal,
  withRaisedFdLimit
} from "./processes.ts"

export type ServerKind = "pushpin-ts" | "pushpin"

const TEMP_BASE = "/tmp"
const TEMP_PREFIX = "pushpin-bench-"
/** The bench process that made a temp dir, so a later run can tell an abandoned dir from a live one. */
const OWNER_FILE = "owner.pid"

/**
 * Removes temp dirs left by a bench that was killed or crashed: their owner is gone and no
 * process mentions them any more (the exit hook already killed their servers).
 */
export const sweepAbandonedDirs = (): void => {
  for (const name of readdirSync(TEMP_BASE)) {
    if (!name.startsWith(TEMP_PREFIX)) continue
    const dir = join(TEMP_BASE, name)
    try {
      const owner = Number.parseInt(readFileSync(join(dir, OWNER_FILE), "utf8"), 10)
      if (Number.isInteger(owner) && isAlive(owner)) continue
    } catch {
      // no owner file: made by an older bench, judged by its processes alone
    }
    if (pidsMentioning(dir).length > 0) continue
    rmSync(dir, { recursive: true, force: true })
  }
}

const REPO = resolve(import.meta.dir, "..")
export const PUSHPIN_TS_BINARY = join(REPO, "pushpin-ts")

const INTERNAL_CONF_CANDIDATES = ["/usr/lib/pushpin/internal.conf", "/usr/local/lib/pushpin/internal.conf"]
const TEST_HANDLER_BODY = "Hello from the Pushpin test handler!"
/** How long a server may take to become ready; Pushpin needs ~1 s on an idle 2-core machine. */
const START_TIMEOUT_MS = 30_000
/** After SIGTERM, how long before SIGKILL (pushpin-ts drains requests in flight for up to 5 s). */
const STOP_GRACE_MS = 3_000
/** A profiled pushpin-ts writes its profile while exiting, after its own 5 s drain. */
const STOP_GRACE_PROFILED_MS = 20_000

/** Where `bun --cpu-prof` writes a profiled pushpin-ts's profile (`<dir>/<name>.cpuprofile` and `.md`). */
export interface CpuProfileTarget {
  readonly dir: string
  readonly name: string
}

interface PushpinBinaries {
  readonly pushpin: string
  readonly condure: string
  readonly zurl: string
  readonly internalConf: string
}

const findPushpin = (): PushpinBinaries | undefined => {
  const pushpin = Bun.which("pushpin")
  const condure = Bun.which("condure")
  const zurl = Bun.which("zurl")
  const internalConf = INTERNAL_CONF_CANDIDATES.find((path) => existsSync(path))
  const services = [Bun.which("pushpin-proxy"), Bun.which("pushpin-handler")]
  if (pushpin === null || condure === null || zurl === null || internalConf === undefined) return undefined
  if (services.includes(null)) return undefined
  return { pushpin, condure, zurl, internalConf }
}

export const pushpinInstalled = (): boolean => findPushpin() !== undefined

export const pushpinVersion = (): string | undefined => {
  const bins = findPushpin()
  if (bins === undefined) return undefined
  const result = Bun.spawnSync([bins.pushpin, "--version"], { stdout: "pipe", stderr: "pipe" })
  return `${result.stdout.toString()}${result.stderr.toString()}`.trim().split("\n")[0]
}

/** A server's files and ports, written but not yet running (startup timing starts from here). */
export interface PreparedServer {
  readonly kind: ServerKind
  readonly dir: string
  readonly ports: BenchPorts
  /** The command that starts the server proper (the runner, for Pushpin). */
  readonly argv: ReadonlyArray<string>
  /** Helpers the server needs running first (Pushpin's zurl); empty for pushpin-ts. */
  readonly startHelpers: () => Promise<ReadonlyArray<Subprocess>>
  readonly stopGraceMs: number
}

const spawnLogged = (argv: ReadonlyArray<string>, cwd: string, logPath: string): Subprocess => {
  // One append-mode descriptor for both streams, so their lines interleave instead of overwriting.
  const log = openSync(logPath, "a")
  try {
    const proc = Bun.spawn(withParentDeathSignal(withRaisedFdLimit(argv)), { cwd, stdin: "ignore", stdout: log, stderr: log })
    trackPid(proc.pid)
    return proc
  } finally {
    closeSync(log)
  }
}

interface ServerFiles {
  readonly dir: string
  readonly ports: BenchPorts
  readonly confPath: string
}

/** The temp dir, with pushpin.conf and routes, and the ports written into them. */
const writeServerFiles = (kind: ServerKind, originPort: number, bins: PushpinBinaries | undefined): ServerFiles => {
  // ipc socket paths must stay under the 107-byte sun_path limit, so a short base dir.
  const dir = mkdtempSync(`${TEMP_BASE}/${TEMP_PREFIX}${kind === "pushpin" ? "ref" : "ts"}-`)
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`)
  mkdirSync(join(dir, "run"))
  mkdirSync(join(dir, "log"))
  const [http, publish, pushIn, pushInSub, command] = freePorts(5)
  if (http === undefined || publish === undefined || pushIn === undefined || pushInSub === undefined || command === undefined) {
    throw new Error("could not allocate ports")
  }
  const ports: BenchPorts = { http, publish, pushIn, pushInSub, command }
  // pushpin-ts uses none of these, but its file names them as Pushpin's does.
  const paths: ConfPaths = {
    dir,
    internalConf: bins?.internalConf ?? INTERNAL_CONF_CANDIDATES[0] ?? "",
    condureBin: bins?.condure ?? "condure",
    zurlBin: bins?.zurl ?? "zurl"
  }
  const confPath = join(dir, "pushpin.conf")
  writeFileSync(confPath, renderIni(pushpinConfSections(ports, paths)))
  writeFileSync(join(dir, "routes"), routesFile(originPort))
  return { dir, ports, confPath }
}

export const prepareServer = (kind: ServerKind, originPort: number, cpuProfile?: CpuProfileTarget): PreparedServer => {
  const bins = findPushpin()
  if (kind === "pushpin-ts") {
    const { dir, ports, confPath } = writeServerFiles(kind, originPort, bins)
    const runArgs = ["run", "--config", confPath, "--logfile", join(dir, "log", "pushpin-ts.log")]
    // Profiled runs use the source, so the profile names functions as written.
    const profiled =
      cpuProfile === undefined
        ? undefined
        : [process.execPath, "--cpu-prof", "--cpu-prof-md", `--cpu-prof-dir=${cpuProfile.dir}`, `--cpu-prof-name=${cpuProfile.name}`, join(REPO, "src/main.ts")]
    return {
      kind,
      dir,
      ports,
      argv: [...(profiled ?? [PUSHPIN_TS_BINARY]), ...runArgs],
      startHelpers: () => Promise.resolve([]),
      stopGraceMs: profiled === undefined ? STOP_GRACE_MS : STOP_GRACE_PROFILED_MS
    }
  }
  if (bins === undefined) throw new Error("Pushpin is not installed (pushpin, condure, zurl)")
  const { dir, ports, confPath } = writeServerFiles(kind, originPort, bins)
  const zurlConfPath = join(dir, "zurl.conf")
  writeFileSync(zurlConfPath, renderIni(zurlConfSections(dir)))
  return {
    kind,
    dir,
    ports,
    argv: [bins.pushpin, `--config=${confPath}`],
    stopGraceMs: STOP_GRACE_MS,
    startHelpers: async () => {
      const zurl = spawnLogged([bins.zurl, `--config=${zurlConfPath}`], dir, join(dir, "log", "zurl.log"))
      // The proxy's SUB socket should find zurl bound, or its first requests are lost.
      const sockets = Object.values(zurlSpecs(dir)).map((spec) => spec.slice("ipc://".length))
      const deadline = Date.now() + START_TIMEOUT_MS
      while (!sockets.every((path) => existsSync(path))) {
        if (zurl.exitCode !== null || Date.now() > deadline) throw new Error(`zurl did not bind its sockets\n${readLogs(dir)}`)
        await sleep(5)
      }
      return [zurl]
    }
  }
}

const readLogs = (dir: string): string => {
  const logDir = join(dir, "log")
  let names: Array<string>
  try {
    names = readdirSync(logDir).sort()
  } catch {
    return "(no logs)"
  }
  return names
    .map((name) => {
      let text: string
      try {
        text = readFileSync(join(logDir, name), "utf8")
      } catch {
        text = "(unreadable)"
      }
      return `==> ${name} <==\n${text.slice(-4000)}`
    })
    .join("\n")
}

/** Every process of a prepared server: the ones spawned plus those naming its dir (Pushpin's services). */
const serverPids = (prepared: PreparedServer, spawned: ReadonlyArray<Subprocess>): Array<number> => {
  const pids = new Set<number>()
  for (const proc of spawned) if (proc.exitCode === null && proc.signalCode === null) pids.add(proc.pid)
  for (const pid of pidsMentioning(prepared.dir)) pids.add(pid)
  return [...pids]
}

/**
 * Stops everything a prepared server started: SIGTERM (Pushpin's runner stops its services),
 * SIGKILL whatever is left after the grace period, then removes the dir.
 */
export const stopPrepared = async (prepared: PreparedServer, spawned: ReadonlyArray<Subprocess>): Promise<void> => {
  const everyPid = serverPids(prepared, spawned)
  for (const proc of spawned) if (proc.exitCode === null) proc.kill("SIGTERM")
  const deadline = Date.now() + prepared.stopGraceMs
  while (everyPid.some(isAlive) && Date.now() < deadline) await sleep(25)
  for (const pid of everyPid) {
    if (!isAlive(pid)) continue
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone meanwhile
    }
  }
  await Promise.all(spawned.map((proc) => proc.exited))
  for (const proc of spawned) untrackPid(proc.pid)
  rmSync(prepared.dir, { recursive: true, force: true })
}

export interface BenchServer {
  readonly kind: ServerKind
  readonly httpPort: number
  readonly publishUrl: string
  /** Every process of the server: pushpin-ts's one; Pushpin's runner, condure, proxy, handler and zurl. */
  readonly pids: () => Array<number>
  /** Sum of VmRSS over `pids()`, in KiB. */
  readonly rssKb: () => number
  /** CPU time (user + system) used so far by `pids()`, in ms. */
  readonly cpuMs: () => number
  readonly stop: () => Promise<void>
}

/** One HTTP/1.1 exchange on a fresh connection; resolves with the text once `done` says so or the peer closes. */
const rawExchange = (port: number, request: string, done: (text: string) => boolean, timeoutMs: number): Promise<string> =>
  new Promise((resolvePromise, reject) => {
    let text = ""
    const socket = connect({ host: "127.0.0.1", port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
      resolvePromise(text)
    }
    socket.on("connect", () => socket.write(request))
    socket.on("data", (data: Buffer) => {
      text += data.toString("latin1")
      if (done(text)) finish()
    })
    socket.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    socket.on("close", finish)
  })

const waitReady = async (ports: BenchPorts, spawned: ReadonlyArray<Subprocess>, dir: string): Promise<void> => {
  const deadline = Date.now() + START_TIMEOUT_MS
  let httpReady = false
  let publishReady = false
  let acceptReady = false
  let lastProblem = ""
  const readyRequest = (path: string) => `GET ${path} HTTP/1.1\r\nHost: ${READY_HOST}\r\nConnection: close\r\n\r\n`
  while (!(httpReady && publishReady && acceptReady)) {
    if (Date.now() > deadline) throw new Error(`not ready after ${START_TIMEOUT_MS} ms (${lastProblem})\n${readLogs(dir)}`)
    const dead = spawned.find((proc) => proc.exitCode !== null || proc.signalCode !== null)
    if (dead !== undefined) throw new Error(`a server process exited (code ${String(dead.exitCode)})\n${readLogs(dir)}`)
    try {
      if (!httpReady) {
        const answer = await rawExchange(ports.http, readyRequest("/"), () => false, 1000)
        httpReady = answer.startsWith("HTTP/1.1 200") && answer.includes(TEST_HANDLER_BODY)
        if (!httpReady) lastProblem = `HTTP port answered ${JSON.stringify(answer.slice(0, 80))}`
      }
      if (!publishReady) {
        const answer = await rawExchange(ports.publish, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", () => false, 1000)
        publishReady = answer.startsWith("HTTP/1.1 200")
        if (!publishReady) lastProblem = `publish port answered ${JSON.stringify(answer.slice(0, 80))}`
      }
      if (httpReady && !acceptReady) {
        const answer = await rawExchange(ports.http, readyRequest("/stream?channel=bench-readiness"), (text) => text.includes("[stream opened]"), 1000)
        acceptReady = answer.includes("[stream opened]")
        if (!acceptReady) lastProblem = `stream hold answered ${JSON.stringify(answer.slice(-80))}`
      }
    } catch (error) {
      lastProblem = String(error)
    }
    if (!(httpReady && publishReady && acceptReady)) await sleep(20)
  }
}

export const startServer = async (kind: ServerKind, originPort: number, cpuProfile?: CpuProfileTarget): Promise<BenchServer> => {
  const prepared = prepareServer(kind, originPort, cpuProfile)
  const spawned: Array<Subprocess> = []
  const forgetFinder = trackPidFinder(() => pidsMentioning(prepared.dir))
  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= stopPrepared(prepared, spawned).finally(forgetFinder)
    return stopping
  }
  try {
    spawned.push(...(await prepared.startHelpers()))
    const logName = kind === "pushpin" ? "runner.log" : "stdout.log"
    spawned.push(spawnLogged(prepared.argv, prepared.dir, join(prepared.dir, "log", logName)))
    await waitReady(prepared.ports, spawned, prepared.dir)
  } catch (error) {
    await stop()
    throw error
  }
  const pids = () => serverPids(prepared, spawned)
  return {
    kind,
    httpPort: prepared.ports.http,
    publishUrl: `http://127.0.0.1:${prepared.ports.publish}`,
    pids,
    rssKb: () => pids().reduce((sum, pid) => sum + rssKb(pid), 0),
    cpuMs: () => pids().reduce((sum, pid) => sum + cpuMs(pid), 0),
    stop
  }
}
