import { describe, expect, test } from "bun:test"
import {
  CloseCode,
  DEFAULT_MAX_MESSAGE_BYTES,
  encodeClosePayload,
  encodeFrame,
  type Frame,
  FrameDecoder,
  type FrameDecoderOptions,
  isValidCloseCode,
  MAX_CLOSE_REASON_BYTES,
  MessageAssembler,
  type MessageAssemblerOptions,
  Opcode,
  parseClosePayload,
  type WebSocketMessage,
  WebSocketProtocolError
} from "../../src/websocket/frames.ts"
import { bytes, err, ok } from "../grip/helpers.ts"

const MASK = new Uint8Array([0x37, 0xfa, 0x21, 0x3d])

const hex = (data: Uint8Array): string => Buffer.from(data).toString("hex")

const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))

/** Deterministic filler, so a payload that is decoded at the wrong offset shows up. */
const filler = (length: number, seed = 0): Uint8Array => {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts))

/** Decodes a whole stream in one feed and expects no error. */
const decodeAll = (stream: Uint8Array, options: FrameDecoderOptions = { masking: "either" }): ReadonlyArray<Frame> => {
  const { frames, error } = new FrameDecoder(options).feed(stream)
  if (error !== undefined) throw error
  return frames
}

const decodeError = (stream: Uint8Array, options: FrameDecoderOptions): WebSocketProtocolError => {
  const { error } = new FrameDecoder(options).feed(stream)
  if (error === undefined) throw new Error("expected a protocol error")
  expect(error).toBeInstanceOf(WebSocketProtocolError)
  expect(error._tag).toBe("WebSocketProtocolError")
  return error
}

const assemble = (frames: ReadonlyArray<Frame>, options?: MessageAssemblerOptions): Array<WebSocketMessage> => {
  const assembler = new MessageAssembler(options)
  const messages: Array<WebSocketMessage> = []
  for (const frame of frames) {
    const message = ok(assembler.push(frame))
    if (message !== undefined) messages.push(message)
  }
  return messages
}

const assembleError = (frames: ReadonlyArray<Frame>, options?: MessageAssemblerOptions): WebSocketProtocolError => {
  const assembler = new MessageAssembler(options)
  for (const frame of frames) {
    const result = assembler.push(frame)
    if (result._tag === "Failure") {
      expect(result.failure).toBeInstanceOf(WebSocketProtocolError)
      return result.failure
    }
  }
  throw new Error("expected a protocol error")
}

const frame = (opcode: Opcode, payload: Uint8Array | string, fin = true): Frame => ({
  fin,
  opcode,
  payload: typeof payload === "string" ? bytes(payload) : payload
})

// ---------------------------------------------------------------------------------------------

describe("encodeFrame: RFC 6455 §5.7 examples", () => {
  test.each([
    ["unmasked text 'Hello'", frame(Opcode.Text, "Hello"), undefined, "810548656c6c6f"],
    ["masked text 'Hello'", frame(Opcode.Text, "Hello"), MASK, "818537fa213d7f9f4d5158"],
    ["first fragment 'Hel'", frame(Opcode.Text, "Hel", false), undefined, "010348656c"],
    ["last fragment 'lo'", frame(Opcode.Continuation, "lo"), undefined, "80026c6f"],
    ["unmasked ping 'Hello'", frame(Opcode.Ping, "Hello"), undefined, "890548656c6c6f"],
    ["masked pong 'Hello'", frame(Opcode.Pong, "Hello"), MASK, "8a8537fa213d7f9f4d5158"]
  ] as const)("%s", (_name, input, mask, expected) => {
    const encoded = encodeFrame({ ...input, mask })
    expect(hex(encoded)).toBe(expected)
    expect(decodeAll(encoded)).toEqual([input])
  })

  test("256-byte binary uses a 16-bit length", () => {
    expect(hex(encodeFrame(frame(Opcode.Binary, filler(256))).subarray(0, 4))).toBe("827e0100")
  })

  test("65536-byte binary uses a 64-bit length", () => {
    expect(hex(encodeFrame(frame(Opcode.Binary, filler(65536))).subarray(0, 10))).toBe("827f0000000000010000")
  })
})

