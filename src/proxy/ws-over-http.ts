/**
 * WebSocket-over-HTTP (target option `over_http`), the gateway side: a client WebSocket is carried
 * to the origin as a series of HTTP POSTs of `application/websocket-events` (pushpin-protocols.md
 * §6.4; Pushpin `src/proxy/websocketoverhttp.cpp`).
 *
 * `makeOverHttpConnector` gives the proxy its `connectOverHttp` (see WsProxyDeps in ws-proxy.ts):
 * the handshake is one request carrying OPEN. Its answer is either a refusal, relayed to the
 * client as is, or OPEN, after which a `WohConnection` (ws-over-http-connection.ts) carries the
 * connection. The machinery sits beside this file: the outbox and its acceptance rules
 * (ws-over-http-outbox.ts), the exchange rules and bounds (ws-over-http-exchange.ts).
 */
import { randomUUID } from "node:crypto"
import { Result } from "effect"
import type { Schedule } from "effect"
import { TimerWheel, type TimerEntry } from "../handler/timer-wheel.ts"
import type { ClientConnection, ServerRuntime } from "../platform/server.ts"
import {
  applyMetaUpdates,
  clientHandshakeResponseHeaders,
  decodeEvents,
  encodeEvents,
  hasWebSocketEventsContentType,
  keepAliveUpdateFromResponse,
  metaFromResponseHeaders
} from "../websocket/events.ts"
import { OriginConnectError, type OriginRejected } from "../websocket/origin-client.ts"
import type { OriginSocketHandshake } from "../websocket/origin-socket.ts"
import { MAX_REJECTION_BODY_BYTES } from "../websocket/upgrade-response.ts"
import { type WohEnvironment, type WohTimers, WohConnection } from "./ws-over-http-connection.ts"
import {
  baseRequestHeaders,
  MAX_REQUEST_CONTENT_BYTES,
  MAX_RESPONSE_BODY_BYTES,
  readBody,
  REQUEST_TIMEOUT_MS,
  RequestTimeout,
  requestFailure,
  requestHeaders,
  RETRY_SCHEDULE
} from "./ws-over-http-exchange.ts"
import type { WsConnectRequest } from "./ws-proxy.ts"

export { WohConnection } from "./ws-over-http-connection.ts"

export interface OverHttpDeps {
  /** A fresh `Grip-Sig` for each request to the origin (undefined when the route does not sign). */
  readonly gripSig: (request: WsConnectRequest) => string | undefined
  /** The runtime adapter's origin requests (each one a POST of events). */
  readonly fetchOrigin: ServerRuntime["fetchOrigin"]
  /** Tests only: the timer loop (default: a shared `TimerWheel` that runs while it has entries). */
  readonly timers?: WohTimers
  /** Tests only: the retry policy of later requests (default RETRY_SCHEDULE). */
  readonly retrySchedule?: Schedule.Schedule<unknown>
  readonly requestTimeoutMs?: number
  /** Counts each request sent again after a failure (metrics). */
  readonly onRetry?: () => void
}

/**
 * One `TimerWheel` for every WOH connection's keep-alive and request timeout, ticking only while
 * it holds entries: an idle gateway runs no interval at all.
 */
export class SharedTimerLoop implements WohTimers {
  private readonly wheel = new TimerWheel()

  constructor() {
    this.wheel.onTick(() => {
      if (this.wheel.size === 0) this.wheel.stop()
    })
  }

  makeEntry(fire: () => void): TimerEntry {
    return this.wheel.makeEntry(fire)
  }

  schedule(entry: TimerEntry, delayMs: number): void {
    this.wheel.start()
    this.wheel.schedule(entry, delayMs)
  }

  cancel(entry: TimerEntry): void {
    this.wheel.cancel(entry)
  }

  /** Entries scheduled now (a gauge; 0 once every connection has ended). */
  get size(): number {
    return this.wheel.size
  }
}

/** The same bytes typed for `fetch` (which refuses views of a SharedArrayBuffer); copies only then. */
const arrayBufferView = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => {
  const buffer = bytes.buffer
  return buffer instanceof ArrayBuffer ? new Uint8Array(buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes)
}

let sharedTimers: SharedTimerLoop | undefined

