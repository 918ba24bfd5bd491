/**
 * End to end: malformed and hostile input over raw sockets, on the client port and the publish
 * port. Each category gets a clear 4xx (Pushpin's text where it has one) or a clean close, and
 * afterwards a normal request on a new connection still works and a stream held since before
 * any bad input still receives a publish. A seeded fuzz run then sends over a thousand mutated
 * requests and checks that none hangs, none gets an unexpected 5xx and the process lives on.
 *
 * Where Bun's parser answers by itself (a bare 400/413/431/505 with no body, or a close frame
 * from its WebSocket parser), the expectations below are Bun 1.4.4's answers, documented in the
 * README as differences from Pushpin.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { publish, subscribed } from "../support/grip.ts"
import { clientBases, malformedInputs, publishBases, type MalformedInput } from "../support/malformed-requests.ts"
import { startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { firstAnswer, rawExchange, type RawExchangeOptions, type RawOutcome } from "../support/raw-http.ts"
import { readUntil } from "../support/streams.ts"
import { startWsOrigin, type WsOrigin } from "../support/ws-client.ts"

const HELD_CHANNEL = "bad-input-held"
const ORIGIN_PATH = "/origin/echo"
const WS_ORIGIN_PATH = "/origin-ws/"
const HOST = "127.0.0.1"
const HELLO = "Hello from the Pushpin test handler!\n"

/** A hang is no answer and no close within this long after the client sent everything and half-closed. */
const FUZZ_READ_TIMEOUT_MS = 5000
const FUZZ_CONCURRENCY = 20
const FUZZ_CLIENT_REQUESTS = 1200
const FUZZ_PUBLISH_REQUESTS = 300
const FUZZ_SEED = Number(process.env.BAD_INPUT_SEED ?? Math.floor(Math.random() * 2 ** 32))

let origin: TestOrigin
let wsOrigin: WsOrigin
let proxy: RunningPushpinTs
let heldReader: ReadableStreamDefaultReader<Uint8Array>
let heldText = ""

beforeAll(async () => {
  origin = startOrigin((_request, body) => new Response(`origin got ${body.length} bytes\n`))
  wsOrigin = await startWsOrigin({ answer: () => ({ accept: true }) })
  proxy = await startPushpinTs({
    args: [
      "--route", `*,path_beg=${ORIGIN_PATH} ${HOST}:${origin.port}`,
      "--route", `*,path_beg=${WS_ORIGIN_PATH} ${HOST}:${wsOrigin.port}`,
      "--route", "* test"
    ]
  })
  // Held before any bad input arrives, and read by every category's closing check.
  const held = await fetch(`${proxy.baseUrl}/stream?channel=${HELD_CHANNEL}`)
  if (held.body === null) throw new Error("held stream has no body")
  heldReader = held.body.getReader()
  heldText = await readUntil(heldReader, (text) => text.includes("[stream opened]\n"))
  await subscribed(proxy, HELD_CHANNEL)
})

afterAll(async () => {
  await heldReader.cancel()
  await proxy.stop()
  await origin.stop()
  await wsOrigin.stop()
})

const withDeadline = <A>(promise: Promise<A>, ms: number, what: string): Promise<A> =>
  Promise.race([promise, Bun.sleep(ms).then((): never => { throw new Error(`timed out: ${what}`) })])

/**
 * The server still serves everyone else: a normal request on a new connection, a publish, and
 * the stream held since the start receives that publish.
 */
const expectStillServing = async (tag: string): Promise<void> => {
  expect(proxy.process.exitCode).toBeNull()
  // Bad input is the peer's fault: nothing of it may be logged as our error.
  expect(proxy.logs().split("\n").filter((line) => line.startsWith("[ERR]"))).toEqual([])
  const normal = await rawExchange(proxy.port, [`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`])
  expect(firstAnswer(normal.bytes)).toMatchObject({ status: 200, body: HELLO })
  const published = await publish(proxy.publishUrl, [{ channel: HELD_CHANNEL, formats: { "http-stream": { content: `after ${tag}\n` } } }])
  expect(published.status).toBe(200)
  heldText = await withDeadline(readUntil(heldReader, (text) => text.includes(`after ${tag}\n`), heldText), 5000, `held stream after ${tag}`)
  expect(heldText).toContain(`after ${tag}\n`)
}

