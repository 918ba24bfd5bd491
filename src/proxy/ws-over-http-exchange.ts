/**
 * WebSocket-over-HTTP: one request/response exchange with the origin, without connection state.
 * The bounds, the headers every request carries, how a failed request is classified (retry or
 * give up), the retry schedule, and reading a response body under a limit.
 */
import { Data, Effect, Schedule } from "effect"
import { WEBSOCKET_EVENTS_CONTENT_TYPE, stripClientRequestHeaders } from "../websocket/events.ts"
import { errorCode, NEVER_REACHED_ORIGIN_CODES } from "./connect-errors.ts"

// ---------------------------------------------------------------------------------------------
// Bounds (Pushpin's values, src/proxy/websocketoverhttp.cpp)

/**
 * Client content carried by one request. It is also how much may wait for the origin before the
 * client's messages stop being read (the bridge pauses the client on `bufferedAmount`).
 */
export const MAX_REQUEST_CONTENT_BYTES = 200_000

/** A larger response body fails the connection: the gateway buffers whole bodies. */
export const MAX_RESPONSE_BODY_BYTES = 1_000_000

/**
 * Origin events waiting for a paused client. Past this, no request carrying new client content
 * is sent, since its answer could only add to the pile (keep-alives, refreshes, the close and
 * DISCONNECT still go).
 */
export const MAX_INBOUND_BUFFER_BYTES = 200_000

/**
 * An exchange that has not completed after this long fails. Pushpin's connmgr drops an HTTP
 * session with no activity for 60 s (`ZHTTP_SESSION_TIMEOUT`); an origin that holds a WOH
 * request that long is not answering.
 */
export const REQUEST_TIMEOUT_MS = 60_000

/** Retries of a later request that never reached the origin (the handshake is never retried). */
export const RETRY_MAX = 5
/** First retry delay; each next one doubles it: 1, 2, 4, 8, 16 s. */
export const RETRY_BASE_MS = 1_000
/** Up to this much is added to each delay so connections cut off together do not return together. */
export const RETRY_JITTER_MS = 1_000

/**
 * The retry policy of later requests: 1, 2, 4, 8, 16 s, each plus up to 1 s of jitter, then give
 * up (Pushpin's RETRY_TIMEOUT, RETRY_MAX, RETRY_RAND_MAX).
 */
export const RETRY_SCHEDULE: Schedule.Schedule<unknown> = Schedule.exponential(RETRY_BASE_MS, 2).pipe(
  Schedule.addDelay(() => Effect.sync(() => Math.floor(Math.random() * RETRY_JITTER_MS))),
  Schedule.upTo({ times: RETRY_MAX })
)

// ---------------------------------------------------------------------------------------------
// Request headers

/**
 * Client handshake headers that make no sense on a POST of events, and the per-request ones this
 * gateway writes (Grip-Sig is fresh on every request). The client's Sec-WebSocket-Key and
 * Sec-WebSocket-Version are replayed, as Pushpin (1.36 to 1.41) does: origins may use the key to
 * tell connections apart.
 */
const HANDSHAKE_ONLY_HEADERS = [
  "connection",
  "sec-websocket-accept",
  "transfer-encoding",
  "content-type",
  "content-bytes-replayed",
  "grip-sig"
] as const

/**
 * What every request of a connection replays from the client's handshake: the proxy's rewritten
 * handshake headers without `Upgrade`, `Accept`, `Connection-Id`, `Content-Length`, any `Meta-*`
 * (events.ts `stripClientRequestHeaders`) and the handshake's own headers.
 */
export const baseRequestHeaders = (handshakeHeaders: Headers): Headers => {
  const headers = stripClientRequestHeaders(handshakeHeaders)
  for (const name of HANDSHAKE_ONLY_HEADERS) headers.delete(name)
  return headers
}

export interface PerRequestHeaders {
  readonly connectionId: string
  /** Bound by `Set-Meta-*`; sent as `Meta-<name>`. */
  readonly meta: ReadonlyMap<string, string>
  readonly gripSig: string | undefined
  /** Content at the start of this body that an earlier request already carried. */
  readonly replayedBytes: number
}

