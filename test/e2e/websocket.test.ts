/**
 * WebSockets end to end through the compiled binary: pass-through relay (messages, handshake
 * headers, close codes, pings), refusals, failover, GRIP over WebSocket (prefix, control
 * messages, publishes), `sub=`, the test route, and a client that stops reading.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import net from "node:net"
import { deadPort, startOrigin } from "../support/origin.ts"
import { eventually, publish, subscribed } from "../support/grip.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { connectClient, startWsOrigin, type OriginConnection, type WsOrigin } from "../support/ws.ts"

const UPGRADE_HEAD = (path: string, extra = ""): string =>
  `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`

/** Sends a raw request and collects the answer until the server closes or `untilBytes` arrived. */
const rawExchange = (port: number, request: string, waitMs = 600): Promise<string> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request))
    const finish = () => {
      socket.destroy()
      resolve(Buffer.concat(chunks).toString("latin1"))
    }
    const timer = setTimeout(finish, waitMs)
    socket.on("data", (chunk: Buffer) => chunks.push(chunk))
    socket.on("close", () => {
      clearTimeout(timer)
      finish()
    })
    socket.on("error", () => {})
  })

/** A client frame (masked, as RFC 6455 requires), payload under 126 bytes. */
const maskedFrame = (opcode: number, fin: boolean, text: string): Buffer => {
  const payload = Buffer.from(text)
  const mask = Buffer.from([1, 2, 3, 4])
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number)))
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]), mask, masked])
}

const sendControl = (connection: OriginConnection, control: Record<string, unknown>) =>
  connection.socket.send(`c:${JSON.stringify(control)}`)

