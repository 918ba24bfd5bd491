/**
 * WebSocket-over-HTTP (`over_http` targets) end to end: clients speak WebSocket to the compiled
 * binary, which speaks `application/websocket-events` POSTs to a real Bun.serve origin on
 * 127.0.0.1. Covers the handshake (accepted and refused), messages both ways, batching, meta,
 * GRIP through WOH (control messages, publish, refresh), keep-alive, close codes both ways, a
 * vanished client (DISCONNECT) and a request retried after the origin went away.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { Result } from "effect"
import { closeEvent, decodeEvents, encodeEvents, parseClosePayload, type WsEvent } from "../../src/websocket/events.ts"
import { eventually, publish, subscribed } from "../support/grip.ts"
import { deadPort, type SeenRequest, startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { connectClient } from "../support/ws.ts"
import { headerOf, openWebSocket, upgrade } from "../support/ws-client.ts"

const EVENTS = "application/websocket-events"
const text = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes ?? new Uint8Array(0))
const bytes = (value: string): Uint8Array => new TextEncoder().encode(value)

const eventsOf = (request: SeenRequest): ReadonlyArray<WsEvent> => {
  const decoded = decodeEvents(request.body)
  if (Result.isFailure(decoded)) throw new Error(`gateway sent undecodable events: ${decoded.failure.message}`)
  return decoded.success
}

const answer = (events: ReadonlyArray<WsEvent>, headers: Record<string, string> = {}): Response =>
  new Response(new Uint8Array(encodeEvents(events)), { headers: { "content-type": EVENTS, ...headers } })

const textEvent = (value: string): WsEvent => ({ type: "TEXT", content: bytes(value) })

/** The requests of one connection (by Connection-Id), in arrival order. */
const requestsOf = (origin: TestOrigin, connectionId: string): ReadonlyArray<SeenRequest> =>
  origin.seen.filter((request) => request.headers["connection-id"] === connectionId)

/** The Connection-Id of the latest OPEN to `path`. */
const openedOn = (origin: TestOrigin, path: string): string => {
  const open = origin.seen.findLast((request) => new URL(request.url).pathname === path && eventsOf(request)[0]?.type === "OPEN")
  const id = open?.headers["connection-id"]
  if (id === undefined) throw new Error(`no OPEN seen on ${path}`)
  return id
}

/** Every event the origin received on one connection, in order. */
const receivedOn = (origin: TestOrigin, connectionId: string): ReadonlyArray<WsEvent> =>
  requestsOf(origin, connectionId).flatMap((request) => eventsOf(request))

/**
 * The origin's default behaviour: OPEN is accepted, each TEXT answered with `echo:<text>`, a CLOSE
 * echoed. Paths vary it (see the tests).
 */
const behave = async (request: Request, body: Uint8Array): Promise<Response> => {
  const path = new URL(request.url).pathname
  const decoded = decodeEvents(body)
  if (Result.isFailure(decoded)) return new Response(decoded.failure.message, { status: 400 })
  const events = decoded.success
  if (events[0]?.type === "OPEN") {
    switch (path) {
      case "/refuse":
        return new Response("no sockets for you", { status: 403, headers: { "x-refusal": "yes", "content-type": "text/plain" } })
      case "/grip":
        return answer([{ type: "OPEN" }, textEvent('c:{"type":"subscribe","channel":"woh"}')], {
          "sec-websocket-extensions": "grip"
        })
      case "/meta":
        return answer([{ type: "OPEN" }], { "set-meta-user": "alice", "set-meta-room": "lobby" })
      case "/keepalive":
        return answer([{ type: "OPEN" }], { "keep-alive-interval": "1" })
      default:
        return answer([{ type: "OPEN" }], { "x-woh-origin": "yes" })
    }
  }
  if (path === "/meta" && events.some((event) => event.type === "TEXT")) {
    // Unbind one name, keep the other.
    return answer([], { "set-meta-room": "" })
  }
  if (path === "/slow" && events.some((event) => event.type === "TEXT")) await Bun.sleep(300)
  const out: Array<WsEvent> = []
  for (const event of events) {
    if (event.type === "TEXT") {
      const message = text(event.content)
      if (message === "close me") {
        out.push(closeEvent(4002, "origin says bye"))
        break
      }
      if (path !== "/grip") out.push(textEvent(`echo:${message}`))
    } else if (event.type === "CLOSE") {
      out.push(event)
    }
  }
  return answer(out)
}

