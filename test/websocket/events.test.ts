import { describe, expect, test } from "bun:test"
import {
  applyMetaUpdates,
  clientHandshakeResponseHeaders,
  closeEvent,
  decodeEvents,
  encodeEvents,
  hasWebSocketEventsContentType,
  type KeepAliveUpdate,
  keepAliveUpdateFromResponse,
  metaFromResponseHeaders,
  parseClosePayload,
  stripClientRequestHeaders,
  type WsEvent,
  WS_EVENT_TYPES
} from "../../src/websocket/events.ts"
import { bytes, err, ok, text } from "../grip/helpers.ts"

/** Body text where every character is one byte (so `\xff` is byte 0xff, not UTF-8). */
const raw = (body: string): Uint8Array => {
  const out = new Uint8Array(body.length)
  for (let i = 0; i < body.length; i++) out[i] = body.charCodeAt(i)
  return out
}

const wire = (events: ReadonlyArray<WsEvent>): string => String.fromCharCode(...encodeEvents(events))

const decoded = (body: string): ReadonlyArray<WsEvent> => ok(decodeEvents(raw(body)))

const decodeError = (body: string | Uint8Array): string =>
  err(decodeEvents(typeof body === "string" ? raw(body) : body)).message

const headers = (pairs: ReadonlyArray<readonly [string, string]>): Headers => {
  const out = new Headers()
  for (const [name, value] of pairs) out.append(name, value)
  return out
}

describe("encodeEvents", () => {
  test.each([
    [{ type: "OPEN" }, "OPEN\r\n"],
    [{ type: "DISCONNECT" }, "DISCONNECT\r\n"],
    [{ type: "CLOSE" }, "CLOSE\r\n"],
    [{ type: "PING" }, "PING\r\n"],
    [{ type: "TEXT", content: bytes("hello") }, "TEXT 5\r\nhello\r\n"],
    [{ type: "TEXT", content: new Uint8Array(0) }, "TEXT 0\r\n\r\n"],
    [{ type: "OPEN", content: new Uint8Array(0) }, "OPEN 0\r\n\r\n"],
    [{ type: "BINARY", content: new Uint8Array(26).fill(0x61) }, `BINARY 1a\r\n${"a".repeat(26)}\r\n`],
    [{ type: "PONG", content: bytes("x") }, "PONG 1\r\nx\r\n"]
  ] satisfies ReadonlyArray<readonly [WsEvent, string]>)("%o is written as %j", (event, expected) => {
    expect(wire([event])).toBe(expected)
  })

  test("the length counts bytes, not characters", () => {
    expect(wire([{ type: "TEXT", content: bytes("é€") }])).toBe("TEXT 5\r\n\xc3\xa9\xe2\x82\xac\r\n")
  })

  test("events are concatenated in order; no events is an empty body", () => {
    expect(wire([{ type: "OPEN" }, { type: "TEXT", content: bytes("hi") }, closeEvent(1000)])).toBe(
      "OPEN\r\nTEXT 2\r\nhi\r\nCLOSE 2\r\n\x03\xe8\r\n"
    )
    expect(encodeEvents([]).length).toBe(0)
  })
})

