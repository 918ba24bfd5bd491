/**
 * An origin for WebSocket-over-HTTP (`over_http` targets), over raw node:net so the tests see the
 * requests as they were on the wire: header names with their case, in order, repeated headers
 * apart, the exact body. Answers are written byte for byte too (no Date or Content-Type added).
 *
 * Requests are grouped into connections by their `Connection-Id`; each group is one client
 * WebSocket as the gateway sees it. The test decides every answer (`respond`), which may take its
 * time: the gateway has one request outstanding per connection, so a slow answer makes the next
 * client messages queue up in the gateway.
 *
 * Independent of src/ apart from the event codec (src/websocket/events.ts), which has its own
 * unit tests.
 */
import { Result } from "effect"
import { createServer, type Server, type Socket } from "node:net"
import { readChunked } from "./chunked.ts"
import { listenOnLoopback } from "./origin.ts"
import { decodeEvents, encodeEvents, type WsEvent as WohEvent } from "../../src/websocket/events.ts"

export type { WohEvent }

export interface WohRequest {
  /** Arrival order over the whole origin, from 0. */
  readonly seq: number
  readonly method: string
  /** Path and query as on the request line. */
  readonly target: string
  readonly httpVersion: string
  /** In wire order, names as sent (not lower-cased), values trimmed. */
  readonly rawHeaders: ReadonlyArray<readonly [string, string]>
  readonly body: Buffer
  /** The body decoded, or the decoder's complaint. */
  readonly events: ReadonlyArray<WohEvent> | string
  readonly connectionId: string | undefined
  /** ms since the origin started. */
  readonly at: number
  /** How many earlier requests of the same connection were still unanswered when this one arrived. */
  readonly outstanding: number
}

/** The value of the first header named `name` (any case); undefined when absent. */
export const headerValue = (request: WohRequest, name: string): string | undefined =>
  request.rawHeaders.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1]

/** Every value of headers named `name` (any case), in order. */
export const headerValues = (request: WohRequest, name: string): Array<string> =>
  request.rawHeaders.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v)

/** The events of a request; throws when its body did not decode. */
export const eventsOf = (request: WohRequest): ReadonlyArray<WohEvent> => {
  if (typeof request.events === "string") throw new Error(`request ${request.seq} has an undecodable body: ${request.events}`)
  return request.events
}

export interface WohReply {
  /** Default 200. */
  readonly status?: number
  /** Default "OK" for 200, else "Status". */
  readonly reason?: string
  /** Added after Content-Type (unless `contentType` is null) and before Content-Length. */
  readonly headers?: ReadonlyArray<readonly [string, string]>
  /** Default `application/websocket-events`; null: no Content-Type. */
  readonly contentType?: string | null
  /** The body: events (encoded) or raw bytes/text. Default: empty. */
  readonly events?: ReadonlyArray<WohEvent>
  readonly body?: string | Uint8Array
  /** Close the TCP connection without answering. */
  readonly drop?: boolean
}

export interface WohConnection {
  readonly connectionId: string
  /** This connection's requests so far, in order. */
  readonly requests: Array<WohRequest>
  /** Resolves when `predicate` holds on the requests; rejects after `timeoutMs` saying what arrived. */
  waitFor(what: string, predicate: (requests: ReadonlyArray<WohRequest>) => boolean, timeoutMs?: number): Promise<void>
}

export type WohResponder = (request: WohRequest, connection: WohConnection) => WohReply | Promise<WohReply>

export interface WohOrigin {
  readonly port: number
  /** Every request, in arrival order. */
  readonly requests: Array<WohRequest>
  /** The connection whose first request's target starts with `targetPrefix`; waits for it. */
  connection(targetPrefix: string, timeoutMs?: number): Promise<WohConnection>
  /** All connections whose first request's target starts with `targetPrefix`, in order. */
  connections(targetPrefix: string): Array<WohConnection>
  stop(): Promise<void>
}

interface ParsedHead {
  readonly method: string
  readonly target: string
  readonly httpVersion: string
  readonly rawHeaders: Array<readonly [string, string]>
}

const parseRequestHead = (text: string): ParsedHead => {
  const [first = "", ...lines] = text.split("\r\n")
  const match = /^(\S+) (\S+) (HTTP\/1\.[01])$/.exec(first)
  if (match === null) throw new Error(`not a request line: ${JSON.stringify(first)}`)
  return {
    method: match[1] ?? "",
    target: match[2] ?? "",
    httpVersion: match[3] ?? "",
    rawHeaders: lines.map((line) => {
      const colon = line.indexOf(":")
      return [line.slice(0, colon).trim(), line.slice(colon + 1).trim()] as const
    })
  }
}

