/**
 * A WebSocket client for origins, over a raw TCP or TLS connection (the runtime adapter's
 * `OriginTransport`).
 *
 * Why not Bun's `WebSocket`: when an origin refuses the upgrade, Pushpin relays the refusal
 * (status, reason, headers, body up to 100 000 bytes) to the client, and Bun's client only
 * reports "error". Owning the socket also gives exact control over ping/pong payloads, close
 * codes and reasons, and backpressure in both directions.
 *
 * This is the per-connection data path, so it is plain callbacks, no Effect (see
 * architecture.md, "Hot paths stay plain"). The caller wraps `connectOriginWebSocket` once.
 *
 * Invariants of an open connection:
 * - Nothing is delivered before `start(handlers)`, and nothing while paused: the socket stops
 *   reading, so a slow client slows its origin through TCP instead of filling memory here.
 * - Events arrive in wire order, and `onClose` is called exactly once, last.
 * - Pings are never answered here: the proxy relays pings and pongs end to end, as Pushpin
 *   does, so the client's pong (with its payload) answers the origin's ping.
 */
import { createHash, randomBytes } from "node:crypto"
import { isIP, isIPv6 } from "node:net"
import { Schema } from "effect"
import { EMPTY_BYTES, utf8 } from "../grip/internal/bytes.ts"
import {
  DEFAULT_MAX_MESSAGE_BYTES,
  encodeClosePayload,
  encodeFrame,
  FrameDecoder,
  MessageAssembler,
  Opcode,
  type WebSocketMessage,
  WebSocketProtocolError
} from "./frames.ts"
import type { OriginTransport, OriginTransportListener, OriginTransportOptions } from "../platform/server.ts"
import { headerTokens, OriginHandshakeError, ResponseReader, type ReaderStep } from "./upgrade-response.ts"

export { MAX_REJECTION_BODY_BYTES, MAX_RESPONSE_HEAD_BYTES, OriginHandshakeError } from "./upgrade-response.ts"

// ---------------------------------------------------------------------------------------------
// Constants

/** RFC 6455 §1.3: appended to the key before hashing into Sec-WebSocket-Accept. */
const ACCEPT_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/**
 * Connect plus handshake. Pushpin's connmgr gives up on a session with no activity after 60 s
 * (`ZHTTP_SESSION_TIMEOUT`); an origin that takes longer to answer an upgrade is treated alike.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 60_000

/**
 * How long to wait for the origin's side of a close handshake (its close frame after ours, or
 * its TCP close after the frames are exchanged) before dropping the socket.
 */
export const CLOSE_HANDSHAKE_TIMEOUT_MS = 5_000

/**
 * Masks only have to be unpredictable to whoever chooses the payload (RFC 6455 §10.3), so they
 * come from one CSPRNG fill of this many bytes instead of a call per frame.
 */
const MASK_POOL_BYTES = 4096

/** Headers this client writes itself; a caller's values for them are not sent. */
const HANDSHAKE_HEADERS: ReadonlySet<string> = new Set([
  "upgrade",
  "connection",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-accept",
  // The upgrade request has no body; announcing one would make the origin wait for it.
  "content-length",
  "transfer-encoding"
])

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * No connection to the origin (refused, unreachable, DNS, TLS, timeout): nothing reached it, so
 * the caller may fail over to the next target. `code` is Node's (`ECONNREFUSED`, `ENOTFOUND`,
 * `ETIMEDOUT`, a TLS code such as `DEPTH_ZERO_SELF_SIGNED_CERT`), or `EUNKNOWN` when none came.
 */
export class OriginConnectError extends Schema.TaggedError<OriginConnectError>()("OriginConnectError", {
  code: Schema.String,
  message: Schema.String
}) {}


// ---------------------------------------------------------------------------------------------
// API

export interface OriginWebSocketOptions {
  readonly host: string
  readonly port: number
  /** wss: TLS to the origin. */
  readonly tls: boolean
  /** The route target's `insecure`: accept any certificate. */
  readonly insecure?: boolean
  /** TLS server name (SNI and certificate check); defaults to `host` unless it is an IP address. */
  readonly servername?: string
  /** Request target, e.g. `/chat?room=1`. */
  readonly path: string
  /**
   * Sent as given (Host, Sec-WebSocket-Protocol, Sec-WebSocket-Extensions, Grip-Sig, …), except
   * the handshake's own headers (see HANDSHAKE_HEADERS). Host defaults to `host:port`.
   */
  readonly headers: Headers
  readonly timeoutMs?: number
  /** Largest message accepted from the origin; a longer one fails the connection with 1009. */
  readonly maxMessageBytes?: number
}