/** What one exchange came to, in a shape that compares whole tables at once. */
interface Seen {
  readonly name: string
  /** The first final answer's status; "none" when the server closed without one. */
  readonly status: number | "none" | "garbled"
  readonly body: string
  readonly ending: RawOutcome["ending"]
}

type Expected = { readonly status: number; readonly body?: string } | "closed without an answer"

type Case = readonly [name: string, parts: ReadonlyArray<string | Uint8Array>, expected: Expected, options?: RawExchangeOptions]

const seen = (name: string, outcome: RawOutcome): Seen => {
  const answer = firstAnswer(outcome.bytes)
  if (answer === undefined) return { name, status: "none", body: "", ending: outcome.ending }
  if (answer === "garbled") return { name, status: "garbled", body: outcome.bytes.toString("latin1"), ending: outcome.ending }
  return { name, status: answer.status, body: answer.body, ending: outcome.ending }
}

const wanted = (name: string, expected: Expected): Seen =>
  expected === "closed without an answer"
    ? { name, status: "none", body: "", ending: "closed" }
    : { name, status: expected.status, body: expected.body ?? "", ending: "closed" }

/** Every case ends with the server closing the connection on its own, after its answer. */
const expectCases = async (port: number, cases: ReadonlyArray<Case>): Promise<void> => {
  const actual: Array<Seen> = []
  for (const [name, parts, , options] of cases) actual.push(seen(name, await rawExchange(port, parts, options)))
  expect(actual).toEqual(cases.map(([name, , expected]) => wanted(name, expected)))
}

const head = (lines: ReadonlyArray<string>): string => `${lines.join("\r\n")}\r\n\r\n`

/** Bun's own answer to a head it cannot parse: status line, `Connection: close`, no body. */
const bun = (status: 400 | 413 | 431 | 505): Expected => ({ status })

const HEADER_LIMIT_TEXT = "Request header size exceeded limit of 8192 bytes.\n"

