/**
 * Process plumbing for the benchmark: every child is tracked so that nothing outlives the run
 * (Ctrl-C, a scenario's hard timeout, a crash), children get the hard open-files limit, and
 * memory is read from /proc.
 */
import { readFileSync, readdirSync } from "node:fs"
import { connect } from "node:net"

const tracked = new Set<number>()
/** Extra pids to kill on exit that were not spawned by us directly (Pushpin's services). */
const trackedFinders = new Set<() => ReadonlyArray<number>>()

const killQuietly = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const killEverything = (): void => {
  for (const find of trackedFinders) for (const pid of find()) killQuietly(pid, "SIGKILL")
  for (const pid of tracked) killQuietly(pid, "SIGKILL")
  tracked.clear()
}

process.on("exit", killEverything)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping every child\n`)
    killEverything()
    process.exit(130)
  })
}

export const trackPid = (pid: number): void => {
  tracked.add(pid)
}
export const untrackPid = (pid: number): void => {
  tracked.delete(pid)
}
export const trackPidFinder = (find: () => ReadonlyArray<number>): (() => void) => {
  trackedFinders.add(find)
  return () => trackedFinders.delete(find)
}

export interface FdLimits {
  readonly soft: number
  readonly hard: number
}

export const openFileLimits = (): FdLimits => {
  const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files")) ?? ""
  const [soft, hard] = line.replace("Max open files", "").trim().split(/\s+/)
  const parse = (value: string | undefined) => (value === "unlimited" ? Number.POSITIVE_INFINITY : Number(value))
  return { soft: parse(soft), hard: parse(hard) }
}

/**
 * Children hold thousands of sockets, so they start with the soft open-files limit raised to
 * the hard one (through the shell's `ulimit`, as Bun cannot set rlimits itself).
 */
export const withRaisedFdLimit = (argv: ReadonlyArray<string>): Array<string> => {
  const limits = openFileLimits()
  if (limits.soft >= limits.hard) return [...argv]
  const target = Number.isFinite(limits.hard) ? String(limits.hard) : "unlimited"
  return ["/bin/sh", "-c", `ulimit -n ${target} && exec "$@"`, "sh", ...argv]
}

/** Dies with its parent where util-linux's setpriv exists (a SIGKILLed bench leaves nothing). */
export const withParentDeathSignal = (argv: ReadonlyArray<string>): Array<string> => {
  const setpriv = Bun.which("setpriv")
  return setpriv === null ? [...argv] : [setpriv, "--pdeathsig", "KILL", "--", ...argv]
}

/** VmRSS of one process in KiB (0 when it is gone). */
export const rssKb = (pid: number): number => {
  try {
    const match = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
    return match === null ? 0 : Number(match[1])
  } catch {
    return 0
  }
}

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks (100 on every common build). */
const CLOCK_TICKS_PER_SECOND = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100

/** User + system CPU time one process has used so far, in ms (0 when it is gone). */
export const cpuMs = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    const ticks = Number(fields[11]) + Number(fields[12])
    return (ticks * 1000) / CLOCK_TICKS_PER_SECOND
  } catch {
    return 0
  }
}

/** Pids whose command line mentions `marker` (a private temp dir), so pid reuse cannot fool us. */
export const pidsMentioning = (marker: string): Array<number> => {
  const pids: Array<number> = []
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").includes(marker)) pids.push(Number(name))
    } catch {
      // exited while we looked
    }
  }
  return pids
}

/** Ports the kernel just handed out for listening, released again for the servers to bind. */
export const freePorts = (count: number): Array<number> => {
  const listeners: Array<{ readonly port: number; stop(closeActiveConnections?: boolean): void }> = []
  try {
    while (listeners.length < count) listeners.push(Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }))
    return listeners.map((listener) => listener.port)
  } finally {
    for (const listener of listeners) listener.stop(true)
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves true once a TCP connection to the port is accepted, false at the deadline. */
export const tryConnect = (port: number, timeoutMs: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port })
    const timer = setTimeout(() => {
      socket.destroy()
      resolve(false)
    }, timeoutMs)
    socket.once("connect", () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(false)
    })
  })

export class ScenarioTimeout extends Error {
  readonly _tag = "ScenarioTimeout"
  constructor(readonly label: string, readonly ms: number) {
    super(`${label}: no result within ${ms} ms (hard timeout)`)
  }
}

/** Races `work` against a hard deadline; the caller's finally-blocks stop what it started. */
export const withTimeout = <A>(label: string, ms: number, work: Promise<A>): Promise<A> => {
  let timer: ReturnType<typeof setTimeout> | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ScenarioTimeout(label, ms)), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}
