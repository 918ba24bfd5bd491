/**
 * GRIP instructions in an origin response (Pushpin `src/handler/instruct.cpp`).
 *
 * An origin asks for a hold with `Grip-*` headers, or with an `application/grip-instruct` JSON
 * body (status 200 only). Headers are read first; the JSON then overrides what it names, adds
 * channels and meta, and replaces the response headers and body entirely. The result says what
 * to hold, on which channels, and what the client gets now (stream / next link) or on timeout
 * (response hold). Error texts are Pushpin's where it has one.
 *
 * Where Pushpin silently skips a malformed `Grip-Channel`, `Grip-Set-Meta`, `Grip-Link` or
 * `Grip-Keep-Alive` element (so the client would be held on fewer channels than the origin
 * named, or never get a keep-alive), this refuses the instruction instead.
 */
import { Result, Schema } from "effect"
import { MAX_FILTERS_PER_CHANNEL } from "./filters.ts"
import {
  findParam,
  type HeaderParam,
  paramValue,
  parseHeaderElement,
  parseHeaderList,
  parseHeaderPairs,
  splitHeaderList
} from "./header-params.ts"
import { decodeBase64, decodeUtf8, EMPTY_BYTES, headerText, utf8 } from "./internal/bytes.ts"
import {
  base64,
  type HeaderList,
  headerList,
  headers as headersField,
  int,
  issueMessage,
  notAnObject,
  oneOf,
  required,
  str,
  stringList,
  stringMap,
  wrongType
} from "./internal/json-fields.ts"
import { decodeKeepAliveData, KEEP_ALIVE_FORMATS, type KeepAliveFormat } from "./keepalive.ts"
import { statusReason } from "./status-reasons.ts"

export type { HeaderList } from "./internal/json-fields.ts"

/** Response-hold timeout when the origin names none. */
export const DEFAULT_RESPONSE_TIMEOUT_SECONDS = 55
/** Shorter response-hold timeouts are raised to this, so a held request is not a busy loop. */
export const MINIMUM_RESPONSE_TIMEOUT_SECONDS = 5
/** Keep-alive interval when `Grip-Keep-Alive` / JSON `keep-alive` names none. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS = 55
/** Shorter keep-alive intervals (0) are raised to this; a zero timer would spin. */
export const MINIMUM_KEEP_ALIVE_TIMEOUT_SECONDS = 1
/** How long a stream may go without news on every channel before its next link is re-fetched. */
export const DEFAULT_NEXT_LINK_TIMEOUT_SECONDS = 120

export const GRIP_INSTRUCT_CONTENT_TYPE = "application/grip-instruct"

export type HoldMode = "none" | "response" | "stream"

/** `idle`: the timer restarts whenever data is sent; `interval`: fixed period. */
export type KeepAliveMode = "idle" | "interval"

export interface InstructChannel {
  /** Route `prefix` already prepended: the name to subscribe to. */
  readonly name: string
  /** Id of the last item the origin already included (reliability). */
  readonly prevId?: string
  /** Filter names in order, at most `MAX_FILTERS_PER_CHANNEL`. */
  readonly filters: ReadonlyArray<string>
}

export interface KeepAlive {
  /** What to write; may be empty when the JSON `keep-alive` gave only a timeout. */
  readonly data: Uint8Array
  readonly timeoutSeconds: number
  readonly mode: KeepAliveMode
}

export interface NextLink {
  /** Absolute: resolved against the request URI. */
  readonly uri: string
  readonly timeoutSeconds: number
}

export interface InstructResponse {
  readonly code: number
  readonly reason: string
  /** Without `Grip-*` headers, and only the exposed ones when `Grip-Expose-Headers` is given. */
  readonly headers: HeaderList
  readonly body: Uint8Array
}

