/**
 * RFC 6455 framing: frames to bytes and back, fragments to messages, close payloads. No I/O, so
 * the same code serves the origin client and tests, and every rule is checked with tables.
 *
 * No extension is ever negotiated through this codec (pushpin-ts does not forward
 * permessage-deflate to origins, and `grip` uses no frame bits), so any RSV bit is an error.
 *
 * The decoder copies every payload out of the input chunks: a message kept by the caller (queued
 * for a slow client, say) then holds its own bytes, never a whole socket read buffer.
 */
import { Result, Schema } from "effect"
import { decodeUtf8, EMPTY_BYTES, utf8 } from "../grip/internal/bytes.ts"

// ---------------------------------------------------------------------------------------------
// Constants

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa
} as const

export type Opcode = (typeof Opcode)[keyof typeof Opcode]

const OPCODES: ReadonlySet<number> = new Set(Object.values(Opcode))

const isOpcode = (value: number): value is Opcode => OPCODES.has(value)

/** Close, ping and pong; they may arrive between the fragments of a message. */
export const isControlOpcode = (opcode: Opcode): boolean => opcode >= Opcode.Close

/** RFC 6455 §5.5: control frames carry at most 125 bytes and are never fragmented. */
export const MAX_CONTROL_PAYLOAD_BYTES = 125

/** A close payload is a 2-byte code and the reason, within one control frame. */
export const MAX_CLOSE_REASON_BYTES = MAX_CONTROL_PAYLOAD_BYTES - 2

/**
 * Largest message (and so largest frame) accepted by default. It is Bun.serve's default
 * `maxPayloadLength` for messages from clients, so the proxy carries the same sizes both ways;
 * it also caps what one connection can make us buffer before a message is complete.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/** 2 bytes of flags and length, up to 8 of extended length, 4 of mask. */
const MAX_HEADER_BYTES = 14

export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  /** Never on the wire: "the close frame had no code". */
  NoStatusReceived: 1005,
  /** Never on the wire: "the connection ended without a close frame". */
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011
} as const

/**
 * Codes a close frame may carry: the RFC 6455 ones meant for the wire, the later IANA
 * registrations 1012–1014 (service restart, try again later, bad gateway), and the ranges for
 * libraries (3000–3999) and applications (4000–4999). 1004, 1005, 1006 and 1015 are reserved
 * or mean "nothing was received", so a frame carrying them is a protocol error.
 */
export const isValidCloseCode = (code: number): boolean =>
  Number.isInteger(code) &&
  ((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))

// ---------------------------------------------------------------------------------------------
// Errors

const CLOSE_CODE_MEANING = {
  1002: "protocol error",
  1007: "invalid payload data",
  1009: "message too big"
} as const

export type ProtocolErrorCloseCode = keyof typeof CLOSE_CODE_MEANING

/**
 * The peer broke RFC 6455. The connection must be failed: send a close frame with `closeCode`
 * (the code the RFC prescribes for the problem), then drop the TCP connection.
 */
export class WebSocketProtocolError extends Schema.TaggedError<WebSocketProtocolError>()("WebSocketProtocolError", {
  closeCode: Schema.Literals([1002, 1007, 1009]),
  message: Schema.String
}) {}

const protocolError = (closeCode: ProtocolErrorCloseCode, problem: string): WebSocketProtocolError =>
  new WebSocketProtocolError({
    closeCode,
    message: `${problem} (close ${closeCode}: ${CLOSE_CODE_MEANING[closeCode]})`
  })

// ---------------------------------------------------------------------------------------------
// Frames

export interface Frame {
  readonly fin: boolean
  readonly opcode: Opcode
  readonly payload: Uint8Array
}

export interface FrameToEncode extends Frame {
  /** Four random bytes; clients must mask every frame, servers must not mask any. */
  readonly mask?: Uint8Array | undefined
}

const opcodeName = (opcode: number): string => {
  for (const [name, value] of Object.entries(Opcode)) if (value === opcode) return name.toLowerCase()
  return `0x${opcode.toString(16)}`
}

