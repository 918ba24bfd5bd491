/**
 * GRIP over WebSocket (Pushpin `src/proxy/wsproxysession.cpp`, `src/handler/wscontrolmessage.cpp`,
 * the `grip` branch of the handler engine's wscontrol loop).
 *
 * Handshake: pushpin-ts never forwards the client's `Sec-WebSocket-Extensions` (it could not speak
 * them to the origin); on a GRIP route it offers `grip` instead. The origin turns GRIP on by
 * answering with `grip`, optionally `grip; message-prefix="<p>"` (default `m:`, empty allowed).
 * No origin extension ever reaches the client, except that a trusted client (another GRIP proxy)
 * or a route without GRIP gets the origin's `grip` element back, so the GRIP layer further out
 * does the work.
 *
 * Messages from a GRIP origin: a text message starting `c:` carries a JSON control message; any
 * other text or binary message must start with the prefix, which is removed before the client
 * gets it (same frame type); the rest are dropped. Client messages go to the origin unchanged.
 *
 * Control messages are decoded with Pushpin's field rules and error texts. Pushpin logs an invalid
 * one at debug level and carries on; only a subscribe with too many filters closes the client
 * connection (1011, since Pushpin 1.41). Where Pushpin is lax this is strict and says so: base64
 * must be base64, and `timeout` must be a JSON integer (Pushpin reads `"10"` as 10 and `"x"` as 0).
 *
 * Everything here works on whole messages. Bun hands over complete messages, so Pushpin's
 * fragment rules (a `c:` message split over frames is ignored, only the first frame is checked
 * for the prefix) have nothing to act on.
 */
import { Result, Schema } from "effect"
import { MAX_FILTERS_PER_CHANNEL } from "../grip/filters.ts"
import { parseHeaderElement, splitHeaderList } from "../grip/header-params.ts"
import type { KeepAliveMode } from "../grip/instruct.ts"
import { decodeBase64, decodeUtf8, EMPTY_BYTES, headerBytes, utf8 } from "../grip/internal/bytes.ts"
import {
  base64,
  int,
  invalidValue,
  issueMessage,
  oneOf,
  required,
  str,
  stringList
} from "../grip/internal/json-fields.ts"
import type { WsMessageType } from "../grip/publish.ts"

export type { KeepAliveMode } from "../grip/instruct.ts"
export type { WsMessageType } from "../grip/publish.ts"

// ---------------------------------------------------------------------------------------------
// Constants

/** The extension token; matched case-sensitively, as Pushpin does. */
export const GRIP_EXTENSION = "grip"
/** Its parameter naming the message prefix; also case-sensitive in Pushpin. */
export const MESSAGE_PREFIX_PARAM = "message-prefix"
/** Prefix of every data message when the origin names none. */
export const DEFAULT_MESSAGE_PREFIX_TEXT = "m:"
/** Text messages starting with this carry a JSON control message. */
export const CONTROL_MESSAGE_PREFIX = "c:"

/** Pushpin's log text for a data message without the prefix. */
export const UNPREFIXED_DROP_REASON = "dropping unprefixed message"

/** `keep-alive` period when the origin gives no positive `timeout`. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS = 55
/** `send-delayed` delay when the origin gives no positive `timeout`. */
export const DEFAULT_SEND_DELAYED_TIMEOUT_SECONDS = 1
/**
 * Largest `timeout` accepted: its milliseconds must fit a signed 32-bit timer, which is what both
 * Pushpin's timers and JavaScript's `setTimeout` take (larger values overflow or fire at once).
 */
export const MAX_CONTROL_TIMEOUT_SECONDS = Math.floor(2_147_483_647 / 1000)

/** Close code for a control message the connection cannot continue after (too many filters). */
export const CLOSE_CODE_INTERNAL_ERROR = 1011

// ---------------------------------------------------------------------------------------------
// Handshake

/**
 * The prefix as bytes (binary messages compare bytes) and as text (text messages compare text).
 * `text` is undefined when the bytes are not UTF-8: no text message can then start with it.
 */
export interface MessagePrefix {
  readonly bytes: Uint8Array
  readonly text: string | undefined
}

/** A prefix from a header parameter value as Fetch `Headers` give it (one character per byte). */
export const messagePrefixOf = (headerValue: string): MessagePrefix => {
  const bytes = headerBytes(headerValue)
  return { bytes, text: decodeUtf8(bytes) }
}

