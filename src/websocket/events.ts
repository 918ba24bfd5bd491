/**
 * WebSocket-over-HTTP (WOH) events: the `application/websocket-events` body exchanged between
 * the gateway and an `over_http` origin (Pushpin `src/proxy/websocketoverhttp.cpp`), plus the
 * header rules of those exchanges that need no connection state.
 *
 * A body is events back to back, each `TYPE\r\n` or `TYPE <hex length>\r\n<content>\r\n`.
 * Content is raw bytes and may itself contain CRLF, so decoding works on bytes and trusts the
 * declared length, never a search for the next line break.
 *
 * Decoding accepts what Pushpin accepts as long as nothing is lost or misread, and refuses the
 * rest with a message naming the event and the problem. Pushpin's parser takes truncated
 * content, a wrong terminator after content and unknown type names without complaint, and then
 * delivers short messages or drops events silently; an origin with such a bug would never find
 * out, so those are errors here. Where Pushpin is strict (a line with no CRLF, a length that is
 * not a number) this is strict too.
 */
import { Result, Schema } from "effect"

export const WEBSOCKET_EVENTS_CONTENT_TYPE = "application/websocket-events"

export const WS_EVENT_TYPES = ["OPEN", "TEXT", "BINARY", "PING", "PONG", "CLOSE", "DISCONNECT"] as const

export type WsEventType = (typeof WS_EVENT_TYPES)[number]

export interface WsEvent {
  readonly type: WsEventType
  /**
   * Absent: written as `TYPE\r\n`. Present, even empty: written with a length (`TYPE 0\r\n\r\n`).
   * Receivers treat both as "no content"; keeping them apart makes decode/encode round-trip.
   */
  readonly content?: Uint8Array
}

export class WsEventsError extends Schema.TaggedError<WsEventsError>()("WsEventsError", {
  message: Schema.String
}) {}

/**
 * Pushpin reads the length with a C `int`, and refuses the whole body when it does not fit;
 * it is also far past any body the gateway accepts (1 000 000 bytes).
 */
export const MAX_EVENT_CONTENT_LENGTH = 0x7fffffff

const CR = 0x0d
const LF = 0x0a
const SPACE = 0x20

const ascii = (text: string): Uint8Array => {
  const out = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i)
  return out
}

export const encodeEvents = (events: ReadonlyArray<WsEvent>): Uint8Array => {
  const parts = events.map((event) => ({
    head: ascii(
      event.content === undefined ? `${event.type}\r\n` : `${event.type} ${event.content.length.toString(16)}\r\n`
    ),
    content: event.content
  }))
  let size = 0
  for (const { head, content } of parts) size += head.length + (content === undefined ? 0 : content.length + 2)
  const out = new Uint8Array(size)
  let at = 0
  for (const { head, content } of parts) {
    out.set(head, at)
    at += head.length
    if (content === undefined) continue
    out.set(content, at)
    at += content.length
    out[at++] = CR
    out[at++] = LF
  }
  return out
}

const isEventType = (name: string): name is WsEventType => (WS_EVENT_TYPES as ReadonlyArray<string>).includes(name)

const indexOfCrlf = (bytes: Uint8Array, from: number): number => {
  for (let i = from; i + 1 < bytes.length; i++) if (bytes[i] === CR && bytes[i + 1] === LF) return i
  return -1
}

/** One character per byte: type names and lengths are ASCII, and anything else must simply not match. */
const latin1 = (bytes: Uint8Array): string => {
  let out = ""
  for (const byte of bytes) out += String.fromCharCode(byte)
  return out
}

const QUOTE_LIMIT = 40

/** For error messages: printable ASCII as is, other bytes escaped, long input cut. */
const quote = (bytes: Uint8Array): string => {
  let out = ""
  for (const byte of bytes.subarray(0, QUOTE_LIMIT)) {
    if (byte === 0x27 || byte === 0x5c) out += `\\${String.fromCharCode(byte)}`
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte)
    else if (byte === CR) out += "\\r"
    else if (byte === LF) out += "\\n"
    else out += `\\x${byte.toString(16).padStart(2, "0")}`
  }
  return `'${out}${bytes.length > QUOTE_LIMIT ? "…" : ""}'`
}

const LONGEST_TYPE_NAME = Math.max(...WS_EVENT_TYPES.map((type) => type.length))

const HEX_DIGITS = /^[0-9A-Fa-f]+$/

const fail = (eventNumber: number, problem: string) =>
  Result.fail(new WsEventsError({ message: `event ${eventNumber}: ${problem}` }))

