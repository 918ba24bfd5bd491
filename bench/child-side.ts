/**
 * The child half of bench/child.ts: a load generator reports JSON lines on stdout and reads
 * commands, one per line, on stdin. Kept free of the parent's process bookkeeping.
 */

export type ChildMessage = { readonly type: string } & Readonly<Record<string, unknown>>

export const report = (message: ChildMessage): void => {
  process.stdout.write(`${JSON.stringify(message)}\n`)
}

export const onCommand = (handle: (command: string) => void): void => {
  let pending = ""
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (chunk: string) => {
    pending += chunk
    let newline = pending.indexOf("\n")
    while (newline >= 0) {
      handle(pending.slice(0, newline).trim())
      pending = pending.slice(newline + 1)
      newline = pending.indexOf("\n")
    }
  })
}