describe("decodeEvents", () => {
  const roundTrips: ReadonlyArray<readonly [string, ReadonlyArray<WsEvent>]> = [
    ...WS_EVENT_TYPES.map((type) => [`${type} without content`, [{ type }]] as const),
    ...WS_EVENT_TYPES.map((type) => [`${type} with content`, [{ type, content: bytes(`${type} payload`) }]] as const),
    ...WS_EVENT_TYPES.map((type) => [`${type} with empty content`, [{ type, content: new Uint8Array(0) }]] as const),
    ["binary content holding CRLF and type lines", [{ type: "BINARY", content: raw("\r\nTEXT 2\r\n\r\n\x00\xff") }]],
    ["content that is only CRLF", [{ type: "TEXT", content: raw("\r\n") }]],
    [
      "a whole session's worth of events",
      [
        { type: "OPEN" },
        { type: "TEXT", content: bytes("one") },
        { type: "BINARY", content: new Uint8Array([0, 1, 2, 0x0d, 0x0a, 255]) },
        { type: "PING" },
        { type: "PONG", content: bytes("p") },
        closeEvent(4001, "bye"),
        { type: "DISCONNECT" }
      ]
    ],
    ["no events", []]
  ]
  test.each(roundTrips)("round trip: %s", (_name, events) => {
    const body = encodeEvents(events)
    expect(ok(decodeEvents(body))).toEqual(events)
    expect(encodeEvents(ok(decodeEvents(body)))).toEqual(body)
  })

  test("large content (200 000 bytes) round-trips", () => {
    const content = new Uint8Array(200_000)
    for (let i = 0; i < content.length; i++) content[i] = (i * 7) % 256
    const body = encodeEvents([{ type: "BINARY", content }, { type: "TEXT", content: bytes("after") }])
    expect(String.fromCharCode(...body.subarray(0, 13))).toBe("BINARY 30d40\r")
    const events = ok(decodeEvents(body))
    expect(events.length).toBe(2)
    expect(events[0]?.content).toEqual(content)
    expect(text(events[1]?.content)).toBe("after")
  })

  test("content without a length stays absent, empty content stays present", () => {
    expect(decoded("TEXT\r\n")).toEqual([{ type: "TEXT" }])
    expect(decoded("TEXT 0\r\n\r\n")).toEqual([{ type: "TEXT", content: new Uint8Array(0) }])
  })

  test("decoded content is a copy, not a view into the body", () => {
    const body = raw("TEXT 2\r\nhi\r\n")
    const content = ok(decodeEvents(body))[0]?.content
    body[8] = 0x78
    expect(text(content)).toBe("hi")
    expect(content?.buffer).not.toBe(body.buffer)
  })

  test("hex lengths are read in either case", () => {
    const content = "x".repeat(0xab)
    expect(decoded(`TEXT AB\r\n${content}\r\n`)).toEqual([{ type: "TEXT", content: bytes(content) }])
    expect(decoded(`TEXT 0ab\r\n${content}\r\n`)).toEqual([{ type: "TEXT", content: bytes(content) }])
  })

  test("content on events that carry none is kept (receivers ignore it)", () => {
    expect(decoded("OPEN 0\r\n\r\nDISCONNECT 3\r\nabc\r\n")).toEqual([
      { type: "OPEN", content: new Uint8Array(0) },
      { type: "DISCONNECT", content: bytes("abc") }
    ])
  })

  test("the last event's terminator may be missing or cut short by the end of the body, as Pushpin allows", () => {
    expect(decoded("TEXT 2\r\nhi")).toEqual([{ type: "TEXT", content: bytes("hi") }])
    expect(decoded("OPEN\r\nTEXT 2\r\nhi\r")).toEqual([{ type: "OPEN" }, { type: "TEXT", content: bytes("hi") }])
  })

  test.each([
    ["type line without CRLF", "OPEN", "event 1: type line 'OPEN' is not terminated by CRLF"],
    ["second type line without CRLF", "OPEN\r\nTEXT 2\r\nhi\r\nCLOSE", "event 3: type line 'CLOSE' is not terminated by CRLF"],
    ["type line ending in a bare LF", "OPEN\n", "event 1: type line 'OPEN\\n' is not terminated by CRLF"],
    ["unknown type", "FOO\r\n", "event 1: unknown event type 'FOO'"],
    ["unknown type with a length", "OPEN\r\nFOO 1\r\nx\r\n", "event 2: unknown event type 'FOO'"],
    ["lower-case type", "text 2\r\nhi\r\n", "event 1: unknown event type 'text' (event types are upper-case)"],
    ["mixed-case type", "Close\r\n", "event 1: unknown event type 'Close' (event types are upper-case)"],
    ["blank line between events", "OPEN\r\n\r\nTEXT 1\r\na\r\n", "event 2: empty line where an event type was expected"],
    ["leading space", " TEXT 1\r\na\r\n", "event 1: unknown event type ''"],
    ["non-ASCII type", "T\xc9XT\r\n", "event 1: unknown event type 'T\\xc9XT'"],
    ["overlong garbage type", `${"Z".repeat(50)}\r\n`, `event 1: unknown event type '${"Z".repeat(40)}…'`],
    ["length not hexadecimal", "OPEN\r\nTEXT zz\r\nab\r\n", "event 2: length 'zz' is not hexadecimal"],
    ["empty length", "TEXT \r\n\r\n", "event 1: length '' is not hexadecimal"],
    ["negative length", "TEXT -2\r\nhi\r\n", "event 1: length '-2' is not hexadecimal"],
    ["0x-prefixed length", "TEXT 0x2\r\nhi\r\n", "event 1: length '0x2' is not hexadecimal"],
    ["length with a trailing blank", "TEXT 2 \r\nhi\r\n", "event 1: length '2 ' is not hexadecimal"],
    ["second space", "TEXT 2 x\r\nhi\r\n", "event 1: length '2 x' is not hexadecimal"],
    ["length past a C int", "TEXT 80000000\r\n", "event 1: length '80000000' is too large (limit 2147483647 bytes)"],
    ["truncated content", "TEXT a\r\nabcd", "event 1: content truncated: declared 10 bytes, 4 present"],
    ["truncated second event", "OPEN\r\nBINARY 3\r\n", "event 2: content truncated: declared 3 bytes, 0 present"],
    [
      "declared length too short",
      "TEXT 2\r\nhello\r\n",
      "event 1: content of declared length 2 is followed by 'll', not CRLF"
    ],
    [
      "bare LF after content",
      "TEXT 2\r\nhi\nOPEN\r\n",
      "event 1: content of declared length 2 is followed by '\\nO', not CRLF"
    ],
    ["one wrong byte at the end", "TEXT 2\r\nhix", "event 1: content of declared length 2 is followed by 'x', not CRLF"]
  ])("refuses %s", (_name, body, message) => {
    expect(decodeError(body)).toBe(message)
  })

  test("the error is a tagged WsEventsError", () => {
    const error = err(decodeEvents(raw("NOPE\r\n")))
    expect(error._tag).toBe("WsEventsError")
  })

  test("a type line with no CRLF in a large body is quoted short", () => {
    expect(decodeError(new Uint8Array(100_000).fill(0x41))).toBe(
      `event 1: type line '${"A".repeat(40)}…' is not terminated by CRLF`
    )
  })
})

