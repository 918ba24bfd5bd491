/**
 * The WebSocket-over-HTTP gateway against a scripted origin: `post` is a fake that records each
 * request and lets the test answer it, and time is a `TimerWheel` on a fake clock, so keep-alives
 * and timeouts are checked to the tick without waiting. (test/e2e/ws-over-http.test.ts runs the
 * same gateway through the binary against a real origin.)
 */
import { describe, expect, test } from "bun:test"
import { Duration, Effect, Result, Schedule } from "effect"
import { TimerWheel } from "../../src/handler/timer-wheel.ts"
import type { WohConnection, WohEnvironment } from "../../src/proxy/ws-over-http-connection.ts"
import {
  baseRequestHeaders,
  contentBytesAccepted,
  MAX_REQUEST_CONTENT_BYTES,
  requestHeaders,
  RETRY_SCHEDULE
} from "../../src/proxy/ws-over-http-exchange.ts"
import { openOverHttp, SharedTimerLoop } from "../../src/proxy/ws-over-http.ts"
import { closeEvent, decodeEvents, encodeEvents, parseClosePayload, type WsEvent } from "../../src/websocket/events.ts"
import { OriginConnectError, type OriginWebSocketHandlers } from "../../src/websocket/origin-client.ts"

const EVENTS = "application/websocket-events"
const bytes = (value: string): Uint8Array => new TextEncoder().encode(value)
const textEvent = (value: string): WsEvent => ({ type: "TEXT", content: bytes(value) })

const answer = (events: ReadonlyArray<WsEvent>, headers: Record<string, string> = {}, status = 200): Response =>
  new Response(new Uint8Array(encodeEvents(events)), { status, headers: { "content-type": EVENTS, ...headers } })

interface Sent {
  readonly headers: Headers
  readonly events: ReadonlyArray<WsEvent>
  readonly signal: AbortSignal
  readonly respond: (response: Response) => void
  readonly fail: (error: unknown) => void
}

const connectError = (): Error => Object.assign(new Error("Unable to connect"), { code: "ECONNREFUSED" })