/** The headers of one request (Content-Length is fetch's, from the body). */
export const requestHeaders = (base: Headers, request: PerRequestHeaders): Headers => {
  const headers = new Headers(base)
  headers.set("accept", WEBSOCKET_EVENTS_CONTENT_TYPE)
  headers.set("content-type", WEBSOCKET_EVENTS_CONTENT_TYPE)
  headers.set("connection-id", request.connectionId)
  for (const [name, value] of request.meta) headers.set(`meta-${name}`, value)
  if (request.gripSig !== undefined) headers.set("grip-sig", request.gripSig)
  if (request.replayedBytes > 0) headers.set("content-bytes-replayed", String(request.replayedBytes))
  return headers
}

// ---------------------------------------------------------------------------------------------
// Response headers

const DECIMAL = /^[+-]?[0-9]+$/

/**
 * `Content-Bytes-Accepted`, or undefined when absent or unusable (Pushpin then counts everything
 * offered as accepted: a negative or non-numeric value is ignored, not an error).
 */
export const contentBytesAccepted = (headers: Headers): number | undefined => {
  const value = headers.get("content-bytes-accepted")?.trim()
  if (value === undefined || !DECIMAL.test(value)) return undefined
  const bytes = Number.parseInt(value, 10)
  return bytes >= 0 && bytes <= 0x7fffffff ? bytes : undefined
}

// ---------------------------------------------------------------------------------------------
// Failures

export type RequestFailureReason =
  /** No connection (refused, unreachable, DNS, TLS): the origin never saw the request. */
  | "connect"
  /** No complete answer within REQUEST_TIMEOUT_MS. */
  | "timeout"
  /** The connection broke after it was made, or the body could not be read. */
  | "broken"

/**
 * A WOH request that got no usable response. Only `connect` failures are retried: after any
 * other the origin may have acted on the events, and sending them again would repeat them.
 */
export class WohRequestError extends Data.TaggedError("WohRequestError")<{
  readonly reason: RequestFailureReason
  /** Bun's or Node's error code (`ECONNREFUSED`, …), or `ETIMEDOUT` for our own timeout. */
  readonly code: string
  readonly message: string
}> {
  get retryable(): boolean {
    return this.reason === "connect"
  }
}

/** The abort reason of an exchange that ran out of time. */
export class RequestTimeout extends Error {
  constructor(readonly timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`)
  }
}

/** Classifies what fetch (or reading its body) threw. */
export const requestFailure = (error: unknown, where: string): WohRequestError => {
  if (error instanceof WohRequestError) return error
  if (error instanceof RequestTimeout) {
    return new WohRequestError({ reason: "timeout", code: "ETIMEDOUT", message: `${where}: ${error.message}` })
  }
  const code = errorCode(error) ?? "EUNKNOWN"
  const text = error instanceof Error ? error.message : String(error)
  const reason = NEVER_REACHED_ORIGIN_CODES.has(code) ? "connect" : "broken"
  return new WohRequestError({ reason, code, message: `${where}: ${text}` })
}

// ---------------------------------------------------------------------------------------------
// Bodies

export type BodyRead =
  | { readonly _tag: "Complete"; readonly bytes: Uint8Array }
  | { readonly _tag: "TooLarge" }

/**
 * Reads the whole body if it fits in `limit` bytes. When it does not, stops reading (cancelling
 * the rest) and says so; with `truncate`, returns the first `limit` bytes instead.
 */
export const readBody = async (response: Response, limit: number, mode: "fail" | "truncate"): Promise<BodyRead> => {
  const body = response.body
  if (body === null) return { _tag: "Complete", bytes: new Uint8Array(0) }
  const declared = Number(response.headers.get("content-length") ?? Number.NaN)
  if (mode === "fail" && declared > limit) {
    await body.cancel().catch(ignore)
    return { _tag: "TooLarge" }
  }
  const reader = body.getReader()
  const chunks: Array<Uint8Array> = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    if (size + value.length > limit) {
      await reader.cancel().catch(ignore)
      if (mode === "fail") return { _tag: "TooLarge" }
      chunks.push(value.subarray(0, limit - size))
      size = limit
      break
    }
    chunks.push(value)
    size += value.length
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    bytes.set(chunk, at)
    at += chunk.length
  }
  return { _tag: "Complete", bytes }
}

const ignore = (): void => {}