/** The origin refused the upgrade; relay this to the client. */
export interface OriginRejected {
  readonly _tag: "Rejected"
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
  readonly body: Uint8Array
}

export interface OriginOpen {
  readonly _tag: "Open"
  readonly connection: OriginWebSocket
  /** The 101's headers (Sec-WebSocket-Protocol, Sec-WebSocket-Extensions, …). */
  readonly headers: Headers
}

export type OriginHandshake = OriginRejected | OriginOpen

export type OriginMessageHandler = (...message: ["text", string] | ["binary", Uint8Array]) => void

export interface OriginWebSocketHandlers {
  readonly onMessage: OriginMessageHandler
  readonly onPing: (payload: Uint8Array) => void
  readonly onPong: (payload: Uint8Array) => void
  /**
   * Always last, exactly once. After a close frame from the origin, `wasClean` is true and `code`
   * is its code (undefined when the frame had none: 1005 for the client). Otherwise (TCP ended,
   * protocol error, timeout, `terminate`) `wasClean` is false and `code` undefined: 1006.
   */
  readonly onClose: (code: number | undefined, reason: string, wasClean: boolean) => void
  /** `bufferedAmount` fell back after a write had filled the socket's buffer. */
  readonly onDrain: () => void
  /** Why the connection failed, just before `onClose(…, false)`; absent for a plain TCP end. */
  readonly onError?: (error: WebSocketProtocolError | Error) => void
}

/** A message or control frame from an origin socket, as stand-in sockets queue them. */
export type OriginMessage =
  | { readonly kind: "text"; readonly data: string }
  | { readonly kind: "binary" | "ping" | "pong"; readonly data: Uint8Array }

/** Hands one queued message to the socket's handlers. */
export const deliverOriginMessage = (handlers: OriginWebSocketHandlers, message: OriginMessage): void => {
  switch (message.kind) {
    case "text":
      return handlers.onMessage("text", message.data)
    case "binary":
      return handlers.onMessage("binary", message.data)
    case "ping":
      return handlers.onPing(message.data)
    case "pong":
      return handlers.onPong(message.data)
  }
}

/**
 * Resolves once the origin answered the upgrade: `Open` or `Rejected`. Rejects with
 * `OriginConnectError` (try the next target) or `OriginHandshakeError`.
 */
export const connectOriginWebSocket = (
  options: OriginWebSocketOptions,
  /** The runtime adapter's `originTransport`. */
  openTransport: (listener: OriginTransportListener) => OriginTransport
): Promise<OriginHandshake> =>
  new Promise((resolve, reject) => {
    const key = randomBytes(16).toString("base64")
    const request = handshakeRequest(options, key)
    const reader = new ResponseReader()
    let connected = false
    let settled = false

    const where = (): string => `${options.tls ? "wss" : "ws"}://${hostPort(options.host, options.port)}`

    const timeoutMs = options.timeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS
    const timer = setTimeout(() => {
      if (!connected) {
        const message = `cannot connect to ${where()}: no connection after ${timeoutMs} ms`
        fail(new OriginConnectError({ code: "ETIMEDOUT", message }))
      } else {
        const message = `${where()} did not answer the upgrade within ${timeoutMs} ms`
        fail(new OriginHandshakeError({ reason: "timeout", message }))
      }
    }, timeoutMs)

    const settle = (): boolean => {
      if (settled) return false
      settled = true
      clearTimeout(timer)
      // Whatever the transport reports from now on belongs to the connection, or to nobody.
      transport.listen(IGNORING_LISTENER)
      return true
    }
    const fail = (error: OriginConnectError | OriginHandshakeError): void => {
      if (!settle()) return
      transport.terminate()
      reject(error)
    }
    const handle = (step: ReaderStep): void => {
      switch (step._tag) {
        case "NeedMore":
          return
        case "Failed":
          return fail(step.error)
        case "Rejected": {
          if (!settle()) return
          transport.terminate()
          const { status, statusText, headers } = step.head
          return resolve({ _tag: "Rejected", status, statusText, headers, body: step.body })
        }
        case "Switching": {
          const problem = checkSwitchingHead(step.head.headers, key, options.headers)
          if (problem !== undefined) {
            return fail(new OriginHandshakeError({ reason: "invalid-response", message: problem }))
          }
          if (!settle()) return
          transport.pause()
          const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
          const connection = new OriginWebSocket(transport, step.rest, maxMessageBytes)
          return resolve({ _tag: "Open", connection, headers: step.head.headers })
        }
      }
    }
    const onError = (error: Error): void => {
      if (!connected) {
        const message = `cannot connect to ${where()}: ${error.message}`
        fail(new OriginConnectError({ code: errorCode(error), message }))
      } else {
        const message = `connection to ${where()} failed: ${error.message}`
        fail(new OriginHandshakeError({ reason: "closed", message }))
      }
    }
    const onClose = (): void => {
      if (!connected) {
        fail(new OriginConnectError({ code: "EUNKNOWN", message: `cannot connect to ${where()}: connection closed` }))
      } else {
        handle(reader.end())
      }
    }
    const transport = openTransport({
      onConnect: () => {
        connected = true
        transport.write(request)
      },
      onData: (chunk) => handle(reader.feed(chunk)),
      onDrain: () => {},
      onError,
      onClose
    })
    transport.connect(transportOptions(options))
  })