const waitUntil = async (what: string, condition: () => boolean): Promise<void> => {
  for (let i = 0; i < 500; i++) {
    if (condition()) return
    await Bun.sleep(1)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Lets pending promise callbacks run (the connection reads each answer asynchronously). */
const settle = () => Bun.sleep(5)

const harness = (options: { readonly oneEvent?: boolean; readonly retries?: number } = {}) => {
  let now = 1_000_000
  const wheel = new TimerWheel({ now: () => now })
  const sent: Array<Sent> = []
  let signatures = 0
  const retried = { count: 0 }
  const env: WohEnvironment = {
    post: (headers, body, signal) =>
      new Promise<Response>((resolve, reject) => {
        const decoded = decodeEvents(body)
        if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
        signal.addEventListener("abort", () => reject(signal.reason), { once: true })
        sent.push({ headers, events: decoded.success, signal, respond: resolve, fail: reject })
      }),
    gripSig: () => `sig-${++signatures}`,
    timers: wheel,
    retrySchedule: Schedule.spaced("1 millis").pipe(Schedule.upTo({ times: options.retries ?? 5 })),
    requestTimeoutMs: 60_000,
    limits: { maxContentBytes: MAX_REQUEST_CONTENT_BYTES, maxEvents: options.oneEvent === true ? 1 : undefined },
    uri: "http://origin.test/ws",
    onRetry: () => {
      retried.count++
    }
  }
  const advance = (ms: number) => {
    now += ms
    wheel.advance()
  }
  const last = (): Sent => {
    const request = sent[sent.length - 1]
    if (request === undefined) throw new Error("nothing sent")
    return request
  }
  /** Waits for request number `n` (1-based) to be sent. */
  const request = async (n: number): Promise<Sent> => {
    await waitUntil(`request ${n}`, () => sent.length >= n)
    const found = sent[n - 1]
    if (found === undefined) throw new Error("unreachable")
    return found
  }
  return { env, sent, wheel, advance, last, request, retried }
}

type Harness = ReturnType<typeof harness>

const handshakeHeaders = (): Headers =>
  new Headers({
    host: "example.com",
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    "sec-websocket-version": "13",
    "sec-websocket-extensions": "grip",
    accept: "*/*",
    "meta-user": "mallory",
    "connection-id": "forged",
    "grip-sig": "stale",
    "x-custom": "kept"
  })

const open = async (h: Harness, response: Response = answer([{ type: "OPEN" }])): Promise<WohConnection> => {
  const handshake = openOverHttp(h.env, handshakeHeaders())
  ;(await h.request(1)).respond(response)
  const outcome = await handshake
  if (outcome._tag !== "Open") throw new Error(`expected Open, got ${outcome._tag}`)
  return outcome.connection
}

/** Handlers that record what the bridge would hear, as strings. */
const recorder = () => {
  const heard: Array<string> = []
  const handlers: OriginWebSocketHandlers = {
    onMessage: (...message) => heard.push(message[0] === "text" ? `text:${message[1]}` : `binary:${message[1].length}`),
    onPing: (payload) => heard.push(`ping:${new TextDecoder().decode(payload)}`),
    onPong: (payload) => heard.push(`pong:${new TextDecoder().decode(payload)}`),
    onClose: (code, reason, clean) => heard.push(`close:${code}:${reason}:${clean}`),
    onDrain: () => heard.push("drain"),
    onError: (error) => heard.push(`error:${error.message}`)
  }
  return { heard, handlers, closes: () => heard.filter((entry) => entry.startsWith("close:")) }
}

describe("handshake", () => {
  test("OPEN with the gateway's headers; the client's handshake-only and Meta-* headers stay behind", async () => {
    const h = harness()
    const handshake = openOverHttp(h.env, handshakeHeaders())
    const first = await h.request(1)
    expect(first.events).toEqual([{ type: "OPEN" }])
    const headers = first.headers
    expect(headers.get("accept")).toBe(EVENTS)
    expect(headers.get("content-type")).toBe(EVENTS)
    expect(headers.get("connection-id")).toMatch(/^[0-9a-f-]{36}$/)
    expect(headers.get("grip-sig")).toBe("sig-1")
    expect(headers.get("sec-websocket-extensions")).toBe("grip")
    expect(headers.get("x-custom")).toBe("kept")
    expect(headers.get("host")).toBe("example.com")
    expect(headers.get("sec-websocket-key")).toBe("dGhlIHNhbXBsZSBub25jZQ==")
    expect(headers.get("sec-websocket-version")).toBe("13")
    for (const name of ["upgrade", "connection", "meta-user", "content-bytes-replayed"]) {
      expect(headers.get(name)).toBeNull()
    }
    first.respond(answer([{ type: "OPEN" }], { "x-origin": "yes", "keep-alive-interval": "30", "set-meta-user": "alice" }))
    const outcome = await handshake
    if (outcome._tag !== "Open") throw new Error("expected Open")
    expect(outcome.headers.get("x-origin")).toBe("yes")
    for (const name of ["content-type", "keep-alive-interval", "set-meta-user", "content-length"]) expect(outcome.headers.get(name)).toBeNull()
    outcome.connection.terminate()
  })

  test("a refusal is relayed, its body cut at 100 000 bytes", async () => {
    const h = harness()
    const handshake = openOverHttp(h.env, handshakeHeaders())
    ;(await h.request(1)).respond(new Response("x".repeat(150_000), { status: 403, statusText: "Forbidden", headers: { "x-why": "no" } }))
    const outcome = await handshake
    if (outcome._tag !== "Rejected") throw new Error("expected Rejected")
    expect(outcome.status).toBe(403)
    expect(outcome.statusText).toBe("Forbidden")
    expect(outcome.headers.get("x-why")).toBe("no")
    expect(outcome.body.length).toBe(100_000)
  })

  test("a 200 of another content type is a refusal too", async () => {
    const h = harness()
    const handshake = openOverHttp(h.env, handshakeHeaders())
    ;(await h.request(1)).respond(new Response("OPEN\r\n", { headers: { "content-type": "text/plain" } }))
    expect((await handshake)._tag).toBe("Rejected")
  })

  test("an answer that does not start with OPEN fails; an empty one needs Keep-Alive-Interval", async () => {
    const h = harness()
    const notOpen = openOverHttp(h.env, handshakeHeaders())
    ;(await h.request(1)).respond(answer([textEvent("hi")]))
    await expect(notOpen).rejects.toThrow("not OPEN")
    const empty = openOverHttp(h.env, handshakeHeaders())
    ;(await h.request(2)).respond(answer([]))
    await expect(empty).rejects.toThrow("no OPEN event and no Keep-Alive-Interval")
    const keptAlive = openOverHttp(h.env, handshakeHeaders())
    ;(await h.request(3)).respond(answer([], { "keep-alive-interval": "20" }))
    const outcome = await keptAlive
    expect(outcome._tag).toBe("Open")
    if (outcome._tag === "Open") outcome.connection.terminate()
  })

  test("an OPEN that never reached the origin is an OriginConnectError (the proxy fails over), never retried", async () => {
    const h = harness()
    const handshake = openOverHttp(h.env, handshakeHeaders())
    ;(await h.request(1)).fail(connectError())
    const error = await handshake.catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(OriginConnectError)
    expect((error as OriginConnectError).code).toBe("ECONNREFUSED")
    await settle()
    expect(h.sent.length).toBe(1)
    expect(h.wheel.size).toBe(0)
  })

  test("events after OPEN wait for start, then come in order", async () => {
    const h = harness()
    const connection = await open(h, answer([{ type: "OPEN" }, textEvent("one"), { type: "PING", content: bytes("p") }, textEvent("two")]))
    const { heard, handlers } = recorder()
    await settle()
    expect(heard).toEqual([])
    connection.start(handlers)
    expect(heard).toEqual(["text:one", "ping:p", "text:two"])
    connection.terminate()
  })
})

describe("messages", () => {
  test("one request at a time: what queues meanwhile goes together in the next, with meta and a fresh signature", async () => {
    const h = harness()
    const connection = await open(h, answer([{ type: "OPEN" }], { "set-meta-user": "alice" }))
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("a")
    const second = await h.request(2)
    expect(second.events).toEqual([textEvent("a")])
    connection.sendText("b")
    connection.sendBinary(new Uint8Array([1, 2]))
    connection.pong(bytes("q"))
    expect(connection.bufferedAmount).toBe(5)
    await settle()
    expect(h.sent.length).toBe(2)
    second.respond(answer([textEvent("echo:a")], { "set-meta-room": "r1" }))
    const third = await h.request(3)
    expect(third.events).toEqual([textEvent("b"), { type: "BINARY", content: new Uint8Array([1, 2]) }, { type: "PONG", content: bytes("q") }])
    expect(third.headers.get("meta-user")).toBe("alice")
    expect(third.headers.get("meta-room")).toBe("r1")
    expect(third.headers.get("grip-sig")).toBe("sig-3")
    expect(third.headers.get("connection-id")).toBe(second.headers.get("connection-id"))
    expect(heard).toEqual(["drain", "text:echo:a"])
    third.respond(answer([], { "set-meta-room": "" }))
    await waitUntil("acceptance", () => connection.bufferedAmount === 0)
    connection.sendText("c")
    const fourth = await h.request(4)
    expect(fourth.headers.get("meta-room")).toBeNull()
    expect(fourth.headers.get("meta-user")).toBe("alice")
    connection.terminate()
  })

  test("one_event: one event per request", async () => {
    const h = harness({ oneEvent: true })
    const connection = await open(h)
    connection.start(recorder().handlers)
    connection.sendText("a")
    connection.sendText("b")
    ;(await h.request(2)).respond(answer([]))
    const third = await h.request(3)
    expect(third.events).toEqual([textEvent("b")])
    connection.terminate()
  })

  test("Content-Bytes-Accepted: the unaccepted rest is replayed first, announced by Content-Bytes-Replayed", async () => {
    const h = harness()
    const connection = await open(h)
    connection.start(recorder().handlers)
    connection.sendText("hello")
    ;(await h.request(2)).respond(answer([], { "content-bytes-accepted": "2" }))
    await settle()
    expect(connection.bufferedAmount).toBe(3)
    // Only replay content is left: no request until something new comes.
    expect(h.sent.length).toBe(2)
    connection.sendText("!")
    const third = await h.request(3)
    expect(third.events).toEqual([textEvent("llo"), textEvent("!")])
    expect(third.headers.get("content-bytes-replayed")).toBe("3")
    third.respond(answer([]))
    connection.sendText("next")
    expect((await h.request(4)).headers.get("content-bytes-replayed")).toBeNull()
    connection.terminate()
  })

  test("accepting more than was offered is a connection error", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("abc")
    ;(await h.request(2)).respond(answer([], { "content-bytes-accepted": "4" }))
    await waitUntil("the close", () => heard.length > 0)
    expect(heard).toEqual(["error:origin accepted 4 content bytes of 3 offered", "close:undefined::false"])
    expect(connection.released).toBe(true)
    expect(h.wheel.size).toBe(0)
  })

  test("a later non-200, wrong content type, OPEN or DISCONNECT ends the connection uncleanly", async () => {
    const cases: ReadonlyArray<readonly [Response, string]> = [
      [new Response("oops", { status: 500, headers: { "content-type": EVENTS } }), "error:origin answered 500"],
      [new Response("TEXT 1\r\nx\r\n", { headers: { "content-type": "text/plain" } }), "error:origin answered with Content-Type"],
      [answer([{ type: "OPEN" }]), "error:origin sent OPEN on an open connection"],
      [answer([textEvent("last"), { type: "DISCONNECT" }]), "text:last"]
    ]
    for (const [response, expected] of cases) {
      const h = harness()
      const connection = await open(h)
      const { heard, handlers } = recorder()
      connection.start(handlers)
      connection.sendText("x")
      ;(await h.request(2)).respond(response)
      await waitUntil("the close", () => heard.some((entry) => entry.startsWith("close:")))
      expect(heard[0]).toStartWith(expected)
      expect(heard[heard.length - 1]).toBe("close:undefined::false")
      expect(connection.released).toBe(true)
      expect(h.wheel.size).toBe(0)
    }
  })

  test("a response body over 1 000 000 bytes is a connection error", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("x")
    ;(await h.request(2)).respond(answer([textEvent("y".repeat(1_000_001))]))
    await waitUntil("the close", () => heard.length > 0)
    expect(heard).toEqual(["error:origin's response body exceeds 1000000 bytes", "close:undefined::false"])
  })

  test("while paused nothing is delivered, and past the bound no request with new content goes", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.pause()
    connection.sendText("x")
    ;(await h.request(2)).respond(answer([textEvent("z".repeat(250_000))]))
    await settle()
    expect(heard).toEqual(["drain"])
    connection.sendText("more")
    await settle()
    expect(h.sent.length).toBe(2)
    connection.resume()
    expect(heard).toEqual(["drain", `text:${"z".repeat(250_000)}`])
    expect((await h.request(3)).events).toEqual([textEvent("more")])
    connection.terminate()
  })

  test("refresh sends a request at once, empty when nothing is queued; during a request it follows it", async () => {
    const h = harness()
    const connection = await open(h)
    connection.start(recorder().handlers)
    connection.refresh?.()
    const second = await h.request(2)
    expect(second.events).toEqual([])
    connection.refresh?.()
    await settle()
    expect(h.sent.length).toBe(2)
    second.respond(answer([]))
    expect((await h.request(3)).events).toEqual([])
    connection.terminate()
  })
})