describe("client port", () => {
  test("malformed request lines: 400, 505 from Bun's parser, or a close for a method it does not know", async () => {
    await expectCases(proxy.port, [
      ["TLS handshake on the plain port", [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x8f, 0x20])], bun(400)],
      ["a line of text", ["hello there\r\n\r\n"], bun(400)],
      ["binary garbage", [Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff))], bun(400)],
      ["no HTTP version", [head(["GET /", `Host: ${HOST}`])], bun(505)],
      ["HTTP/2.0", [head(["GET / HTTP/2.0", `Host: ${HOST}`])], bun(505)],
      ["HTTP/1.2", [head(["GET / HTTP/1.2", `Host: ${HOST}`])], bun(505)],
      ["bad characters in the method", [head(["G(T / HTTP/1.1", `Host: ${HOST}`])], bun(400)],
      ["NUL in the target", [head(["GET /\u0000 HTTP/1.1", `Host: ${HOST}`])], bun(505)],
      ["space in the target", [head(["GET /a b HTTP/1.1", `Host: ${HOST}`])], bun(505)],
      ["bare LF line ends", [`GET / HTTP/1.1\nHost: ${HOST}\n\n`], bun(505)],
      ["an unregistered method", [head(["FOO / HTTP/1.1", `Host: ${HOST}`])], "closed without an answer"],
      ["a lower-case method", [head(["get / HTTP/1.1", `Host: ${HOST}`])], "closed without an answer"]
    ])
    await expectStillServing("request lines")
  })

  test("bad header syntax: 400; a repeated or invalid Host: 400 Invalid Host header.", async () => {
    const get = (...lines: ReadonlyArray<string>) => [head(["GET / HTTP/1.1", ...lines])]
    await expectCases(proxy.port, [
      ["no colon", get(`Host: ${HOST}`, "NoColonHere"), bun(400)],
      ["space before the colon", get(`Host: ${HOST}`, "X-A : b"), bun(400)],
      ["invalid name characters", get(`Host: ${HOST}`, "X(A): b"), bun(400)],
      ["obs-fold continuation line", get(`Host: ${HOST}`, "X-A: b", "  continued"), bun(400)],
      ["empty name", get(`Host: ${HOST}`, ": b"), bun(400)],
      ["NUL in a value", get(`Host: ${HOST}`, "X-A: a\u0000b"), bun(400)],
      ["HTTP/1.1 without Host", get("Accept: */*"), bun(400)],
      ["two Host headers", get("Host: a.example", "Host: b.example"), { status: 400, body: "Invalid Host header.\n" }],
      ["a path in Host", get("Host: a.example/admin"), { status: 400, body: "Invalid Host header.\n" }],
      ["whitespace in Host", get("Host: a example"), { status: 400, body: "Invalid Host header.\n" }]
    ])
    await expectStillServing("header syntax")
  })

  test("oversized heads: Pushpin's text past client_buffer_size, Bun's 431 past its own 16 KiB or about 200 lines", async () => {
    await expectCases(proxy.port, [
      ["a 9 000-byte header", [head(["GET / HTTP/1.1", `Host: ${HOST}`, `X-Big: ${"a".repeat(9000)}`])], { status: 400, body: HEADER_LIMIT_TEXT }],
      ["a 9 000-byte target", [head([`GET /${"a".repeat(9000)} HTTP/1.1`, `Host: ${HOST}`])], { status: 400, body: HEADER_LIMIT_TEXT }],
      ["a 20 000-byte header", [head(["GET / HTTP/1.1", `Host: ${HOST}`, `X-Big: ${"a".repeat(20_000)}`])], bun(431)],
      ["a 100 000-byte header", [head(["GET / HTTP/1.1", `Host: ${HOST}`, `X-Big: ${"a".repeat(100_000)}`])], bun(431)],
      ["300 header lines", [head(["GET / HTTP/1.1", `Host: ${HOST}`, ...Array.from({ length: 300 }, (_, i) => `X-H${i}: v`)])], bun(431)]
    ])
    await expectStillServing("oversized heads")
  })

  test("oversized bodies: a Content-Length past the 1 GiB limit gets 413 before a byte of it is read", async () => {
    const post = (length: string) => [head([`POST ${ORIGIN_PATH} HTTP/1.1`, `Host: ${HOST}`, `Content-Length: ${length}`]), "some of it"]
    await expectCases(proxy.port, [
      ["1 GiB + 1", post(String(1024 ** 3 + 1)), bun(413)],
      ["2^53", post(String(2 ** 53)), bun(413)]
    ])
    await expectStillServing("oversized bodies")
  })

  test("conflicting, repeated or invalid framing headers: 400", async () => {
    const post = (...lines: ReadonlyArray<string>) => [head([`POST ${ORIGIN_PATH} HTTP/1.1`, `Host: ${HOST}`, ...lines]), "hello"]
    await expectCases(proxy.port, [
      ["Content-Length and Transfer-Encoding", post("Content-Length: 5", "Transfer-Encoding: chunked"), bun(400)],
      ["two different Content-Lengths", post("Content-Length: 5", "Content-Length: 6"), bun(400)],
      ["a Content-Length list", post("Content-Length: 5, 6"), bun(400)],
      ["a negative Content-Length", post("Content-Length: -5"), bun(400)],
      ["a non-numeric Content-Length", post("Content-Length: abc"), bun(400)],
      ["a Content-Length past 2^64", post("Content-Length: 99999999999999999999999"), bun(400)],
      ["a Transfer-Encoding that does not end in chunked", post("Transfer-Encoding: gzip"), bun(400)],
      // Bun passes identical repeats on as "5, 5"; RFC 9110 §8.6 allows refusing them.
      ["the same Content-Length twice", post("Content-Length: 5", "Content-Length: 5"), { status: 400, body: "Repeated Content-Length header.\n" }]
    ])
    await expectStillServing("framing headers")
  })

  test("invalid chunked bodies: 400 while the body streams to the origin; a truncated body ends with a close", async () => {
    const chunkedPost = head([`POST ${ORIGIN_PATH} HTTP/1.1`, `Host: ${HOST}`, "Transfer-Encoding: chunked"])
    const gap = { gapMs: 30 }
    await expectCases(proxy.port, [
      ["a chunk size that is not hex", [chunkedPost, "zz\r\nhello\r\n0\r\n\r\n"], bun(400)],
      ["a chunk size past 2^64", [chunkedPost, "ffffffffffffffffffff\r\nhello\r\n"], bun(400)],
      ["no CRLF after chunk data", [chunkedPost, "5\r\nhelloXX0\r\n\r\n"], bun(400)],
      ["a bad chunk after a good one", [chunkedPost, "5\r\nhello\r\n", "zz\r\n"], bun(400), gap],
      ["truncated chunked body, then FIN", [chunkedPost, "50\r\nhello"], "closed without an answer", { halfClose: true }],
      [
        "truncated Content-Length body, then FIN",
        [head([`POST ${ORIGIN_PATH} HTTP/1.1`, `Host: ${HOST}`, "Content-Length: 100"]), "hello"],
        "closed without an answer",
        { halfClose: true }
      ],
      ["truncated head, then FIN", [`GET / HTTP/1.1\r\nHost: ${HOST}\r\n`], "closed without an answer", { halfClose: true }]
    ])
    await expectStillServing("chunked bodies")
  })
})