export const DEFAULT_MESSAGE_PREFIX: MessagePrefix = messagePrefixOf(DEFAULT_MESSAGE_PREFIX_TEXT)

export type GripExtension =
  | { readonly _tag: "Absent" }
  /** `element` is the whole `grip; ...` element as received, for passing on to a trusted client. */
  | { readonly _tag: "Present"; readonly prefix: MessagePrefix; readonly element: string }
  /**
   * A `grip` element whose parameters Pushpin could not parse; Pushpin then behaves as if there
   * were none (plain pass-through). `reason` is for the log.
   */
  | { readonly _tag: "Malformed"; readonly reason: string }

const ABSENT: GripExtension = { _tag: "Absent" }

const extensionName = (element: string): string => {
  const semicolon = element.indexOf(";")
  return (semicolon === -1 ? element : element.slice(0, semicolon)).trim()
}

/**
 * Finds the `grip` extension in a `Sec-WebSocket-Extensions` value (several header lines may
 * arrive joined with ", "), as an origin sends it in its 101 response or a client offers it.
 *
 * Pushpin's rules: the first element named exactly `grip` counts; a repeated parameter takes its
 * last value; `message-prefix` without `=` means the empty prefix; `message-prefix=` with nothing
 * after it, or an unterminated quote, makes the element unparseable.
 */
export const parseGripExtension = (header: string | null | undefined): GripExtension => {
  if (header === null || header === undefined) return ABSENT
  const elements = splitHeaderList(header)
  if (elements === undefined) {
    return { _tag: "Malformed", reason: `unterminated quote in Sec-WebSocket-Extensions: ${header}` }
  }
  const raw = elements.find((element) => extensionName(element) === GRIP_EXTENSION)
  if (raw === undefined) return ABSENT
  const malformed: GripExtension = { _tag: "Malformed", reason: `cannot parse grip extension: ${raw}` }
  const parsed = parseHeaderElement(raw)
  if (parsed === undefined) return malformed
  const lastParam = parsed.params[parsed.params.length - 1]
  // Pushpin's parameter reader refuses an `=` that ends the element, where the shared parser
  // reads an empty value.
  if (lastParam !== undefined && lastParam[1] === "" && raw.trimEnd().endsWith("=")) return malformed
  const prefixParam = parsed.params.findLast(([name]) => name === MESSAGE_PREFIX_PARAM)
  const prefix = prefixParam === undefined ? DEFAULT_MESSAGE_PREFIX : messagePrefixOf(prefixParam[1] ?? "")
  return { _tag: "Present", prefix, element: raw }
}

/** Quotes a parameter value when it is not a plain token (RFC 7230 quoted-string). */
const paramValueText = (value: string): string =>
  /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value) ? value : `"${value.replace(/["\\]/g, "\\$&")}"`

/**
 * A `grip` extension element: bare, or naming a prefix (as an origin answers, e.g. in tests or
 * WebSocket-over-HTTP responses).
 */
export const gripExtensionHeader = (messagePrefix?: string): string =>
  messagePrefix === undefined ? GRIP_EXTENSION : `${GRIP_EXTENSION}; ${MESSAGE_PREFIX_PARAM}=${paramValueText(messagePrefix)}`

/**
 * `Sec-WebSocket-Extensions` for the request to the origin: `grip` on a GRIP route, otherwise
 * nothing. The client's own extensions are never forwarded, whatever the route.
 */
export const originRequestExtensions = (routeGrip: boolean): string | undefined =>
  routeGrip ? gripExtensionHeader() : undefined

export interface GripHandshakeOptions {
  /** The route has GRIP on (`grip` target option, default true). */
  readonly routeGrip: boolean
  /** The client is a trusted GRIP proxy; it handles GRIP itself. */
  readonly trustedClient: boolean
}

export type GripHandshake =
  /** pushpin-ts handles control messages and strips the prefix; the client sees no extension. */
  | { readonly _tag: "Grip"; readonly prefix: MessagePrefix }
  /**
   * Relay messages untouched. `clientExtensions`, when set, goes into the client's 101 response
   * (the origin's `grip` element, so the GRIP proxy in front of us can act on it). `malformed`
   * says why an origin's `grip` element was ignored.
   */
  | { readonly _tag: "PassThrough"; readonly clientExtensions?: string; readonly malformed?: string }

/**
 * What the origin's 101 `Sec-WebSocket-Extensions` means for this connection. GRIP messages are
 * only interpreted when the route has GRIP and the client is not itself a GRIP proxy; in the
 * other cases Pushpin hands the origin's `grip` element back to the client instead.
 */