describe("keep-alive", () => {
  test("Keep-Alive-Interval: an empty request after that long without one, counted from the last request", async () => {
    const h = harness()
    const connection = await open(h, answer([{ type: "OPEN" }], { "keep-alive-interval": "25" }))
    connection.start(recorder().handlers)
    h.advance(24_900)
    await settle()
    expect(h.sent.length).toBe(1)
    h.advance(100)
    const second = await h.request(2)
    expect(second.events).toEqual([])
    second.respond(answer([]))
    await settle()
    // A message resets the countdown.
    h.advance(20_000)
    connection.sendText("m")
    ;(await h.request(3)).respond(answer([]))
    await settle()
    h.advance(24_900)
    await settle()
    expect(h.sent.length).toBe(3)
    h.advance(100)
    await h.request(4)
    connection.terminate()
  })

  test("an interval under 20 s is raised to 20 s; 0 turns keep-alives off", async () => {
    const h = harness()
    const connection = await open(h, answer([{ type: "OPEN" }], { "keep-alive-interval": "5" }))
    connection.start(recorder().handlers)
    h.advance(19_900)
    await settle()
    expect(h.sent.length).toBe(1)
    h.advance(100)
    ;(await h.request(2)).respond(answer([], { "keep-alive-interval": "0" }))
    await settle()
    h.advance(600_000)
    await settle()
    expect(h.sent.length).toBe(2)
    expect(h.wheel.size).toBe(0)
    connection.terminate()
  })
})