describe("CLOSE payload", () => {
  test("closeEvent writes the code big-endian, then the reason in UTF-8", () => {
    expect(wire([closeEvent(1000)])).toBe("CLOSE 2\r\n\x03\xe8\r\n")
    expect(wire([closeEvent(4000, "gone ✓")])).toBe("CLOSE a\r\n\x0f\xa0gone \xe2\x9c\x93\r\n")
  })

  test.each([
    [1000, ""],
    [1001, "going away"],
    [4999, "ünïcødé"],
    [0, ""],
    [0xffff, "max"]
  ])("code %d with reason %j round-trips", (code, reason) => {
    const [event] = ok(decodeEvents(encodeEvents([closeEvent(code, reason)])))
    expect(event?.type).toBe("CLOSE")
    expect(parseClosePayload(event?.content)).toEqual({ code, reason })
  })

  test.each([[-1], [65536], [1000.5], [Number.NaN]])("closeEvent refuses code %p", (code) => {
    expect(() => closeEvent(code)).toThrow(RangeError)
  })

  test("fewer than two bytes means no code", () => {
    expect(parseClosePayload(undefined)).toBeUndefined()
    expect(parseClosePayload(new Uint8Array(0))).toBeUndefined()
    expect(parseClosePayload(new Uint8Array([0x03]))).toBeUndefined()
  })

  test("an invalid UTF-8 reason is decoded leniently, keeping the code", () => {
    expect(parseClosePayload(raw("\x03\xe9ok\xff"))).toEqual({ code: 1001, reason: "ok\ufffd" })
  })
})