export const negotiateGrip = (originExtensions: string | null | undefined, options: GripHandshakeOptions): GripHandshake => {
  const grip = parseGripExtension(originExtensions)
  switch (grip._tag) {
    case "Absent":
      return { _tag: "PassThrough" }
    case "Malformed":
      return { _tag: "PassThrough", malformed: grip.reason }
    case "Present":
      return options.routeGrip && !options.trustedClient
        ? { _tag: "Grip", prefix: grip.prefix }
        : { _tag: "PassThrough", clientExtensions: grip.element }
  }
}

// ---------------------------------------------------------------------------------------------
// Origin messages

export type OriginTextMessage =
  /** `json` is the text after `c:`; decode it with `decodeControl`. */
  | { readonly _tag: "Control"; readonly json: string }
  | { readonly _tag: "Forward"; readonly content: string }
  | { readonly _tag: "Drop"; readonly reason: string }

export type OriginBinaryMessage =
  | { readonly _tag: "Forward"; readonly content: Uint8Array }
  | { readonly _tag: "Drop"; readonly reason: string }

const startsWithBytes = (data: Uint8Array, prefix: Uint8Array): boolean => {
  if (data.length < prefix.length) return false
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false
  return true
}

/**
 * A text message from a GRIP origin. `c:` is checked before the prefix, so it wins even when the
 * prefix is empty or itself starts with `c:`.
 */
export const classifyOriginText = (message: string, prefix: MessagePrefix): OriginTextMessage => {
  if (message.startsWith(CONTROL_MESSAGE_PREFIX)) {
    return { _tag: "Control", json: message.slice(CONTROL_MESSAGE_PREFIX.length) }
  }
  if (prefix.text === undefined) {
    return { _tag: "Drop", reason: `${UNPREFIXED_DROP_REASON} (the message prefix is not UTF-8 text)` }
  }
  return message.startsWith(prefix.text)
    ? { _tag: "Forward", content: message.slice(prefix.text.length) }
    : { _tag: "Drop", reason: UNPREFIXED_DROP_REASON }
}

/**
 * A binary message from a GRIP origin: never a control message (even if it starts with `c:`),
 * but it needs the prefix just like text.
 */
export const classifyOriginBinary = (message: Uint8Array, prefix: MessagePrefix): OriginBinaryMessage =>
  startsWithBytes(message, prefix.bytes)
    ? { _tag: "Forward", content: message.subarray(prefix.bytes.length) }
    : { _tag: "Drop", reason: UNPREFIXED_DROP_REASON }

// ---------------------------------------------------------------------------------------------
// Control messages

/** A message pushpin-ts sends to the client on the origin's behalf. */
export interface ControlOutgoingMessage {
  readonly type: WsMessageType
  readonly content: Uint8Array
}

export interface WsKeepAlive {
  readonly message: ControlOutgoingMessage
  readonly timeoutSeconds: number
  /** `idle`: sent after that long without a message to the client; `interval`: every period. */
  readonly mode: KeepAliveMode
}

export type GripControl =
  /** `channel` as given: the route `prefix` is not applied yet. */
  | { readonly _tag: "Subscribe"; readonly channel: string; readonly filters: ReadonlyArray<string> }
  | { readonly _tag: "Unsubscribe"; readonly channel: string }
  /** Close the origin side, keep the client; client messages are dropped from then on. */
  | { readonly _tag: "Detach" }
  /** Pushpin's dormant session feature: set the session id, or clear it when absent. */
  | { readonly _tag: "Session"; readonly id?: string }
  /** Set connection meta for filters, or remove it when `value` is absent. */
  | { readonly _tag: "SetMeta"; readonly name: string; readonly value?: string }
  /** Start (or replace) keep-alives; without `keepAlive`, stop them. */
  | { readonly _tag: "KeepAlive"; readonly keepAlive?: WsKeepAlive }
  /** Send after a delay; a pending delayed message is sent at once first. */
  | { readonly _tag: "SendDelayed"; readonly message: ControlOutgoingMessage; readonly delaySeconds: number }
  /** Send the pending delayed message now, if any. */
  | { readonly _tag: "FlushDelayed" }

export type GripControlType =
  | "subscribe"
  | "unsubscribe"
  | "detach"
  | "session"
  | "set-meta"
  | "keep-alive"
  | "send-delayed"
  | "flush-delayed"