describe("round trips", () => {
  const DATA_LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 70000]
  const CONTROL_LENGTHS = [0, 1, 125]
  const cases = [
    ...[Opcode.Text, Opcode.Binary, Opcode.Continuation].flatMap((opcode) =>
      DATA_LENGTHS.map((length) => ({ opcode, length }))
    ),
    ...[Opcode.Close, Opcode.Ping, Opcode.Pong].flatMap((opcode) =>
      CONTROL_LENGTHS.map((length) => ({ opcode, length }))
    )
  ]
  const headerLength = (length: number): number => (length < 126 ? 2 : length < 65536 ? 4 : 10)

  for (const masked of [false, true]) {
    test.each(cases)(`opcode $opcode, $length bytes, ${masked ? "masked" : "unmasked"}`, ({ opcode, length }) => {
      const input = frame(opcode, filler(length, opcode))
      const encoded = encodeFrame({ ...input, mask: masked ? MASK : undefined })
      expect(encoded.length).toBe(headerLength(length) + (masked ? 4 : 0) + length)
      expect((encoded[1] ?? 0) & 0x80).toBe(masked ? 0x80 : 0)
      const [decoded, ...more] = decodeAll(encoded, { masking: masked ? "required" : "forbidden" })
      expect(more).toEqual([])
      expect(decoded?.opcode).toBe(opcode)
      expect(decoded?.fin).toBe(true)
      expect(hex(decoded?.payload ?? new Uint8Array())).toBe(hex(input.payload))
    })
  }

  test("masking changes the bytes on the wire and leaves the caller's payload alone", () => {
    const payload = filler(1000)
    const copy = payload.slice()
    const encoded = encodeFrame({ fin: true, opcode: Opcode.Binary, payload, mask: MASK })
    expect(hex(encoded.subarray(8))).not.toBe(hex(payload))
    expect(hex(payload)).toBe(hex(copy))
  })

  test("decoding does not modify the input chunk", () => {
    const encoded = encodeFrame({ ...frame(Opcode.Text, "Hello"), mask: MASK })
    const copy = encoded.slice()
    decodeAll(encoded)
    expect(hex(encoded)).toBe(hex(copy))
  })

  test("a non-minimal length encoding is accepted", () => {
    // 5 bytes announced with a 16-bit length.
    expect(decodeAll(fromHex("817e0005 48656c6c6f"))).toEqual([frame(Opcode.Text, "Hello")])
  })
})

describe("split input", () => {
  const stream = concat(
    encodeFrame({ ...frame(Opcode.Text, "Hel", false), mask: MASK }),
    encodeFrame({ ...frame(Opcode.Ping, "are you there?"), mask: MASK }),
    encodeFrame({ ...frame(Opcode.Continuation, "lo"), mask: MASK }),
    encodeFrame({ ...frame(Opcode.Binary, filler(300)), mask: MASK }),
    encodeFrame({ ...frame(Opcode.Binary, new Uint8Array()), mask: MASK }),
    encodeFrame({ ...frame(Opcode.Close, encodeClosePayload(1000, "bye")), mask: MASK })
  )
  const whole = decodeAll(stream)

  test("the sample decodes to six frames", () => {
    expect(whole.map((f) => f.opcode)).toEqual([
      Opcode.Text,
      Opcode.Ping,
      Opcode.Continuation,
      Opcode.Binary,
      Opcode.Binary,
      Opcode.Close
    ])
  })

  test("split in two at every byte boundary gives the same frames", () => {
    for (let at = 0; at <= stream.length; at++) {
      const decoder = new FrameDecoder({ masking: "required" })
      const first = decoder.feed(stream.subarray(0, at))
      const second = decoder.feed(stream.subarray(at))
      expect(first.error).toBeUndefined()
      expect(second.error).toBeUndefined()
      expect([...first.frames, ...second.frames]).toEqual([...whole])
    }
  })

  test("one byte at a time gives the same frames", () => {
    const decoder = new FrameDecoder({ masking: "required" })
    const frames: Array<Frame> = []
    for (let i = 0; i < stream.length; i++) frames.push(...decoder.feed(stream.subarray(i, i + 1)).frames)
    expect(frames).toEqual([...whole])
  })

  test("empty chunks are harmless", () => {
    const decoder = new FrameDecoder({ masking: "required" })
    expect(decoder.feed(new Uint8Array()).frames).toEqual([])
    expect(decoder.feed(stream).frames).toEqual([...whole])
    expect(decoder.feed(new Uint8Array()).frames).toEqual([])
  })
})