describe("WebSocket pass-through", () => {
  let origin: WsOrigin
  let proxy: RunningPushpinTs

  beforeAll(async () => {
    origin = await startWsOrigin({
      handshake: (request) => {
        const url = new URL(request.url)
        if (url.pathname === "/refuse") {
          return new Response("go away", { status: 403, headers: { "x-refusal": "yes", "content-type": "text/plain" } })
        }
        if (url.pathname === "/huge-refusal") return new Response("x".repeat(150_000), { status: 400 })
        const protocol = request.headers.get("sec-websocket-protocol")?.split(",")[0]?.trim()
        return { "x-origin": "ws-origin", ...(protocol === undefined ? {} : { "sec-websocket-protocol": protocol }) }
      },
      onMessage: (connection, message) => {
        if (message === "close-me") connection.socket.close(4002, "later")
        else connection.socket.send(message)
      }
    })
    proxy = await startPushpinTs({ args: ["--route", `*,no_grip 127.0.0.1:${origin.port}`] })
  })

  afterAll(async () => {
    await proxy.stop()
    await origin.stop()
  })

  const url = (path: string) => `ws://127.0.0.1:${proxy.port}${path}`

  test("text, binary and large messages are echoed in order", async () => {
    const client = await connectClient(url("/echo"))
    const large = "L".repeat(70_000)
    client.socket.send("one")
    client.socket.send(new Uint8Array([0, 1, 2, 255]))
    client.socket.send(large)
    client.socket.send("two")
    await eventually("four echoes", () => client.messages.length >= 4)
    expect(client.messages[0]).toBe("one")
    expect(client.messages[1]).toEqual(new Uint8Array([0, 1, 2, 255]))
    expect(client.messages[2]).toBe(large)
    expect(client.messages[3]).toBe("two")
    client.socket.close()
  })

  test("a fragmented client message reaches the origin whole", async () => {
    const before = origin.connections.length
    const socket = net.connect(proxy.port, "127.0.0.1", () => socket.write(UPGRADE_HEAD("/fragments")))
    socket.on("error", () => {})
    socket.once("data", () => {
      socket.write(Buffer.concat([maskedFrame(0x1, false, "frag"), maskedFrame(0x0, false, "men"), maskedFrame(0x0, true, "ted")]))
    })
    await eventually("origin got the message", () => (origin.connections[before]?.received.length ?? 0) > 0)
    expect(origin.connections[before]?.received[0]).toBe("fragmented")
    socket.destroy()
  })

  test("handshake: client extensions dropped, subprotocol and headers relayed", async () => {
    const before = origin.connections.length
    const client = await connectClient(url("/headers?x=1"), {
      protocols: ["chat", "superchat"],
      headers: { "x-custom": "client-value", "sec-websocket-extensions": "permessage-deflate" }
    })
    expect(client.socket.protocol).toBe("chat")
    await eventually("origin connection", () => origin.connections.length > before)
    const seen = origin.connections[before] as OriginConnection
    expect(seen.path).toBe("/headers?x=1")
    expect(seen.headers["x-custom"]).toBe("client-value")
    expect(seen.headers["sec-websocket-protocol"]).toBe("chat, superchat")
    // no_grip route: no grip offered, and the client's permessage-deflate never reaches the origin.
    expect(seen.headers["sec-websocket-extensions"]).toBeUndefined()
    client.socket.close()
    const raw = await rawExchange(proxy.port, UPGRADE_HEAD("/headers"), 500)
    expect(raw).toStartWith("HTTP/1.1 101")
    expect(raw.toLowerCase()).toContain("x-origin: ws-origin")
  })

  test("close codes and reasons pass both ways", async () => {
    const before = origin.connections.length
    const client = await connectClient(url("/close"))
    client.socket.close(4001, "bye")
    await eventually("origin saw the close", () => (origin.connections[before]?.closes.length ?? 0) > 0)
    expect(origin.connections[before]?.closes[0]).toEqual({ code: 4001, reason: "bye" })

    const second = await connectClient(url("/close"))
    second.socket.send("close-me")
    expect(await second.closed).toEqual({ code: 4002, reason: "later" })
  })

  test("a client ping reaches the origin with its payload, and its pong comes back", async () => {
    const before = origin.connections.length
    const received: Array<Buffer> = []
    const socket = net.connect(proxy.port, "127.0.0.1", () => socket.write(UPGRADE_HEAD("/ping")))
    socket.on("error", () => {})
    socket.on("data", (chunk: Buffer) => received.push(chunk))
    await eventually("101", () => Buffer.concat(received).includes("\r\n\r\n"))
    received.length = 0
    socket.write(maskedFrame(0x9, true, "abc"))
    await eventually("origin saw the ping", () => (origin.connections[before]?.pings.length ?? 0) > 0)
    expect(origin.connections[before]?.pings[0]).toBe("abc")
    // A pong frame (0x8A) carrying "abc" arrives.
    await eventually("a pong", () => Buffer.concat(received).includes(Buffer.from([0x8a, 3, 0x61, 0x62, 0x63])))
    socket.destroy()
  })

  test("the origin's refusal is relayed: status, headers, body", async () => {
    const raw = await rawExchange(proxy.port, UPGRADE_HEAD("/refuse"))
    expect(raw).toStartWith("HTTP/1.1 403")
    expect(raw.toLowerCase()).toContain("x-refusal: yes")
    expect(raw).toEndWith("go away")
  })

  test("a refusal body over 100 000 bytes becomes Pushpin's 500", async () => {
    const raw = await rawExchange(proxy.port, UPGRADE_HEAD("/huge-refusal"))
    expect(raw).toStartWith("HTTP/1.1 500")
    expect(raw).toContain("Non-101 response body size exceeded limit of 100000 bytes.")
  })

  test("an invalid upgrade gets Pushpin's 400 text", async () => {
    const raw = await rawExchange(proxy.port, "GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    expect(raw).toStartWith("HTTP/1.1 400")
    expect(raw).toContain('Request contained an Upgrade header with value "websocket" but the request was not a valid WebSocket request.')
    // The server goes on serving.
    const client = await connectClient(url("/after-bad"))
    client.socket.send("still here")
    await eventually("echo", () => client.messages.length > 0)
    client.socket.close()
  })
})

describe("WebSocket failover", () => {
  test("a dead first target fails over to the next; all dead is 502", async () => {
    const origin = await startWsOrigin()
    const dead = deadPort()
    const proxy = await startPushpinTs({
      args: ["--route", `* 127.0.0.1:${dead} 127.0.0.1:${origin.port}`, "--route", `alldead.example 127.0.0.1:${dead}`]
    })
    try {
      const client = await connectClient(`ws://127.0.0.1:${proxy.port}/x`)
      client.socket.send("via second")
      await eventually("echo", () => client.messages.length > 0)
      client.socket.close()
      const raw = await rawExchange(proxy.port, UPGRADE_HEAD("/x").replace("Host: 127.0.0.1", "Host: alldead.example"))
      expect(raw).toStartWith("HTTP/1.1 502")
      expect(raw).toContain("Error while proxying to origin.")
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })
})

describe("GRIP over WebSocket", () => {
  let origin: WsOrigin
  let proxy: RunningPushpinTs

  beforeAll(async () => {
    origin = await startWsOrigin({
      handshake: (request) => {
        const url = new URL(request.url)
        const prefix = url.searchParams.get("prefix")
        return { "sec-websocket-extensions": prefix === null ? "grip" : `grip; message-prefix="${prefix}"` }
      },
      onOpen: (connection) => {
        const url = new URL(connection.path, "http://x")
        for (const channel of url.searchParams.getAll("channel")) sendControl(connection, { type: "subscribe", channel })
      },
      onMessage: (connection, message) => {
        if (typeof message !== "string") return
        if (message.startsWith("control ")) connection.socket.send(`c:${message.slice("control ".length)}`)
        else if (message.startsWith("say ")) connection.socket.send(message.slice("say ".length))
      }
    })
    proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port}`] })
  })

  afterAll(async () => {
    await proxy.stop()
    await origin.stop()
  })

  const url = (path: string) => `ws://127.0.0.1:${proxy.port}${path}`
  const publishWs = (channel: string, wsMessage: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    publish(proxy.publishUrl, [{ channel, formats: { "ws-message": wsMessage }, ...extra }])

  test("the origin is offered grip; prefixed messages are stripped, unprefixed dropped, publishes delivered", async () => {
    const before = origin.connections.length
    const client = await connectClient(url("/g?channel=room1"))
    await subscribed(proxy, "room1")
    expect(origin.connections[before]?.headers["sec-websocket-extensions"]).toBe("grip")
    client.socket.send("say oops")
    client.socket.send("say m:hello")
    await eventually("hello", () => client.messages.length > 0)
    expect((await publishWs("room1", { content: "pub1" })).status).toBe(200)
    await eventually("pub1", () => client.messages.length > 1)
    expect(client.texts()).toEqual(["hello", "pub1"])
    // The client never sees the grip extension.
    expect(client.socket.extensions).toBe("")
    await publishWs("room1", { action: "close", code: 4100, reason: "done" })
    expect(await client.closed).toEqual({ code: 4100, reason: "done" })
    await eventually("origin closed too", () => (origin.connections[before]?.closes.length ?? 0) > 0)
  })

  test("binary publishes and an empty message prefix", async () => {
    const client = await connectClient(url("/g?channel=room2&prefix="))
    await subscribed(proxy, "room2")
    client.socket.send("say no prefix needed")
    await eventually("relayed", () => client.messages.length > 0)
    await publishWs("room2", { "content-bin": Buffer.from([9, 8, 7]).toString("base64") })
    await eventually("binary", () => client.messages.length > 1)
    expect(client.messages).toEqual(["no prefix needed", new Uint8Array([9, 8, 7])])
    client.socket.close()
  })

  test("unsubscribe stops deliveries; set-meta with skip-self filters the sender", async () => {
    const client = await connectClient(url("/g?channel=room3"))
    await subscribed(proxy, "room3")
    client.socket.send(`control ${JSON.stringify({ type: "set-meta", name: "user", value: "alice" })}`)
    client.socket.send(`control ${JSON.stringify({ type: "subscribe", channel: "room4", filters: ["skip-self"] })}`)
    await subscribed(proxy, "room4")
    await publishWs("room4", { content: "from alice" }, { meta: { sender: "alice" } })
    await publishWs("room4", { content: "from bob" }, { meta: { sender: "bob" } })
    await eventually("bob's message", () => client.messages.length > 0)
    client.socket.send(`control ${JSON.stringify({ type: "unsubscribe", channel: "room3" })}`)
    client.socket.send("say m:unsubscribed")
    await eventually("marker", () => client.messages.length > 1)
    await publishWs("room3", { content: "after unsubscribe" })
    await publishWs("room4", { content: "still on room4" })
    await eventually("room4 message", () => client.messages.length > 2)
    expect(client.texts()).toEqual(["from bob", "unsubscribed", "still on room4"])
    client.socket.close()
  })

  test("keep-alive and send-delayed messages are sent by pushpin-ts", async () => {
    const client = await connectClient(url("/g"))
    client.socket.send(`control ${JSON.stringify({ type: "keep-alive", content: "ka", timeout: 1 })}`)
    await eventually("a keep-alive", () => client.texts().includes("ka"), 4000)
    client.socket.send(`control ${JSON.stringify({ type: "keep-alive" })}`)
    client.socket.send(`control ${JSON.stringify({ type: "send-delayed", content: "later", timeout: 1 })}`)
    const sentAt = Date.now()
    await eventually("the delayed message", () => client.texts().includes("later"), 4000)
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(800)
    // flush-delayed sends a pending message at once.
    client.socket.send(`control ${JSON.stringify({ type: "send-delayed", content: "flushed", timeout: 60 })}`)
    client.socket.send(`control ${JSON.stringify({ type: "flush-delayed" })}`)
    await eventually("the flushed message", () => client.texts().includes("flushed"), 2000)
    client.socket.close()
  })

  test("detach closes the origin side; the client keeps receiving publishes", async () => {
    const before = origin.connections.length
    const client = await connectClient(url("/g?channel=room5"))
    await subscribed(proxy, "room5")
    client.socket.send(`control ${JSON.stringify({ type: "detach" })}`)
    await eventually("origin closed", () => (origin.connections[before]?.closes.length ?? 0) > 0)
    client.socket.send("say m:ignored")
    await publishWs("room5", { content: "one-way" })
    await eventually("publish after detach", () => client.messages.length > 0)
    expect(client.texts()).toEqual(["one-way"])
    expect(origin.connections[before]?.received).not.toContain("say m:ignored")
    client.socket.close()
  })

  test("a subscribe with more than 5 filters closes the connection with 1011", async () => {
    const client = await connectClient(url("/g"))
    const filters = ["skip-self", "skip-users", "require-sub", "build-id", "var-subst", "skip-self"]
    client.socket.send(`control ${JSON.stringify({ type: "subscribe", channel: "many", filters })}`)
    expect((await client.closed).code).toBe(1011)
  })
})

describe("sub= and the test route", () => {
  test("a target's sub= subscribes every connection, even without grip", async () => {
    const origin = await startWsOrigin()
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port},sub=implicit`] })
    try {
      const client = await connectClient(`ws://127.0.0.1:${proxy.port}/s`)
      await subscribed(proxy, "implicit")
      await publish(proxy.publishUrl, [{ channel: "implicit", formats: { "ws-message": { content: "for everyone" } } }])
      await eventually("implicit publish", () => client.messages.length > 0)
      client.socket.send("echo")
      await eventually("echo", () => client.messages.length > 1)
      expect(client.texts()).toEqual(["for everyone", "echo"])
      client.socket.close()
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })

  test("the test route's /ws echoes and subscribes; other paths are 404", async () => {
    const proxy = await startPushpinTs()
    try {
      const client = await connectClient(`ws://127.0.0.1:${proxy.port}/ws?channel=tr`)
      await subscribed(proxy, "tr")
      client.socket.send("echo me")
      await eventually("echo", () => client.messages.length > 0)
      await publish(proxy.publishUrl, [{ channel: "tr", formats: { "ws-message": { content: "published" } } }])
      await eventually("publish", () => client.messages.length > 1)
      expect(client.texts()).toEqual(["echo me", "published"])
      client.socket.close()
      const raw = await rawExchange(proxy.port, UPGRADE_HEAD("/nope"))
      expect(raw).toStartWith("HTTP/1.1 404")
      expect(raw).toEndWith("no such test resource\n")
    } finally {
      await proxy.stop()
    }
  })
})

describe("a WebSocket client that stops reading", () => {
  test("costs a bounded outbox, its drops are logged, and other clients keep receiving", async () => {
    const proxy = await startPushpinTs()
    try {
      // A raw client: handshake, then never read again.
      const stalled = net.connect(proxy.port, "127.0.0.1", () => stalled.write(UPGRADE_HEAD("/ws?channel=flood")))
      stalled.on("error", () => {})
      await new Promise<void>((resolve) => stalled.once("data", () => resolve()))
      stalled.pause()
      const healthy = await connectClient(`ws://127.0.0.1:${proxy.port}/ws?channel=flood`)
      await subscribed(proxy, "flood", 2)

      const content = "x".repeat(64 * 1024)
      const count = 400
      for (let i = 0; i < count; i += 10) {
        const items = Array.from({ length: 10 }, (_, j) => ({ channel: "flood", formats: { "ws-message": { content: `${i + j}:${content}` } } }))
        expect((await publish(proxy.publishUrl, items)).status).toBe(200)
      }
      await eventually("healthy client got everything", () => healthy.messages.length >= count, 20_000)
      expect(healthy.texts().map((text) => Number(text.split(":")[0]))).toEqual(Array.from({ length: count }, (_, i) => i))
      await proxy.waitForLog(/drop: ws connection \S+ .*client outbox full/)
      healthy.socket.close()
      stalled.destroy()
      // Everything is still served afterwards.
      const after = await connectClient(`ws://127.0.0.1:${proxy.port}/ws`)
      after.socket.send("alive")
      await eventually("echo after the flood", () => after.messages.length > 0)
      after.socket.close()
    } finally {
      await proxy.stop()
    }
  }, 40_000)
})

describe("over_http targets and plain HTTP clients", () => {
  test("a client that sends WebSocket events itself gets 403; other requests are proxied", async () => {
    const origin = startOrigin(() => new Response("plain answer\n"))
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port},over_http`] })
    try {
      const forged = await fetch(`${proxy.baseUrl}/events`, {
        method: "POST",
        headers: { "content-type": "application/websocket-events; charset=x", "connection-id": "someone-else" },
        body: "TEXT 2\r\nhi\r\n"
      })
      expect(forged.status).toBe(403)
      expect(await forged.text()).toBe("Client not allowed to send WebSocket events directly.\n")
      expect(origin.seen).toHaveLength(0)
      const plain = await fetch(`${proxy.baseUrl}/page`)
      expect(await plain.text()).toBe("plain answer\n")
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })
})