export const GRIP_CONTROL_TYPES: ReadonlyArray<GripControlType> = [
  "subscribe",
  "unsubscribe",
  "detach",
  "session",
  "set-meta",
  "keep-alive",
  "send-delayed",
  "flush-delayed"
]

export class GripControlError extends Schema.TaggedError<GripControlError>()("GripControlError", {
  /**
   * `InvalidJson`: not JSON; `Invalid`: a field breaks the rules; `UnknownType`: a `type` Pushpin
   * does not know; `TooManyFilters`: a subscribe naming more than `MAX_FILTERS_PER_CHANNEL`.
   */
  reason: Schema.Literals(["InvalidJson", "Invalid", "UnknownType", "TooManyFilters"]),
  /** Pushpin's text (its debug log line, or the close reason it sends in debug mode). */
  message: Schema.String
}) {
  /**
   * The close code when the error ends the client connection; undefined when Pushpin only logs
   * the message (at debug level) and ignores it.
   */
  get closeCode(): number | undefined {
    return this.reason === "TooManyFilters" ? CLOSE_CODE_INTERNAL_ERROR : undefined
  }
}

const CONTROL = "grip control object"
const MESSAGE_TYPES: ReadonlyArray<WsMessageType> = ["text", "binary", "ping", "pong"]

type Decoded<A> = Result.Result<A, string>

const decodeWith = <S extends Schema.Decoder<unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownResult(schema)
  return (input: unknown): Decoded<S["Type"]> => decode(input).pipe(Result.mapError((e) => issueMessage(e.issue)))
}

const decodeJsonText = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

const decodeTypeJson = decodeWith(Schema.Struct({ type: required(CONTROL, "type", str(CONTROL, "type")) }))

const decodeChannelJson = decodeWith(Schema.Struct({ channel: required(CONTROL, "channel", str(CONTROL, "channel")) }))

// Only subscribe reads `filters`; unsubscribe ignores whatever is there.
const decodeFiltersJson = decodeWith(
  Schema.Struct({
    filters: Schema.optionalKey(stringList(CONTROL, "filters", "filters contains value with wrong type"))
  })
)

const decodeSessionJson = decodeWith(Schema.Struct({ id: Schema.optionalKey(str(CONTROL, "id")) }))

const decodeSetMetaJson = decodeWith(
  Schema.Struct({
    name: required(CONTROL, "name", str(CONTROL, "name")),
    value: Schema.optionalKey(str(CONTROL, "value"))
  })
)

const decodeMessageTypeJson = decodeWith(
  Schema.Struct({
    "message-type": Schema.optionalKey(
      oneOf(CONTROL, "message-type", MESSAGE_TYPES, `${CONTROL} contains 'message-type' with unknown value`)
    )
  })
)
const decodeContentBin = decodeWith(base64(CONTROL, "content-bin"))
const decodeContent = decodeWith(str(CONTROL, "content"))
const decodeTimeout = decodeWith(int(CONTROL, "timeout", 0, MAX_CONTROL_TIMEOUT_SECONDS))
const decodeModeJson = decodeWith(Schema.Struct({ mode: Schema.optionalKey(str(CONTROL, "mode")) }))

/**
 * Fields Pushpin reads as "optional string/list" treat JSON `null` as missing (Qt 5 turns it into
 * an empty variant), so `"value": null` removes meta rather than failing. Content and timeout are
 * looked up by presence instead, so `null` there is a wrong type.
 */