// ---------------------------------------------------------------------------------------------
// Open connection

type Inbound =
  | WebSocketMessage
  | { readonly kind: "failed"; readonly error: WebSocketProtocolError }
  | { readonly kind: "disconnected"; readonly error: Error | undefined }

/** An open WebSocket to an origin. Made by `connectOriginWebSocket`; call `start` to receive. */
export class OriginWebSocket {
  private state: "open" | "closing" | "closed" = "open"
  private handlers: OriginWebSocketHandlers | undefined = undefined
  private paused = true
  private delivering = false
  /** `onClose` has been called: nothing more is delivered. */
  private finished = false
  /** Decoded and not yet delivered; at most what one socket read held. */
  private inbound: Array<Inbound> = []
  private inboundHead = 0
  private readonly decoder: FrameDecoder
  private readonly assembler: MessageAssembler
  private transportError: Error | undefined = undefined
  private closeTimer: ReturnType<typeof setTimeout> | undefined = undefined

  /** @internal */
  constructor(
    private readonly transport: OriginTransport,
    bytesAfterHead: Uint8Array,
    maxMessageBytes: number
  ) {
    this.decoder = new FrameDecoder({ masking: "forbidden", maxPayloadBytes: maxMessageBytes })
    this.assembler = new MessageAssembler({ maxMessageBytes })
    transport.listen({
      onConnect: () => {},
      onData: (chunk) => this.receive(chunk),
      onDrain: () => {
        if (!this.finished) this.handlers?.onDrain()
      },
      onError: (error) => {
        this.transportError ??= error
      },
      onClose: () => this.disconnected()
    })
    if (bytesAfterHead.length > 0) this.receive(bytesAfterHead)
  }

  /** "closing": our close frame is sent and the origin's is awaited. */
  get readyState(): "open" | "closing" | "closed" {
    return this.state
  }

  /** Bytes handed to the socket and not yet written to the kernel; pause sending while high. */
  get bufferedAmount(): number {
    return this.transport.bufferedAmount
  }

  /** Begin delivering, starting with any frames that came with the 101. Once only. */
  start(handlers: OriginWebSocketHandlers): void {
    if (this.handlers !== undefined) throw new Error("OriginWebSocket.start called twice")
    this.handlers = handlers
    this.resume()
  }

  /** Stop reading from the origin; events already decoded wait too. */
  pause(): void {
    this.paused = true
    this.transport.pause()
  }

  resume(): void {
    if (this.handlers === undefined) return
    this.paused = false
    this.deliver()
    if (!this.paused && !this.finished) this.transport.resume()
  }

  // Sending is ignored once a close has been sent or received: RFC 6455 §5.5.1 allows no data
  // after a close frame, and the origin would discard it. Callers check `readyState` first if
  // they must count such drops.

  sendText(text: string): void {
    this.send(Opcode.Text, utf8(text))
  }

  sendBinary(data: Uint8Array): void {
    this.send(Opcode.Binary, data)
  }

  /** The payload (≤125 bytes) reaches the origin unchanged; the origin's pong goes to `onPong`. */
  ping(payload: Uint8Array = EMPTY_BYTES): void {
    this.send(Opcode.Ping, payload)
  }

  /** Relays a client's pong; never sent automatically (see the file header). */
  pong(payload: Uint8Array = EMPTY_BYTES): void {
    this.send(Opcode.Pong, payload)
  }

