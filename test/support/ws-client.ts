/**
 * Both ends of a WebSocket over raw node:net, for tests that must see the wire: exact close
 * frames, ping/pong payloads, fragmentation, masking, and the exact bytes of a refused upgrade.
 *
 * - `upgrade`/`openWebSocket`: a client that sends whatever frames it is told to (masked, as a
 *   client must), fragments included, and records every frame it receives. Like a browser it
 *   answers a ping with a pong carrying the same payload and a close with a close (same code),
 *   unless told not to.
 * - `startWsOrigin`: an origin server on 127.0.0.1 that answers each upgrade request as the test
 *   says (accept with chosen headers, or any raw HTTP answer), records every frame the proxy sent
 *   it, and answers pings and closes as RFC 6455 asks. Bun.serve cannot be used for this: it
 *   drops a `Sec-WebSocket-Extensions` header given to `server.upgrade`, so it cannot enable GRIP.
 *
 * Independent of src/ on purpose: this is the yardstick, not the thing measured.
 */
import { createHash, randomBytes } from "node:crypto"
import { createConnection, createServer, type Server, type Socket } from "node:net"
import { readChunked } from "./chunked.ts"
import { listenOnLoopback } from "./origin.ts"

export const Op = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa
} as const

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

export interface WsFrame {
  readonly fin: boolean
  readonly opcode: number
  readonly masked: boolean
  readonly payload: Buffer
}

/** A whole message reassembled from its frames (text/binary), or a control frame. */
export type WsEvent =
  | { readonly type: "text"; readonly data: string; readonly frames: number }
  | { readonly type: "binary"; readonly data: Buffer; readonly frames: number }
  | { readonly type: "ping" | "pong"; readonly data: string }
  | { readonly type: "close"; readonly code: number | undefined; readonly reason: string }

export interface HttpHead {
  /** Response: status code; request: 0. */
  readonly status: number
  /** Response: reason phrase; request: "METHOD target". */
  readonly reason: string
  /** In wire order, names lower-cased, values trimmed. */
  readonly headers: ReadonlyArray<readonly [string, string]>
}

export const headerOf = (head: HttpHead, name: string): string | undefined => head.headers.find(([n]) => n === name)?.[1]

// ---------------------------------------------------------------------------------------------
// Frame codec

export const encodeFrame = (opcode: number, payload: Uint8Array, fin: boolean, mask: boolean): Buffer => {
  const length = payload.byteLength
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8
  const maskBytes = mask ? 4 : 0
  const headerLength = 2 + lengthBytes + maskBytes
  const frame = Buffer.alloc(headerLength + length)
  frame[0] = (fin ? 0x80 : 0) | opcode
  const maskBit = mask ? 0x80 : 0
  if (length < 126) {
    frame[1] = maskBit | length
  } else if (length < 65536) {
    frame[1] = maskBit | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = maskBit | 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  if (mask) {
    const key = randomBytes(4)
    key.copy(frame, 2 + lengthBytes)
    for (let i = 0; i < length; i++) frame[headerLength + i] = (payload[i] ?? 0) ^ (key[i & 3] ?? 0)
  } else {
    frame.set(payload, headerLength)
  }
  return frame
}

/** Parses as many whole frames as `buffer` holds; returns them and the unconsumed rest. */
const decodeFrames = (buffer: Buffer): { frames: Array<WsFrame>; rest: Buffer } => {
  const frames: Array<WsFrame> = []
  let offset = 0
  for (;;) {
    if (buffer.length - offset < 2) break
    const b0 = buffer[offset] ?? 0
    const b1 = buffer[offset + 1] ?? 0
    let length = b1 & 0x7f
    let at = offset + 2
    if (length === 126) {
      if (buffer.length - at < 2) break
      length = buffer.readUInt16BE(at)
      at += 2
    } else if (length === 127) {
      if (buffer.length - at < 8) break
      length = Number(buffer.readBigUInt64BE(at))
      at += 8
    }
    const masked = (b1 & 0x80) !== 0
    let key: Buffer | undefined
    if (masked) {
      if (buffer.length - at < 4) break
      key = buffer.subarray(at, at + 4)
      at += 4
    }
    if (buffer.length - at < length) break
    const payload = Buffer.from(buffer.subarray(at, at + length))
    if (key !== undefined) for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] ?? 0) ^ (key[i & 3] ?? 0)
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, payload })
    offset = at + length
  }
  return { frames, rest: Buffer.from(buffer.subarray(offset)) }
}