describe("MessageAssembler", () => {
  test("fragmented text with a ping between fragments", () => {
    expect(
      assemble([
        frame(Opcode.Text, "Hel", false),
        frame(Opcode.Ping, "p1"),
        frame(Opcode.Continuation, "l", false),
        frame(Opcode.Pong, "p2"),
        frame(Opcode.Continuation, "o")
      ])
    ).toEqual([
      { kind: "ping", payload: bytes("p1") },
      { kind: "pong", payload: bytes("p2") },
      { kind: "text", data: "Hello" }
    ])
  })

  test("fragmented binary, then a whole text message", () => {
    expect(
      assemble([
        frame(Opcode.Binary, new Uint8Array([1, 2]), false),
        frame(Opcode.Continuation, new Uint8Array([]), false),
        frame(Opcode.Continuation, new Uint8Array([3])),
        frame(Opcode.Text, "next")
      ])
    ).toEqual([
      { kind: "binary", data: new Uint8Array([1, 2, 3]) },
      { kind: "text", data: "next" }
    ])
  })

  test("a character split across fragments is joined before UTF-8 is checked", () => {
    const euro = bytes("€") // e2 82 ac
    expect(
      assemble([frame(Opcode.Text, euro.subarray(0, 1), false), frame(Opcode.Continuation, euro.subarray(1))])
    ).toEqual([{ kind: "text", data: "€" }])
  })

  test("an empty text message", () => {
    expect(assemble([frame(Opcode.Text, "")])).toEqual([{ kind: "text", data: "" }])
  })

  test.each([
    ["no payload", new Uint8Array(), { kind: "close", code: undefined, reason: "" }],
    ["code only", fromHex("03e8"), { kind: "close", code: 1000, reason: "" }],
    ["code and reason", concat(fromHex("0fa1"), bytes("gone — bye")), { kind: "close", code: 4001, reason: "gone — bye" }]
  ] as const)("close: %s", (_name, payload, expected) => {
    expect(assemble([frame(Opcode.Close, payload)])).toEqual([expected])
  })

  test("a close between fragments is passed through", () => {
    expect(assemble([frame(Opcode.Binary, "a", false), frame(Opcode.Close, fromHex("03e9"))])).toEqual([
      { kind: "close", code: 1001, reason: "" }
    ])
  })

  test("a message exactly at the limit is accepted", () => {
    expect(
      assemble([frame(Opcode.Binary, filler(6), false), frame(Opcode.Continuation, filler(4))], { maxMessageBytes: 10 })
    ).toEqual([{ kind: "binary", data: concat(filler(6), filler(4)) }])
  })
})

