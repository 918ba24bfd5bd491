/**
 * One HTTP/1.1 exchange over a raw socket, classified the way overload tests need it: a complete
 * response, a reset, a close without a response, or a hang (nothing within the timeout).
 */
import { connect } from "node:net"

export type RawOutcome =
  | { readonly kind: "response"; readonly status: number; readonly head: string; readonly body: string }
  | { readonly kind: "reset" }
  | { readonly kind: "closed" }
  | { readonly kind: "hang" }

const headerValue = (head: string, name: string): string | undefined => {
  const match = new RegExp(`\\r\\n${name}:\\s*([^\\r]*)`, "i").exec(head)
  return match?.[1]
}

/** Sends `request` (a whole request, head and body) and reads one response with a Content-Length or chunked body. */
export const rawExchange = (port: number, request: string, timeoutMs: number): Promise<RawOutcome> =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request))
    let data = Buffer.alloc(0)
    let settled = false
    const finish = (outcome: RawOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(outcome)
    }
    const timer = setTimeout(() => finish({ kind: "hang" }), timeoutMs)
    const complete = (): RawOutcome | undefined => {
      const text = data.toString("latin1")
      const end = text.indexOf("\r\n\r\n")
      if (end < 0) return undefined
      const head = text.slice(0, end)
      const status = Number(head.slice(9, 12))
      const rest = text.slice(end + 4)
      const length = headerValue(head, "content-length")
      if (length !== undefined) return rest.length >= Number(length) ? { kind: "response", status, head, body: rest.slice(0, Number(length)) } : undefined
      if (/chunked/i.test(headerValue(head, "transfer-encoding") ?? "")) return rest.endsWith("0\r\n\r\n") ? { kind: "response", status, head, body: rest } : undefined
      return undefined
    }
    socket.on("data", (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
      const outcome = complete()
      if (outcome !== undefined) finish(outcome)
    })
    socket.on("error", (error: NodeJS.ErrnoException) => finish(error.code === "ECONNRESET" || error.code === "EPIPE" ? { kind: "reset" } : { kind: "closed" }))
    socket.on("close", () => {
      const text = data.toString("latin1")
      const end = text.indexOf("\r\n\r\n")
      // A response without a length ends with the connection.
      if (end >= 0) finish({ kind: "response", status: Number(text.slice(9, 12)), head: text.slice(0, end), body: text.slice(end + 4) })
      else finish({ kind: "closed" })
    })
  })

export const retryAfterOf = (outcome: RawOutcome): string | undefined =>
  outcome.kind === "response" ? headerValue(`\r\n${outcome.head}`, "retry-after") : undefined

/** Counts outcomes as `200`, `503`, `reset`, `closed`, `hang`... */
export const tally = (outcomes: ReadonlyArray<RawOutcome>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const outcome of outcomes) {
    const key = outcome.kind === "response" ? String(outcome.status) : outcome.kind
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}