/** Throws RangeError for a frame no peer may accept: that is a bug in the caller, not the peer. */
export const encodeFrame = ({ fin, opcode, payload, mask }: FrameToEncode): Uint8Array => {
  if (isControlOpcode(opcode) && !fin) throw new RangeError(`a ${opcodeName(opcode)} frame cannot be fragmented`)
  if (isControlOpcode(opcode) && payload.length > MAX_CONTROL_PAYLOAD_BYTES) {
    throw new RangeError(
      `a ${opcodeName(opcode)} payload is at most ${MAX_CONTROL_PAYLOAD_BYTES} bytes, got ${payload.length}`
    )
  }
  if (mask !== undefined && mask.length !== 4) throw new RangeError(`a mask is 4 bytes, got ${mask.length}`)

  const lengthBytes = payload.length < 126 ? 0 : payload.length < 0x10000 ? 2 : 8
  const payloadAt = 2 + lengthBytes + (mask === undefined ? 0 : 4)
  const out = new Uint8Array(payloadAt + payload.length)
  const view = new DataView(out.buffer)
  const maskBit = mask === undefined ? 0 : 0x80
  out[0] = (fin ? 0x80 : 0) | opcode
  if (lengthBytes === 0) {
    out[1] = maskBit | payload.length
  } else if (lengthBytes === 2) {
    out[1] = maskBit | 126
    view.setUint16(2, payload.length)
  } else {
    out[1] = maskBit | 127
    view.setUint32(2, Math.floor(payload.length / 2 ** 32))
    view.setUint32(6, payload.length >>> 0)
  }
  if (mask === undefined) {
    out.set(payload, payloadAt)
  } else {
    out.set(mask, payloadAt - 4)
    out.set(payload, payloadAt)
    applyMask(out.subarray(payloadAt), mask)
  }
  return out
}

/** XOR in place; applying it twice restores the bytes. */
const applyMask = (bytes: Uint8Array, mask: Uint8Array): void => {
  const m0 = mask[0] ?? 0
  const m1 = mask[1] ?? 0
  const m2 = mask[2] ?? 0
  const m3 = mask[3] ?? 0
  const whole = bytes.length - (bytes.length % 4)
  let i = 0
  for (; i < whole; i += 4) {
    bytes[i] = (bytes[i] ?? 0) ^ m0
    bytes[i + 1] = (bytes[i + 1] ?? 0) ^ m1
    bytes[i + 2] = (bytes[i + 2] ?? 0) ^ m2
    bytes[i + 3] = (bytes[i + 3] ?? 0) ^ m3
  }
  for (; i < bytes.length; i++) bytes[i] = (bytes[i] ?? 0) ^ (mask[i % 4] ?? 0)
}

export interface FrameDecoderOptions {
  /**
   * RFC 6455 §5.1: a server must fail a connection on an unmasked frame and a client on a masked
   * one, so a decoder reading from clients says "required" and one reading from servers
   * "forbidden". "either" is for tools and tests.
   */
  readonly masking: "required" | "forbidden" | "either"
  /** A longer frame is refused from its header, before any of it is buffered. */
  readonly maxPayloadBytes?: number
}

/**
 * What one chunk produced. Frames decoded before a fault are returned with it, so the caller sees
 * the same frames whichever way TCP happened to split the stream.
 */
export interface FeedResult {
  readonly frames: ReadonlyArray<Frame>
  /** Set once the stream is broken; every later feed returns it again and decodes nothing. */
  readonly error: WebSocketProtocolError | undefined
}

interface PayloadInProgress {
  readonly fin: boolean
  readonly opcode: Opcode
  readonly mask: Uint8Array | undefined
  readonly payload: Uint8Array
  filled: number
}

/** Frames from a byte stream that arrives in arbitrary pieces. */
export class FrameDecoder {
  private readonly masking: FrameDecoderOptions["masking"]
  private readonly maxPayloadBytes: number
  private readonly header = new Uint8Array(MAX_HEADER_BYTES)
  private headerFilled = 0
  /** Of the frame whose header is being read; set once its first two bytes passed the checks. */
  private opcode: Opcode = Opcode.Continuation
  private inProgress: PayloadInProgress | undefined = undefined
  private failure: WebSocketProtocolError | undefined = undefined

  constructor(options: FrameDecoderOptions) {
    this.masking = options.masking
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  }