describe("protocol errors", () => {
  const raw = (...octets: ReadonlyArray<number>): Uint8Array => new Uint8Array(octets)

  test.each([
    ["RSV1 set", raw(0xc1, 0x00), "forbidden", 1002, "frame sets reserved bit RSV1 but no extension was negotiated"],
    ["RSV2 and RSV3 set", raw(0xb1, 0x00), "forbidden", 1002, "reserved bit RSV2, RSV3"],
    ["opcode 0x3", raw(0x83, 0x00), "forbidden", 1002, "frame has unknown opcode 0x3"],
    ["opcode 0xb", raw(0x8b, 0x00), "forbidden", 1002, "frame has unknown opcode 0xb"],
    ["masked frame from a server", raw(0x81, 0x80, 1, 2, 3, 4), "forbidden", 1002, "server frame is masked"],
    ["unmasked frame from a client", raw(0x81, 0x00), "required", 1002, "client frame is not masked"],
    ["fragmented ping", raw(0x09, 0x00), "forbidden", 1002, "ping frame is fragmented"],
    ["fragmented close", raw(0x08, 0x00), "forbidden", 1002, "close frame is fragmented"],
    ["pong of 126 bytes", raw(0x8a, 0x7e, 0x00, 0x7e), "forbidden", 1002, "pong frame payload is longer than 125 bytes"],
    [
      "64-bit length with the top bit set",
      raw(0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1),
      "forbidden",
      1002,
      "frame length has its most significant bit set"
    ],
    [
      "2^40-byte frame (refused from the header alone)",
      raw(0x82, 0x7f, 0, 0, 0x01, 0, 0, 0, 0, 0),
      "forbidden",
      1009,
      `frame payload of 1099511627776 bytes exceeds the limit of ${DEFAULT_MAX_MESSAGE_BYTES}`
    ]
  ] as const)("%s", (_name, stream, masking, closeCode, text) => {
    const error = decodeError(stream, { masking })
    expect(error.closeCode).toBe(closeCode)
    expect(error.message).toContain(text)
    expect(error.message).toContain(`close ${closeCode}`)
  })

  test("messages name the close code and its meaning", () => {
    expect(decodeError(raw(0xc1, 0x00), { masking: "forbidden" }).message).toBe(
      "frame sets reserved bit RSV1 but no extension was negotiated (close 1002: protocol error)"
    )
  })

  test("a frame over maxPayloadBytes", () => {
    const error = decodeError(encodeFrame(frame(Opcode.Binary, filler(11))), { masking: "forbidden", maxPayloadBytes: 10 })
    expect(error.closeCode).toBe(1009)
    expect(error.message).toBe("frame payload of 11 bytes exceeds the limit of 10 (close 1009: message too big)")
  })

  test("frames before the fault are returned with it, and the decoder stays failed", () => {
    const decoder = new FrameDecoder({ masking: "forbidden" })
    const good = encodeFrame(frame(Opcode.Text, "ok"))
    const first = decoder.feed(concat(good, raw(0x83, 0x00), good))
    expect(first.frames).toEqual([frame(Opcode.Text, "ok")])
    expect(first.error?.closeCode).toBe(1002)
    const second = decoder.feed(good)
    expect(second.frames).toEqual([])
    expect(second.error).toBe(first.error as WebSocketProtocolError)
  })

  test.each([
    [
      "continuation with nothing to continue",
      [frame(Opcode.Continuation, "x")],
      1002,
      "continuation frame without a message to continue (close 1002: protocol error)"
    ],
    [
      "text frame inside a fragmented binary message",
      [frame(Opcode.Binary, "a", false), frame(Opcode.Text, "b")],
      1002,
      "new text frame while a binary message is unfinished (close 1002: protocol error)"
    ],
    [
      "invalid UTF-8 in a text message",
      [frame(Opcode.Text, new Uint8Array([0x48, 0xff]))],
      1007,
      "text message is not valid UTF-8 (close 1007: invalid payload data)"
    ],
    [
      "truncated character at the end of a fragmented text message",
      [frame(Opcode.Text, "ok", false), frame(Opcode.Continuation, new Uint8Array([0xe2, 0x82]))],
      1007,
      "text message is not valid UTF-8"
    ],
    [
      "fragments adding up past the limit",
      [frame(Opcode.Binary, filler(6), false), frame(Opcode.Continuation, filler(5))],
      1009,
      "message of at least 11 bytes exceeds the limit of 10 (close 1009: message too big)"
    ],
    [
      "close payload of 1 byte",
      [frame(Opcode.Close, new Uint8Array([3]))],
      1002,
      "close frame payload is 1 byte; a code needs 2 (close 1002: protocol error)"
    ],
    ["close code 1005", [frame(Opcode.Close, fromHex("03ed"))], 1002, "close frame carries invalid code 1005"],
    ["close code 1006", [frame(Opcode.Close, fromHex("03ee"))], 1002, "close frame carries invalid code 1006"],
    ["close code 999", [frame(Opcode.Close, fromHex("03e7"))], 1002, "close frame carries invalid code 999"],
    ["close code 5000", [frame(Opcode.Close, fromHex("1388"))], 1002, "close frame carries invalid code 5000"],
    [
      "close reason that is not UTF-8",
      [frame(Opcode.Close, fromHex("03e8 c3"))],
      1007,
      "close frame reason is not valid UTF-8 (close 1007: invalid payload data)"
    ]
  ] as const)("%s", (_name, frames, closeCode, text) => {
    const error = assembleError(frames, { maxMessageBytes: 10 })
    expect(error.closeCode).toBe(closeCode)
    expect(error.message).toContain(text)
  })
})

