/**
 * Published items (Pushpin `src/handler/publishitem.cpp`, `publishformat.cpp`) and the body of
 * the HTTP publish API, `{"items": [item, ...]}` (`handlerengine.cpp`).
 *
 * ```
 * { "channel": str, "id"?: str, "prev-id"?: str, "meta"?: {str: str}, "size"?: int, "no-seq"?: bool,
 *   "formats": { "http-response"?: {...}, "http-stream"?: {...}, "ws-message"?: {...} } }
 * ```
 * Formats may also sit at the item's top level when there is no `formats` object.
 *
 * Decoding is all or nothing: the first bad item rejects the whole body, so a publisher never has
 * to guess which part of a batch went out. Error texts are Pushpin's; where Pushpin is lax this is
 * strict and says what is wrong instead (an unknown `action` gets "Invalid format: " and nothing
 * more from Pushpin; numbers must be JSON integers, base64 must be base64, a channel must not be
 * empty).
 */
import { Result, Schema } from "effect"
import { decodeBase64, EMPTY_BYTES, utf8 } from "./internal/bytes.ts"
import {
  base64,
  bool,
  type HeaderList,
  headerList,
  headers,
  int,
  invalidValue,
  issueMessage,
  missingKey,
  notAnObject,
  oneOf,
  required,
  str,
  stringList,
  stringMap,
  wrongType
} from "./internal/json-fields.ts"
import { statusReason } from "./status-reasons.ts"

export type { HeaderList } from "./internal/json-fields.ts"

// ---------------------------------------------------------------------------------------------
// Types

/** RFC 6902 operations, checked for shape here and applied to the timeout body on delivery. */
export type JsonPatchOperation =
  | { readonly op: "add" | "replace" | "test"; readonly path: string; readonly value: unknown }
  | { readonly op: "remove"; readonly path: string }
  | { readonly op: "move" | "copy"; readonly from: string; readonly path: string }

export type HttpResponseBody =
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array }
  /** `body-patch`: a JSON Patch for the held request's timeout body. */
  | { readonly _tag: "Patch"; readonly operations: ReadonlyArray<JsonPatchOperation> }

/** For response holds. `hint`: ask the origin again; `close` is ignored by response holds. */
export type HttpResponseFormat =
  | {
    readonly action: "send"
    readonly code: number
    readonly reason: string
    readonly headers: HeaderList
    readonly body: HttpResponseBody
    readonly contentFilters?: ReadonlyArray<string>
  }
  | { readonly action: "hint" | "close" }

/** For stream holds. `hint`: fetch the next link; `close`: end the response. */
export type HttpStreamFormat =
  | { readonly action: "send"; readonly content: Uint8Array; readonly contentFilters?: ReadonlyArray<string> }
  | { readonly action: "hint" | "close" }

export type WsMessageType = "text" | "binary" | "ping" | "pong"

/** For WebSockets. `refresh`: a WebSocket-over-HTTP connection asks its origin now; `hint` does nothing. */
export type WsMessageFormat =
  | {
    readonly action: "send"
    readonly type: WsMessageType
    readonly content: Uint8Array
    readonly contentFilters?: ReadonlyArray<string>
  }
  | { readonly action: "close"; readonly code?: number; readonly reason?: string }
  | { readonly action: "hint" | "refresh" }

export interface PublishFormats {
  readonly httpResponse?: HttpResponseFormat
  readonly httpStream?: HttpStreamFormat
  readonly wsMessage?: WsMessageFormat
}

export interface PublishItem {
  readonly channel: string
  readonly id?: string
  readonly prevId?: string
  /** For filters (`sender`, `skip_users`, `require_sub`, variables). */
  readonly meta: ReadonlyMap<string, string>
  /** Overrides the size counted for `message_block_size` accounting. */
  readonly size?: number
  /** Bypass the sequencing buffer. */
  readonly noSeq: boolean
  /** At least one is present. */
  readonly formats: PublishFormats
}

export class PublishError extends Schema.TaggedError<PublishError>()("PublishError", {
  /** HTTP status for the publish API (always 400 for a body that does not decode). */
  status: Schema.Number,
  /** Pushpin's text without the trailing newline, e.g. "Invalid format: no formats specified". */
  message: Schema.String
}) {}