describe("WebSocket-over-HTTP", () => {
  let origin: TestOrigin
  let proxy: RunningPushpinTs

  beforeAll(async () => {
    origin = startOrigin(behave)
    proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port},over_http`] })
  })

  afterAll(async () => {
    await proxy.stop()
    await origin.stop()
  })

  test("handshake: OPEN with the gateway's headers; the client gets 101 and the origin's headers", async () => {
    const ws = await openWebSocket({ port: proxy.port, path: "/open?x=1", headers: { "x-client": "c1" } })
    try {
      expect(ws.head.status).toBe(101)
      expect(headerOf(ws.head, "x-woh-origin")).toBe("yes")
      expect(headerOf(ws.head, "content-type")).toBeUndefined()
      const id = openedOn(origin, "/open")
      const [open] = requestsOf(origin, id)
      if (open === undefined) throw new Error("no OPEN request")
      expect(open.method).toBe("POST")
      expect(new URL(open.url).search).toBe("?x=1")
      expect(eventsOf(open)).toEqual([{ type: "OPEN" }])
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      expect(open.headers["accept"]).toBe(EVENTS)
      expect(open.headers["content-type"]).toBe(EVENTS)
      expect(open.headers["grip-sig"]).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/)
      expect(open.headers["sec-websocket-extensions"]).toBe("grip")
      expect(open.headers["x-client"]).toBe("c1")
      // The client's key and version are replayed, as Pushpin does.
      expect(open.headers["sec-websocket-version"]).toBe("13")
      expect(open.headers["sec-websocket-key"]).toBeDefined()
      for (const name of ["upgrade", "content-bytes-replayed"]) {
        expect(open.headers[name]).toBeUndefined()
      }
    } finally {
      ws.destroy()
    }
  })

  test("a refusal is relayed with its status, headers and body", async () => {
    const outcome = await upgrade({ port: proxy.port, path: "/refuse" })
    if (outcome.kind !== "refused") throw new Error(`expected a refusal, got ${outcome.kind}`)
    expect(outcome.answer.head.status).toBe(403)
    expect(headerOf(outcome.answer.head, "x-refusal")).toBe("yes")
    expect(outcome.answer.body.toString("utf8")).toBe("no sockets for you")
  })

  test("client TEXT reaches the origin and the origin's TEXT answer reaches the client", async () => {
    const client = await connectClient(`ws://127.0.0.1:${proxy.port}/echo`)
    try {
      const id = openedOn(origin, "/echo")
      client.socket.send("hello")
      await eventually("the echo", () => client.texts().includes("echo:hello"))
      const second = requestsOf(origin, id)[1]
      expect(second === undefined ? [] : eventsOf(second)).toEqual([textEvent("hello")])
      expect(second?.headers["grip-sig"]).toBeDefined()
      expect(second?.headers["connection-id"]).toBe(id)
    } finally {
      client.socket.close()
    }
  })

  test("messages sent while a request is outstanding go together in the next one", async () => {
    const client = await connectClient(`ws://127.0.0.1:${proxy.port}/slow`)
    try {
      const id = openedOn(origin, "/slow")
      const sent = ["m1", "m2", "m3", "m4", "m5"]
      for (const message of sent) client.socket.send(message)
      await eventually("all echoes", () => client.texts().length === sent.length)
      expect(client.texts()).toEqual(sent.map((message) => `echo:${message}`))
      const carrying = requestsOf(origin, id).map((request) => eventsOf(request).filter((event) => event.type === "TEXT").length).filter((n) => n > 0)
      expect(carrying.reduce((a, b) => a + b, 0)).toBe(sent.length)
      // The first request took what was there; the rest waited for its answer and went in one.
      expect(carrying.length).toBeLessThanOrEqual(2)
      expect(Math.max(...carrying)).toBeGreaterThanOrEqual(2)
    } finally {
      client.socket.close()
    }
  })

  test("Set-Meta-* comes back as Meta-* on later requests; the client's own Meta-* never reaches the origin", async () => {
    const client = await connectClient(`ws://127.0.0.1:${proxy.port}/meta`, { headers: { "meta-user": "mallory", "meta-admin": "true" } })
    try {
      const id = openedOn(origin, "/meta")
      const [open] = requestsOf(origin, id)
      expect(open?.headers["meta-user"]).toBeUndefined()
      expect(open?.headers["meta-admin"]).toBeUndefined()
      client.socket.send("one")
      await eventually("the first message", () => requestsOf(origin, id).length >= 2)
      const second = requestsOf(origin, id)[1]
      expect(second?.headers["meta-user"]).toBe("alice")
      expect(second?.headers["meta-room"]).toBe("lobby")
      expect(second?.headers["meta-admin"]).toBeUndefined()
      client.socket.send("two")
      await eventually("the second message", () => requestsOf(origin, id).length >= 3)
      const third = requestsOf(origin, id)[2]
      expect(third?.headers["meta-user"]).toBe("alice")
      expect(third?.headers["meta-room"]).toBeUndefined()
    } finally {
      client.socket.close()
    }
  })

  test("GRIP: a subscribe control message in the OPEN answer, then a publish reaches the client; refresh asks the origin", async () => {
    const client = await connectClient(`ws://127.0.0.1:${proxy.port}/grip`)
    try {
      const id = openedOn(origin, "/grip")
      await subscribed(proxy, "woh")
      const published = await publish(proxy.publishUrl, [{ channel: "woh", formats: { "ws-message": { content: "from the publisher" } } }])
      expect(published.status).toBe(200)
      await eventually("the published message", () => client.texts().includes("from the publisher"))
      // The control message itself never reaches the client.
      expect(client.texts()).toEqual(["from the publisher"])

      const before = requestsOf(origin, id).length
      await publish(proxy.publishUrl, [{ channel: "woh", formats: { "ws-message": { action: "refresh" } } }])
      await eventually("a refresh request", () => requestsOf(origin, id).length > before)
      const refresh = requestsOf(origin, id)[before]
      expect(refresh === undefined ? undefined : eventsOf(refresh)).toEqual([])
    } finally {
      client.socket.close()
    }
  })

  test("Keep-Alive-Interval below 20 s is raised to 20 s: no keep-alive request after 3 s", async () => {
    const client = await connectClient(`ws://127.0.0.1:${proxy.port}/keepalive`)
    try {
      const id = openedOn(origin, "/keepalive")
      await Bun.sleep(3000)
      expect(requestsOf(origin, id).length).toBe(1)
    } finally {
      client.socket.close()
    }
  })

  test("a client close with 4001 reaches the origin as CLOSE 4001, and the origin's answer closes the client", async () => {
    const client = await connectClient(`ws://127.0.0.1:${proxy.port}/closing`)
    const id = openedOn(origin, "/closing")
    client.socket.send("last words")
    await eventually("the echo", () => client.texts().includes("echo:last words"))
    client.socket.close(4001, "client leaving")
    const closed = await client.closed
    expect(closed.code).toBe(4001)
    // The runtime answers the client's close at once; the origin hears it on the next request.
    await eventually("the gateway's CLOSE", () => receivedOn(origin, id).some((event) => event.type === "CLOSE"))
    const close = receivedOn(origin, id).find((event) => event.type === "CLOSE")
    expect(parseClosePayload(close?.content)).toEqual({ code: 4001, reason: "client leaving" })
    // The CLOSE came after the message, and nothing followed it.
    const types = receivedOn(origin, id).map((event) => event.type)
    expect(types).toEqual(["OPEN", "TEXT", "CLOSE"])
  })

  test("an origin CLOSE 4002 closes the client with 4002 and is answered with a CLOSE", async () => {
    const client = await connectClient(`ws://127.0.0.1:${proxy.port}/origin-closes`)
    const id = openedOn(origin, "/origin-closes")
    client.socket.send("close me")
    const closed = await client.closed
    expect(closed).toEqual({ code: 4002, reason: "origin says bye" })
    await eventually("the gateway's CLOSE", () => receivedOn(origin, id).some((event) => event.type === "CLOSE"))
    const close = receivedOn(origin, id).find((event) => event.type === "CLOSE")
    expect(parseClosePayload(close?.content)).toEqual({ code: 4002, reason: "origin says bye" })
  })

  test("a client that vanishes without a close makes the gateway send DISCONNECT, signed", async () => {
    const ws = await openWebSocket({ port: proxy.port, path: "/vanish" })
    const id = openedOn(origin, "/vanish")
    ws.destroy()
    await eventually("DISCONNECT", () => receivedOn(origin, id).some((event) => event.type === "DISCONNECT"))
    const requests = requestsOf(origin, id)
    const last = requests[requests.length - 1]
    expect(last === undefined ? [] : eventsOf(last)).toEqual([{ type: "DISCONNECT" }])
    expect(last?.headers["grip-sig"]).toBeDefined()
    await Bun.sleep(200)
    expect(requestsOf(origin, id).length).toBe(requests.length)
  })

  test("a plain HTTP request claiming to carry WebSocket events is refused with 403", async () => {
    const response = await fetch(`${proxy.baseUrl}/echo`, {
      method: "POST",
      headers: { "content-type": "application/websocket-events; charset=utf-8" },
      body: "DISCONNECT\r\n"
    })
    expect(response.status).toBe(403)
    expect(await response.text()).toBe("Client not allowed to send WebSocket events directly.\n")
  })
})