const closePayload = (code: number | undefined, reason: string): Buffer => {
  if (code === undefined) return Buffer.alloc(0)
  const payload = Buffer.alloc(2 + Buffer.byteLength(reason))
  payload.writeUInt16BE(code, 0)
  payload.write(reason, 2, "utf8")
  return payload
}

const describeEvents = (events: ReadonlyArray<WsEvent>): string =>
  JSON.stringify(
    events.map((event) =>
      event.type === "binary"
        ? { type: "binary", bytes: event.data.length }
        : event.type === "text" && event.data.length > 200
          ? { type: "text", chars: event.data.length }
          : event
    )
  )

// ---------------------------------------------------------------------------------------------
// One open WebSocket, either end

export interface WsEndpoint {
  /** Every frame received, in order. */
  readonly frames: Array<WsFrame>
  /** Messages and control frames received, in order. */
  readonly events: Array<WsEvent>
  /** How the TCP connection ended, once it has ("end" = the peer's FIN, "error: …"); undefined while open. */
  readonly ended: () => string | undefined
  sendFrame(opcode: number, payload?: Uint8Array | string, fin?: boolean): void
  sendText(text: string): void
  sendBinary(data: Uint8Array): void
  ping(payload?: string): void
  pong(payload?: string): void
  /** Sends a close frame; no code means an empty close payload. */
  close(code?: number, reason?: string): void
  /** Resolves when `predicate` holds on the events; rejects after `timeoutMs` saying what arrived. */
  waitFor(what: string, predicate: (events: ReadonlyArray<WsEvent>) => boolean, timeoutMs?: number): Promise<void>
  /** Resolves true when the TCP connection has ended, false after `timeoutMs`. */
  waitEnded(timeoutMs?: number): Promise<boolean>
  /** Ends the TCP connection with no close frame (FIN). */
  end(): void
  /** Drops the TCP connection at once. */
  destroy(): void
}

interface EndpointOptions {
  /** Mask outgoing frames (client) or not (server). */
  readonly mask: boolean
  /** Answer a ping with a pong carrying its payload (default true). */
  readonly autoPong?: boolean
  /** Answer a close with a close carrying the same code and reason (default true). */
  readonly autoClose?: boolean
  /** After a close has been both sent and received, end the TCP connection (the server's job). */
  readonly endAfterClose: boolean
}

