import { describe, expect, test } from "bun:test"
import {
  classifyOriginBinary,
  classifyOriginText,
  CLOSE_CODE_INTERNAL_ERROR,
  decodeControl,
  DEFAULT_MESSAGE_PREFIX,
  type GripControl,
  GripControlError,
  gripExtensionHeader,
  type MessagePrefix,
  messagePrefixOf,
  negotiateGrip,
  originRequestExtensions,
  parseGripExtension
} from "../../src/websocket/grip-control.ts"
import { bytes, err, ok, text } from "../grip/helpers.ts"

const prefixText = (prefix: MessagePrefix): string | undefined => prefix.text

const control = (json: unknown): GripControl => ok(decodeControl(typeof json === "string" ? json : JSON.stringify(json)))

const rejected = (json: unknown): GripControlError => {
  const error = err(decodeControl(typeof json === "string" ? json : JSON.stringify(json)))
  expect(error).toBeInstanceOf(GripControlError)
  expect(error._tag).toBe("GripControlError")
  return error
}

// ---------------------------------------------------------------------------------------------
// Handshake

describe("parseGripExtension", () => {
  test.each([
    ["grip", "m:", "grip"],
    ["  grip  ", "m:", "grip"],
    ["grip; message-prefix=\"\"", "", "grip; message-prefix=\"\""],
    // No `=`: Pushpin reads the parameter as present with an empty value.
    ["grip; message-prefix", "", "grip; message-prefix"],
    ["grip; message-prefix=data:", "data:", "grip; message-prefix=data:"],
    ["grip; message-prefix=\"a;b,c\"", "a;b,c", "grip; message-prefix=\"a;b,c\""],
    ["grip; message-prefix=\"say \\\"hi\\\"\"", "say \"hi\"", "grip; message-prefix=\"say \\\"hi\\\"\""],
    ["grip;message-prefix= x ", "x", "grip;message-prefix= x"],
    ["grip; message-prefix=a; message-prefix=b", "b", "grip; message-prefix=a; message-prefix=b"],
    ["grip; other=1", "m:", "grip; other=1"],
    // Parameter names are case-sensitive in Pushpin: this one is not the prefix.
    ["grip; Message-Prefix=x", "m:", "grip; Message-Prefix=x"],
    ["permessage-deflate; client_max_window_bits, grip; message-prefix=\"p\"", "p", "grip; message-prefix=\"p\""],
    ["grip; message-prefix=first, grip; message-prefix=second", "first", "grip; message-prefix=first"]
  ] as const)("%s → prefix %j", (header, prefix, element) => {
    const grip = parseGripExtension(header)
    if (grip._tag !== "Present") throw new Error(`expected Present, got ${grip._tag}`)
    expect(prefixText(grip.prefix)).toBe(prefix)
    expect(text(grip.prefix.bytes)).toBe(prefix)
    expect(grip.element).toBe(element)
  })

  test.each([
    [null],
    [undefined],
    [""],
    ["permessage-deflate"],
    ["gripx"],
    ["x-grip; message-prefix=a"],
    // The token is matched case-sensitively, as Pushpin does.
    ["Grip"],
    ["GRIP; message-prefix=a"]
  ] as const)("%p → absent", (header) => {
    expect(parseGripExtension(header)).toEqual({ _tag: "Absent" })
  })

  test.each([
    ["grip; message-prefix=", "cannot parse grip extension: grip; message-prefix="],
    ["grip; message-prefix=   ", "cannot parse grip extension: grip; message-prefix="],
    ["grip; a=1; message-prefix=", "cannot parse grip extension: grip; a=1; message-prefix="],
    ["grip; message-prefix=\"abc", "unterminated quote in Sec-WebSocket-Extensions: grip; message-prefix=\"abc"]
  ] as const)("%s → malformed", (header, reason) => {
    expect(parseGripExtension(header)).toEqual({ _tag: "Malformed", reason })
  })

  test("an `=` inside the value is not a trailing empty value", () => {
    const grip = parseGripExtension("grip; message-prefix=a=")
    if (grip._tag !== "Present") throw new Error(grip._tag)
    expect(grip.prefix.text).toBe("a=")
  })

  test("header values arrive one character per byte: the prefix is those bytes", () => {
    // "é:" as UTF-8 bytes C3 A9 3A, as Fetch Headers hand them out.
    const grip = parseGripExtension("grip; message-prefix=\u00c3\u00a9:")
    if (grip._tag !== "Present") throw new Error(grip._tag)
    expect([...grip.prefix.bytes]).toEqual([0xc3, 0xa9, 0x3a])
    expect(grip.prefix.text).toBe("é:")
  })

  test("a prefix that is not UTF-8 has no text form", () => {
    const prefix = messagePrefixOf("\u00ff:")
    expect([...prefix.bytes]).toEqual([0xff, 0x3a])
    expect(prefix.text).toBeUndefined()
  })
})

