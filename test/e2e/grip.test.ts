/**
 * End to end: GRIP holds over HTTP through the compiled binary, driven by a real origin and the
 * real publish API.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { connect } from "node:net"
import { eventually, publish, subscribed } from "../support/grip.ts"
import { readChunked } from "../support/chunked.ts"
import { readUntil } from "../support/streams.ts"

describe("GRIP holds", () => {
  let origin: TestOrigin
  let proxy: RunningPushpinTs

  beforeAll(async () => {
    origin = startOrigin((request) => {
      const url = new URL(request.url)
      const channel = url.searchParams.get("channel") ?? "c"
      switch (url.pathname) {
        case "/poll":
          return new Response("timeout body\n", {
            headers: { "content-type": "text/plain", "x-origin": "kept", "grip-hold": "response", "grip-channel": channel, "grip-timeout": url.searchParams.get("timeout") ?? "55" }
          })
        case "/stream":
          return new Response("start\n", { headers: { "content-type": "text/plain", "grip-hold": "stream", "grip-channel": channel } })
        case "/sse":
          return new Response(":ok\n\n", {
            headers: { "content-type": "text/event-stream", "grip-hold": "stream", "grip-channel": channel, "grip-keep-alive": ":\\n\\n; format=cstring; timeout=1" }
          })
        case "/filtered":
          return new Response("open\n", {
            headers: { "grip-hold": "stream", "grip-channel": `${channel}; filter=skip-self`, "grip-set-meta": "user=alice" }
          })
        case "/instruct":
          return Response.json(
            { hold: { mode: "response", channels: [{ name: channel }] }, response: { code: 202, headers: { "x-json": "yes" }, body: "json timeout\n" } },
            { headers: { "content-type": "application/grip-instruct" } }
          )
        case "/json-poll":
          return Response.json({ items: [], status: "waiting" }, { headers: { "grip-hold": "response", "grip-channel": channel } })
        case "/empty-stream":
          return new Response("", { headers: { "grip-hold": "stream", "grip-channel": channel, "grip-keep-alive": "\\n; format=cstring; timeout=30" } })
        case "/status-only":
          return new Response("created\n", { headers: { "grip-status": "201", "x-kept": "1" } })
        case "/bad":
          return new Response("", { headers: { "grip-hold": "forever", "grip-channel": "x" } })
        default:
          return new Response("not grip\n")
      }
    })
    proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port}`, "--route", `*,path_beg=/pre/,prefix=app-,replace_beg=/ 127.0.0.1:${origin.port}`] })
  })

  afterAll(async () => {
    await proxy.stop()
    await origin.stop()
  })

  test("long-poll: the first http-response publish releases the held request with the origin's headers", async () => {
    const held = fetch(`${proxy.baseUrl}/poll?channel=lp1`)
    await subscribed(proxy, "lp1")
    const published = await publish(proxy.publishUrl, [{ channel: "lp1", formats: { "http-response": { body: "released\n", headers: { "x-pub": "1" } } } }])
    expect(published.status).toBe(200)
    expect(await published.text()).toBe("Published\n")
    const response = await held
    expect(response.status).toBe(200)
    expect(await response.text()).toBe("released\n")
    expect(response.headers.get("x-origin")).toBe("kept")
    expect(response.headers.get("x-pub")).toBe("1")
    for (const name of response.headers.keys()) expect(name.startsWith("grip-")).toBe(false)
  })

  test("long-poll released by a body-patch publish: the held body is patched", async () => {
    const held = fetch(`${proxy.baseUrl}/json-poll?channel=patch1`)
    await subscribed(proxy, "patch1")
    await publish(proxy.publishUrl, [{
      channel: "patch1",
      formats: { "http-response": { "body-patch": [{ op: "add", path: "/items/-", value: "new" }, { op: "replace", path: "/status", value: "done" }] } }
    }])
    const response = await held
    expect(await response.json()).toEqual({ items: ["new"], status: "done" })
  })

  test("long-poll timeout: Grip-Timeout below 5 s is raised to 5 s, then the origin's response is sent", async () => {
    const started = Date.now()
    const response = await fetch(`${proxy.baseUrl}/poll?channel=lp-timeout&timeout=1`)
    const elapsed = Date.now() - started
    expect(await response.text()).toBe("timeout body\n")
    expect(response.headers.get("grip-hold")).toBeNull()
    expect(elapsed).toBeGreaterThanOrEqual(4900)
  }, 15_000)

  test("application/grip-instruct JSON: its response is the timeout response, and a publish releases it", async () => {
    const held = fetch(`${proxy.baseUrl}/instruct?channel=json1`)
    await subscribed(proxy, "json1")
    await publish(proxy.publishUrl, [{ channel: "json1", formats: { "http-response": { code: 409, reason: "Conflict", body: "from publish\n" } } }])
    const response = await held
    expect(response.status).toBe(409)
    expect(await response.text()).toBe("from publish\n")
    expect(response.headers.get("x-json")).toBe("yes")
  })

  test("stream: the initial body at once, then every publish in order, and close ends it", async () => {
    const response = await fetch(`${proxy.baseUrl}/stream?channel=st1`)
    expect(response.headers.get("content-length")).toBeNull()
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    let text = await readUntil(reader, (sofar) => sofar.includes("start\n"))
    await subscribed(proxy, "st1")
    await publish(proxy.publishUrl, ["one", "two", "three"].map((word) => ({ channel: "st1", formats: { "http-stream": { content: `${word}\n` } } })))
    await publish(proxy.publishUrl, [{ channel: "st1", formats: { "http-stream": { action: "close" } } }])
    text = await readUntil(reader, () => false, text)
    expect(text).toBe("start\none\ntwo\nthree\n")
  })

  test("a stream with no initial body but a keep-alive gets its headers at once (the keep-alive goes first)", async () => {
    const response = await fetch(`${proxy.baseUrl}/empty-stream?channel=empty1`)
    expect(response.status).toBe(200)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    expect(await readUntil(reader, (sofar) => sofar.length > 0)).toBe("\n")
    await reader.cancel()
  })

  test("SSE: events arrive as the origin formats them, with keep-alives between", async () => {
    const response = await fetch(`${proxy.baseUrl}/sse?channel=sse1`)
    expect(response.headers.get("content-type")).toBe("text/event-stream")
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    let text = await readUntil(reader, (sofar) => sofar.includes(":ok\n\n"))
    await subscribed(proxy, "sse1")
    // keep-alive timeout=1: a ":\n\n" arrives within about a second when nothing is published
    text = await readUntil(reader, (sofar) => sofar.slice(":ok\n\n".length).includes(":\n\n"), text)
    await publish(proxy.publishUrl, [{ channel: "sse1", formats: { "http-stream": { content: "event: update\ndata: hello\n\n" } } }])
    text = await readUntil(reader, (sofar) => sofar.includes("data: hello\n\n"), text)
    expect(text).toContain("event: update\ndata: hello\n\n")
    await reader.cancel()
  })

  test("200 held clients all receive one publish", async () => {
    const clients = Array.from({ length: 200 }, () => fetch(`${proxy.baseUrl}/poll?channel=many`))
    await subscribed(proxy, "many", 200)
    const published = await publish(proxy.publishUrl, [{ channel: "many", formats: { "http-response": { body: "everyone\n" } } }])
    expect(published.status).toBe(200)
    const bodies = await Promise.all(clients.map(async (client) => (await client).text()))
    expect(bodies.filter((body) => body === "everyone\n").length).toBe(200)
    await proxy.waitForLog(/publish channel=many receivers=200/)
  })

  test("a reader that stops reading loses messages (counted and logged) while others get everything", async () => {
    const { connect } = await import("node:net")
    const stalled = connect(proxy.port, "127.0.0.1")
    stalled.pause() // never reads: its kernel buffers, then its outbox, fill up
    stalled.write("GET /stream?channel=slow HTTP/1.1\r\nHost: slow.test\r\n\r\n")
    const healthy = await fetch(`${proxy.baseUrl}/stream?channel=slow`)
    const reader = (healthy.body as ReadableStream<Uint8Array>).getReader()
    await subscribed(proxy, "slow", 2)
    const chunk = "x".repeat(16 * 1024 - 1)
    const batches = 100
    let received = 0
    const draining = (async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        received += value.byteLength
      }
    })()
    for (let batch = 0; batch < batches; batch++) {
      const items = Array.from({ length: 10 }, () => ({ channel: "slow", formats: { "http-stream": { content: `${chunk}\n` } } }))
      expect((await publish(proxy.publishUrl, items)).status).toBe(200)
    }
    await publish(proxy.publishUrl, [{ channel: "slow", formats: { "http-stream": { action: "close" } } }])
    await draining
    expect(received).toBe("start\n".length + batches * 10 * 16 * 1024)
    await proxy.waitForLog(/drop: connection \d+ route \S+ channel slow: outbox full/)
    stalled.destroy()
  }, 30_000)

  test("sequencing: out-of-order items wait for their predecessor, duplicates are dropped, a gap is given up after message_wait", async () => {
    const response = await fetch(`${proxy.baseUrl}/stream?channel=seq`)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    let text = await readUntil(reader, (sofar) => sofar.includes("start\n"))
    await subscribed(proxy, "seq")
    const item = (id: string, prevId: string | undefined) => ({
      channel: "seq",
      id,
      ...(prevId === undefined ? {} : { "prev-id": prevId }),
      formats: { "http-stream": { content: `${id}\n` } }
    })
    await publish(proxy.publishUrl, [item("1", undefined)])
    await publish(proxy.publishUrl, [item("3", "2")]) // parked: 2 has not been seen
    await publish(proxy.publishUrl, [item("2", "1")]) // releases 2, then 3
    await publish(proxy.publishUrl, [item("2", "1")]) // duplicate id: dropped
    text = await readUntil(reader, (sofar) => sofar.endsWith("3\n"), text)
    expect(text).toBe("start\n1\n2\n3\n")
    const parkedAt = Date.now()
    await publish(proxy.publishUrl, [item("5", "4")]) // 4 never comes
    text = await readUntil(reader, (sofar) => sofar.endsWith("5\n"), text)
    expect(Date.now() - parkedAt).toBeGreaterThanOrEqual(4500)
    expect(text).toBe("start\n1\n2\n3\n5\n")
    expect(proxy.logs()).toContain("drop: publish channel=seq id=2: duplicate")
    await reader.cancel()
  }, 20_000)

  test("route prefix namespaces channels", async () => {
    const held = fetch(`${proxy.baseUrl}/pre/poll?channel=pfx`)
    await subscribed(proxy, "app-pfx")
    await publish(proxy.publishUrl, [{ channel: "app-pfx", formats: { "http-response": { body: "prefixed\n" } } }])
    expect(await (await held).text()).toBe("prefixed\n")
  })

  test("skip-self: a publish whose sender is the subscriber's user is not sent to it", async () => {
    const response = await fetch(`${proxy.baseUrl}/filtered?channel=flt`)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    await subscribed(proxy, "flt")
    await publish(proxy.publishUrl, [{ channel: "flt", meta: { sender: "alice" }, formats: { "http-stream": { content: "own echo\n" } } }])
    await publish(proxy.publishUrl, [{ channel: "flt", meta: { sender: "bob" }, formats: { "http-stream": { content: "from bob\n" } } }])
    await publish(proxy.publishUrl, [{ channel: "flt", formats: { "http-stream": { action: "close" } } }])
    expect(await readUntil(reader, () => false)).toBe("open\nfrom bob\n")
  })

  test("a client that goes away is unsubscribed", async () => {
    const controller = new AbortController()
    const held = fetch(`${proxy.baseUrl}/poll?channel=gone`, { signal: controller.signal }).catch(() => "aborted")
    await subscribed(proxy, "gone")
    controller.abort()
    expect(await held).toBe("aborted")
    let receivers = ""
    for (let attempt = 0; attempt < 50 && !receivers.includes("receivers=0"); attempt++) {
      await Bun.sleep(50)
      await publish(proxy.publishUrl, [{ channel: "gone", formats: { "http-response": { body: "x" } } }])
      receivers = proxy.logs().split("\n").filter((line) => line.includes("publish channel=gone")).at(-1) ?? ""
    }
    expect(receivers).toContain("receivers=0")
  })

  test("publishes read in the same turn reach a stream as one chunk (one write), in order; a later publish is a chunk of its own", async () => {
    const socket = connect(proxy.port, "127.0.0.1")
    let received = ""
    socket.on("data", (data: Buffer) => {
      received += data.toString("latin1")
    })
    socket.write("GET /stream?channel=joined HTTP/1.1\r\nHost: joined.test\r\n\r\n")
    await subscribed(proxy, "joined")
    // Ten publish requests in one TCP write: the publish API reads them in the same turn.
    const publisher = connect(Number(new URL(proxy.publishUrl ?? "").port), "127.0.0.1")
    let answers = ""
    publisher.on("data", (data: Buffer) => {
      answers += data.toString("latin1")
    })
    const items = Array.from({ length: 10 }, (_, n) => JSON.stringify({ items: [{ channel: "joined", formats: { "http-stream": { content: `m${n}\n` } } }] }))
    publisher.write(items.map((body) => `POST /publish/ HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`).join(""))
    await eventually("10 messages", () => received.includes("m9\n"))
    expect(answers.match(/HTTP\/1\.1 200/g)?.length).toBe(10)
    publisher.destroy()
    expect((await publish(proxy.publishUrl, [{ channel: "joined", formats: { "http-stream": { content: "later\n" } } }])).status).toBe(200)
    await eventually("the next publish", () => received.includes("later\n"))
    socket.destroy()
    const body = Buffer.from(received.slice(received.indexOf("\r\n\r\n") + 4), "latin1")
    const chunks = readChunked(body).chunks.map((chunk) => chunk.toString("latin1"))
    expect(chunks).toEqual(["start\n", items.map((_, n) => `m${n}\n`).join(""), "later\n"])
  })

  test("a request body over 100 000 bytes cannot be held: Pushpin's 400", async () => {
    const response = await fetch(`${proxy.baseUrl}/poll?channel=big-body`, { method: "POST", body: "b".repeat(100_001) })
    expect(response.status).toBe(400)
    expect(await response.text()).toBe("Request too large to accept GRIP instruct.\n")
  })

  test("Grip-Status without a hold answers at once; Grip-* never reach the client", async () => {
    const response = await fetch(`${proxy.baseUrl}/status-only`)
    expect(response.status).toBe(201)
    expect(await response.text()).toBe("created\n")
    expect(response.headers.get("x-kept")).toBe("1")
    expect(response.headers.get("grip-status")).toBeNull()
  })

  test("bad instructions from the origin: 502, logged with the reason", async () => {
    const response = await fetch(`${proxy.baseUrl}/bad`)
    expect(response.status).toBe(502)
    expect(await response.text()).toBe("Error while proxying to origin.\n")
    await proxy.waitForLog(/Grip-Hold must be set to either 'response' or 'stream'/)
  })
})

describe("publish API", () => {
  let proxy: RunningPushpinTs
  beforeAll(async () => {
    proxy = await startPushpinTs()
  })
  afterAll(async () => {
    await proxy.stop()
  })

  test.each([
    ["GET /", "/", { method: "GET" }, 200, "Pushpin API\n"],
    ["GET /publish/", "/publish/", { method: "GET" }, 405, "Method not allowed: GET.\n"],
    ["unknown path", "/nope", { method: "POST", body: "{}" }, 404, "Not Found\n"],
    ["bad JSON", "/publish/", { method: "POST", body: "{bad" }, 400, "Body is not valid JSON.\n"],
    ["no items", "/publish/", { method: "POST", body: "{}" }, 400, "Invalid format: object does not contain 'items'\n"],
    ["no channel", "/publish/", { method: "POST", body: JSON.stringify({ items: [{ formats: { "http-stream": { content: "x" } } }] }) }, 400, "Invalid format: publish item object does not contain 'channel'\n"],
    ["no formats", "/publish/", { method: "POST", body: JSON.stringify({ items: [{ channel: "a" }] }) }, 400, "Invalid format: no formats specified\n"],
    ["empty items", "/publish", { method: "POST", body: JSON.stringify({ items: [] }) }, 200, "Published\n"],
    ["Accept: application/xml", "/publish/", { method: "POST", body: "{}", headers: { accept: "application/xml" } }, 406, "Not Acceptable. Supported formats are text/plain and application/json.\n"],
    ["Accept: application/json", "/publish/", { method: "POST", body: JSON.stringify({ items: [] }), headers: { accept: "application/json" } }, 200, '{"message":"Published"}\n'],
    ["body too large", "/publish/", { method: "POST", body: "x".repeat(1_000_001) }, 400, "Request body too large.\n"]
  ] as const)("%s", async (_name, path, init, status, text) => {
    const response = await fetch(`${proxy.publishUrl}${path}`, init as RequestInit)
    expect(response.status).toBe(status)
    expect(await response.text()).toBe(text)
    if (status === 405) expect(response.headers.get("allow")).toBe("POST")
  })

  test("a chunked publish gets 411", async () => {
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.enqueue(new TextEncoder().encode(JSON.stringify({ items: [] })))
        controller.close()
      }
    })
    const response = await fetch(`${proxy.publishUrl}/publish/`, { method: "POST", body })
    expect(response.status).toBe(411)
    expect(await response.text()).toBe("Request requires Content-Length.\n")
  })

  test("all or nothing: one bad item publishes nothing, and a held stream is not disturbed", async () => {
    const response = await fetch(`${proxy.baseUrl}/stream?channel=test`)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    let text = await readUntil(reader, (sofar) => sofar.includes("[stream opened]\n"))
    await subscribed(proxy, "test")
    const rejected = await publish(proxy.publishUrl, [
      { channel: "test", formats: { "http-stream": { content: "must not arrive\n" } } },
      { channel: "test", formats: { "http-stream": { content: "x", action: "explode" } } }
    ])
    expect(rejected.status).toBe(400)
    await publish(proxy.publishUrl, [{ channel: "test", formats: { "http-stream": { content: "hi\n" } } }])
    text = await readUntil(reader, (sofar) => sofar.includes("hi\n"), text)
    expect(text).toBe("[stream opened]\nhi\n")
    await reader.cancel()
  })

  test("test route /response is a long-poll on ?channel=", async () => {
    const held = fetch(`${proxy.baseUrl}/response?channel=tr`)
    await subscribed(proxy, "tr")
    await publish(proxy.publishUrl, [{ channel: "tr", formats: { "http-response": { body: "test route released\n" } } }])
    expect(await (await held).text()).toBe("test route released\n")
  })
})