export const decodeEvents = (body: Uint8Array): Result.Result<ReadonlyArray<WsEvent>, WsEventsError> => {
  const events: Array<WsEvent> = []
  let at = 0
  while (at < body.length) {
    const eventNumber = events.length + 1
    const lineEnd = indexOfCrlf(body, at)
    if (lineEnd === -1) {
      // Pushpin refuses the whole body here too: without the CRLF it cannot tell where the
      // type line ends.
      return fail(eventNumber, `type line ${quote(body.subarray(at))} is not terminated by CRLF`)
    }
    const line = body.subarray(at, lineEnd)
    at = lineEnd + 2
    if (line.length === 0) {
      // Pushpin ignores an event with an empty type; a stray blank line usually means the
      // previous event's declared length was short, so say so rather than skip it.
      return fail(eventNumber, "empty line where an event type was expected")
    }
    const space = line.indexOf(SPACE)
    const typeBytes = space === -1 ? line : line.subarray(0, space)
    const typeName = typeBytes.length <= LONGEST_TYPE_NAME ? latin1(typeBytes) : ""
    if (!isEventType(typeName)) {
      // Pushpin compares type names exactly and silently ignores any it does not know,
      // lower-case ones included, so the origin's message would just vanish.
      const hint = isEventType(typeName.toUpperCase()) ? " (event types are upper-case)" : ""
      return fail(eventNumber, `unknown event type ${quote(typeBytes)}${hint}`)
    }
    if (space === -1) {
      events.push({ type: typeName })
      continue
    }

    const lengthBytes = line.subarray(space + 1)
    const lengthText = latin1(lengthBytes)
    // Pushpin's number parsing would also take a sign, surrounding blanks or a `0x` prefix;
    // no encoder writes those, and a negative length makes its parser walk backwards.
    if (!HEX_DIGITS.test(lengthText)) return fail(eventNumber, `length ${quote(lengthBytes)} is not hexadecimal`)
    const length = Number.parseInt(lengthText, 16)
    if (length > MAX_EVENT_CONTENT_LENGTH) {
      return fail(eventNumber, `length ${quote(lengthBytes)} is too large (limit ${MAX_EVENT_CONTENT_LENGTH} bytes)`)
    }
    const present = body.length - at
    if (length > present) {
      // Pushpin keeps whatever is there and delivers a shorter message.
      return fail(eventNumber, `content truncated: declared ${length} bytes, ${present} present`)
    }
    // A copy, not a view: a view would keep the whole response body alive for as long as any
    // one small message from it waits to be sent.
    const content = body.slice(at, at + length)
    at += length

    // Pushpin skips the two bytes after content without looking at them. A terminator cut short
    // by the end of the body (Pushpin accepts that too) loses nothing, so it is allowed; other
    // bytes there mean the declared length is wrong and the events after it would be misread.
    const terminator = body.subarray(at, at + 2)
    if ((terminator.length > 0 && terminator[0] !== CR) || (terminator.length > 1 && terminator[1] !== LF)) {
      return fail(eventNumber, `content of declared length ${length} is followed by ${quote(terminator)}, not CRLF`)
    }
    at += 2
    events.push({ type: typeName, content })
  }
  return Result.succeed(events)
}

export interface ClosePayload {
  readonly code: number
  readonly reason: string
}

const utf8Encoder = new TextEncoder()

/**
 * A CLOSE event with a status code and optional reason. Throws RangeError for a code that does
 * not fit the two bytes on the wire: that is a bug in the caller, not peer input. For a CLOSE
 * without a code (Pushpin sends one when the client gave none) use `{ type: "CLOSE" }`.
 */
export const closeEvent = (code: number, reason = ""): WsEvent => {
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
    throw new RangeError(`close code ${code} does not fit in 16 bits`)
  }
  const reasonBytes = utf8Encoder.encode(reason)
  const content = new Uint8Array(2 + reasonBytes.length)
  content[0] = code >> 8
  content[1] = code & 0xff
  content.set(reasonBytes, 2)
  return { type: "CLOSE", content }
}

// Not fatal: Pushpin decodes the reason leniently (invalid sequences become U+FFFD), and a
// close reason is informational, so a bad byte should not lose the close code with it.
const lenientUtf8Decoder = new TextDecoder("utf-8")

/**
 * Code and reason of a CLOSE event's content; undefined when there is no code. As in Pushpin,
 * fewer than two bytes (none, or a lone byte) count as a close without a code.
 */
export const parseClosePayload = (content: Uint8Array | undefined): ClosePayload | undefined => {
  if (content === undefined || content.length < 2) return undefined
  const high = content[0] ?? 0
  const low = content[1] ?? 0
  return { code: (high << 8) | low, reason: lenientUtf8Decoder.decode(content.subarray(2)) }
}

// ---------------------------------------------------------------------------------------------
// Headers

/**
 * Pushpin compares the whole value, case and parameters included, so
 * `application/websocket-events; charset=utf-8` is refused (a rejection on the first request, a
 * connection error later).
 */
export const hasWebSocketEventsContentType = (headers: Headers): boolean =>
  headers.get("content-type") === WEBSOCKET_EVENTS_CONTENT_TYPE

