/**
 * Reads the origin's answer to a WebSocket upgrade from raw bytes: the response head, and for
 * a refusal its body (by Content-Length, chunked, or until close), bounded as Pushpin bounds
 * it. Pure: bytes in, steps out; the socket is the client's business.
 */
import { Schema } from "effect"
import { EMPTY_BYTES } from "../grip/internal/bytes.ts"

/**
 * Largest refusal body relayed to the client (Pushpin's connmgr `body-buffer-size`). A longer
 * one fails the handshake with `rejection-too-large`, which the proxy answers with Pushpin's
 * 500 "Non-101 response body size exceeded limit of 100000 bytes."
 */
export const MAX_REJECTION_BODY_BYTES = 100_000

/** Status line plus headers. Far above real handshake responses; bounds what garbage can cost. */
export const MAX_RESPONSE_HEAD_BYTES = 64 * 1024

/** One chunk-size or trailer line of a chunked refusal body. */
const MAX_CHUNK_LINE_BYTES = 4 * 1024

/**
 * Connected, but no usable answer to the upgrade. The origin may have seen the request, so this
 * is not a reason to try another target (Pushpin fails over on connect errors only).
 */
export class OriginHandshakeError extends Schema.TaggedError<OriginHandshakeError>()("OriginHandshakeError", {
  reason: Schema.Literals(["invalid-response", "rejection-too-large", "closed", "timeout"]),
  message: Schema.String
}) {}

/** A comma-separated header's tokens, lower-cased (Connection, Upgrade, Transfer-Encoding). */
export const headerTokens = (value: string | null): Array<string> =>
  value === null ? [] : value.split(",").map((token) => token.trim().toLowerCase())

export interface ResponseHead {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
}

export type ReaderStep =
  | { readonly _tag: "NeedMore" }
  | { readonly _tag: "Switching"; readonly head: ResponseHead; readonly rest: Uint8Array }
  | { readonly _tag: "Rejected"; readonly head: ResponseHead; readonly body: Uint8Array }
  | { readonly _tag: "Failed"; readonly error: OriginHandshakeError }

const NEED_MORE: ReaderStep = { _tag: "NeedMore" }

const invalid = (message: string): ReaderStep => ({
  _tag: "Failed",
  error: new OriginHandshakeError({ reason: "invalid-response", message })
})

const tooLarge = (): ReaderStep => ({
  _tag: "Failed",
  error: new OriginHandshakeError({
    reason: "rejection-too-large",
    message: `Non-101 response body size exceeded limit of ${MAX_REJECTION_BODY_BYTES} bytes.`
  })
})

/** The upgrade response: its head, then (for a refusal) its body. */
export class ResponseReader {
  private headBytes: Uint8Array = EMPTY_BYTES
  private head: ResponseHead | undefined = undefined
  private body: BodyReader | undefined = undefined

  feed(chunk: Uint8Array): ReaderStep {
    if (this.body !== undefined) return this.readBody(chunk)
    const searchFrom = Math.max(0, this.headBytes.length - 3)
    this.headBytes = concatBytes(this.headBytes, chunk)
    const end = indexOfBlankLine(this.headBytes, searchFrom)
    if (end === -1) {
      return this.headBytes.length > MAX_RESPONSE_HEAD_BYTES
        ? invalid(`response head is longer than ${MAX_RESPONSE_HEAD_BYTES} bytes`)
        : NEED_MORE
    }
    const rest = this.headBytes.subarray(end + 4)
    const parsed = parseHead(Buffer.from(this.headBytes.subarray(0, end)).toString("latin1"))
    this.headBytes = EMPTY_BYTES
    if (typeof parsed === "string") return invalid(parsed)
    if (parsed.status === 101) return { _tag: "Switching", head: parsed, rest }
    // An interim response (100 Continue, 103 Early Hints) precedes the real one.
    if (parsed.status < 200) return rest.length === 0 ? NEED_MORE : this.feed(rest)

    const body = bodyReader(parsed)
    if (typeof body === "string") return invalid(body)
    this.head = parsed
    this.body = body
    return this.readBody(rest)
  }

  /** The origin closed the connection. */
  end(): ReaderStep {
    const { head, body } = this
    if (head !== undefined && body?.untilClose === true) return { _tag: "Rejected", head, body: body.collected() }
    const message =
      head === undefined
        ? "origin closed the connection before answering the upgrade"
        : "origin closed the connection in the middle of its response body"
    return { _tag: "Failed", error: new OriginHandshakeError({ reason: "closed", message }) }
  }

  private readBody(chunk: Uint8Array): ReaderStep {
    const { head, body } = this
    if (head === undefined || body === undefined) return NEED_MORE
    const outcome = body.feed(chunk)
    if (outcome === "complete") return { _tag: "Rejected", head, body: body.collected() }
    if (outcome === "too-large") return tooLarge()
    if (outcome === "more") return NEED_MORE
    return invalid(outcome.problem)
  }
}

const indexOfBlankLine = (bytes: Uint8Array, from: number): number => {
  for (let i = from; i + 3 < bytes.length; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a && bytes[i + 2] === 0x0d && bytes[i + 3] === 0x0a) return i
  }
  return -1
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-9]\d\d)(?: (.*))?$/
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/