describe("close payload", () => {
  test.each([
    [1000, true],
    [1003, true],
    [1004, false],
    [1005, false],
    [1006, false],
    [1007, true],
    [1011, true],
    [1014, true],
    [1015, false],
    [2999, false],
    [3000, true],
    [4999, true],
    [5000, false],
    [1000.5, false]
  ])("code %d valid on the wire: %p", (code, valid) => {
    expect(isValidCloseCode(code)).toBe(valid)
  })

  test("code and reason round trip", () => {
    const payload = encodeClosePayload(4001, "going, ünïcode")
    expect(hex(payload.subarray(0, 2))).toBe("0fa1")
    expect(ok(parseClosePayload(payload))).toEqual({ code: 4001, reason: "going, ünïcode" })
  })

  test("no code means an empty payload", () => {
    expect(encodeClosePayload(undefined)).toEqual(new Uint8Array())
    expect(ok(parseClosePayload(new Uint8Array()))).toEqual({ code: undefined, reason: "" })
  })

  test("a long reason is cut to fit a control frame, at a character boundary", () => {
    const reason = "é".repeat(100) // 200 bytes
    const payload = encodeClosePayload(1000, reason)
    expect(payload.length).toBe(2 + 122) // 61 whole characters; 123 would split one
    expect(ok(parseClosePayload(payload)).reason).toBe("é".repeat(61))
    expect(encodeClosePayload(1000, "x".repeat(500)).length).toBe(2 + MAX_CLOSE_REASON_BYTES)
    // And the result is still a valid control frame.
    expect(() => encodeFrame({ fin: true, opcode: Opcode.Close, payload })).not.toThrow()
  })

  test.each([
    [CloseCode.NoStatusReceived, "", "close code 1005 may not be sent"],
    [CloseCode.Abnormal, "", "close code 1006 may not be sent"],
    [undefined, "why", "a close reason needs a close code"]
  ])("encodeClosePayload(%p, %p) throws", (code, reason, message) => {
    expect(() => encodeClosePayload(code, reason)).toThrow(new RangeError(message))
  })

  test("parse errors carry the close code", () => {
    expect(err(parseClosePayload(new Uint8Array([1]))).closeCode).toBe(1002)
  })
})

describe("encodeFrame refuses frames no peer may accept", () => {
  test.each([
    [{ fin: false, opcode: Opcode.Ping, payload: new Uint8Array() }, "a ping frame cannot be fragmented"],
    [{ fin: true, opcode: Opcode.Close, payload: filler(126) }, "a close payload is at most 125 bytes, got 126"],
    [{ fin: true, opcode: Opcode.Text, payload: new Uint8Array(), mask: new Uint8Array(3) }, "a mask is 4 bytes, got 3"]
  ] as const)("%#: %s", (input, message) => {
    expect(() => encodeFrame(input)).toThrow(new RangeError(message))
  })
})