describe("building the extension header", () => {
  test.each([
    [true, "grip"],
    [false, undefined]
  ] as const)("offer to the origin, route grip=%p → %p", (routeGrip, header) => {
    expect(originRequestExtensions(routeGrip)).toBe(header)
  })

  test.each([
    [undefined, "grip", "m:"],
    ["m:", "grip; message-prefix=\"m:\"", "m:"],
    ["", "grip; message-prefix=\"\"", ""],
    ["data", "grip; message-prefix=data", "data"],
    ["a \"b\"; c", "grip; message-prefix=\"a \\\"b\\\"; c\"", "a \"b\"; c"],
    ["back\\slash", "grip; message-prefix=\"back\\\\slash\"", "back\\slash"]
  ] as const)("gripExtensionHeader(%p) = %s and parses back", (prefix, header, parsedPrefix) => {
    expect(gripExtensionHeader(prefix)).toBe(header)
    const grip = parseGripExtension(header)
    if (grip._tag !== "Present") throw new Error(grip._tag)
    expect(grip.prefix.text).toBe(parsedPrefix)
  })
})

describe("negotiateGrip", () => {
  const origin = "permessage-deflate, grip; message-prefix=\"p:\""

  test("GRIP route, ordinary client: GRIP on, no extension for the client", () => {
    const handshake = negotiateGrip(origin, { routeGrip: true, trustedClient: false })
    if (handshake._tag !== "Grip") throw new Error(handshake._tag)
    expect(handshake.prefix.text).toBe("p:")
    expect(handshake).not.toHaveProperty("clientExtensions")
  })

  test.each([
    ["trusted client (GRIP proxy chaining)", { routeGrip: true, trustedClient: true }],
    ["route without GRIP", { routeGrip: false, trustedClient: false }],
    ["both", { routeGrip: false, trustedClient: true }]
  ] as const)("%s: pass through and hand the grip element to the client", (_, options) => {
    expect(negotiateGrip(origin, options)).toEqual({ _tag: "PassThrough", clientExtensions: "grip; message-prefix=\"p:\"" })
  })

  test.each([
    [null],
    ["permessage-deflate"]
  ] as const)("origin without grip (%p): pass through, nothing for the client", (header) => {
    expect(negotiateGrip(header, { routeGrip: true, trustedClient: false })).toEqual({ _tag: "PassThrough" })
  })

  test("malformed grip element: pass through, reason kept for the log", () => {
    expect(negotiateGrip("grip; message-prefix=", { routeGrip: true, trustedClient: false })).toEqual({
      _tag: "PassThrough",
      malformed: "cannot parse grip extension: grip; message-prefix="
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Origin messages

describe("classifyOriginText", () => {
  const custom = messagePrefixOf("data:")
  const empty = messagePrefixOf("")
  const controlLike = messagePrefixOf("c:x")

  test.each([
    ["default prefix stripped", "m:hello", DEFAULT_MESSAGE_PREFIX, { _tag: "Forward", content: "hello" }],
    ["default prefix, empty rest", "m:", DEFAULT_MESSAGE_PREFIX, { _tag: "Forward", content: "" }],
    ["only the leading prefix goes", "m:m:x", DEFAULT_MESSAGE_PREFIX, { _tag: "Forward", content: "m:x" }],
    ["unprefixed dropped", "hello", DEFAULT_MESSAGE_PREFIX, { _tag: "Drop", reason: "dropping unprefixed message" }],
    ["prefix case matters", "M:hello", DEFAULT_MESSAGE_PREFIX, { _tag: "Drop", reason: "dropping unprefixed message" }],
    ["prefix must lead", " m:hello", DEFAULT_MESSAGE_PREFIX, { _tag: "Drop", reason: "dropping unprefixed message" }],
    ["empty message dropped", "", DEFAULT_MESSAGE_PREFIX, { _tag: "Drop", reason: "dropping unprefixed message" }],
    ["custom prefix", "data:{\"a\":1}", custom, { _tag: "Forward", content: "{\"a\":1}" }],
    ["default prefix is not special under a custom one", "m:x", custom, {
      _tag: "Drop",
      reason: "dropping unprefixed message"
    }],
    ["empty prefix forwards everything", "{\"a\":1}", empty, { _tag: "Forward", content: "{\"a\":1}" }],
    ["empty prefix, empty message", "", empty, { _tag: "Forward", content: "" }],
    ["control", "c:{\"type\":\"detach\"}", DEFAULT_MESSAGE_PREFIX, { _tag: "Control", json: "{\"type\":\"detach\"}" }],
    ["control with empty body", "c:", DEFAULT_MESSAGE_PREFIX, { _tag: "Control", json: "" }],
    ["control wins over an empty prefix", "c:{}", empty, { _tag: "Control", json: "{}" }],
    ["control wins over a prefix starting c:", "c:xhello", controlLike, { _tag: "Control", json: "xhello" }],
    ["C: is not control", "C:{}", DEFAULT_MESSAGE_PREFIX, { _tag: "Drop", reason: "dropping unprefixed message" }],
    ["unicode content", "m:héllo ✓", DEFAULT_MESSAGE_PREFIX, { _tag: "Forward", content: "héllo ✓" }],
    ["unicode prefix", "é:x", messagePrefixOf("\u00c3\u00a9:"), { _tag: "Forward", content: "x" }]
  ] as const)("%s", (_, message, prefix, expected) => {
    expect(classifyOriginText(message, prefix)).toEqual(expected)
  })

  test("a prefix that is not UTF-8 cannot start a text message", () => {
    expect(classifyOriginText("\u00ff:x", messagePrefixOf("\u00ff:"))).toEqual({
      _tag: "Drop",
      reason: "dropping unprefixed message (the message prefix is not UTF-8 text)"
    })
  })
})

describe("classifyOriginBinary", () => {
  const forwarded = (message: Uint8Array, prefix: MessagePrefix): ReadonlyArray<number> => {
    const result = classifyOriginBinary(message, prefix)
    if (result._tag !== "Forward") throw new Error(`expected Forward, got ${result.reason}`)
    return [...result.content]
  }

  test.each([
    ["default prefix stripped", [0x6d, 0x3a, 0x00, 0xff], DEFAULT_MESSAGE_PREFIX, [0x00, 0xff]],
    ["prefix only", [0x6d, 0x3a], DEFAULT_MESSAGE_PREFIX, []],
    ["custom prefix", [...bytes("bin:"), 1, 2], messagePrefixOf("bin:"), [1, 2]],
    ["empty prefix forwards all", [1, 2, 3], messagePrefixOf(""), [1, 2, 3]],
    ["non-UTF-8 prefix compared as bytes", [0xff, 0x3a, 7], messagePrefixOf("\u00ff:"), [7]],
    // Binary messages are never control messages: with an empty prefix "c:" is just data.
    ["binary c: is data", [...bytes("c:{}")], messagePrefixOf(""), [...bytes("c:{}")]]
  ] as const)("%s", (_, message, prefix, expected) => {
    expect(forwarded(new Uint8Array(message), prefix)).toEqual([...expected])
  })

  test.each([
    ["unprefixed", [1, 2, 3], DEFAULT_MESSAGE_PREFIX],
    ["shorter than the prefix", [0x6d], DEFAULT_MESSAGE_PREFIX],
    ["empty", [], DEFAULT_MESSAGE_PREFIX],
    ["binary c: needs the prefix too", [...bytes("c:{\"type\":\"detach\"}")], DEFAULT_MESSAGE_PREFIX]
  ] as const)("%s → dropped", (_, message, prefix) => {
    expect(classifyOriginBinary(new Uint8Array(message), prefix)).toEqual({
      _tag: "Drop",
      reason: "dropping unprefixed message"
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Control messages

describe("decodeControl: valid messages", () => {
  test.each([
    ["subscribe", { type: "subscribe", channel: "news" }, { _tag: "Subscribe", channel: "news", filters: [] }],
    ["subscribe with filters (names not checked)", {
      type: "subscribe",
      channel: "news",
      filters: ["skip-self", "no-such-filter"]
    }, { _tag: "Subscribe", channel: "news", filters: ["skip-self", "no-such-filter"] }],
    ["subscribe, filters null", { type: "subscribe", channel: "c", filters: null }, {
      _tag: "Subscribe",
      channel: "c",
      filters: []
    }],
    ["subscribe, empty filters", { type: "subscribe", channel: "c", filters: [] }, { _tag: "Subscribe", channel: "c", filters: [] }],
    ["subscribe, extra fields ignored", { type: "subscribe", channel: "c", prefix: "x", id: 3 }, {
      _tag: "Subscribe",
      channel: "c",
      filters: []
    }],
    ["unsubscribe", { type: "unsubscribe", channel: "news" }, { _tag: "Unsubscribe", channel: "news" }],
    ["unsubscribe ignores filters", { type: "unsubscribe", channel: "news", filters: 5 }, { _tag: "Unsubscribe", channel: "news" }],
    ["detach", { type: "detach" }, { _tag: "Detach" }],
    ["flush-delayed", { type: "flush-delayed" }, { _tag: "FlushDelayed" }],
    ["session with id", { type: "session", id: "s1" }, { _tag: "Session", id: "s1" }],
    ["session without id clears", { type: "session" }, { _tag: "Session" }],
    ["session with empty id clears", { type: "session", id: "" }, { _tag: "Session" }],
    ["session with null id clears", { type: "session", id: null }, { _tag: "Session" }],
    ["set-meta", { type: "set-meta", name: "user", value: "alice" }, { _tag: "SetMeta", name: "user", value: "alice" }],
    ["set-meta empty value sets empty", { type: "set-meta", name: "user", value: "" }, { _tag: "SetMeta", name: "user", value: "" }],
    ["set-meta without value removes", { type: "set-meta", name: "user" }, { _tag: "SetMeta", name: "user" }],
    ["set-meta null value removes", { type: "set-meta", name: "user", value: null }, { _tag: "SetMeta", name: "user" }]
  ] as const)("%s", (_, json, expected) => {
    expect(control(json)).toEqual(expected)
  })

  test("whitespace around the JSON is fine", () => {
    expect(control(" \n{\"type\":\"detach\"}\n ")).toEqual({ _tag: "Detach" })
  })
})

describe("decodeControl: keep-alive", () => {
  test.each([
    ["text content, defaults", { type: "keep-alive", content: "ka" }, {
      message: { type: "text", content: bytes("ka") },
      timeoutSeconds: 55,
      mode: "idle"
    }],
    ["all fields", { type: "keep-alive", content: "{}", "message-type": "text", timeout: 20, mode: "interval" }, {
      message: { type: "text", content: bytes("{}") },
      timeoutSeconds: 20,
      mode: "interval"
    }],
    ["ping with empty content", { type: "keep-alive", content: "", "message-type": "ping" }, {
      message: { type: "ping", content: new Uint8Array(0) },
      timeoutSeconds: 55,
      mode: "idle"
    }],
    ["pong", { type: "keep-alive", content: "p", "message-type": "pong", timeout: 1 }, {
      message: { type: "pong", content: bytes("p") },
      timeoutSeconds: 1,
      mode: "idle"
    }],
    ["binary from content-bin", { type: "keep-alive", "content-bin": "AAH/", "message-type": "binary" }, {
      message: { type: "binary", content: new Uint8Array([0, 1, 255]) },
      timeoutSeconds: 55,
      mode: "idle"
    }],
    // Pushpin's quirk: without message-type, content-bin still goes out as text.
    ["content-bin defaults to text", { type: "keep-alive", "content-bin": "aGk=" }, {
      message: { type: "text", content: bytes("hi") },
      timeoutSeconds: 55,
      mode: "idle"
    }],
    ["content-bin wins over content, whose type is then not checked", {
      type: "keep-alive",
      "content-bin": "aGk=",
      content: 5
    }, { message: { type: "text", content: bytes("hi") }, timeoutSeconds: 55, mode: "idle" }],
    ["timeout 0 means the default", { type: "keep-alive", content: "x", timeout: 0 }, {
      message: { type: "text", content: bytes("x") },
      timeoutSeconds: 55,
      mode: "idle"
    }],
    ["unknown mode is idle", { type: "keep-alive", content: "x", mode: "sometimes" }, {
      message: { type: "text", content: bytes("x") },
      timeoutSeconds: 55,
      mode: "idle"
    }],
    ["null mode and message-type are absent", { type: "keep-alive", content: "x", mode: null, "message-type": null }, {
      message: { type: "text", content: bytes("x") },
      timeoutSeconds: 55,
      mode: "idle"
    }],
    ["largest timeout", { type: "keep-alive", content: "x", timeout: 2147483 }, {
      message: { type: "text", content: bytes("x") },
      timeoutSeconds: 2147483,
      mode: "idle"
    }]
  ] as const)("%s", (_, json, keepAlive) => {
    expect(control(json)).toEqual({ _tag: "KeepAlive", keepAlive })
  })

  test.each([
    ["no content", { type: "keep-alive" }],
    ["timeout and mode but no content", { type: "keep-alive", timeout: 30, mode: "interval" }],
    // Without content Pushpin never reads the timeout, so a bad one passes.
    ["bad timeout ignored without content", { type: "keep-alive", timeout: "soon" }],
    ["message-type without content", { type: "keep-alive", "message-type": "ping" }]
  ] as const)("%s → keep-alives off", (_, json) => {
    expect(control(json)).toEqual({ _tag: "KeepAlive" })
  })
})

describe("decodeControl: send-delayed", () => {
  test.each([
    ["defaults", { type: "send-delayed", content: "later" }, { type: "text", content: bytes("later") }, 1],
    ["timeout", { type: "send-delayed", content: "later", timeout: 30 }, { type: "text", content: bytes("later") }, 30],
    ["timeout 0 means the default", { type: "send-delayed", content: "x", timeout: 0 }, { type: "text", content: bytes("x") }, 1],
    ["binary", { type: "send-delayed", "content-bin": "AQI=", "message-type": "binary", timeout: 5 }, {
      type: "binary",
      content: new Uint8Array([1, 2])
    }, 5],
    ["no content sends an empty message", { type: "send-delayed" }, { type: "text", content: new Uint8Array(0) }, 1],
    ["no content: timeout not read", { type: "send-delayed", timeout: -3, "message-type": "pong" }, {
      type: "pong",
      content: new Uint8Array(0)
    }, 1],
    ["mode is not a send-delayed field", { type: "send-delayed", content: "x", mode: 5 }, { type: "text", content: bytes("x") }, 1]
  ] as const)("%s", (_, json, message, delaySeconds) => {
    expect(control(json)).toEqual({ _tag: "SendDelayed", message, delaySeconds })
  })
})

describe("decodeControl: filters limit", () => {
  const filters = (n: number) => Array.from({ length: n }, (_, i) => `f${i}`)

  test("five filters are accepted", () => {
    expect(control({ type: "subscribe", channel: "c", filters: filters(5) })).toEqual({
      _tag: "Subscribe",
      channel: "c",
      filters: filters(5)
    })
  })

  test.each([[6], [20]])("%d filters close the connection with 1011", (n) => {
    const error = rejected({ type: "subscribe", channel: "room", filters: filters(n) })
    expect(error.reason).toBe("TooManyFilters")
    expect(error.message).toBe("too many filters for channel 'room'")
    expect(error.closeCode).toBe(1011)
    expect(error.closeCode).toBe(CLOSE_CODE_INTERNAL_ERROR)
  })

  test("the field rules come before the limit", () => {
    const error = rejected({ type: "subscribe", channel: "room", filters: [...filters(6), 1] })
    expect(error.message).toBe("filters contains value with wrong type")
    expect(error.closeCode).toBeUndefined()
  })
})

describe("decodeControl: malformed messages", () => {
  test.each([
    // Whole message
    ["{bad", "InvalidJson", "grip control message is not valid json"],
    ["", "InvalidJson", "grip control message is not valid json"],
    ["[{\"type\":\"detach\"}]", "Invalid", "grip control packet is not an object"],
    ["\"detach\"", "Invalid", "grip control packet is not an object"],
    ["null", "Invalid", "grip control packet is not an object"],
    // type
    [{}, "Invalid", "grip control object does not contain 'type'"],
    [{ type: null }, "Invalid", "grip control object contains 'type' with wrong type"],
    [{ type: 1 }, "Invalid", "grip control object contains 'type' with wrong type"],
    [{ type: "close" }, "UnknownType", "'type' contains unknown value: close"],
    [{ type: "ack" }, "UnknownType", "'type' contains unknown value: ack"],
    [{ type: "Subscribe", channel: "c" }, "UnknownType", "'type' contains unknown value: Subscribe"],
    [{ type: "" }, "UnknownType", "'type' contains unknown value: "],
    // subscribe / unsubscribe
    [{ type: "subscribe" }, "Invalid", "grip control object does not contain 'channel'"],
    [{ type: "subscribe", channel: "" }, "Invalid", "grip control object contains 'channel' with invalid value"],
    [{ type: "subscribe", channel: 5 }, "Invalid", "grip control object contains 'channel' with wrong type"],
    [{ type: "subscribe", channel: null }, "Invalid", "grip control object contains 'channel' with wrong type"],
    [{ type: "subscribe", channel: "c", filters: "skip-self" }, "Invalid", "grip control object contains 'filters' with wrong type"],
    [{ type: "subscribe", channel: "c", filters: { a: 1 } }, "Invalid", "grip control object contains 'filters' with wrong type"],
    [{ type: "subscribe", channel: "c", filters: ["ok", 2] }, "Invalid", "filters contains value with wrong type"],
    [{ type: "subscribe", channel: "c", filters: [null] }, "Invalid", "filters contains value with wrong type"],
    [{ type: "unsubscribe" }, "Invalid", "grip control object does not contain 'channel'"],
    [{ type: "unsubscribe", channel: "" }, "Invalid", "grip control object contains 'channel' with invalid value"],
    [{ type: "unsubscribe", channel: ["c"] }, "Invalid", "grip control object contains 'channel' with wrong type"],
    // session
    [{ type: "session", id: 7 }, "Invalid", "grip control object contains 'id' with wrong type"],
    // set-meta
    [{ type: "set-meta" }, "Invalid", "grip control object does not contain 'name'"],
    [{ type: "set-meta", name: "" }, "Invalid", "grip control object contains 'name' with invalid value"],
    [{ type: "set-meta", name: null, value: "x" }, "Invalid", "grip control object contains 'name' with wrong type"],
    [{ type: "set-meta", name: 1, value: "x" }, "Invalid", "grip control object contains 'name' with wrong type"],
    [{ type: "set-meta", name: "user", value: 1 }, "Invalid", "grip control object contains 'value' with wrong type"],
    [{ type: "set-meta", name: "user", value: { a: "b" } }, "Invalid", "grip control object contains 'value' with wrong type"],
    // keep-alive
    [{ type: "keep-alive", content: "x", "message-type": "close" }, "Invalid", "grip control object contains 'message-type' with unknown value"],
    [{ type: "keep-alive", "message-type": "TEXT" }, "Invalid", "grip control object contains 'message-type' with unknown value"],
    [{ type: "keep-alive", "message-type": 1 }, "Invalid", "grip control object contains 'message-type' with wrong type"],
    [{ type: "keep-alive", content: 5 }, "Invalid", "grip control object contains 'content' with wrong type"],
    [{ type: "keep-alive", content: null }, "Invalid", "grip control object contains 'content' with wrong type"],
    [{ type: "keep-alive", "content-bin": 5 }, "Invalid", "grip control object contains 'content-bin' with wrong type"],
    [{ type: "keep-alive", "content-bin": null }, "Invalid", "grip control object contains 'content-bin' with wrong type"],
    [{ type: "keep-alive", "content-bin": "not base64!" }, "Invalid", "grip control object contains 'content-bin' with invalid base64"],
    [{ type: "keep-alive", content: "x", timeout: -1 }, "Invalid", "grip control object contains 'timeout' with invalid value"],
    [{ type: "keep-alive", content: "x", timeout: 2147484 }, "Invalid", "grip control object contains 'timeout' with invalid value"],
    [{ type: "keep-alive", content: "x", timeout: 1.5 }, "Invalid", "grip control object contains 'timeout' with wrong type"],
    [{ type: "keep-alive", content: "x", timeout: "10" }, "Invalid", "grip control object contains 'timeout' with wrong type"],
    [{ type: "keep-alive", content: "x", timeout: null }, "Invalid", "grip control object contains 'timeout' with wrong type"],
    [{ type: "keep-alive", content: "x", mode: 1 }, "Invalid", "grip control object contains 'mode' with wrong type"],
    [{ type: "keep-alive", mode: true }, "Invalid", "grip control object contains 'mode' with wrong type"],
    // Pushpin's order: message-type, then content, then timeout, then mode.
    [{ type: "keep-alive", "message-type": 1, content: 1 }, "Invalid", "grip control object contains 'message-type' with wrong type"],
    [{ type: "keep-alive", content: 1, mode: 1 }, "Invalid", "grip control object contains 'content' with wrong type"],
    [{ type: "keep-alive", content: "x", timeout: -1, mode: 1 }, "Invalid", "grip control object contains 'timeout' with invalid value"],
    // send-delayed
    [{ type: "send-delayed", "message-type": "text-ish" }, "Invalid", "grip control object contains 'message-type' with unknown value"],
    [{ type: "send-delayed", content: false }, "Invalid", "grip control object contains 'content' with wrong type"],
    [{ type: "send-delayed", "content-bin": "!!" }, "Invalid", "grip control object contains 'content-bin' with invalid base64"],
    [{ type: "send-delayed", content: "x", timeout: -5 }, "Invalid", "grip control object contains 'timeout' with invalid value"],
    [{ type: "send-delayed", content: "x", timeout: "1" }, "Invalid", "grip control object contains 'timeout' with wrong type"]
  ] as const)("%j → %s: %s", (json, reason, message) => {
    const error = rejected(json)
    expect(error.reason).toBe(reason)
    expect(error.message).toBe(message)
    // Pushpin logs these and carries on; only too many filters closes the connection.
    expect(error.closeCode).toBeUndefined()
  })
})

describe("end to end: a control frame from the origin", () => {
  test("classify then decode", () => {
    const classified = classifyOriginText("c:{\"type\":\"subscribe\",\"channel\":\"news\",\"filters\":[\"skip-self\"]}", DEFAULT_MESSAGE_PREFIX)
    if (classified._tag !== "Control") throw new Error(classified._tag)
    expect(control(classified.json)).toEqual({ _tag: "Subscribe", channel: "news", filters: ["skip-self"] })
  })
})