/** The head or a message naming what is wrong with it. */
const parseHead = (text: string): ResponseHead | string => {
  const [statusLine = "", ...headerLines] = text.split("\r\n")
  const status = STATUS_LINE.exec(statusLine)
  if (status === null) return `malformed status line ${JSON.stringify(statusLine.slice(0, 100))}`
  const headers = new Headers()
  for (const line of headerLines) {
    const header = HEADER_LINE.exec(line)
    if (header === null) return `malformed header line ${JSON.stringify(line.slice(0, 100))}`
    try {
      headers.append(header[1] ?? "", header[2] ?? "")
    } catch {
      return `malformed header line ${JSON.stringify(line.slice(0, 100))}`
    }
  }
  return { status: Number(status[1]), statusText: status[2] ?? "", headers }
}

// ---------------------------------------------------------------------------------------------
// Refusal body

type BodyOutcome = "more" | "complete" | "too-large" | { readonly problem: string }

interface BodyReader {
  /** True when only the end of the connection ends the body. */
  readonly untilClose: boolean
  feed(chunk: Uint8Array): BodyOutcome
  collected(): Uint8Array
}

/** RFC 9112 §6.3: how the body of this response is delimited. */
const bodyReader = (head: ResponseHead): BodyReader | string => {
  if (head.status === 204 || head.status === 304) return new LengthBody(0)
  const transferEncoding = head.headers.get("transfer-encoding")
  if (transferEncoding !== null) {
    return headerTokens(transferEncoding).at(-1) === "chunked" ? new ChunkedBody() : new CloseDelimitedBody()
  }
  const contentLength = head.headers.get("content-length")
  if (contentLength === null) return new CloseDelimitedBody()
  // Repeated Content-Length lines arrive joined by ", "; they must agree.
  const values = new Set(contentLength.split(",").map((value) => value.trim()))
  const [only] = values
  if (values.size !== 1 || only === undefined || !/^\d+$/.test(only)) {
    return `invalid Content-Length ${JSON.stringify(contentLength)}`
  }
  return new LengthBody(Number(only))
}

/** Collects up to MAX_REJECTION_BODY_BYTES. */
class BodyBytes {
  private parts: Array<Uint8Array> = []
  private size = 0

  /** False when the bytes would pass the limit (nothing is kept then). */
  add(bytes: Uint8Array): boolean {
    if (this.size + bytes.length > MAX_REJECTION_BODY_BYTES) return false
    this.parts.push(bytes.slice())
    this.size += bytes.length
    return true
  }

  all(): Uint8Array {
    const out = new Uint8Array(this.size)
    let at = 0
    for (const part of this.parts) {
      out.set(part, at)
      at += part.length
    }
    return out
  }
}

class LengthBody implements BodyReader {
  readonly untilClose = false
  private readonly bytes = new BodyBytes()
  private remaining: number

  constructor(length: number) {
    this.remaining = length
  }

  feed(chunk: Uint8Array): BodyOutcome {
    if (this.remaining > MAX_REJECTION_BODY_BYTES) return "too-large"
    const take = chunk.subarray(0, this.remaining)
    this.bytes.add(take)
    this.remaining -= take.length
    return this.remaining === 0 ? "complete" : "more"
  }

  collected(): Uint8Array {
    return this.bytes.all()
  }
}

class CloseDelimitedBody implements BodyReader {
  readonly untilClose = true
  private readonly bytes = new BodyBytes()

  feed(chunk: Uint8Array): BodyOutcome {
    return this.bytes.add(chunk) ? "more" : "too-large"
  }

  collected(): Uint8Array {
    return this.bytes.all()
  }
}

/** RFC 9112 §7.1. Chunk extensions and trailer fields are read and dropped. */
class ChunkedBody implements BodyReader {
  readonly untilClose = false
  private readonly bytes = new BodyBytes()
  private state: "size" | "data" | "data-end" | "trailer" = "size"
  private line = ""
  private remaining = 0

  feed(chunk: Uint8Array): BodyOutcome {
    let at = 0
    while (at < chunk.length) {
      if (this.state === "data") {
        const take = chunk.subarray(at, at + this.remaining)
        if (!this.bytes.add(take)) return "too-large"
        at += take.length
        this.remaining -= take.length
        if (this.remaining === 0) this.state = "data-end"
        continue
      }
      const byte = chunk[at++] ?? 0
      if (byte !== 0x0a) {
        this.line += String.fromCharCode(byte)
        if (this.line.length > MAX_CHUNK_LINE_BYTES) return { problem: "chunked body has an overlong line" }
        continue
      }
      const line = this.line.endsWith("\r") ? this.line.slice(0, -1) : this.line
      this.line = ""
      if (this.state === "data-end") {
        if (line !== "") return { problem: "chunked body: chunk data is not followed by CRLF" }
        this.state = "size"
      } else if (this.state === "size") {
        const size = /^([0-9A-Fa-f]+)[ \t]*(?:;.*)?$/.exec(line)?.[1]
        if (size === undefined) {
          return { problem: `chunked body: invalid chunk size line ${JSON.stringify(line.slice(0, 100))}` }
        }
        this.remaining = Number.parseInt(size, 16)
        if (this.remaining > MAX_REJECTION_BODY_BYTES) return "too-large"
        this.state = this.remaining === 0 ? "trailer" : "data"
      } else if (line === "") {
        return "complete"
      }
    }
    return "more"
  }

  collected(): Uint8Array {
    return this.bytes.all()
  }
}

const concatBytes = (first: Uint8Array, second: Uint8Array): Uint8Array =>
  first.length === 0 ? second : Buffer.concat([first, second])
