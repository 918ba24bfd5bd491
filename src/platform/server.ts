import { Context, Data } from "effect"

/**
 * The runtime adapter boundary. The core (connmgr, proxy, handler) speaks only web-standard
 * `Request`/`Response` plus this small interface, so a runtime other than Bun needs one new
 * file here and nothing else.
 */

export type ListenerSpec =
  | {
    readonly kind: "tcp"
    readonly host: string
    readonly port: number
    /** Present: the listener speaks TLS (HTTPS and WSS) with these certificates. */
    readonly tls?: TlsServerCertificates
  }
  | { readonly kind: "unix"; readonly path: string }

/** One certificate chain and its private key, both PEM text. */
export interface TlsCertificate {
  readonly cert: string
  readonly key: string
}

export interface TlsServerCertificates {
  /** Used without SNI, and when no `byServerName` entry matches the client's server name. */
  readonly fallback: TlsCertificate
  /** Chosen by SNI; a server name may be a one-label wildcard (`*.example.com`). */
  readonly byServerName: ReadonlyArray<TlsCertificate & { readonly serverName: string }>
}

/** What the runtime knows about the connection a request arrived on. */
export interface ClientConnection {
  readonly remoteAddress: string | undefined
  readonly isTls: boolean
  /** Port of the listener that accepted the connection (0 for unix sockets). */
  readonly listenerPort: number
  /**
   * Stop the runtime's idle timer for this request's connection: held, streamed and slow
   * responses must never be cut by an inactivity timeout that knows nothing about GRIP.
   */
  readonly keepOpen: () => void
  /**
   * Switch this request's connection to WebSocket, answering 101 with `headers` added (the
   * runtime writes Upgrade, Connection and Sec-WebSocket-Accept). False when the request cannot
   * be upgraded; the request handler must then answer it. After true, the handler resolves to
   * `undefined`: the 101 is the answer.
   */
  readonly upgrade: (headers: Headers, handler: ClientWebSocketHandler) => boolean
}

/** What a send did: written to the socket, queued in the runtime's buffer, or dropped (buffer full). */
export type SendOutcome = "sent" | "queued" | "dropped"

/** A client WebSocket after the upgrade. */
export interface ClientWebSocket {
  sendText(text: string): SendOutcome
  sendBinary(data: Uint8Array): SendOutcome
  ping(data: Uint8Array): SendOutcome
  pong(data: Uint8Array): SendOutcome
  /** Close handshake; no code sends a close frame without one. */
  close(code?: number, reason?: string): void
  /** Drop the connection without a close handshake. */
  terminate(): void
  /** Stop reading from the client (backpressure towards it); sending still works. */
  pause(): void
  resume(): void
  /** Bytes waiting in the runtime's send buffer. */
  readonly bufferedAmount: number
}

/**
 * The core's side of one client WebSocket. One object per connection, so the runtime keeps a
 * reference to it and no closures.
 */
export interface ClientWebSocketHandler {
  onOpen(socket: ClientWebSocket): void
  onText(text: string): void
  onBinary(data: Uint8Array): void
  onPing(data: Uint8Array): void
  onPong(data: Uint8Array): void
  /** The send buffer emptied after a send returned `queued`. */
  onDrain(): void
  /** Always last, exactly once. 1005: close frame without a code; 1006: no close frame. */
  onClose(code: number, reason: string): void
}

/** `undefined` means the request was upgraded to a WebSocket. */
export type RequestHandler = (request: Request, client: ClientConnection) => Response | undefined | Promise<Response | undefined>

export interface ServeOptions {
  readonly listener: ListenerSpec
  readonly handler: RequestHandler
  /** Seconds a connection may sit idle (no request in progress) before it is closed. */
  readonly idleTimeoutSeconds: number
  /** Largest request body the runtime will accept before answering 413 itself. */
  readonly maxRequestBodyBytes: number
  /** Called when the runtime's own handler threw; must return the response to send. */
  readonly onError: (error: unknown) => Response
}

export interface RunningServer {
  /** The port actually bound (useful when the spec asked for port 0). */
  readonly port: number
  readonly description: string
  /** Requests in progress right now (a gauge, read cheaply). */
  readonly pendingRequests: () => number
  /** Open client WebSockets right now (a gauge). */
  readonly openWebSockets: () => number
  /** Close every open client WebSocket with a close frame (graceful stop: 1001 "going away"). */
  readonly closeWebSockets: (code: number, reason: string) => void
  /** Stop accepting; when `force`, close connections that are still open. */
  readonly stop: (force: boolean) => Promise<void>
}