// ---------------------------------------------------------------------------------------------
// WebSocket frames after a successful upgrade

const upgradeHead = (path: string) =>
  head([`GET ${path} HTTP/1.1`, `Host: ${HOST}`, "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"])

/** A client frame with any first byte and any declared length; masked unless told otherwise. */
const frame = (firstByte: number, payload: Uint8Array, options: { readonly masked?: boolean; readonly declaredLength?: bigint } = {}): Buffer => {
  const masked = options.masked ?? true
  const length = options.declaredLength ?? BigInt(payload.length)
  const maskBit = masked ? 0x80 : 0
  const header: Array<number> = [firstByte]
  if (length < 126n) header.push(maskBit | Number(length))
  else if (length < 65536n) header.push(maskBit | 126, Number(length >> 8n), Number(length & 0xffn))
  else {
    header.push(maskBit | 127)
    for (let shift = 56n; shift >= 0n; shift -= 8n) header.push(Number((length >> shift) & 0xffn))
  }
  const key = [0x11, 0x22, 0x33, 0x44]
  const body = masked ? payload.map((byte, i) => byte ^ (key[i % 4] ?? 0)) : payload
  return Buffer.concat([Buffer.from(header), Buffer.from(masked ? key : []), Buffer.from(body)])
}

const closeFrame = (code: number, reason: Uint8Array = new Uint8Array(0)) => {
  const payload = Buffer.alloc(2 + reason.length)
  payload.writeUInt16BE(code, 0)
  payload.set(reason, 2)
  return frame(0x88, payload)
}

const text = (value: string) => new TextEncoder().encode(value)

/** What the server sent after its 101: its frames, described, as opcode(code "reason") for closes. */
const framesAfterUpgrade = (outcome: RawOutcome): string => {
  const bytes = outcome.bytes
  const headEnd = bytes.indexOf("\r\n\r\n")
  if (!bytes.subarray(0, 12).toString("latin1").startsWith("HTTP/1.1 101") || headEnd < 0) return `no upgrade: ${bytes.toString("latin1").slice(0, 200)}`
  const described: Array<string> = []
  for (let at = headEnd + 4; at + 2 <= bytes.length; ) {
    const opcode = (bytes[at] ?? 0) & 0x0f
    let length = (bytes[at + 1] ?? 0) & 0x7f
    let payloadAt = at + 2
    if (length === 126) {
      length = bytes.readUInt16BE(payloadAt)
      payloadAt += 2
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(payloadAt))
      payloadAt += 8
    }
    const payload = bytes.subarray(payloadAt, payloadAt + length)
    described.push(opcode === 0x8 && payload.length >= 2 ? `close(${payload.readUInt16BE(0)} "${payload.subarray(2).toString("utf8")}")` : `op${opcode}`)
    at = payloadAt + length
  }
  return described.join(" ")
}