const badRequest = (message: string): PublishError => new PublishError({ status: 400, message })

// ---------------------------------------------------------------------------------------------
// Wire shapes

const ITEM = "publish item object"
const HTTP_RESPONSE = "'http-response'"
const HTTP_STREAM = "'http-stream'"
const WS_MESSAGE = "'ws-message'"

const HTTP_ACTIONS = ["send", "hint", "close"] as const
const WS_ACTIONS = ["send", "hint", "close", "refresh"] as const
const WS_TYPES = ["text", "binary", "ping", "pong"] as const
const PATCH_OPS = ["add", "remove", "replace", "move", "copy", "test"] as const

const contentFilters = (parent: string) =>
  Schema.optionalKey(stringList(parent, "content-filters", "content-filters contains element with wrong type"))

/** First stage of every format: is it an object, and which action. */
const actionShape = (parent: string, actions: ReadonlyArray<string>) =>
  Schema.Struct({
    action: Schema.optionalKey(oneOf(parent, "action", actions, (value) => `${parent} contains 'action' with unknown value '${value}'`))
  }).annotate({ message: notAnObject(parent) })

const PatchOperationJson = Schema.Struct({
  op: required("op", "op", oneOf("op", "op", PATCH_OPS, (value) => `unsupported op: ${value}`)),
  path: required("op", "path", str("op", "path")),
  from: Schema.optionalKey(str("op", "from")),
  value: Schema.optionalKey(Schema.Unknown)
}).annotate({ message: "invalid op" })

const HttpResponseJson = Schema.Struct({
  code: Schema.optionalKey(int(HTTP_RESPONSE, "code", 0, 999)),
  reason: Schema.optionalKey(str(HTTP_RESPONSE, "reason")),
  headers: Schema.optionalKey(headers(HTTP_RESPONSE)),
  "content-filters": contentFilters(HTTP_RESPONSE),
  "body-bin": Schema.optionalKey(base64(HTTP_RESPONSE, "body-bin")),
  body: Schema.optionalKey(str(HTTP_RESPONSE, "body")),
  "body-patch": Schema.optionalKey(
    Schema.Array(PatchOperationJson).annotate({ message: wrongType(HTTP_RESPONSE, "body-patch") })
  )
})

const HttpStreamJson = Schema.Struct({
  "content-filters": contentFilters(HTTP_STREAM),
  "content-bin": Schema.optionalKey(base64(HTTP_STREAM, "content-bin")),
  content: Schema.optionalKey(str(HTTP_STREAM, "content"))
})

const WsMessageJson = Schema.Struct({
  type: Schema.optionalKey(oneOf(WS_MESSAGE, "type", WS_TYPES)),
  "content-filters": contentFilters(WS_MESSAGE),
  "content-bin": Schema.optionalKey(base64(WS_MESSAGE, "content-bin")),
  content: Schema.optionalKey(str(WS_MESSAGE, "content"))
})

const WsCloseJson = Schema.Struct({
  // A close code travels in two bytes.
  code: Schema.optionalKey(int(WS_MESSAGE, "code", 0, 65535)),
  reason: Schema.optionalKey(str(WS_MESSAGE, "reason"))
})

const ItemJson = Schema.Struct({
  // Required unless the channel comes from elsewhere (ZeroMQ SUB frame): checked below.
  channel: Schema.optionalKey(str(ITEM, "channel")),
  id: Schema.optionalKey(str(ITEM, "id")),
  "prev-id": Schema.optionalKey(str(ITEM, "prev-id")),
  formats: Schema.optionalKey(
    Schema.Record(Schema.String, Schema.Unknown).annotate({ message: wrongType(ITEM, "formats") })
  ),
  meta: Schema.optionalKey(stringMap(ITEM, "meta", "'meta'")),
  size: Schema.optionalKey(int(ITEM, "size", 0)),
  "no-seq": Schema.optionalKey(bool(ITEM, "no-seq"))
}).annotate({ message: notAnObject(ITEM) })

const BodyJson = Schema.Struct({
  items: required("object", "items", Schema.Array(Schema.Unknown).annotate({ message: wrongType("object", "items") }))
})

// ---------------------------------------------------------------------------------------------
// Decoding