  feed(chunk: Uint8Array): FeedResult {
    const frames: Array<Frame> = []
    let at = 0
    while (this.failure === undefined) {
      const current = this.inProgress
      if (current === undefined) {
        const needed = this.headerLength()
        if (this.headerFilled < needed) {
          if (at === chunk.length) break
          const take = Math.min(needed - this.headerFilled, chunk.length - at)
          this.header.set(chunk.subarray(at, at + take), this.headerFilled)
          this.headerFilled += take
          at += take
          // Checked as soon as the first two bytes are in, so a bad stream fails without waiting
          // for bytes that may never come.
          if (this.headerFilled === 2) this.failure = this.checkFirstTwoBytes()
          continue
        }
        this.failure = this.startPayload()
        continue
      }
      const take = Math.min(current.payload.length - current.filled, chunk.length - at)
      current.payload.set(chunk.subarray(at, at + take), current.filled)
      current.filled += take
      at += take
      if (current.filled < current.payload.length) break
      if (current.mask !== undefined) applyMask(current.payload, current.mask)
      frames.push({ fin: current.fin, opcode: current.opcode, payload: current.payload })
      this.inProgress = undefined
      this.headerFilled = 0
    }
    return { frames, error: this.failure }
  }

  /** Bytes of the current header: 2 until those are known, then the full length they announce. */
  private headerLength(): number {
    if (this.headerFilled < 2) return 2
    const second = this.header[1] ?? 0
    const length7 = second & 0x7f
    const extended = length7 === 127 ? 8 : length7 === 126 ? 2 : 0
    return 2 + extended + (second & 0x80 ? 4 : 0)
  }

  private checkFirstTwoBytes(): WebSocketProtocolError | undefined {
    const first = this.header[0] ?? 0
    const second = this.header[1] ?? 0
    const reserved = first & 0x70
    if (reserved !== 0) {
      const bits = [0x40, 0x20, 0x10].flatMap((bit, i) => (reserved & bit ? [`RSV${i + 1}`] : []))
      return protocolError(1002, `frame sets reserved bit ${bits.join(", ")} but no extension was negotiated`)
    }
    const opcode = first & 0x0f
    if (!isOpcode(opcode)) return protocolError(1002, `frame has unknown opcode 0x${opcode.toString(16)}`)
    this.opcode = opcode
    const masked = (second & 0x80) !== 0
    if (masked && this.masking === "forbidden") return protocolError(1002, "server frame is masked")
    if (!masked && this.masking === "required") return protocolError(1002, "client frame is not masked")
    if (isControlOpcode(opcode)) {
      if ((first & 0x80) === 0) return protocolError(1002, `${opcodeName(opcode)} frame is fragmented`)
      const length7 = second & 0x7f
      if (length7 > MAX_CONTROL_PAYLOAD_BYTES) {
        return protocolError(
          1002,
          `${opcodeName(opcode)} frame payload is longer than ${MAX_CONTROL_PAYLOAD_BYTES} bytes`
        )
      }
    }
    return undefined
  }