describe("WebSocket frames", () => {
  test("invalid frames from the client: Bun's parser closes with 1002, 1007 or 1009 and ends the connection", async () => {
    const cases: ReadonlyArray<readonly [string, Buffer, string]> = [
      ["an unmasked client frame", frame(0x81, text("hi"), { masked: false }), `close(1002 "Received an incorrectly masked frame")`],
      ["reserved data opcode 0x3", frame(0x83, text("hi")), `close(1002 "Received invalid opcode")`],
      ["reserved control opcode 0xB", frame(0x8b, text("hi")), `close(1002 "Received invalid opcode")`],
      ["RSV1 without an extension", frame(0xc1, text("hi")), `close(1002 "Received unexpected RSV1 bit")`],
      ["RSV2 set", frame(0xa1, text("hi")), `close(1002 "Received unexpected RSV2 or RSV3 bit")`],
      ["RSV3 set", frame(0x91, text("hi")), `close(1002 "Received unexpected RSV2 or RSV3 bit")`],
      ["a 126-byte ping", frame(0x89, new Uint8Array(126)), `close(1002 "Received too big control frame")`],
      ["a fragmented ping", frame(0x09, text("hi")), `close(1002 "Received fragmented control frame")`],
      ["invalid UTF-8 in a text frame", frame(0x81, new Uint8Array([0xff, 0xfe, 0x41])), `close(1007 "Received invalid UTF-8")`],
      [
        "invalid UTF-8 across fragments",
        Buffer.concat([frame(0x01, new Uint8Array([0xce])), frame(0x80, new Uint8Array([0x41]))]),
        `close(1007 "Received invalid UTF-8")`
      ],
      ["close code 1005 (never sent)", closeFrame(1005), `close(1002 "Received invalid close code")`],
      ["close code 999", closeFrame(999), `close(1002 "Received invalid close code")`],
      ["close code 5000", closeFrame(5000), `close(1002 "Received invalid close code")`],
      ["a 1-byte close payload", frame(0x88, new Uint8Array([3])), `close(1002 "Received invalid close payload")`],
      ["invalid UTF-8 in a close reason", closeFrame(1000, new Uint8Array([0xff])), `close(1007 "Received invalid UTF-8")`],
      ["a continuation with nothing to continue", frame(0x80, text("hi")), `close(1002 "Received continuation frame outside a fragmented message")`],
      [
        "a new message inside a fragmented one",
        Buffer.concat([frame(0x01, text("a")), frame(0x81, text("b"))]),
        `close(1002 "Received new message inside a fragmented message")`
      ],
      ["a frame declaring 2^40 bytes", frame(0x82, new Uint8Array(0), { declaredLength: 2n ** 40n }), `close(1009 "Received too big message")`],
      ["a 64-bit length with its top bit set", frame(0x82, new Uint8Array(0), { declaredLength: 2n ** 63n }), `close(1009 "Received too big message")`]
    ]
    const actual: Array<readonly [string, string, RawOutcome["ending"]]> = []
    for (const [name, bytes] of cases) {
      // The frame follows the 101 as a real client's would, not in the same packet as the request.
      const outcome = await rawExchange(proxy.port, [upgradeHead("/ws"), bytes], { gapMs: 50 })
      actual.push([name, framesAfterUpgrade(outcome), outcome.ending])
    }
    expect(actual).toEqual(cases.map(([name, , close]) => [name, close, "closed"] as const))
    await expectStillServing("websocket frames")
  })

  test("an invalid frame on a proxied WebSocket also ends the origin's connection, with nothing relayed", async () => {
    const before = wsOrigin.connections.length
    const outcome = await rawExchange(proxy.port, [upgradeHead(`${WS_ORIGIN_PATH}bad-frame`), frame(0x81, text("unmasked"), { masked: false })], { gapMs: 50 })
    expect([framesAfterUpgrade(outcome), outcome.ending]).toEqual([`close(1002 "Received an incorrectly masked frame")`, "closed"])
    const originSide = await wsOrigin.connection(`${WS_ORIGIN_PATH}bad-frame`)
    expect(wsOrigin.connections.length).toBe(before + 1)
    expect(await originSide.waitEnded()).toBe(true)
    expect(originSide.events.filter((event) => event.type === "text" || event.type === "binary")).toEqual([])
    await expectStillServing("proxied websocket frame")
  })
})