describe("WebSocket-over-HTTP failover and retries", () => {
  test("an origin that refuses the OPEN's connection is skipped for the route's next target", async () => {
    const origin = startOrigin(behave)
    const dead = deadPort()
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${dead},over_http 127.0.0.1:${origin.port},over_http`] })
    try {
      const client = await connectClient(`ws://127.0.0.1:${proxy.port}/failover`)
      client.socket.send("via the second target")
      await eventually("the echo", () => client.texts().includes("echo:via the second target"))
      client.socket.close()
      const outcome = await upgrade({ port: proxy.port, path: "/failover" })
      expect(outcome.kind).toBe("open")
      if (outcome.kind === "open") outcome.ws.destroy()
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })

  test("with every target unreachable the client gets 502", async () => {
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${deadPort()},over_http`] })
    try {
      const outcome = await upgrade({ port: proxy.port, path: "/nobody" })
      if (outcome.kind !== "refused") throw new Error(`expected a refusal, got ${outcome.kind}`)
      expect(outcome.answer.head.status).toBe(502)
    } finally {
      await proxy.stop()
    }
  })


  test("a request that finds the origin gone is retried after a backoff and then delivered", async () => {
    let origin = startOrigin(behave)
    const port = origin.port
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${port},over_http`] })
    const seen: Array<SeenRequest> = []
    try {
      const client = await connectClient(`ws://127.0.0.1:${proxy.port}/retry`)
      const id = openedOn(origin, "/retry")
      seen.push(...origin.seen)
      await origin.stop()
      client.socket.send("while you were out")
      // The first attempt is refused; the retry comes 1-2 s later.
      await Bun.sleep(300)
      origin = startOrigin(behave, port)
      await eventually("the retried message's echo", () => client.texts().includes("echo:while you were out"), 5000)
      const retried = requestsOf(origin, id)
      expect(retried.length).toBe(1)
      expect(retried[0] === undefined ? [] : eventsOf(retried[0])).toEqual([textEvent("while you were out")])
      client.socket.close()
      await client.closed
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })
})