type Decoded<A> = Result.Result<A, string>

/** Runs a schema; failures become the first problem's text. */
const decodeWith = <S extends Schema.Decoder<unknown>>(schema: S) => {
  const decode = Schema.decodeUnknownResult(schema)
  return (input: unknown): Decoded<S["Type"]> => decode(input).pipe(Result.mapError((e) => issueMessage(e.issue)))
}

const decodeHttpResponseAction = decodeWith(actionShape(HTTP_RESPONSE, HTTP_ACTIONS))
const decodeHttpStreamAction = decodeWith(actionShape(HTTP_STREAM, HTTP_ACTIONS))
const decodeWsMessageAction = decodeWith(actionShape(WS_MESSAGE, WS_ACTIONS))
const decodeHttpResponseJson = decodeWith(HttpResponseJson)
const decodeHttpStreamJson = decodeWith(HttpStreamJson)
const decodeWsMessageJson = decodeWith(WsMessageJson)
const decodeWsCloseJson = decodeWith(WsCloseJson)
const decodeItemJson = decodeWith(ItemJson)
const decodeBodyJson = decodeWith(BodyJson)
const decodeJsonText = Schema.decodeUnknownResult(Schema.fromJsonString(Schema.Unknown))

/** Content from `<name>-bin` (base64, wins) or `<name>` (text). */
const bytesOf = (bin: string | undefined, text: string | undefined): Uint8Array | undefined =>
  bin !== undefined ? (decodeBase64(bin) ?? EMPTY_BYTES) : text !== undefined ? utf8(text) : undefined

const withContentFilters = <A extends object>(format: A, filters: ReadonlyArray<string> | undefined) =>
  filters === undefined ? format : { ...format, contentFilters: filters }

const patchOperation = (op: typeof PatchOperationJson.Type): Decoded<JsonPatchOperation> => {
  switch (op.op) {
    case "add":
    case "replace":
    case "test":
      return "value" in op ? Result.succeed({ op: op.op, path: op.path, value: op.value }) : Result.fail(missingKey("op", "value"))
    case "move":
    case "copy":
      return op.from !== undefined
        ? Result.succeed({ op: op.op, from: op.from, path: op.path })
        : Result.fail(missingKey("op", "from"))
    default:
      return Result.succeed({ op: "remove", path: op.path })
  }
}

const httpResponseFormat = (input: unknown): Decoded<HttpResponseFormat> =>
  Result.gen(function*() {
    const { action = "send" } = yield* decodeHttpResponseAction(input)
    if (action === "hint" || action === "close") return { action }
    const json = yield* decodeHttpResponseJson(input)
    const code = json.code ?? 200
    let body: HttpResponseBody
    const bytes = bytesOf(json["body-bin"], json.body)
    if (bytes !== undefined) {
      body = { _tag: "Bytes", bytes }
    } else if (json["body-patch"] !== undefined) {
      const operations: Array<JsonPatchOperation> = []
      for (const op of json["body-patch"]) operations.push(yield* patchOperation(op))
      body = { _tag: "Patch", operations }
    } else {
      return yield* Result.fail(`${HTTP_RESPONSE} does not contain 'body', 'body-bin', or 'body-patch'`)
    }
    return withContentFilters({
      action: "send" as const,
      code,
      reason: json.reason !== undefined && json.reason !== "" ? json.reason : statusReason(code),
      headers: json.headers === undefined ? [] : headerList(json.headers),
      body
    }, json["content-filters"])
  })

const httpStreamFormat = (input: unknown): Decoded<HttpStreamFormat> =>
  Result.gen(function*() {
    const { action = "send" } = yield* decodeHttpStreamAction(input)
    if (action === "hint" || action === "close") return { action }
    const json = yield* decodeHttpStreamJson(input)
    const content = bytesOf(json["content-bin"], json.content)
    if (content === undefined) return yield* Result.fail(`${HTTP_STREAM} does not contain 'content' or 'content-bin'`)
    return withContentFilters({ action: "send" as const, content }, json["content-filters"])
  })

const wsMessageType = (type: string | undefined, binary: boolean): WsMessageType =>
  WS_TYPES.find((known) => known === type) ?? (binary ? "binary" : "text")