const encodeReply = (reply: WohReply): Buffer => {
  const status = reply.status ?? 200
  const body =
    reply.events !== undefined
      ? Buffer.from(encodeEvents(reply.events))
      : typeof reply.body === "string"
        ? Buffer.from(reply.body, "utf8")
        : Buffer.from(reply.body ?? new Uint8Array())
  const contentType = reply.contentType === undefined ? "application/websocket-events" : reply.contentType
  const lines = [
    `HTTP/1.1 ${status} ${reply.reason ?? (status === 200 ? "OK" : "Status")}`,
    ...(contentType === null ? [] : [`Content-Type: ${contentType}`]),
    ...(reply.headers ?? []).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${body.length}`
  ]
  return Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), body])
}

export const startWohOrigin = async (respond: WohResponder): Promise<WohOrigin> => {
  const started = Date.now()
  const requests: Array<WohRequest> = []
  const byId = new Map<string, { connection: WohConnection; wake: Set<() => void>; firstTarget: string; unanswered: number }>()
  const order: Array<{ connection: WohConnection; firstTarget: string }> = []
  const sockets = new Set<Socket>()

  const connectionFor = (id: string, target: string) => {
    const known = byId.get(id)
    if (known !== undefined) return known
    const wake = new Set<() => void>()
    const list: Array<WohRequest> = []
    const connection: WohConnection = {
      connectionId: id,
      requests: list,
      waitFor: (what, predicate, timeoutMs = 5000) =>
        new Promise<void>((resolve, reject) => {
          if (predicate(list)) {
            resolve()
            return
          }
          const waker = () => {
            if (!predicate(list)) return
            clearTimeout(timer)
            wake.delete(waker)
            resolve()
          }
          const timer = setTimeout(() => {
            wake.delete(waker)
            reject(new Error(`timed out waiting for ${what}; the origin got ${JSON.stringify(list.map(describeRequest))}`))
          }, timeoutMs)
          wake.add(waker)
        })
    }
    const entry = { connection, wake, firstTarget: target, unanswered: 0 }
    byId.set(id, entry)
    order.push(entry)
    return entry
  }

  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => undefined)
    let buffered: Buffer = Buffer.alloc(0)
    /** Answers go out in request order even when a later one is ready first. */
    let chain: Promise<void> = Promise.resolve()

    const take = () => {
      for (;;) {
        const end = buffered.indexOf("\r\n\r\n")
        if (end < 0) return
        const head = parseRequestHead(buffered.subarray(0, end).toString("latin1"))
        const rest = buffered.subarray(end + 4)
        const lengthHeader = head.rawHeaders.find(([n]) => n.toLowerCase() === "content-length")?.[1]
        const chunked = head.rawHeaders.some(([n, v]) => n.toLowerCase() === "transfer-encoding" && v.toLowerCase().includes("chunked"))
        let body: Buffer
        let used: number
        if (chunked) {
          const read = readChunked(rest)
          if (!read.ended) return
          body = Buffer.concat(read.chunks)
          used = read.used
        } else {
          const length = Number(lengthHeader ?? "0")
          if (rest.length < length) return
          body = Buffer.from(rest.subarray(0, length))
          used = length
        }
        buffered = Buffer.from(rest.subarray(used))
        const decoded = decodeEvents(body)
        const connectionId = head.rawHeaders.find(([n]) => n.toLowerCase() === "connection-id")?.[1]
        const entry = connectionFor(connectionId ?? `(none) ${requests.length}`, head.target)
        const request: WohRequest = {
          seq: requests.length,
          method: head.method,
          target: head.target,
          httpVersion: head.httpVersion,
          rawHeaders: head.rawHeaders,
          body,
          events: Result.isSuccess(decoded) ? decoded.success : decoded.failure.message,
          connectionId,
          at: Date.now() - started,
          outstanding: entry.unanswered
        }
        requests.push(request)
        entry.unanswered++
        entry.connection.requests.push(request)
        for (const waker of [...entry.wake]) waker()
        const answer = Promise.resolve().then(() => respond(request, entry.connection))
        chain = chain.then(async () => {
          let reply: WohReply
          try {
            reply = await answer
          } catch (error) {
            reply = { status: 500, contentType: "text/plain", body: `origin: ${String(error)}\n` }
          }
          entry.unanswered--
          if (reply.drop === true) {
            socket.destroy()
            return
          }
          if (!socket.destroyed) socket.write(encodeReply(reply))
        })
      }
    }
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      take()
    })
  })
  return {
    port: await listenOnLoopback(server),
    requests,
    connection: async (targetPrefix, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = order.find((entry) => entry.firstTarget.startsWith(targetPrefix))
        if (found !== undefined) return found.connection
        if (Date.now() > deadline) {
          throw new Error(`woh origin: no connection for ${targetPrefix}; requests: ${JSON.stringify(requests.map((r) => r.target))}`)
        }
        await Bun.sleep(10)
      }
    },
    connections: (targetPrefix) => order.filter((entry) => entry.firstTarget.startsWith(targetPrefix)).map((entry) => entry.connection),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** Events as short text, for messages and comparisons: `TEXT "hello"`, `CLOSE 4001 "bye"`, `BINARY 010203`. */
export const describeEvent = (event: WohEvent): string => {
  const content = event.content === undefined ? undefined : Buffer.from(event.content)
  switch (event.type) {
    case "TEXT":
      return content === undefined ? "TEXT" : `TEXT ${JSON.stringify(content.toString("utf8"))}`
    case "BINARY":
    case "PING":
    case "PONG":
      return content === undefined ? event.type : `${event.type} ${content.toString("hex")}`
    case "CLOSE":
      if (content === undefined) return "CLOSE"
      if (content.length < 2) return `CLOSE (${content.length} bytes)`
      return `CLOSE ${content.readUInt16BE(0)} ${JSON.stringify(content.subarray(2).toString("utf8"))}`
    case "OPEN":
    case "DISCONNECT":
      return content === undefined ? event.type : `${event.type} (${content.length} bytes)`
  }
}

const describeRequest = (request: WohRequest): string =>
  `${request.method} ${request.target} ${typeof request.events === "string" ? request.events : request.events.map(describeEvent).join(", ") || "(empty)"}`
