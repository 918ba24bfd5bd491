/**
 * Starts the compiled `./pushpin-ts` binary for end-to-end tests, on an ephemeral port.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import type { Subprocess } from "bun"

export const BINARY = resolve(import.meta.dir, "../../pushpin-ts")

export interface RunningPushpinTs {
  readonly port: number
  readonly baseUrl: string
  /** The HTTP publish API, e.g. `http://127.0.0.1:5561` (undefined when it is off). */
  readonly publishUrl: string | undefined
  readonly process: Subprocess<"ignore", "pipe", "pipe">
  /** Everything the process logged so far. */
  readonly logs: () => string
  /** Resolves when a log line matching `pattern` appears (or rejects after `timeoutMs`). */
  readonly waitForLog: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  /** SIGTERM and wait for exit; returns the exit code. */
  readonly stop: (signal?: NodeJS.Signals) => Promise<number>
}

export interface StartOptions {
  readonly args?: ReadonlyArray<string>
  /** Working directory; a fresh temp dir (no config files) by default. */
  readonly cwd?: string
  /** Do not add `--port 127.0.0.1:0` (the config decides the ports). */
  readonly keepConfiguredPorts?: boolean
}

const running = new Set<Subprocess>()
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL")
})

export const startPushpinTs = async (options: StartOptions = {}): Promise<RunningPushpinTs> => {
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), "pushpin-ts-e2e-"))
  const ownsCwd = options.cwd === undefined
  const args = [
    "run",
    ...(options.keepConfiguredPorts === true ? [] : ["--port", "127.0.0.1:0", "--publish-port", "127.0.0.1:0"]),
    ...(options.args ?? [])
  ]
  const proc = Bun.spawn([BINARY, ...args], { cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" })
  running.add(proc)
  let output = ""
  const waiters: Array<() => void> = []
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder()
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true })
      for (const wake of waiters.splice(0)) wake()
    }
  }
  void pump(proc.stdout)
  void pump(proc.stderr)

  const waitForLog = (pattern: RegExp, timeoutMs = 10_000): Promise<string> =>
    new Promise((resolvePromise, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; logs:\n${output}`)), timeoutMs)
      const check = () => {
        const match = pattern.exec(output)
        if (match !== null) {
          clearTimeout(deadline)
          resolvePromise(match[0])
          return
        }
        if (proc.exitCode !== null) {
          clearTimeout(deadline)
          reject(new Error(`pushpin-ts exited with ${proc.exitCode}; logs:\n${output}`))
          return
        }
        waiters.push(check)
      }
      check()
      void proc.exited.then(() => setTimeout(() => { for (const wake of waiters.splice(0)) wake() }, 50))
    })

  const listening = await waitForLog(/listening for clients on http:\/\/[^\s]+:(\d+)/)
  const port = Number(/:(\d+)$/.exec(listening)?.[1])
  const publishing = /publish API listening on (http:\/\/[^\s]+)/.exec(output)?.[1]
  return {
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    publishUrl: publishing,
    process: proc,
    logs: () => output,
    waitForLog,
    stop: async (signal = "SIGTERM") => {
      if (proc.exitCode === null) proc.kill(signal)
      const code = await proc.exited
      running.delete(proc)
      if (ownsCwd) rmSync(cwd, { recursive: true, force: true })
      return code
    }
  }
}
