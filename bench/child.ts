/**
 * A load-generator child process (a bench/*-client.ts script run by bun) that talks JSON lines:
 * it reads commands on stdin and reports on stdout, one JSON object per line.
 */
import { resolve } from "node:path"
import type { Subprocess } from "bun"
import { trackPid, untrackPid, withParentDeathSignal, withRaisedFdLimit } from "./processes.ts"
import type { ChildMessage } from "./child-side.ts"
import type { Scope } from "./scope.ts"

export type { ChildMessage }

export class ChildFailed extends Error {
  readonly _tag = "ChildFailed"
}

export interface Child {
  readonly pid: number
  /** The next message of this type (earlier unclaimed ones first), optionally one that `matches`. */
  readonly next: (type: string, timeoutMs: number, matches?: (message: ChildMessage) => boolean) => Promise<ChildMessage>
  readonly send: (command: string) => void
  readonly exited: Promise<number>
  readonly kill: () => Promise<void>
}

const isChildMessage = (value: unknown): value is ChildMessage =>
  typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string"

export const spawnChild = (script: string, config: unknown, scope: Scope): Child => {
  const argv = withParentDeathSignal(withRaisedFdLimit([process.execPath, resolve(import.meta.dir, script), JSON.stringify(config)]))
  const proc: Subprocess<"pipe", "pipe", "inherit"> = Bun.spawn(argv, { stdin: "pipe", stdout: "pipe", stderr: "inherit" })
  trackPid(proc.pid)
  const inbox: Array<ChildMessage> = []
  const waiters: Array<() => void> = []
  let ended = false
  const wake = () => {
    for (const waiter of waiters.splice(0)) waiter()
  }

  void (async () => {
    const decoder = new TextDecoder()
    let pending = ""
    for await (const chunk of proc.stdout) {
      pending += decoder.decode(chunk, { stream: true })
      let newline = pending.indexOf("\n")
      while (newline >= 0) {
        const line = pending.slice(0, newline)
        pending = pending.slice(newline + 1)
        newline = pending.indexOf("\n")
        if (line.trim() === "") continue
        try {
          const parsed: unknown = JSON.parse(line)
          if (isChildMessage(parsed)) inbox.push(parsed)
          else process.stderr.write(`bench: ${script} wrote a non-message: ${line.slice(0, 200)}\n`)
        } catch {
          process.stderr.write(`bench: ${script} wrote: ${line.slice(0, 200)}\n`)
        }
      }
      wake()
    }
    ended = true
    wake()
  })()

  const next = (type: string, timeoutMs: number, matches: (message: ChildMessage) => boolean = () => true): Promise<ChildMessage> =>
    new Promise((resolvePromise, reject) => {
      // A waiter that timed out must not claim a message that arrives later.
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        reject(new ChildFailed(`${script}: no "${type}" report within ${timeoutMs} ms`))
      }, timeoutMs)
      const check = () => {
        if (timedOut) return
        const index = inbox.findIndex((message) => message.type === type && matches(message))
        if (index >= 0) {
          clearTimeout(timer)
          const [message] = inbox.splice(index, 1)
          if (message !== undefined) resolvePromise(message)
          return
        }
        const failure = inbox.find((message) => message.type === "error")
        if (failure !== undefined || ended) {
          clearTimeout(timer)
          reject(new ChildFailed(`${script} ${failure === undefined ? `exited (code ${String(proc.exitCode)})` : `failed: ${String(failure.message)}`}`))
          return
        }
        waiters.push(check)
      }
      check()
    })

  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL")
    await proc.exited
    untrackPid(proc.pid)
  }
  scope.add(kill)

  return {
    pid: proc.pid,
    next,
    send: (command) => {
      void proc.stdin.write(`${command}\n`)
      void proc.stdin.flush()
    },
    exited: proc.exited,
    kill
  }
}