// ---------------------------------------------------------------------------------------------
// Publish port

const publishPort = (): number => Number(new URL(proxy.publishUrl ?? "http://127.0.0.1:0").port)

describe("publish port", () => {
  test("garbage, bad framing and oversized input get Pushpin's texts (or Bun's bare answer) and a close", async () => {
    const body = JSON.stringify({ items: [{ channel: "nobody", formats: { "http-stream": { content: "x\n" } } }] })
    const post = (...lines: ReadonlyArray<string>) => head(["POST /publish/ HTTP/1.1", "Host: localhost", ...lines])
    await expectCases(publishPort(), [
      ["TLS handshake bytes", [Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00])], bun(400)],
      ["binary garbage", [Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff))], bun(400)],
      ["HTTP/2.0", [head(["GET / HTTP/2.0", "Host: localhost"])], bun(505)],
      ["a header line without a colon", [post("NoColon", `Content-Length: ${body.length}`), body], bun(400)],
      ["invalid JSON", [post("Content-Length: 5"), "{abc]"], { status: 400, body: "Body is not valid JSON.\n" }],
      ["JSON that is not an object", [post("Content-Length: 2"), "[]"], { status: 400, body: "Invalid format.\n" }],
      ["a body longer than its Content-Length", [post(`Content-Length: ${body.length - 5}`), body], { status: 400, body: "Body is not valid JSON.\n" }],
      ["a body shorter than its Content-Length, then FIN", [post(`Content-Length: ${body.length + 5}`), body], "closed without an answer", { halfClose: true }],
      ["a chunked body", [post("Transfer-Encoding: chunked"), `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`], { status: 411, body: "Request requires Content-Length.\n" }],
      ["POST without Content-Length", [post()], { status: 411, body: "Request requires Content-Length.\n" }],
      ["a non-numeric Content-Length", [post("Content-Length: abc"), body], bun(400)],
      ["the same Content-Length twice", [post(`Content-Length: ${body.length}`, `Content-Length: ${body.length}`), body], { status: 400, body: "Bad Content-Length.\n" }],
      ["Content-Length and Transfer-Encoding", [post(`Content-Length: ${body.length}`, "Transfer-Encoding: chunked"), body], bun(400)],
      ["a body past push_in_http_max_body_size", [post("Content-Length: 1000001")], { status: 400, body: "Request body too large.\n" }],
      ["a declared body of 5 GB", [post("Content-Length: 5000000000")], { status: 400, body: "Request body too large.\n" }],
      ["headers past push_in_http_max_headers_size", [post(`X-Big: ${"a".repeat(12_000)}`, `Content-Length: ${body.length}`), body], { status: 400, body: "Request header too large.\n" }],
      ["headers past Bun's 16 KiB", [post(`X-Big: ${"a".repeat(30_000)}`, `Content-Length: ${body.length}`), body], bun(431)],
      ["an unregistered method", [head(["FOO / HTTP/1.1", "Host: localhost"])], "closed without an answer"]
    ])
    await expectStillServing("publish port")
  })
})

// ---------------------------------------------------------------------------------------------
// Fuzz

type Verdict = "4xx" | "answered" | "505 (Bun)" | "other 5xx" | "closed" | "reset" | "hang" | "garbled"

/** Verdicts no input may get. */
const FAILURES: ReadonlySet<Verdict> = new Set(["other 5xx", "hang", "garbled"])

/**
 * Bun closes a connection right after its error answer without reading what the client is still
 * sending, so the client's kernel may get a reset that cuts the answer short (seen once in about
 * 30 000 inputs: a 431 cut after its status line). Rare, outside user code, and still a close;
 * many of them would be news.
 */
const MAX_RESET_SHARE = 0.01

