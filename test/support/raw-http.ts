/**
 * HTTP over raw node:net for tests that must see exactly what a server does with bytes no HTTP
 * client would send: the answer as written, and whether the server closed (FIN), reset, or left
 * the connection open.
 */
import net from "node:net"

/** How the connection ended: the server closed it, it was reset, or it was still open at the deadline. */
export type Ending = "closed" | "reset" | "open"

export interface RawOutcome {
  /** Every byte the server sent. */
  readonly bytes: Buffer
  readonly ending: Ending
  /** The socket error behind a "reset". */
  readonly error?: string
}

export interface RawExchangeOptions {
  /**
   * Half-close after the last part: the server then has all the input there will ever be, so it
   * must answer or close, and waiting for more bytes is no excuse to keep the connection.
   */
  readonly halfClose?: boolean
  /** How long the server gets to close the connection (default 5 000 ms). */
  readonly timeoutMs?: number
  /** Pause between parts, so each arrives on its own (default 0: one write). */
  readonly gapMs?: number
}

/** Sends `parts` on a new connection and collects everything until the server closes, or `timeoutMs`. */
export const rawExchange = (
  port: number,
  parts: ReadonlyArray<Uint8Array | string>,
  options: RawExchangeOptions = {}
): Promise<RawOutcome> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    const socket = net.connect(port, "127.0.0.1")
    let settled = false
    const settle = (ending: Ending, error?: string) => {
      if (settled) return
      settled = true
      clearTimeout(deadline)
      socket.destroy()
      resolve({ bytes: Buffer.concat(chunks), ending, ...(error === undefined ? {} : { error }) })
    }
    const deadline = setTimeout(() => settle("open"), options.timeoutMs ?? 5000)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("end", () => settle("closed"))
    socket.on("close", () => settle("closed"))
    socket.on("error", (error) => settle("reset", error.message))
    socket.on("connect", async () => {
      const gapMs = options.gapMs ?? 0
      if (gapMs === 0) {
        socket.write(Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part, "latin1") : part))))
      } else {
        for (const part of parts) {
          if (settled) return
          socket.write(typeof part === "string" ? Buffer.from(part, "latin1") : part)
          await Bun.sleep(gapMs)
        }
      }
      if (options.halfClose === true && !settled) socket.end()
    })
  })

export interface RawAnswer {
  readonly status: number
  readonly reason: string
  /** Names lower-cased, in wire order. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** The body by Content-Length, or everything after the head when there is none. */
  readonly body: string
}

/**
 * The first final answer in `bytes` (a 100 Continue before it is skipped; a 101 is final).
 * "garbled" when the server sent bytes that are not an HTTP answer or only part of a head,
 * undefined when it sent nothing but (maybe) 100 Continue.
 */
export const firstAnswer = (bytes: Buffer): RawAnswer | "garbled" | undefined => {
  let text = bytes.toString("latin1")
  for (;;) {
    if (text.length === 0) return undefined
    const headEnd = text.indexOf("\r\n\r\n")
    if (headEnd < 0) return "garbled"
    const [statusLine = "", ...lines] = text.slice(0, headEnd).split("\r\n")
    const match = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(statusLine)
    if (match === null) return "garbled"
    const status = Number(match[1])
    const rest = text.slice(headEnd + 4)
    if (status === 100) {
      text = rest
      continue
    }
    const headers = lines.map((line) => {
      const colon = line.indexOf(":")
      return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const
    })
    const length = headers.find(([name]) => name === "content-length")?.[1]
    return { status, reason: match[2] ?? "", headers, body: length === undefined ? rest : rest.slice(0, Number(length)) }
  }
}

export const headerValue = (answer: RawAnswer, name: string): string | undefined =>
  answer.headers.find(([candidate]) => candidate === name)?.[1]