  /**
   * Starts the close handshake: `onClose` follows when the origin answers, or, after
   * CLOSE_HANDSHAKE_TIMEOUT_MS without an answer, as unclean. Reading resumes even if paused, so
   * the answer can arrive. Throws RangeError for a code that may not be sent (1005, 1006, …).
   */
  close(code?: number, reason?: string): void {
    if (this.state !== "open") return
    const payload = encodeClosePayload(code, reason)
    this.state = "closing"
    this.writeFrame(Opcode.Close, payload)
    this.closeTimer = setTimeout(() => this.abandon(), CLOSE_HANDSHAKE_TIMEOUT_MS)
    if (this.handlers !== undefined) this.resume()
  }

  /** Drop the TCP connection without a close handshake (the client vanished, say). */
  terminate(): void {
    if (this.finished) return
    this.state = "closed"
    clearTimeout(this.closeTimer)
    this.transport.terminate()
    if (this.handlers === undefined) {
      this.finished = true
      return
    }
    // Pending events are dropped and onClose comes now, even while paused: the caller asked.
    this.inbound = [{ kind: "disconnected", error: undefined }]
    this.inboundHead = 0
    this.paused = false
    this.deliver()
  }

  private send(opcode: Opcode, payload: Uint8Array): void {
    if (this.state === "open") this.writeFrame(opcode, payload)
  }

  private writeFrame(opcode: Opcode, payload: Uint8Array): void {
    this.transport.write(encodeFrame({ fin: true, opcode, payload, mask: nextMask() }))
  }

  /** The transport closed: the origin ended TCP, or the connection failed. */
  private disconnected(): void {
    clearTimeout(this.closeTimer)
    if (this.state === "closed" && this.finished) return
    this.state = "closed"
    this.enqueue({ kind: "disconnected", error: this.transportError })
  }

  /** The origin did not finish the close handshake in time: drop it, uncleanly. */
  private abandon(): void {
    this.transport.terminate()
    this.disconnected()
  }

  private receive(chunk: Uint8Array): void {
    const { frames, error } = this.decoder.feed(chunk)
    for (const frame of frames) {
      const assembled = this.assembler.push(frame)
      if (assembled._tag === "Failure") {
        this.enqueue({ kind: "failed", error: assembled.failure })
        return
      }
      if (assembled.success !== undefined) this.enqueue(assembled.success)
    }
    if (error !== undefined) this.enqueue({ kind: "failed", error })
  }

  private enqueue(event: Inbound): void {
    if (this.finished) return
    this.inbound.push(event)
    this.deliver()
  }

  private deliver(): void {
    // A handler may call pause, close or terminate; the loop re-checks after each event instead
    // of starting a nested one.
    if (this.delivering) return
    this.delivering = true
    try {
      while (!this.paused && !this.finished && this.inboundHead < this.inbound.length) {
        const event = this.inbound[this.inboundHead++]
        if (event !== undefined) this.dispatch(event)
      }
      if (this.inboundHead === this.inbound.length) {
        this.inbound = []
        this.inboundHead = 0
      }
    } finally {
      this.delivering = false
    }
  }

  private dispatch(event: Inbound): void {
    const handlers = this.handlers
    if (handlers === undefined) return
    switch (event.kind) {
      case "text":
        return handlers.onMessage("text", event.data)
      case "binary":
        return handlers.onMessage("binary", event.data)
      case "ping":
        return handlers.onPing(event.payload)
      case "pong":
        return handlers.onPong(event.payload)
      case "close":
        // The origin started the close: answer with its code and reason (RFC 6455 §5.5.1
        // "typically echos"; Pushpin relays the client's echo). If we started it, this frame is
        // the answer. Either way TCP may end now.
        if (this.state === "open") this.writeFrame(Opcode.Close, encodeClosePayload(event.code, event.reason))
        this.state = "closed"
        this.endSocket()
        return this.finish(() => handlers.onClose(event.code, event.reason, true))
      case "failed":
        // RFC 6455 §7.1.7: fail the connection, telling the origin why when it can still hear.
        if (this.state === "open") {
          this.writeFrame(Opcode.Close, encodeClosePayload(event.error.closeCode, event.error.message))
        }
        this.state = "closed"
        this.endSocket()
        return this.finish(() => {
          handlers.onError?.(event.error)
          handlers.onClose(undefined, "", false)
        })
      case "disconnected":
        return this.finish(() => {
          if (event.error !== undefined) handlers.onError?.(event.error)
          handlers.onClose(undefined, "", false)
        })
    }
  }