describe("close", () => {
  test("the client's close goes after its pending messages; the origin's CLOSE ends it cleanly", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("first")
    const second = await h.request(2)
    connection.sendText("second")
    connection.close(4001, "bye")
    connection.sendText("ignored after close")
    second.respond(answer([]))
    const third = await h.request(3)
    expect(third.events).toEqual([textEvent("second"), closeEvent(4001, "bye")])
    third.respond(answer([closeEvent(4001, "bye")]))
    await waitUntil("the close", () => heard.some((entry) => entry.startsWith("close:")))
    // No drain for the last acceptance: the connection ended with it.
    expect(heard).toEqual(["drain", "close:4001:bye:true"])
    expect(connection.released).toBe(true)
    expect(h.wheel.size).toBe(0)
  })

  test("without keep-alive the origin has one chance to answer the CLOSE", async () => {
    const h = harness()
    const connection = await open(h)
    const { closes, handlers } = recorder()
    connection.start(handlers)
    connection.close()
    const second = await h.request(2)
    expect(second.events).toEqual([{ type: "CLOSE" }])
    second.respond(answer([]))
    await waitUntil("the close", () => closes().length > 0)
    expect(closes()).toEqual(["close:undefined::false"])
    expect(h.wheel.size).toBe(0)
  })

  test("with keep-alive the CLOSE may be answered by a later exchange", async () => {
    const h = harness()
    const connection = await open(h, answer([{ type: "OPEN" }], { "keep-alive-interval": "20" }))
    const { closes, handlers } = recorder()
    connection.start(handlers)
    connection.close(1000)
    ;(await h.request(2)).respond(answer([]))
    await settle()
    expect(closes()).toEqual([])
    h.advance(20_000)
    const keepAlive = await h.request(3)
    expect(keepAlive.events).toEqual([])
    keepAlive.respond(answer([closeEvent(1000)]))
    await waitUntil("the close", () => closes().length > 0)
    expect(closes()).toEqual(["close:1000::true"])
  })

  test("an origin CLOSE reaches the bridge at once and is echoed with its code after pending messages", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("a")
    const second = await h.request(2)
    connection.sendText("b")
    second.respond(answer([textEvent("before"), closeEvent(4002, "origin done"), textEvent("after is ignored")]))
    const echo = await h.request(3)
    expect(heard).toEqual(["text:before", "close:4002:origin done:true"])
    expect(echo.events).toEqual([textEvent("b"), closeEvent(4002, "origin done")])
    echo.respond(answer([]))
    await waitUntil("release", () => connection.released)
    expect(h.sent.length).toBe(3)
    expect(h.wheel.size).toBe(0)
  })
})