const NULL_MEANS_ABSENT = ["filters", "id", "value", "message-type", "mode"] as const

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const withoutNullOptionals = (object: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> => {
  const copy: Record<string, unknown> = { ...object }
  for (const key of NULL_MEANS_ABSENT) if (copy[key] === null) delete copy[key]
  return copy
}

const isControlType = (type: string): type is GripControlType => GRIP_CONTROL_TYPES.some((known) => known === type)

type Failure = { readonly reason: GripControlError["reason"]; readonly message: string }

const invalid = (message: string): Failure => ({ reason: "Invalid", message })

/** Both message-carrying types share these fields; `content` is absent when neither key is given. */
interface OutgoingFields {
  readonly type: WsMessageType
  readonly content?: Uint8Array
  /** Positive when given; undefined also when `0`, which Pushpin reads as "use the default". */
  readonly timeoutSeconds?: number
}

const outgoingFields = (json: Readonly<Record<string, unknown>>): Decoded<OutgoingFields> =>
  Result.gen(function*() {
    // Pushpin defaults to text even for `content-bin`, so base64 content goes out as a text
    // frame unless `message-type` says binary. Kept: an origin that works with Pushpin expects it.
    const named = (yield* decodeMessageTypeJson(json))["message-type"]
    const type = MESSAGE_TYPES.find((known) => known === named) ?? "text"
    let content: Uint8Array | undefined
    if ("content-bin" in json) {
      content = decodeBase64(yield* decodeContentBin(json["content-bin"])) ?? EMPTY_BYTES
    } else if ("content" in json) {
      content = utf8(yield* decodeContent(json.content))
    }
    if (content === undefined) return { type }
    // Without content Pushpin never looks at `timeout`, so a bad one is not an error then.
    const timeout = "timeout" in json ? yield* decodeTimeout(json.timeout) : 0
    return timeout > 0 ? { type, content, timeoutSeconds: timeout } : { type, content }
  })

const control = (type: GripControlType, json: Readonly<Record<string, unknown>>): Result.Result<GripControl, Failure> =>
  Result.gen(function*() {
    switch (type) {
      case "subscribe":
      case "unsubscribe": {
        const { channel } = yield* decodeChannelJson(json).pipe(Result.mapError(invalid))
        if (channel === "") return yield* Result.fail(invalid(invalidValue(CONTROL, "channel")))
        if (type === "unsubscribe") return { _tag: "Unsubscribe", channel }
        const filters = (yield* decodeFiltersJson(json).pipe(Result.mapError(invalid))).filters ?? []
        if (filters.length > MAX_FILTERS_PER_CHANNEL) {
          return yield* Result.fail<Failure>({ reason: "TooManyFilters", message: `too many filters for channel '${channel}'` })
        }
        return { _tag: "Subscribe", channel, filters }
      }
      case "detach":
        return { _tag: "Detach" }
      case "flush-delayed":
        return { _tag: "FlushDelayed" }
      case "session": {
        const { id } = yield* decodeSessionJson(json).pipe(Result.mapError(invalid))
        return id === undefined || id === "" ? { _tag: "Session" } : { _tag: "Session", id }
      }
      case "set-meta": {
        const { name, value } = yield* decodeSetMetaJson(json).pipe(Result.mapError(invalid))
        if (name === "") return yield* Result.fail(invalid(invalidValue(CONTROL, "name")))
        return value === undefined ? { _tag: "SetMeta", name } : { _tag: "SetMeta", name, value }
      }
      case "keep-alive": {
        const fields = yield* outgoingFields(json).pipe(Result.mapError(invalid))
        const { mode } = yield* decodeModeJson(json).pipe(Result.mapError(invalid))
        if (fields.content === undefined) return { _tag: "KeepAlive" }
        return {
          _tag: "KeepAlive",
          keepAlive: {
            message: { type: fields.type, content: fields.content },
            timeoutSeconds: fields.timeoutSeconds ?? DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS,
            // Pushpin takes anything but "interval" as idle, unknown words included.
            mode: mode === "interval" ? "interval" : "idle"
          }
        }
      }
      case "send-delayed": {
        const fields = yield* outgoingFields(json).pipe(Result.mapError(invalid))
        return {
          _tag: "SendDelayed",
          // Pushpin sends an empty message when no content is given.
          message: { type: fields.type, content: fields.content ?? EMPTY_BYTES },
          delaySeconds: fields.timeoutSeconds ?? DEFAULT_SEND_DELAYED_TIMEOUT_SECONDS
        }
      }
    }
  })

/**
 * Decodes the JSON after `c:`. The error's `message` is Pushpin's text; `closeCode` says whether
 * the connection must close (else log and ignore, as Pushpin).
 */
export const decodeControl = (text: string): Result.Result<GripControl, GripControlError> => {
  const fail = ({ reason, message }: Failure) => Result.fail(new GripControlError({ reason, message }))
  const doc = decodeJsonText(text)
  if (Result.isFailure(doc)) return fail({ reason: "InvalidJson", message: "grip control message is not valid json" })
  if (!isRecord(doc.success)) return fail(invalid("grip control packet is not an object"))
  const json = withoutNullOptionals(doc.success)
  const typeField = decodeTypeJson(json)
  if (Result.isFailure(typeField)) return fail(invalid(typeField.failure))
  const { type } = typeField.success
  if (!isControlType(type)) return fail({ reason: "UnknownType", message: `'type' contains unknown value: ${type}` })
  const decoded = control(type, json)
  return Result.isFailure(decoded) ? fail(decoded.failure) : Result.succeed(decoded.success)
}