const openEndpoint = (socket: Socket, initial: Buffer, options: EndpointOptions): WsEndpoint => {
  const frames: Array<WsFrame> = []
  const events: Array<WsEvent> = []
  let pending: Buffer = Buffer.alloc(0)
  let partial: { opcode: number; parts: Array<Buffer> } | undefined
  let ended: string | undefined
  let closeSent = false
  let closeReceived = false
  const wakers = new Set<() => void>()
  const wake = () => {
    for (const waker of [...wakers]) waker()
  }
  const write = (data: Buffer) => {
    if (!socket.destroyed && ended === undefined) socket.write(data)
  }
  const send = (opcode: number, payload: Uint8Array, fin: boolean) => write(encodeFrame(opcode, payload, fin, options.mask))
  const sendClose = (code: number | undefined, reason: string) => {
    if (closeSent) return
    closeSent = true
    send(Op.close, closePayload(code, reason), true)
    if (closeReceived && options.endAfterClose) socket.end()
  }

  const take = (chunk: Buffer) => {
    const { frames: decoded, rest } = decodeFrames(pending.length === 0 ? chunk : Buffer.concat([pending, chunk]))
    pending = rest
    for (const frame of decoded) {
      frames.push(frame)
      switch (frame.opcode) {
        case Op.ping:
          events.push({ type: "ping", data: frame.payload.toString("utf8") })
          if (options.autoPong !== false && !closeSent) send(Op.pong, frame.payload, true)
          break
        case Op.pong:
          events.push({ type: "pong", data: frame.payload.toString("utf8") })
          break
        case Op.close: {
          const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined
          const reason = frame.payload.subarray(2).toString("utf8")
          events.push({ type: "close", code, reason })
          closeReceived = true
          if (options.autoClose !== false) sendClose(code, reason)
          if (closeSent && options.endAfterClose) socket.end()
          break
        }
        case Op.text:
        case Op.binary:
        case Op.continuation: {
          if (frame.opcode !== Op.continuation) partial = { opcode: frame.opcode, parts: [] }
          if (partial === undefined) break
          partial.parts.push(frame.payload)
          if (frame.fin) {
            const data = Buffer.concat(partial.parts)
            events.push(
              partial.opcode === Op.text
                ? { type: "text", data: data.toString("utf8"), frames: partial.parts.length }
                : { type: "binary", data, frames: partial.parts.length }
            )
            partial = undefined
          }
          break
        }
        default:
          break
      }
    }
    wake()
  }

  socket.on("data", take)
  socket.on("end", () => {
    ended ??= "end"
    // Half-closed by the peer: finish our side too.
    socket.end()
    wake()
  })
  socket.on("close", () => {
    ended ??= "closed"
    wake()
  })
  socket.on("error", (error) => {
    ended ??= `error: ${error.message}`
    wake()
  })
  if (initial.length > 0) take(initial)

  const bytes = (payload: Uint8Array | string): Uint8Array => (typeof payload === "string" ? Buffer.from(payload, "utf8") : payload)

  const waitUntil = (check: () => boolean, timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (check()) {
        resolve(true)
        return
      }
      const waker = () => {
        if (!check()) return
        clearTimeout(timer)
        wakers.delete(waker)
        resolve(true)
      }
      const timer = setTimeout(() => {
        wakers.delete(waker)
        resolve(false)
      }, timeoutMs)
      wakers.add(waker)
    })

  return {
    frames,
    events,
    ended: () => ended,
    sendFrame: (opcode, payload = "", fin = true) => send(opcode, bytes(payload), fin),
    sendText: (text) => send(Op.text, bytes(text), true),
    sendBinary: (data) => send(Op.binary, data, true),
    ping: (payload = "") => send(Op.ping, bytes(payload), true),
    pong: (payload = "") => send(Op.pong, bytes(payload), true),
    close: (code, reason = "") => sendClose(code, reason),
    waitFor: async (what, predicate, timeoutMs = 5000) => {
      if (await waitUntil(() => predicate(events), timeoutMs)) return
      throw new Error(`timed out waiting for ${what}; received ${describeEvents(events)}; connection ${ended ?? "open"}`)
    },
    waitEnded: (timeoutMs = 5000) => waitUntil(() => ended !== undefined, timeoutMs),
    end: () => socket.end(),
    destroy: () => socket.destroy()
  }
}

// ---------------------------------------------------------------------------------------------
// Client

export interface RawWebSocket extends WsEndpoint {
  /** The 101 response. */
  readonly head: HttpHead
}

export interface RawHttpAnswer {
  readonly head: HttpHead
  readonly body: Buffer
  /** How the answer ended: "length" (Content-Length reached), "chunked", or "closed" (the server closed first). */
  readonly ending: "length" | "chunked" | "closed"
}

export type UpgradeOutcome =
  | { readonly kind: "open"; readonly ws: RawWebSocket }
  | { readonly kind: "refused"; readonly answer: RawHttpAnswer }
  /** The server closed the connection without sending a single byte. */
  | { readonly kind: "closed"; readonly how: string }

export interface UpgradeOptions {
  readonly port: number
  /** Connect to this unix socket instead of 127.0.0.1:`port` (which then only names the Host). */
  readonly socketPath?: string
  readonly path?: string
  /** Extra/overriding request headers (name → value); null removes a default header. */
  readonly headers?: Readonly<Record<string, string | null>>
  readonly timeoutMs?: number
  readonly autoPong?: boolean
  readonly autoClose?: boolean
}

const parseHead = (text: string): HttpHead => {
  const [firstLine = "", ...lines] = text.split("\r\n")
  const headers = lines.map((line) => {
    const colon = line.indexOf(":")
    return [line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()] as const
  })
  const response = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(firstLine)
  if (response !== null) return { status: Number(response[1]), reason: response[2] ?? "", headers }
  const request = /^(\S+) (\S+) HTTP\/1\.[01]$/.exec(firstLine)
  if (request !== null) return { status: 0, reason: `${request[1]} ${request[2]}`, headers }
  throw new Error(`not an HTTP head: ${JSON.stringify(firstLine)}`)
}