/** Names the gateway sets itself on every origin request, so the client's copies are dropped. */
const GATEWAY_OWNED_REQUEST_HEADERS = ["upgrade", "accept", "connection-id", "content-length"] as const

const META_PREFIX = "meta-"
const SET_META_PREFIX = "set-meta-"

/**
 * The client's handshake headers as replayed on each origin request: without `Upgrade`, `Accept`,
 * `Connection-Id`, `Content-Length` and every `Meta-*`. Meta is what the origin bound with
 * `Set-Meta-*`; a client able to send `Meta-*` could impersonate it (say, claim another user).
 */
export const stripClientRequestHeaders = (clientHeaders: Headers): Headers => {
  const out = new Headers()
  for (const [name, value] of clientHeaders) {
    if ((GATEWAY_OWNED_REQUEST_HEADERS as ReadonlyArray<string>).includes(name)) continue
    if (name.startsWith(META_PREFIX)) continue
    out.append(name, value)
  }
  return out
}

export interface MetaUpdate {
  /** Lower-cased (Fetch header names are), sent back as `Meta-<name>`. */
  readonly name: string
  /** Empty: unbind the name. */
  readonly value: string
}

/**
 * The `Set-Meta-<name>` headers of an origin response, in Fetch's order (sorted by name). A bare
 * `Set-Meta-` (no name) is ignored, as Pushpin does. Values stay as received so they are echoed
 * byte for byte. Fetch joins a repeated `Set-Meta-X` into one "a, b" value, where Pushpin would
 * apply each in turn and keep the last; origins have no reason to repeat one.
 */
export const metaFromResponseHeaders = (responseHeaders: Headers): ReadonlyArray<MetaUpdate> => {
  const updates: Array<MetaUpdate> = []
  for (const [name, value] of responseHeaders) {
    if (name.length > SET_META_PREFIX.length && name.startsWith(SET_META_PREFIX)) {
      updates.push({ name: name.slice(SET_META_PREFIX.length), value })
    }
  }
  return updates
}

/** Meta after a response's updates: later requests carry each entry as `Meta-<name>: <value>`. */
export const applyMetaUpdates = (
  meta: ReadonlyMap<string, string>,
  updates: ReadonlyArray<MetaUpdate>
): ReadonlyMap<string, string> => {
  const out = new Map(meta)
  for (const { name, value } of updates) {
    // Pushpin removes then re-adds, so a rebound name moves to the end of the list it sends.
    out.delete(name)
    if (value !== "") out.set(name, value)
  }
  return out
}

/** Names only the gateway reads; they describe the WOH exchange, not the WebSocket. */
const GATEWAY_ONLY_RESPONSE_HEADERS = ["content-length", "content-type", "keep-alive-interval"] as const

/** The origin's handshake response headers as the client's 101 carries them. */
export const clientHandshakeResponseHeaders = (originHeaders: Headers): Headers => {
  const out = new Headers()
  for (const [name, value] of originHeaders) {
    if ((GATEWAY_ONLY_RESPONSE_HEADERS as ReadonlyArray<string>).includes(name)) continue
    if (name.length > SET_META_PREFIX.length && name.startsWith(SET_META_PREFIX)) continue
    out.append(name, value)
  }
  return out
}

/**
 * Shorter `Keep-Alive-Interval`s are raised to this: each keep-alive is a full HTTP request to
 * the origin, so a tiny interval would turn every idle connection into a polling loop.
 */
export const MIN_KEEP_ALIVE_INTERVAL_SECONDS = 20

/** What a response's `Keep-Alive-Interval` does to the connection's keep-alive requests. */
export type KeepAliveUpdate =
  /** No header: the previous setting stays (Pushpin only changes it when the header is present). */
  | { readonly _tag: "Unchanged" }
  /** Zero, negative or not a number: no keep-alive requests. */
  | { readonly _tag: "Disabled" }
  | { readonly _tag: "Interval"; readonly seconds: number }

const DECIMAL_INT = /^[+-]?[0-9]+$/
const INT_MAX = 0x7fffffff

export const keepAliveUpdateFromResponse = (responseHeaders: Headers): KeepAliveUpdate => {
  const value = responseHeaders.get("keep-alive-interval")
  if (value === null) return { _tag: "Unchanged" }
  // Pushpin parses a C `int` in base 10 (sign allowed; Fetch already trimmed blanks), and takes
  // anything unparsable or out of range as "disable".
  const text = value.trim()
  const seconds = DECIMAL_INT.test(text) ? Number.parseInt(text, 10) : Number.NaN
  if (!(seconds > 0 && seconds <= INT_MAX)) return { _tag: "Disabled" }
  return { _tag: "Interval", seconds: Math.max(seconds, MIN_KEEP_ALIVE_INTERVAL_SECONDS) }
}