export interface Instruct {
  readonly holdMode: HoldMode
  readonly channels: ReadonlyArray<InstructChannel>
  /** Response-hold timeout, never below `MINIMUM_RESPONSE_TIMEOUT_SECONDS`. */
  readonly timeoutSeconds: number
  readonly keepAlive?: KeepAlive
  /** Subscription meta (`Grip-Set-Meta`, JSON `meta`) for filters. */
  readonly meta: ReadonlyMap<string, string>
  readonly nextLink?: NextLink
  /** Absolute URI POSTed when the client goes away. */
  readonly goneLink?: string
  /** `Grip-Status` as given (reason filled from the table when absent); already in `response`. */
  readonly status?: { readonly code: number; readonly reason: string }
  /** `Grip-Expose-Headers` names, lower-cased; already applied to `response.headers`. */
  readonly exposeHeaders?: ReadonlyArray<string>
  /** The initial response (stream, next link) or the timeout response (response hold). */
  readonly response: InstructResponse
}

export class InstructError extends Schema.TaggedError<InstructError>()("InstructError", {
  message: Schema.String
}) {}

export interface OriginResponse {
  readonly status: number
  /** The origin's reason phrase; the standard one for `status` when absent or empty. */
  readonly reason?: string
  /** As Fetch gives them: repeated headers arrive joined with ", ", which GRIP lists allow. */
  readonly headers: Headers
  readonly body: Uint8Array
  /** The URI the request was made to; relative `Grip-Link`s resolve against it. */
  readonly requestUri: string
}

export interface InstructOptions {
  /** Route `prefix`, prepended to every channel name. */
  readonly prefix?: string
  /** `connection_subscription_max`: channels past this many are dropped (Pushpin logs it at debug). */
  readonly connectionSubscriptionMax?: number
}