/**
 * A request to an origin as a proxy sends it: a redirect comes back as the response it is, and a
 * compressed body stays compressed (the client asked for it; the proxy relays it).
 */
export interface OriginFetchInit {
  readonly method: string
  readonly headers: Headers
  readonly body?: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null
  readonly signal?: AbortSignal
  /** The route target's `insecure`: accept any certificate. */
  readonly insecure?: boolean
}

/**
 * A TCP or TLS byte stream to an origin, under an origin WebSocket. Event order: `onConnect`
 * once (for TLS, after the certificate checks), then `onData` in wire order, then `onClose`
 * once; `onError` may come just before `onClose` and says why. Closes asked for with
 * `terminate` are not reported.
 */
export interface OriginTransportListener {
  /** Connected; for TLS the handshake passed (or `rejectUnauthorized` is off). */
  readonly onConnect: () => void
  readonly onData: (chunk: Uint8Array) => void
  /** Everything written has reached the kernel, after some of it had to wait. */
  readonly onDrain: () => void
  /** The connection failed (before or after connecting); `onClose` follows. */
  readonly onError: (error: Error) => void
  /** The peer closed, or the connection failed. Once, last. */
  readonly onClose: () => void
}

export interface OriginTransportOptions {
  readonly host: string
  readonly port: number
  /** Absent for plain TCP. */
  readonly tls?: {
    /** SNI and the name the certificate must carry; absent for an IP address. */
    readonly serverName?: string
    readonly rejectUnauthorized: boolean
  }
}

export interface OriginTransport {
  /**
   * Once. Kept apart from creation so the listener may refer to the transport even if something
   * is reported before `connect` returns.
   */
  connect(options: OriginTransportOptions): void
  /** Where events go from now on (the handshake hands the stream to the open connection). */
  listen(listener: OriginTransportListener): void
  /** Bytes accepted by `write` that the kernel has not taken yet. */
  readonly bufferedAmount: number
  readonly isClosed: boolean
  /** Never blocks and never drops: what the kernel does not take now waits for it. */
  write(bytes: Uint8Array): void
  pause(): void
  resume(): void
  /** Half-close once everything written is out; reading goes on until the peer closes. */
  end(): void
  /** Drop the connection now, unwritten bytes included. Not reported to the listener. */
  terminate(): void
}

/**
 * A response body written to as events come (held streams): `write` hands bytes to the
 * runtime for the client at once. It returns `"sent"`, or a promise when the client is not
 * keeping up and the runtime is buffering for it; the promise settles once that buffer drained.
 */
export interface PushBodyWriter {
  write(bytes: Uint8Array): "sent" | Promise<unknown>
  /** Ends the body properly (for chunked responses, the terminating chunk). */
  close(): void
}

/** The body's side of the core: one object per body, so the runtime keeps no closures. */
export interface PushBodySource {
  /** The runtime is ready for bytes (it started sending the response). */
  onWritable(writer: PushBodyWriter): void
  /** The client went away before the body ended. */
  onCancel(): void
}

export interface ServerRuntime {
  readonly name: string
  readonly serve: (options: ServeOptions) => RunningServer
  /** An HTTP request to an origin (see OriginFetchInit). */
  readonly fetchOrigin: (url: string, init: OriginFetchInit) => Promise<Response>
  /** A new, unconnected byte stream to an origin that reports to `listener`. */
  readonly originTransport: (listener: OriginTransportListener) => OriginTransport
  /** A body for `new Response(...)` that `source` writes to (see PushBodyWriter). */
  readonly pushBody: (source: PushBodySource) => ReadableStream<Uint8Array>
  /** A full garbage collection that hands freed memory back to the OS (it pauses the process). */
  readonly releaseMemory: () => void
}

/** A listener could not be opened (port in use, permission, bad address). */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly address: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot listen on ${this.address}: ${this.reason}`
  }
}

/** The runtime every listener (clients, publish API) is opened with. */
export class ServerRuntimeService extends Context.Service<ServerRuntimeService, ServerRuntime>()(
  "pushpin-ts/platform/ServerRuntime"
) {}