export const makeOverHttpConnector = (deps: OverHttpDeps) => {
  const timers = deps.timers ?? (sharedTimers ??= new SharedTimerLoop())
  return (request: WsConnectRequest, _client: ClientConnection): Promise<OriginSocketHandshake> => {
    const { target } = request
    const authority = `${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`
    const uri = `${target.ssl ? "https" : "http"}://${authority}${request.path}`
    const env: WohEnvironment = {
      post: (headers, body, signal) =>
        deps.fetchOrigin(uri, { method: "POST", headers, body: arrayBufferView(body), signal, insecure: target.insecure }),
      gripSig: () => deps.gripSig(request),
      timers,
      retrySchedule: deps.retrySchedule ?? RETRY_SCHEDULE,
      requestTimeoutMs: deps.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
      limits: { maxContentBytes: MAX_REQUEST_CONTENT_BYTES, maxEvents: target.oneEvent ? 1 : undefined },
      uri,
      ...(deps.onRetry === undefined ? {} : { onRetry: deps.onRetry })
    }
    return openOverHttp(env, request.headers)
  }
}

/** `OriginSocketHandshake` with the connection's own type. */
export type WohHandshake =
  | OriginRejected
  | { readonly _tag: "Open"; readonly connection: WohConnection; readonly headers: Headers }

/**
 * The handshake: POST `OPEN`. Resolves `Rejected` when the origin refuses (anything but a 200
 * of `application/websocket-events`), `Open` when it answers OPEN (or nothing, with a
 * `Keep-Alive-Interval`). Rejects with `OriginConnectError` when the request never reached the
 * origin (the proxy then tries the next target), and with an `Error` for a broken answer (502).
 * The handshake is never retried.
 */
export const openOverHttp = async (env: WohEnvironment, handshakeHeaders: Headers): Promise<WohHandshake> => {
  const connectionId = randomUUID()
  const baseHeaders = baseRequestHeaders(handshakeHeaders)
  const headers = requestHeaders(baseHeaders, { connectionId, meta: new Map(), gripSig: env.gripSig(), replayedBytes: 0 })
  const where = `POST ${env.uri}`

  const controller = new AbortController()
  const timeout = env.timers.makeEntry(() => controller.abort(new RequestTimeout(env.requestTimeoutMs)))
  env.timers.schedule(timeout, env.requestTimeoutMs)
  let response: Response
  let body: Uint8Array
  try {
    try {
      response = await env.post(headers, encodeEvents([{ type: "OPEN" }]), controller.signal)
    } catch (error) {
      const failure = requestFailure(controller.signal.aborted ? controller.signal.reason : error, where)
      if (failure.reason === "connect") throw new OriginConnectError({ code: failure.code, message: failure.message })
      throw new Error(failure.message)
    }
    if (response.status !== 200 || !hasWebSocketEventsContentType(response.headers)) {
      // Refused: relayed with at most MAX_REJECTION_BODY_BYTES of its body, as Pushpin cuts it.
      const rejection = await readBody(response, MAX_REJECTION_BODY_BYTES, "truncate")
      const { status, statusText } = response
      return { _tag: "Rejected", status, statusText, headers: response.headers, body: rejection._tag === "Complete" ? rejection.bytes : new Uint8Array(0) }
    }
    const read = await readBody(response, MAX_RESPONSE_BODY_BYTES, "fail")
    if (read._tag === "TooLarge") throw new Error(`${where}: handshake response body exceeds ${MAX_RESPONSE_BODY_BYTES} bytes`)
    body = read.bytes
  } catch (error) {
    if (error instanceof OriginConnectError || !controller.signal.aborted) throw error
    throw new Error(requestFailure(controller.signal.reason, where).message)
  } finally {
    env.timers.cancel(timeout)
  }

  const keepAlive = keepAliveUpdateFromResponse(response.headers)
  const keepAliveSeconds = keepAlive._tag === "Interval" ? keepAlive.seconds : undefined
  const decoded = decodeEvents(body)
  if (Result.isFailure(decoded)) throw new Error(`${where}: handshake response: ${decoded.failure.message}`)
  const events = decoded.success
  const first = events[0]
  if (first === undefined && keepAliveSeconds === undefined) {
    throw new Error(`${where}: handshake response has no OPEN event and no Keep-Alive-Interval`)
  }
  if (first !== undefined && first.type !== "OPEN") {
    throw new Error(`${where}: handshake response starts with ${first.type}, not OPEN`)
  }

  const connection = new WohConnection(env, {
    connectionId,
    baseHeaders,
    meta: applyMetaUpdates(new Map(), metaFromResponseHeaders(response.headers)),
    keepAliveSeconds
  })
  // Events after OPEN wait for `start`; a CLOSE or DISCONNECT among them ends the connection then.
  const problem = connection.receive(events.slice(1))
  if (problem !== undefined) {
    connection.terminate()
    throw new Error(`${where}: handshake response: ${problem}`)
  }
  connection.pump()
  return { _tag: "Open", connection, headers: clientHandshakeResponseHeaders(response.headers) }
}