describe("headers", () => {
  test("content type must be exactly application/websocket-events", () => {
    expect(hasWebSocketEventsContentType(headers([["Content-Type", "application/websocket-events"]]))).toBe(true)
    expect(hasWebSocketEventsContentType(headers([["Content-Type", "application/websocket-events; charset=utf-8"]]))).toBe(
      false
    )
    expect(hasWebSocketEventsContentType(headers([["Content-Type", "Application/WebSocket-Events"]]))).toBe(false)
    expect(hasWebSocketEventsContentType(headers([]))).toBe(false)
  })

  test("client request headers lose Upgrade, Accept, Connection-Id, Content-Length and every Meta-*", () => {
    const stripped = stripClientRequestHeaders(
      headers([
        ["Host", "example.com"],
        ["Upgrade", "websocket"],
        ["Accept", "*/*"],
        ["Connection-Id", "spoofed"],
        ["Content-Length", "0"],
        ["Meta-User", "admin"],
        ["META-role", "root"],
        ["Metadata", "kept: not a Meta- header"],
        ["Sec-WebSocket-Protocol", "chat"]
      ])
    )
    expect([...stripped]).toEqual([
      ["host", "example.com"],
      ["metadata", "kept: not a Meta- header"],
      ["sec-websocket-protocol", "chat"]
    ])
  })

  test("Set-Meta-* headers become meta updates; a bare Set-Meta- is ignored", () => {
    const updates = metaFromResponseHeaders(
      headers([
        ["Content-Type", "application/websocket-events"],
        ["Set-Meta-User", "alice"],
        ["set-meta-room", ""],
        ["Set-Meta-", "nameless"],
        ["Meta-Other", "not a set"]
      ])
    )
    expect(updates).toEqual([
      { name: "room", value: "" },
      { name: "user", value: "alice" }
    ])
  })

  test("meta updates bind, rebind and unbind", () => {
    const before = new Map([
      ["user", "alice"],
      ["room", "1"],
      ["lang", "en"]
    ])
    const after = applyMetaUpdates(before, [
      { name: "user", value: "bob" },
      { name: "room", value: "" },
      { name: "theme", value: "dark" }
    ])
    expect([...after]).toEqual([
      ["lang", "en"],
      ["user", "bob"],
      ["theme", "dark"]
    ])
    expect([...before]).toEqual([
      ["user", "alice"],
      ["room", "1"],
      ["lang", "en"]
    ])
  })

  test("the client's 101 carries the origin headers without the WOH-private ones", () => {
    const forClient = clientHandshakeResponseHeaders(
      headers([
        ["Content-Type", "application/websocket-events"],
        ["Content-Length", "6"],
        ["Keep-Alive-Interval", "30"],
        ["Set-Meta-User", "alice"],
        ["Sec-WebSocket-Extensions", "grip; message-prefix=\"\""],
        ["Sec-WebSocket-Protocol", "chat"],
        ["Set-Cookie", "a=1"]
      ])
    )
    expect([...forClient]).toEqual([
      ["sec-websocket-extensions", "grip; message-prefix=\"\""],
      ["sec-websocket-protocol", "chat"],
      ["set-cookie", "a=1"]
    ])
  })

  test.each([
    [undefined, { _tag: "Unchanged" }],
    ["30", { _tag: "Interval", seconds: 30 }],
    ["20", { _tag: "Interval", seconds: 20 }],
    ["5", { _tag: "Interval", seconds: 20 }],
    ["+45", { _tag: "Interval", seconds: 45 }],
    ["0", { _tag: "Disabled" }],
    ["-10", { _tag: "Disabled" }],
    ["30s", { _tag: "Disabled" }],
    ["", { _tag: "Disabled" }],
    ["2147483648", { _tag: "Disabled" }]
  ] satisfies ReadonlyArray<readonly [string | undefined, KeepAliveUpdate]>)("Keep-Alive-Interval %p", (value, expected) => {
    expect(keepAliveUpdateFromResponse(headers(value === undefined ? [] : [["Keep-Alive-Interval", value]]))).toEqual(
      expected
    )
  })
})