  private startPayload(): WebSocketProtocolError | undefined {
    const first = this.header[0] ?? 0
    const second = this.header[1] ?? 0
    const view = new DataView(this.header.buffer)
    const length7 = second & 0x7f
    let length = length7
    let maskAt = 2
    if (length7 === 126) {
      length = view.getUint16(2)
      maskAt = 4
    } else if (length7 === 127) {
      const high = view.getUint32(2)
      if (high >= 0x80000000) return protocolError(1002, "frame length has its most significant bit set")
      length = high * 2 ** 32 + view.getUint32(6)
      maskAt = 10
    }
    // Lengths written with more bytes than needed are accepted: nothing is lost by reading them.
    if (length > this.maxPayloadBytes) {
      return protocolError(1009, `frame payload of ${length} bytes exceeds the limit of ${this.maxPayloadBytes}`)
    }
    this.inProgress = {
      fin: (first & 0x80) !== 0,
      opcode: this.opcode,
      mask: second & 0x80 ? this.header.slice(maskAt, maskAt + 4) : undefined,
      payload: length === 0 ? EMPTY_BYTES : new Uint8Array(length),
      filled: 0
    }
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Close payload

export interface ClosePayload {
  /** Undefined when the frame had no payload (receivers see 1005). */
  readonly code: number | undefined
  readonly reason: string
}

/**
 * Throws RangeError for a code that may not be sent, or a reason without a code (the wire has no
 * place for it). A reason longer than fits a control frame is cut at a character boundary: a close
 * must not fail because its explanation is long.
 */
export const encodeClosePayload = (code: number | undefined, reason = ""): Uint8Array => {
  if (code === undefined) {
    if (reason !== "") throw new RangeError("a close reason needs a close code")
    return EMPTY_BYTES
  }
  if (!isValidCloseCode(code)) throw new RangeError(`close code ${code} may not be sent`)
  const reasonBytes = truncateUtf8(utf8(reason), MAX_CLOSE_REASON_BYTES)
  const out = new Uint8Array(2 + reasonBytes.length)
  new DataView(out.buffer).setUint16(0, code)
  out.set(reasonBytes, 2)
  return out
}

const truncateUtf8 = (bytes: Uint8Array, limit: number): Uint8Array => {
  if (bytes.length <= limit) return bytes
  let end = limit
  // Step back over continuation bytes (10xxxxxx) so the cut falls before a character starts.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--
  return bytes.subarray(0, end)
}

export const parseClosePayload = (payload: Uint8Array): Result.Result<ClosePayload, WebSocketProtocolError> => {
  if (payload.length === 0) return Result.succeed({ code: undefined, reason: "" })
  if (payload.length === 1) return Result.fail(protocolError(1002, "close frame payload is 1 byte; a code needs 2"))
  const code = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint16(0)
  if (!isValidCloseCode(code)) return Result.fail(protocolError(1002, `close frame carries invalid code ${code}`))
  const reason = decodeUtf8(payload.subarray(2))
  if (reason === undefined) return Result.fail(protocolError(1007, "close frame reason is not valid UTF-8"))
  return Result.succeed({ code, reason })
}

// ---------------------------------------------------------------------------------------------
// Messages

export type WebSocketMessage =
  | { readonly kind: "text"; readonly data: string }
  | { readonly kind: "binary"; readonly data: Uint8Array }
  | { readonly kind: "ping"; readonly payload: Uint8Array }
  | { readonly kind: "pong"; readonly payload: Uint8Array }
  | { readonly kind: "close"; readonly code: number | undefined; readonly reason: string }

export interface MessageAssemblerOptions {
  /** Total payload of one fragmented message; a frame that would pass it fails with 1009. */
  readonly maxMessageBytes?: number
}

/**
 * Joins the frames of each text or binary message and hands control frames straight through,
 * including those that arrive between fragments (RFC 6455 §5.4).
 */
export class MessageAssembler {
  private readonly maxMessageBytes: number
  private messageKind: "text" | "binary" | undefined = undefined
  private fragments: Array<Uint8Array> = []
  private messageBytes = 0

  constructor(options: MessageAssemblerOptions = {}) {
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  }

  /** Undefined while a fragmented message is still incomplete. */
  push(frame: Frame): Result.Result<WebSocketMessage | undefined, WebSocketProtocolError> {
    switch (frame.opcode) {
      case Opcode.Ping:
        return Result.succeed({ kind: "ping", payload: frame.payload })
      case Opcode.Pong:
        return Result.succeed({ kind: "pong", payload: frame.payload })
      case Opcode.Close:
        return Result.map(parseClosePayload(frame.payload), ({ code, reason }) => ({ kind: "close", code, reason }))
      case Opcode.Text:
      case Opcode.Binary:
        if (this.messageKind !== undefined) {
          const problem = `new ${opcodeName(frame.opcode)} frame while a ${this.messageKind} message is unfinished`
          return Result.fail(protocolError(1002, problem))
        }
        this.messageKind = frame.opcode === Opcode.Text ? "text" : "binary"
        return this.append(frame)
      case Opcode.Continuation:
        if (this.messageKind === undefined) {
          return Result.fail(protocolError(1002, "continuation frame without a message to continue"))
        }
        return this.append(frame)
    }
  }

  private append(frame: Frame): Result.Result<WebSocketMessage | undefined, WebSocketProtocolError> {
    this.messageBytes += frame.payload.length
    if (this.messageBytes > this.maxMessageBytes) {
      const problem = `message of at least ${this.messageBytes} bytes exceeds the limit of ${this.maxMessageBytes}`
      return Result.fail(protocolError(1009, problem))
    }
    this.fragments.push(frame.payload)
    if (!frame.fin) return Result.succeed(undefined)

    const kind = this.messageKind
    const data = concat(this.fragments, this.messageBytes)
    this.messageKind = undefined
    this.fragments = []
    this.messageBytes = 0
    if (kind === "binary") return Result.succeed({ kind, data })
    const text = decodeUtf8(data)
    if (text === undefined) return Result.fail(protocolError(1007, "text message is not valid UTF-8"))
    return Result.succeed({ kind: "text", data: text })
  }
}

const concat = (parts: ReadonlyArray<Uint8Array>, length: number): Uint8Array => {
  const [only] = parts
  if (parts.length === 1 && only !== undefined) return only
  return Buffer.concat(parts, length)
}