describe("client gone", () => {
  test("terminate: onClose now, DISCONNECT (freshly signed) after the request in flight, then nothing left", async () => {
    const h = harness()
    const connection = await open(h, answer([{ type: "OPEN" }], { "keep-alive-interval": "20" }))
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("x")
    const second = await h.request(2)
    connection.terminate()
    expect(heard).toEqual(["close:undefined::false"])
    await settle()
    expect(h.sent.length).toBe(2)
    second.respond(answer([textEvent("not delivered")]))
    const disconnect = await h.request(3)
    expect(disconnect.events).toEqual([{ type: "DISCONNECT" }])
    expect(disconnect.headers.get("grip-sig")).toBe("sig-3")
    disconnect.respond(answer([]))
    await waitUntil("release", () => connection.released)
    expect(h.wheel.size).toBe(0)
    expect(heard).toEqual(["close:undefined::false"])
  })

  test("terminate when idle sends DISCONNECT at once, even before start", async () => {
    const h = harness()
    const connection = await open(h)
    connection.terminate()
    const disconnect = await h.request(2)
    expect(disconnect.events).toEqual([{ type: "DISCONNECT" }])
    disconnect.respond(answer([]))
    await settle()
    expect(connection.released).toBe(true)
    expect(h.wheel.size).toBe(0)
  })
})