const isInstructContentType = (headers: Headers): boolean =>
  (headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() === GRIP_INSTRUCT_CONTENT_TYPE

/** Pushpin's test for handing a response to the GRIP handler: instruct body or any `Grip-*` header. */
export const isGripResponse = (headers: Headers): boolean => {
  if (isInstructContentType(headers)) return true
  for (const name of headers.keys()) if (name.startsWith("grip-")) return true
  return false
}

/**
 * A stream hold whose channel has a `prev-id` needs a next link to recover from; without one
 * Pushpin never subscribes and the client waits forever. The session reports this after sending
 * the initial response.
 */
export const streamHoldError = (instruct: Instruct): InstructError | undefined => {
  if (instruct.holdMode !== "stream" || instruct.nextLink !== undefined) return undefined
  const channel = instruct.channels.find((c) => c.prevId !== undefined)
  return channel === undefined
    ? undefined
    : new InstructError({ message: `channel '${channel.name}' specifies prev-id, but no next link found` })
}

export const parseInstruct = (
  origin: OriginResponse,
  options: InstructOptions = {}
): Result.Result<Instruct, InstructError> =>
  Result.gen(function*() {
    const header = (name: string): string | undefined => origin.headers.get(name) ?? undefined

    let holdMode = yield* parseHold(header("grip-hold"))
    const channels = yield* parseChannels(header("grip-channel"))
    let timeout = yield* parseTimeout(header("grip-timeout"))
    const exposeHeaders = yield* parseExposeHeaders(header("grip-expose-headers"))
    let keepAlive = yield* parseKeepAlive(header("grip-keep-alive"))
    const meta = yield* parseMeta(header("grip-set-meta"))
    const status = yield* parseStatus(header("grip-status"))
    const links = yield* parseLinks(header("grip-link"), origin.requestUri)

    let code = status?.code ?? origin.status
    let reason = status === undefined ? (origin.reason ?? "") : status.reason
    let headers: HeaderList = responseHeaders(origin.headers, exposeHeaders)
    let body = origin.body

    if (isInstructContentType(origin.headers)) {
      if (origin.status !== 200) return yield* Result.fail("response code for application/grip-instruct content must be 200")
      const doc = yield* parseInstructJson(origin.body)
      if (doc.hold !== undefined) {
        holdMode = doc.hold.mode === "stream" ? "stream" : "response"
        for (const c of doc.hold.channels) {
          channels.push(yield* channel(c.name, c["prev-id"], c.filters ?? []))
        }
        if (doc.hold.timeout !== undefined) timeout = doc.hold.timeout
        const ka = doc.hold["keep-alive"]
        if (ka !== undefined) {
          const content = ka["content-bin"] !== undefined
            ? decodeBase64(ka["content-bin"])
            : ka.content !== undefined
            ? utf8(ka.content)
            : undefined
          keepAlive = {
            data: content ?? keepAlive?.data ?? EMPTY_BYTES,
            timeoutSeconds: ka.timeout ?? DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS,
            // JSON has no mode. Pushpin leaves it unset then, and an unset mode is never reset by
            // sent data, i.e. it behaves as "interval".
            mode: keepAlive?.mode ?? "interval"
          }
        }
        for (const [key, value] of Object.entries(doc.hold.meta ?? {})) meta.set(key, value)
      }

      // The JSON alone describes the response: origin headers and body are dropped even when
      // it has no "response" object.
      headers = []
      body = EMPTY_BYTES
      const response = doc.response
      if (response !== undefined) {
        if (response.code !== undefined) {
          code = response.code
          reason = ""
        }
        if (response.reason !== undefined && response.reason !== "") reason = response.reason
        if (response.headers !== undefined) headers = headerList(response.headers)
        if (response["body-bin"] !== undefined) body = decodeBase64(response["body-bin"]) ?? EMPTY_BYTES
        else if (response.body !== undefined) body = utf8(response.body)
      }
    }

    const prefix = options.prefix ?? ""
    const max = options.connectionSubscriptionMax ?? Number.POSITIVE_INFINITY
    const subscribed = channels.slice(0, max).map((c) => ({ ...c, name: prefix + c.name }))

    const instruct: Instruct = {
      holdMode,
      channels: subscribed,
      timeoutSeconds: Math.max(timeout ?? DEFAULT_RESPONSE_TIMEOUT_SECONDS, MINIMUM_RESPONSE_TIMEOUT_SECONDS),
      meta,
      response: { code, reason: reason === "" ? statusReason(code) : reason, headers, body },
      ...(keepAlive === undefined
        ? {}
        : {
          keepAlive: {
            ...keepAlive,
            timeoutSeconds: Math.max(keepAlive.timeoutSeconds, MINIMUM_KEEP_ALIVE_TIMEOUT_SECONDS)
          }
        }),
      ...(links.next === undefined ? {} : { nextLink: links.next }),
      ...(links.gone === undefined ? {} : { goneLink: links.gone }),
      ...(status === undefined
        ? {}
        : { status: { code: status.code, reason: status.reason === "" ? statusReason(status.code) : status.reason } }),
      ...(exposeHeaders === undefined ? {} : { exposeHeaders })
    }
    return instruct
  }).pipe(Result.mapError((message) => new InstructError({ message })))

// ---------------------------------------------------------------------------------------------
// Headers

type Parsed<A> = Result.Result<A, string>

/** Pushpin's `toInt`: optional sign and digits, nothing else. */
const parseInteger = (text: string | undefined): number | undefined =>
  text !== undefined && /^[+-]?\d+$/.test(text.trim()) ? Number.parseInt(text.trim(), 10) : undefined

const parseHold = (value: string | undefined): Parsed<HoldMode> => {
  if (value === undefined) return Result.succeed("none")
  if (value === "response" || value === "stream") return Result.succeed(value)
  return Result.fail("Grip-Hold must be set to either 'response' or 'stream'")
}

const channel = (name: string, prevId: string | undefined, filters: ReadonlyArray<string>): Parsed<InstructChannel> => {
  if (name === "") return Result.fail("channel contains 'name' with invalid value")
  if (filters.length > MAX_FILTERS_PER_CHANNEL) return Result.fail(`too many filters for channel '${name}'`)
  return Result.succeed(prevId === undefined || prevId === "" ? { name, filters } : { name, prevId, filters })
}

const parseChannels = (value: string | undefined): Parsed<Array<InstructChannel>> =>
  Result.gen(function*() {
    if (value === undefined) return []
    const elements = parseHeaderList(value)
    if (elements === undefined) return yield* Result.fail("failed to parse Grip-Channel")
    const out: Array<InstructChannel> = []
    for (const { first, params } of elements) {
      // An empty name (`a,,b` or `; prev-id=x`) cannot be subscribed to.
      if (first === "") return yield* Result.fail("failed to parse Grip-Channel")
      const prevId = paramValue(params, "prev-id")
      const filters = params.flatMap(([key, v]) => (key.toLowerCase() === "filter" && v !== undefined ? [headerText(v)] : []))
      out.push(yield* channel(headerText(first), prevId === undefined ? undefined : headerText(prevId), filters))
    }
    return out
  })

const parseTimeout = (value: string | undefined): Parsed<number | undefined> => {
  if (value === undefined) return Result.succeed(undefined)
  const timeout = parseInteger(value)
  if (timeout === undefined) return Result.fail("failed to parse Grip-Timeout")
  if (timeout < 0) return Result.fail("Grip-Timeout has invalid value")
  return Result.succeed(timeout)
}

const parseExposeHeaders = (value: string | undefined): Parsed<ReadonlyArray<string> | undefined> => {
  if (value === undefined) return Result.succeed(undefined)
  const names = splitHeaderList(value)
  if (names === undefined) return Result.fail("failed to parse Grip-Expose-Headers")
  const nonEmpty = names.filter((name) => name !== "").map((name) => name.toLowerCase())
  // An empty list exposes everything, as Pushpin (it only filters when the list has names).
  return Result.succeed(nonEmpty.length === 0 ? undefined : nonEmpty)
}

const isKeepAliveFormat = (format: string): format is KeepAliveFormat =>
  KEEP_ALIVE_FORMATS.some((known) => known === format)

const parseKeepAlive = (value: string | undefined): Parsed<KeepAlive | undefined> =>
  Result.gen(function*() {
    if (value === undefined) return undefined
    const element = parseHeaderElement(value)
    if (element === undefined) return yield* Result.fail("failed to parse Grip-Keep-Alive")
    if (element.first === "") return yield* Result.fail("Grip-Keep-Alive cannot be empty")

    const modeText = paramValue(element.params, "mode") ?? ""
    let mode: KeepAliveMode
    if (modeText === "" || modeText === "idle") mode = "idle"
    else if (modeText === "interval") mode = "interval"
    else return yield* Result.fail(`no such Grip-Keep-Alive mode '${headerText(modeText)}'`)

    const timeoutSeconds = yield* timeoutParam(element.params, DEFAULT_KEEP_ALIVE_TIMEOUT_SECONDS, "Grip-Keep-Alive")

    const formatText = paramValue(element.params, "format") ?? ""
    const format = formatText === "" ? "raw" : formatText
    if (!isKeepAliveFormat(format)) return yield* Result.fail(`no such Grip-Keep-Alive format '${headerText(format)}'`)
    const data = yield* decodeKeepAliveData(element.first, format)
    return { data, timeoutSeconds, mode }
  })

/** A `timeout=` parameter: default when absent; Pushpin's error texts otherwise. */
const timeoutParam = (params: ReadonlyArray<HeaderParam>, fallback: number, header: string): Parsed<number> => {
  const param = findParam(params, "timeout")
  if (param === undefined) return Result.succeed(fallback)
  const timeout = parseInteger(param[1])
  if (timeout === undefined) return Result.fail(`failed to parse ${header} timeout value`)
  if (timeout < 0) return Result.fail(`${header} timeout has invalid value`)
  return Result.succeed(timeout)
}

const parseMeta = (value: string | undefined): Parsed<Map<string, string>> =>
  Result.gen(function*() {
    const meta = new Map<string, string>()
    if (value === undefined) return meta
    const parts = splitHeaderList(value)
    if (parts === undefined) return yield* Result.fail("failed to parse Grip-Set-Meta")
    for (const part of parts) {
      const pairs = parseHeaderPairs(part)
      if (pairs === undefined) return yield* Result.fail("failed to parse Grip-Set-Meta")
      const [pair] = pairs
      if (pair === undefined) return yield* Result.fail("Grip-Set-Meta cannot be empty")
      meta.set(headerText(pair[0]), headerText(pair[1] ?? ""))
    }
    return meta
  })

/** `<code>[ <reason>]`; the reason is "" when not given. */
const parseStatus = (value: string | undefined): Parsed<{ code: number; reason: string } | undefined> => {
  if (value === undefined || value === "") return Result.succeed(undefined)
  const space = value.indexOf(" ")
  const code = parseInteger(space === -1 ? value : value.slice(0, space))
  if (code === undefined || code < 0 || code > 999) return Result.fail("Grip-Status contains invalid status code")
  return Result.succeed({ code, reason: space === -1 ? "" : headerText(value.slice(space + 1)) })
}

const parseLinks = (
  value: string | undefined,
  requestUri: string
): Parsed<{ next: NextLink | undefined; gone: string | undefined }> =>
  Result.gen(function*() {
    let next: NextLink | undefined
    let gone: string | undefined
    if (value === undefined) return { next, gone }
    const elements = parseHeaderList(value)
    if (elements === undefined) return yield* Result.fail("failed to parse Grip-Link value")
    for (const { first, params } of elements) {
      // A link without parameters has no rel: nothing to do with it (Pushpin skips it too).
      if (params.length === 0) continue
      if (first.length <= 2 || !first.startsWith("<") || !first.endsWith(">")) {
        return yield* Result.fail("failed to parse Grip-Link value")
      }
      const uri = resolve(headerText(first.slice(1, -1)), requestUri)
      if (uri === undefined) return yield* Result.fail("Grip-Link contains invalid link")
      const rel = paramValue(params, "rel")
      if (rel === "next") {
        next = { uri, timeoutSeconds: yield* timeoutParam(params, DEFAULT_NEXT_LINK_TIMEOUT_SECONDS, "Grip-Link") }
      } else if (rel === "gone") {
        gone = uri
      }
    }
    return { next, gone }
  })

const resolve = (link: string, base: string): string | undefined => {
  try {
    return new URL(link, base).href
  } catch {
    return undefined
  }
}

const responseHeaders = (headers: Headers, expose: ReadonlyArray<string> | undefined): HeaderList => {
  const out: Array<readonly [string, string]> = []
  for (const [name, value] of headers) {
    if (name.startsWith("grip-")) continue
    if (expose !== undefined && !expose.includes(name)) continue
    out.push([name, value])
  }
  return out
}

// ---------------------------------------------------------------------------------------------
// application/grip-instruct

const ChannelJson = Schema.Struct({
  name: required("channel", "name", str("channel", "name")),
  "prev-id": Schema.optionalKey(str("channel", "prev-id")),
  filters: Schema.optionalKey(stringList("channel", "filters", "filters contains value with wrong type"))
}).annotate({ message: notAnObject("channel") })

const KeepAliveJson = Schema.Struct({
  "content-bin": Schema.optionalKey(base64("keep-alive", "content-bin")),
  content: Schema.optionalKey(str("keep-alive", "content")),
  timeout: Schema.optionalKey(int("keep-alive", "timeout", 0))
}).annotate({ message: wrongType("hold", "keep-alive") })

const HoldJson = Schema.Struct({
  mode: Schema.optionalKey(
    oneOf("hold", "mode", ["response", "stream"], "hold 'mode' must be set to either 'response' or 'stream'")
  ),
  channels: required("hold", "channels", Schema.Array(ChannelJson).annotate({ message: wrongType("hold", "channels") })),
  timeout: Schema.optionalKey(int("hold", "timeout", 0)),
  "keep-alive": Schema.optionalKey(KeepAliveJson),
  meta: Schema.optionalKey(stringMap("hold", "meta", "'meta'"))
}).annotate({ message: wrongType("instruct", "hold") })

const ResponseJson = Schema.Struct({
  code: Schema.optionalKey(int("response", "code", 0, 999)),
  reason: Schema.optionalKey(str("response", "reason")),
  headers: Schema.optionalKey(headersField("response")),
  "body-bin": Schema.optionalKey(base64("response", "body-bin")),
  body: Schema.optionalKey(str("response", "body"))
}).annotate({ message: wrongType("instruct", "response") })

const InstructJson = Schema.Struct({
  hold: Schema.optionalKey(HoldJson),
  response: Schema.optionalKey(ResponseJson)
}).annotate({ message: "instruct must be an object" })

const decodeJson = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))
const decodeInstructJson = Schema.decodeUnknownResult(InstructJson)

const parseInstructJson = (body: Uint8Array): Parsed<typeof InstructJson.Type> => {
  const text = decodeUtf8(body)
  const doc = text === undefined ? undefined : decodeJson(text)
  if (doc === undefined || Result.isFailure(doc)) {
    return Result.fail("failed to parse application/grip-instruct content as JSON")
  }
  return decodeInstructJson(doc.success).pipe(Result.mapError((error) => issueMessage(error.issue)))
}