/** The headers of a valid upgrade request to 127.0.0.1:`port`. */
export const upgradeHeaders = (port: number): Record<string, string> => ({
  host: `127.0.0.1:${port}`,
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": randomBytes(16).toString("base64"),
  "sec-websocket-version": "13"
})

/**
 * Sends an upgrade request (GET `path`) to 127.0.0.1:`port`. A 101 gives an open socket; any
 * other answer is read whole (Content-Length, chunked, or until the server closes).
 */
export const upgrade = (options: UpgradeOptions): Promise<UpgradeOutcome> =>
  new Promise((resolve, reject) => {
    const headers: Record<string, string> = upgradeHeaders(options.port)
    for (const [name, value] of Object.entries(options.headers ?? {})) {
      const key = name.toLowerCase()
      if (value === null) delete headers[key]
      else headers[key] = value
    }
    const request = `GET ${options.path ?? "/"} HTTP/1.1\r\n${Object.entries(headers).map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`
    const socket: Socket = createConnection(options.socketPath === undefined ? { host: "127.0.0.1", port: options.port } : { path: options.socketPath })
    socket.setNoDelay(true)
    const timeoutMs = options.timeoutMs ?? 5000
    let settled = false
    let buffered: Buffer = Buffer.alloc(0)
    let head: HttpHead | undefined
    let bodyStart = 0
    let endedHow = "closed"
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      socket.destroy()
      reject(new Error(`upgrade: no whole answer within ${timeoutMs} ms; got ${JSON.stringify(buffered.toString("latin1").slice(0, 300))}`))
    }, timeoutMs)

    const settle = (outcome: UpgradeOutcome) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (outcome.kind !== "open") socket.destroy()
      resolve(outcome)
    }

    const tryFinishRefusal = (atEnd: boolean) => {
      if (head === undefined) return
      const body = buffered.subarray(bodyStart)
      const length = headerOf(head, "content-length")
      if (length !== undefined) {
        if (body.length >= Number(length)) settle({ kind: "refused", answer: { head, body: body.subarray(0, Number(length)), ending: "length" } })
        else if (atEnd) settle({ kind: "refused", answer: { head, body, ending: "closed" } })
        return
      }
      if (headerOf(head, "transfer-encoding")?.toLowerCase() === "chunked") {
        const read = readChunked(body)
        if (read.ended) settle({ kind: "refused", answer: { head, body: Buffer.concat(read.chunks), ending: "chunked" } })
        else if (atEnd) settle({ kind: "refused", answer: { head, body, ending: "closed" } })
        return
      }
      if (atEnd) settle({ kind: "refused", answer: { head, body, ending: "closed" } })
    }

    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      if (head === undefined) {
        const end = buffered.indexOf("\r\n\r\n")
        if (end < 0) return
        head = parseHead(buffered.subarray(0, end).toString("latin1"))
        bodyStart = end + 4
        if (head.status === 101) {
          socket.off("data", onData)
          socket.off("end", onEnd)
          socket.off("close", onEnd)
          socket.off("error", onError)
          const endpoint = openEndpoint(socket, Buffer.from(buffered.subarray(bodyStart)), {
            mask: true,
            endAfterClose: false,
            ...(options.autoPong === undefined ? {} : { autoPong: options.autoPong }),
            ...(options.autoClose === undefined ? {} : { autoClose: options.autoClose })
          })
          settle({ kind: "open", ws: { ...endpoint, head } })
          return
        }
      }
      tryFinishRefusal(false)
    }
    const onEnd = () => {
      if (head === undefined) {
        if (buffered.length === 0) settle({ kind: "closed", how: endedHow })
        else if (!settled) {
          settled = true
          clearTimeout(timer)
          reject(new Error(`upgrade: connection closed inside the response head: ${JSON.stringify(buffered.toString("latin1"))}`))
        }
        return
      }
      tryFinishRefusal(true)
    }
    const onError = (error: Error) => {
      endedHow = `error: ${error.message}`
      onEnd()
    }
    socket.on("data", onData)
    socket.on("end", () => {
      endedHow = "end"
      onEnd()
    })
    socket.on("close", onEnd)
    socket.on("error", onError)
    socket.on("connect", () => socket.write(request))
  })