const classify = (outcome: RawOutcome): Verdict => {
  if (outcome.ending === "open") return "hang"
  const answer = firstAnswer(outcome.bytes)
  if (answer !== undefined && answer !== "garbled") {
    if (answer.status >= 400 && answer.status < 500) return "4xx"
    if (answer.status === 505) return "505 (Bun)"
    return answer.status >= 500 ? "other 5xx" : "answered"
  }
  if (outcome.ending === "reset") return "reset"
  // Closed with no final answer: the input ended mid-request, or the client's FIN came before
  // the answer and Bun took it for a client that went away (after a 100 Continue, maybe).
  return answer === "garbled" ? "garbled" : "closed"
}

interface FuzzReport {
  readonly counts: Partial<Record<Verdict, number>>
  readonly failures: ReadonlyArray<string>
}

/**
 * Sends every input on its own connection, `FUZZ_CONCURRENCY` at a time, each half-closed after
 * its last byte: from then on the server has all the input it will get, so it must answer or
 * close within the read timeout, and anything else is a hang.
 */
const fuzz = async (port: number, inputs: ReadonlyArray<MalformedInput>): Promise<FuzzReport> => {
  const counts: Partial<Record<Verdict, number>> = {}
  const failures: Array<string> = []
  let next = 0
  const worker = async () => {
    for (let index = next++; index < inputs.length; index = next++) {
      const input = inputs[index]
      if (input === undefined) continue
      const outcome = await rawExchange(port, [input.bytes], { halfClose: true, timeoutMs: FUZZ_READ_TIMEOUT_MS })
      const verdict = classify(outcome)
      counts[verdict] = (counts[verdict] ?? 0) + 1
      if (FAILURES.has(verdict)) {
        failures.push(`${input.description} → ${verdict} (${outcome.ending}${outcome.error === undefined ? "" : `: ${outcome.error}`}): sent ${JSON.stringify(input.bytes.toString("latin1").slice(0, 160))}, got ${JSON.stringify(outcome.bytes.toString("latin1").slice(0, 160))}`)
      }
    }
  }
  await Promise.all(Array.from({ length: FUZZ_CONCURRENCY }, worker))
  return { counts, failures }
}

describe(`fuzz (seed ${FUZZ_SEED}; replay with BAD_INPUT_SEED=${FUZZ_SEED})`, () => {
  test(`${FUZZ_CLIENT_REQUESTS} mutated requests on the client port: no hang, no 5xx but Bun's 505, the process lives on`, async () => {
    const inputs = malformedInputs(FUZZ_SEED, FUZZ_CLIENT_REQUESTS, clientBases(HOST, ORIGIN_PATH))
    const report = await fuzz(proxy.port, inputs)
    console.log(`client port fuzz, seed ${FUZZ_SEED}: ${JSON.stringify(report.counts)}`)
    expect(report.failures).toEqual([])
    expect(report.counts.reset ?? 0).toBeLessThanOrEqual(FUZZ_CLIENT_REQUESTS * MAX_RESET_SHARE)
    expect(Object.values(report.counts).reduce((sum, count) => sum + count, 0)).toBe(FUZZ_CLIENT_REQUESTS)
    await expectStillServing("client port fuzz")
  }, 60_000)

  test(`${FUZZ_PUBLISH_REQUESTS} mutated requests on the publish port: no hang, no 5xx but Bun's 505, the process lives on`, async () => {
    const inputs = malformedInputs(FUZZ_SEED ^ 0x5eed, FUZZ_PUBLISH_REQUESTS, publishBases("bad-input-fuzz"))
    const report = await fuzz(publishPort(), inputs)
    console.log(`publish port fuzz, seed ${FUZZ_SEED}: ${JSON.stringify(report.counts)}`)
    expect(report.failures).toEqual([])
    expect(report.counts.reset ?? 0).toBeLessThanOrEqual(FUZZ_PUBLISH_REQUESTS * MAX_RESET_SHARE)
    expect(Object.values(report.counts).reduce((sum, count) => sum + count, 0)).toBe(FUZZ_PUBLISH_REQUESTS)
    await expectStillServing("publish port fuzz")
  }, 60_000)
})