describe("failures and retries", () => {
  test("a request that never reached the origin is retried, freshly signed, with the same events", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("again")
    ;(await h.request(2)).fail(connectError())
    const retry = await h.request(3)
    expect(retry.events).toEqual([textEvent("again")])
    expect(retry.headers.get("grip-sig")).toBe("sig-3")
    retry.respond(answer([textEvent("got it")]))
    await waitUntil("the answer", () => heard.includes("text:got it"))
    connection.terminate()
  })

  test("after the last retry fails the connection ends uncleanly", async () => {
    const h = harness({ retries: 2 })
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("x")
    for (const n of [2, 3, 4]) (await h.request(n)).fail(connectError())
    await waitUntil("the close", () => heard.length > 0)
    expect(h.sent.length).toBe(4)
    expect(h.retried.count).toBe(2)
    expect(heard[heard.length - 1]).toBe("close:undefined::false")
    expect(connection.released).toBe(true)
    expect(h.wheel.size).toBe(0)
  })

  test("a connection broken after the request went out is not retried", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("x")
    ;(await h.request(2)).fail(Object.assign(new Error("socket closed"), { code: "ECONNRESET" }))
    await waitUntil("the close", () => heard.length > 0)
    expect(h.sent.length).toBe(2)
    expect(heard[heard.length - 1]).toBe("close:undefined::false")
  })

  test("a request unanswered for 60 s times out", async () => {
    const h = harness()
    const connection = await open(h)
    const { heard, handlers } = recorder()
    connection.start(handlers)
    connection.sendText("x")
    const second = await h.request(2)
    h.advance(60_000)
    await waitUntil("the close", () => heard.length > 0)
    expect(second.signal.aborted).toBe(true)
    expect(heard[0]).toContain("no answer within 60000 ms")
    expect(h.sent.length).toBe(2)
  })

  test("terminate during retries stops them and still sends DISCONNECT", async () => {
    const h = harness()
    const slow = { ...h.env, retrySchedule: Schedule.spaced("50 millis").pipe(Schedule.upTo({ times: 5 })) }
    const handshake = openOverHttp(slow, handshakeHeaders())
    ;(await h.request(1)).respond(answer([{ type: "OPEN" }]))
    const outcome = await handshake
    if (outcome._tag !== "Open") throw new Error("expected Open")
    const { connection } = outcome
    connection.start(recorder().handlers)
    connection.sendText("x")
    ;(await h.request(2)).fail(connectError())
    connection.terminate()
    // The retry still goes (it is the request in flight), then DISCONNECT.
    const retry = await h.request(3)
    expect(retry.events).toEqual([textEvent("x")])
    retry.respond(answer([]))
    expect((await h.request(4)).events).toEqual([{ type: "DISCONNECT" }])
  })
})

describe("exchange rules", () => {
  test("the retry schedule: 1, 2, 4, 8, 16 s, each plus under 1 s of jitter, then stop", async () => {
    const delays = await Effect.runPromise(
      Effect.gen(function*() {
        const step = yield* Schedule.toStep(RETRY_SCHEDULE)
        const out: Array<number> = []
        for (let i = 0; i < 6; i++) {
          const next = yield* Effect.result(step(0, undefined))
          if (Result.isFailure(next)) break
          out.push(Duration.toMillis(next.success[1]))
        }
        return out
      })
    )
    expect(delays.length).toBe(5)
    delays.forEach((delay, n) => {
      expect(delay).toBeGreaterThanOrEqual(1000 * 2 ** n)
      expect(delay).toBeLessThan(1000 * 2 ** n + 1000)
    })
  })

  test("request headers: base without handshake headers, plus the per-request ones", () => {
    const base = baseRequestHeaders(handshakeHeaders())
    const headers = requestHeaders(base, { connectionId: "cid", meta: new Map([["user", "alice"]]), gripSig: "sig", replayedBytes: 7 })
    expect(Object.fromEntries(headers)).toEqual({
      accept: EVENTS,
      "content-type": EVENTS,
      "connection-id": "cid",
      "content-bytes-replayed": "7",
      "grip-sig": "sig",
      host: "example.com",
      "meta-user": "alice",
      "sec-websocket-extensions": "grip",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
      "x-custom": "kept"
    })
  })

  test("Content-Bytes-Accepted: decimal, non-negative; anything else means all", () => {
    const of = (value: string) => contentBytesAccepted(new Headers({ "content-bytes-accepted": value }))
    expect(of("12")).toBe(12)
    expect(of("0")).toBe(0)
    expect(of("-1")).toBeUndefined()
    expect(of("x")).toBeUndefined()
    expect(contentBytesAccepted(new Headers())).toBeUndefined()
  })

  test("the shared timer loop fires due entries, never cancelled ones, and ends up empty", async () => {
    const loop = new SharedTimerLoop()
    let fired = 0
    const entry = loop.makeEntry(() => fired++)
    const cancelled = loop.makeEntry(() => fired += 100)
    loop.schedule(entry, 50)
    loop.schedule(cancelled, 50)
    loop.cancel(cancelled)
    expect(loop.size).toBe(1)
    await Bun.sleep(300)
    expect(fired).toBe(1)
    expect(loop.size).toBe(0)
  })
})