/** Like `upgrade`, but anything but a 101 is an error. */
export const openWebSocket = async (options: UpgradeOptions): Promise<RawWebSocket> => {
  const outcome = await upgrade(options)
  if (outcome.kind === "refused") {
    throw new Error(`upgrade refused: ${outcome.answer.head.status} ${outcome.answer.head.reason} ${JSON.stringify(outcome.answer.body.toString("utf8").slice(0, 300))}`)
  }
  if (outcome.kind === "closed") throw new Error(`upgrade: the server closed the connection without answering (${outcome.how})`)
  return outcome.ws
}

// ---------------------------------------------------------------------------------------------
// Origin server

export interface OriginUpgradeRequest {
  /** "GET /path?query" */
  readonly requestLine: string
  readonly path: string
  /** In wire order, names lower-cased. */
  readonly headers: ReadonlyArray<readonly [string, string]>
}

/** How the origin answers one upgrade request. */
export type OriginAnswer =
  /** 101 with the right Sec-WebSocket-Accept plus these headers. */
  | { readonly accept: true; readonly headers?: ReadonlyArray<readonly [string, string]> }
  /** These exact bytes, then close the connection. */
  | { readonly accept: false; readonly raw: Buffer | string }

export interface OriginConnection extends WsEndpoint {
  readonly request: OriginUpgradeRequest
}

export interface WsOrigin {
  readonly port: number
  /** Every upgrade request received, accepted or not, in order. */
  readonly requests: Array<OriginUpgradeRequest>
  /** Accepted connections, in order. */
  readonly connections: Array<OriginConnection>
  /** The accepted connection for the request whose path starts with `pathPrefix`; waits for it. */
  connection(pathPrefix: string, timeoutMs?: number): Promise<OriginConnection>
  stop(): Promise<void>
}

export interface WsOriginOptions {
  readonly answer: (request: OriginUpgradeRequest) => OriginAnswer
  /** Called after each event recorded on an accepted connection (after the automatic pong/close replies). */
  readonly onEvent?: (connection: OriginConnection, event: WsEvent) => void
}

/** An origin on 127.0.0.1, ephemeral port. */
export const startWsOrigin = async (options: WsOriginOptions): Promise<WsOrigin> => {
  const requests: Array<OriginUpgradeRequest> = []
  const connections: Array<OriginConnection> = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.setNoDelay(true)
    socket.on("close", () => sockets.delete(socket))
    socket.on("error", () => undefined)
    let buffered: Buffer = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf("\r\n\r\n")
      if (end < 0) return
      socket.off("data", onData)
      const head = parseHead(buffered.subarray(0, end).toString("latin1"))
      const target = head.reason.split(" ")[1] ?? ""
      const request: OriginUpgradeRequest = { requestLine: head.reason, path: target, headers: head.headers }
      requests.push(request)
      const answer = options.answer(request)
      if (!answer.accept) {
        socket.end(answer.raw)
        return
      }
      const key = headerOf(head, "sec-websocket-key") ?? ""
      const accept = createHash("sha1").update(key + WS_GUID).digest("base64")
      const lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Accept: ${accept}`,
        ...(answer.headers ?? []).map(([name, value]) => `${name}: ${value}`)
      ]
      socket.write(`${lines.join("\r\n")}\r\n\r\n`)
      const endpoint = openEndpoint(socket, Buffer.from(buffered.subarray(end + 4)), { mask: false, endAfterClose: true })
      const connection: OriginConnection = { ...endpoint, request }
      connections.push(connection)
      if (options.onEvent !== undefined) {
        const onEvent = options.onEvent
        let seen = 0
        // After openEndpoint's own "data" listener, so the event is recorded before this runs.
        const dispatch = () => {
          while (seen < connection.events.length) {
            const event = connection.events[seen++]
            if (event !== undefined) onEvent(connection, event)
          }
        }
        socket.on("data", dispatch)
        dispatch()
      }
    }
    socket.on("data", onData)
  })
  return {
    port: await listenOnLoopback(server),
    requests,
    connections,
    connection: async (pathPrefix, timeoutMs = 5000) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = connections.find((connection) => connection.request.path.startsWith(pathPrefix))
        if (found !== undefined) return found
        if (Date.now() > deadline) {
          throw new Error(`origin: no connection for ${pathPrefix}; requests: ${JSON.stringify(requests.map((r) => r.path))}`)
        }
        await Bun.sleep(10)
      }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}