  private finish(notify: () => void): void {
    this.finished = true
    this.inbound = []
    this.inboundHead = 0
    notify()
  }

  /** Half-close, then let the origin close TCP (RFC 6455 §7.1.1: the server closes first). */
  private endSocket(): void {
    if (this.transport.isClosed) return
    this.transport.resume()
    this.transport.end()
    clearTimeout(this.closeTimer)
    this.closeTimer = setTimeout(() => this.abandon(), CLOSE_HANDSHAKE_TIMEOUT_MS)
  }
}

// ---------------------------------------------------------------------------------------------
// Handshake request and response

const transportOptions = (options: OriginWebSocketOptions): OriginTransportOptions => {
  if (!options.tls) return { host: options.host, port: options.port }
  const serverName = options.servername ?? (isIP(options.host) === 0 ? options.host : undefined)
  const rejectUnauthorized = options.insecure !== true
  return { host: options.host, port: options.port, tls: serverName === undefined ? { rejectUnauthorized } : { serverName, rejectUnauthorized } }
}

const hostPort = (host: string, port: number): string => `${isIPv6(host) ? `[${host}]` : host}:${port}`

let maskPool = randomBytes(MASK_POOL_BYTES)
let maskPoolAt = 0

/** Four fresh random bytes; `encodeFrame` copies them, so the pool's memory can be reused. */
const nextMask = (): Uint8Array => {
  if (maskPoolAt === MASK_POOL_BYTES) {
    maskPool = randomBytes(MASK_POOL_BYTES)
    maskPoolAt = 0
  }
  maskPoolAt += 4
  return maskPool.subarray(maskPoolAt - 4, maskPoolAt)
}

/** Visible ASCII only: anything else would break the request line. */
const REQUEST_TARGET = /^[\x21-\x7e]+$/

const handshakeRequest = (options: OriginWebSocketOptions, key: string): Uint8Array => {
  if (!REQUEST_TARGET.test(options.path)) throw new RangeError(`invalid request target ${JSON.stringify(options.path)}`)
  const lines = [`GET ${options.path} HTTP/1.1`]
  if (!options.headers.has("host")) lines.push(`Host: ${hostPort(options.host, options.port)}`)
  for (const [name, value] of options.headers) if (!HANDSHAKE_HEADERS.has(name)) lines.push(`${name}: ${value}`)
  lines.push("Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Key: ${key}`, "Sec-WebSocket-Version: 13")
  // Header values hold one byte per character (see headerBytes in grip/internal/bytes.ts).
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1")
}

export const webSocketAccept = (key: string): string =>
  createHash("sha1").update(key + ACCEPT_GUID).digest("base64")

/** Undefined when the 101 is acceptable (RFC 6455 §4.1, the client's checks). */
const checkSwitchingHead = (headers: Headers, key: string, requestHeaders: Headers): string | undefined => {
  const upgrade = headers.get("upgrade")
  if (upgrade?.toLowerCase() !== "websocket") {
    return `origin answered 101 with Upgrade ${JSON.stringify(upgrade)}, expected "websocket"`
  }
  if (!headerTokens(headers.get("connection")).includes("upgrade")) {
    return `origin answered 101 with Connection ${JSON.stringify(headers.get("connection"))}, expected "Upgrade"`
  }
  const accept = headers.get("sec-websocket-accept")
  const expected = webSocketAccept(key)
  if (accept !== expected) {
    const got = JSON.stringify(accept)
    return `origin answered 101 with Sec-WebSocket-Accept ${got}, expected "${expected}" for the key sent`
  }
  const protocol = headers.get("sec-websocket-protocol")
  if (protocol !== null) {
    const offered = (requestHeaders.get("sec-websocket-protocol") ?? "").split(",").map((p) => p.trim())
    if (!offered.includes(protocol)) {
      return `origin chose Sec-WebSocket-Protocol ${JSON.stringify(protocol)}, which was not offered`
    }
  }
  return undefined
}

const ignore = (): void => {}

const IGNORING_LISTENER: OriginTransportListener = {
  onConnect: ignore,
  onData: ignore,
  onDrain: ignore,
  onError: ignore,
  onClose: ignore
}

const errorCode = (error: Error): string => {
  const code: unknown = "code" in error ? error.code : undefined
  return typeof code === "string" ? code : "EUNKNOWN"
}