const wsMessageFormat = (input: unknown): Decoded<WsMessageFormat> =>
  Result.gen(function*() {
    const { action = "send" } = yield* decodeWsMessageAction(input)
    if (action === "hint" || action === "refresh") return { action }
    if (action === "close") {
      const json = yield* decodeWsCloseJson(input)
      return {
        action,
        ...(json.code === undefined ? {} : { code: json.code }),
        ...(json.reason === undefined || json.reason === "" ? {} : { reason: json.reason })
      }
    }
    const json = yield* decodeWsMessageJson(input)
    const content = bytesOf(json["content-bin"], json.content)
    const type = wsMessageType(json.type, json["content-bin"] !== undefined)
    // Pings and pongs may be empty; text and binary messages need content.
    if (content === undefined && (type === "text" || type === "binary")) {
      return yield* Result.fail(`${WS_MESSAGE} does not contain 'content' or 'content-bin'`)
    }
    return withContentFilters({ action: "send" as const, type, content: content ?? EMPTY_BYTES }, json["content-filters"])
  })

const formatsOf = (source: Readonly<Record<string, unknown>>): Decoded<PublishFormats> =>
  Result.gen(function*() {
    const formats: { -readonly [K in keyof PublishFormats]: PublishFormats[K] } = {}
    if (source["http-response"] !== undefined) formats.httpResponse = yield* httpResponseFormat(source["http-response"])
    if (source["http-stream"] !== undefined) formats.httpStream = yield* httpStreamFormat(source["http-stream"])
    if (source["ws-message"] !== undefined) formats.wsMessage = yield* wsMessageFormat(source["ws-message"])
    if (Object.keys(formats).length === 0) return yield* Result.fail("no formats specified")
    return formats
  })

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const item = (input: unknown, channelOverride: string | undefined): Decoded<PublishItem> =>
  Result.gen(function*() {
    const json = yield* decodeItemJson(input)
    const channel = channelOverride ?? json.channel
    if (channel === undefined) return yield* Result.fail(missingKey(ITEM, "channel"))
    if (channel === "") return yield* Result.fail(invalidValue(ITEM, "channel"))
    // Formats sit in "formats" or, without it, at the item's top level (Pushpin accepts both).
    const formats = yield* formatsOf(json.formats ?? (isRecord(input) ? input : {}))
    return {
      channel,
      ...(json.id === undefined ? {} : { id: json.id }),
      ...(json["prev-id"] === undefined ? {} : { prevId: json["prev-id"] }),
      meta: new Map(Object.entries(json.meta ?? {})),
      ...(json.size === undefined ? {} : { size: json.size }),
      noSeq: json["no-seq"] ?? false,
      formats
    }
  })

/**
 * One item, e.g. from a ZeroMQ `J`+JSON message. `channel` is given when the transport carries it
 * outside the item (SUB socket). The message is Pushpin's detail text, without the API's prefix.
 */
export const decodePublishItem = (input: unknown, channel?: string): Result.Result<PublishItem, PublishError> =>
  item(input, channel).pipe(Result.mapError(badRequest))

/** A list of items, all or nothing. */
export const decodePublishItems = (
  inputs: ReadonlyArray<unknown>
): Result.Result<ReadonlyArray<PublishItem>, PublishError> => {
  const items: Array<PublishItem> = []
  for (const input of inputs) {
    const decoded = decodePublishItem(input)
    if (Result.isFailure(decoded)) return Result.fail(decoded.failure)
    items.push(decoded.success)
  }
  return Result.succeed(items)
}

/** The body of `POST /publish`: `{"items": [...]}`, with the HTTP API's status and texts. */
export const decodePublishBody = (body: string): Result.Result<ReadonlyArray<PublishItem>, PublishError> => {
  const doc = decodeJsonText(body)
  if (Result.isFailure(doc)) return Result.fail(badRequest("Body is not valid JSON."))
  if (!isRecord(doc.success)) return Result.fail(badRequest("Invalid format."))
  const envelope = decodeBodyJson(doc.success)
  if (Result.isFailure(envelope)) return Result.fail(badRequest(`Invalid format: ${envelope.failure}`))
  return decodePublishItems(envelope.success.items).pipe(
    Result.mapError((error) => badRequest(`Invalid format: ${error.message}`))
  )
}
