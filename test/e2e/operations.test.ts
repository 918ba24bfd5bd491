/**
 * End to end: what an operator sees and relies on. Prometheus metrics checked against what the
 * test did, `/live` and `/ready`, overload (a 2 000-request burst), faults (origin killed
 * mid-stream, origin restarting, clients vanishing mid-hold, a publish flood, a reader that never
 * reads) after which every gauge returns to zero, and the graceful stop.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import type { Subprocess } from "bun"
import { eventually, publish, subscribed } from "../support/grip.ts"
import { deadPort, startOrigin, type TestOrigin } from "../support/origin.ts"
import { scrape, type Scrape } from "../support/prometheus.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { firstAnswer, headerValue, rawExchange, type RawOutcome } from "../support/raw-http.ts"
import { readUntil } from "../support/streams.ts"
import { connectClient } from "../support/ws.ts"

const tempDir = () => mkdtempSync(join(tmpdir(), "pushpin-ts-ops-"))

/** An origin answering GRIP holds by path: `/stream/<channel>`, `/poll/<channel>`, anything else plain. */
const gripOrigin = (): TestOrigin =>
  startOrigin(async (request) => {
    const [, kind, channel] = new URL(request.url).pathname.split("/")
    if (kind === "stream") return new Response("start\n", { headers: { "grip-hold": "stream", "grip-channel": channel ?? "x" } })
    if (kind === "poll") return new Response("timeout-body\n", { headers: { "grip-hold": "response", "grip-channel": channel ?? "x", "grip-timeout": "60" } })
    if (kind === "slow") await Bun.sleep(Number(channel ?? "2000"))
    return new Response("plain\n")
  })

const writeConfig = (dir: string, origin: number, extra: { runner?: string; handler?: string; proxy?: string } = {}): string => {
  writeFileSync(
    join(dir, "pushpin.conf"),
    `[runner]\nhttp_port=127.0.0.1:0\n${extra.runner ?? ""}\n[proxy]\nroutesfile=routes\n${extra.proxy ?? ""}\n[handler]\nprometheus_port=127.0.0.1:0\nprometheus_prefix=pushpin_\n${extra.handler ?? ""}\n`
  )
  writeFileSync(join(dir, "routes"), `* 127.0.0.1:${origin}\n`)
  return join(dir, "pushpin.conf")
}

/** One request with `Connection: close`, classified: its status, or `reset`, `closed`, `garbled`, `hang`. */
const burstRequest = async (port: number, path: string): Promise<{ readonly kind: string; readonly retryAfter: string | undefined }> => {
  const outcome: RawOutcome = await rawExchange(port, [`GET ${path} HTTP/1.1\r\nHost: burst.test\r\nConnection: close\r\n\r\n`], { timeoutMs: 30_000 })
  if (outcome.ending === "open") return { kind: "hang", retryAfter: undefined }
  const answer = firstAnswer(outcome.bytes)
  if (answer === undefined) return { kind: outcome.ending, retryAfter: undefined }
  if (answer === "garbled") return { kind: "garbled", retryAfter: undefined }
  return { kind: String(answer.status), retryAfter: headerValue(answer, "retry-after") }
}

const tally = (outcomes: ReadonlyArray<{ readonly kind: string }>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const { kind } of outcomes) counts[kind] = (counts[kind] ?? 0) + 1
  return counts
}

const metricsUrlOf = async (proxy: RunningPushpinTs): Promise<string> => {
  const line = await proxy.waitForLog(/prometheus metrics on http:\/\/\S+/)
  return line.replace("prometheus metrics on ", "")
}

/** Every gauge that measures something held must drop back to zero once its clients are gone. */
const expectIdle = async (metricsUrl: string): Promise<Scrape> => {
  let last: Scrape | undefined
  const deadline = Date.now() + 5000
  for (;;) {
    last = await scrape(metricsUrl)
    const held = [
      last.value("pushpin_connections", { transport: "http" }),
      last.value("pushpin_connections", { transport: "websocket" }),
      last.value("pushpin_holds", { mode: "response" }),
      last.value("pushpin_holds", { mode: "stream" }),
      last.value("pushpin_holds", { mode: "websocket" }),
      last.value("pushpin_subscriptions"),
      last.value("pushpin_channels"),
      last.value("pushpin_timers"),
      last.value("pushpin_origin_requests_active"),
      last.value("pushpin_queue_depth", { queue: "origin_wait" }),
      last.value("pushpin_queue_depth", { queue: "rate_limited_deliveries" }),
      last.value("pushpin_queue_depth", { queue: "parked_publishes" }),
      last.value("pushpin_queue_depth", { queue: "session_updates" })
    ]
    if (held.every((value) => value === 0)) return last
    if (Date.now() > deadline) throw new Error(`gauges not back at zero: ${[...last.samples].filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(" ")}`)
    await Bun.sleep(50)
  }
}

interface OpsServer {
  dir: string
  origin: TestOrigin
  proxy: RunningPushpinTs
  metricsUrl: string
}

const startOpsServer = async (extra: Parameters<typeof writeConfig>[2] = {}): Promise<OpsServer> => {
  const dir = tempDir()
  const origin = gripOrigin()
  const proxy = await startPushpinTs({ args: ["--config", writeConfig(dir, origin.port, extra)] })
  return { dir, origin, proxy, metricsUrl: await metricsUrlOf(proxy) }
}

const stopOpsServer = async (server: OpsServer): Promise<void> => {
  await server.proxy.stop()
  await server.origin.stop()
  rmSync(server.dir, { recursive: true, force: true })
}

/** One server shared by the tests of a describe block. */
const sharedOpsServer = (): OpsServer => {
  const server = {} as OpsServer
  beforeAll(async () => {
    Object.assign(server, await startOpsServer())
  })
  afterAll(() => stopOpsServer(server))
  return server
}

describe("metrics and health", () => {
  const ops = sharedOpsServer()

  test("Prometheus text on prometheus_port (any path) and GET /metrics on the control port, with values matching what was done", async () => {
    const before = await scrape(ops.metricsUrl)
    expect(before.types.get("pushpin_request_received")).toBe("counter")
    expect(before.types.get("pushpin_connection_connected")).toBe("gauge")
    expect(before.types.get("pushpin_connection_minute")).toBe("counter")
    expect(before.types.get("pushpin_message_received")).toBe("counter")
    expect(before.types.get("pushpin_message_sent")).toBe("counter")

    for (let i = 0; i < 3; i++) expect(await (await fetch(`${ops.proxy.baseUrl}/plain`)).text()).toBe("plain\n")
    const streams = await Promise.all([fetch(`${ops.proxy.baseUrl}/stream/m`), fetch(`${ops.proxy.baseUrl}/stream/m`)])
    const readers = streams.map((response) => (response.body as ReadableStream<Uint8Array>).getReader())
    await subscribed(ops.proxy, "m", 2)
    const during = await scrape(`${ops.metricsUrl}some/other/path`)
    expect(during.value("pushpin_holds", { mode: "stream" })).toBe(2)
    expect(during.value("pushpin_subscriptions")).toBe(2)
    expect(during.value("pushpin_channels")).toBe(1)
    expect(during.value("pushpin_connections", { transport: "http" })).toBe(2)
    expect(during.value("pushpin_connection_connected")).toBe(2)

    expect((await publish(ops.proxy.publishUrl, [1, 2].map((n) => ({ channel: "m", formats: { "http-stream": { content: `msg ${n}\n` } } })))).status).toBe(200)
    for (const reader of readers) expect(await readUntil(reader, (text) => text.includes("msg 2\n"))).toBe("start\nmsg 1\nmsg 2\n")

    const after = await scrape(`${ops.proxy.publishUrl}/metrics`)
    expect(after.value("pushpin_request_received") - before.value("pushpin_request_received")).toBe(5)
    expect(after.value("pushpin_grip_handoffs") - before.value("pushpin_grip_handoffs")).toBe(2)
    expect(after.value("pushpin_message_received") - before.value("pushpin_message_received")).toBe(2)
    expect(after.value("pushpin_message_sent") - before.value("pushpin_message_sent")).toBe(4)
    expect(after.value("pushpin_deliveries", { transport: "http" }) - before.value("pushpin_deliveries", { transport: "http" })).toBe(4)

    for (const reader of readers) await reader.cancel()
    await expectIdle(ops.metricsUrl)
  })

  test("a rejected publish and a shed are counted", async () => {
    const before = await scrape(ops.metricsUrl)
    expect((await fetch(`${ops.proxy.publishUrl}/publish/`, { method: "POST", body: "{not json" })).status).toBe(400)
    const after = await scrape(ops.metricsUrl)
    expect(after.value("pushpin_publish_rejected") - before.value("pushpin_publish_rejected")).toBe(1)
    expect(after.value("pushpin_message_received")).toBe(before.value("pushpin_message_received"))
  })

  test("/live answers while the process runs; /ready follows the origin down and back up", async () => {
    const live = await fetch(`${ops.proxy.publishUrl}/live`)
    expect(live.status).toBe(200)
    expect(await live.text()).toStartWith("OK\nheartbeat: ")
    const ready = await fetch(`${ops.metricsUrl}ready`)
    expect(ready.status).toBe(200)
    expect(await ready.text()).toContain(`origin 127.0.0.1:${ops.origin.port}: up`)

    const port = ops.origin.port
    await ops.origin.stop()
    await Bun.sleep(1100) // past the probe cache
    const down = await fetch(`${ops.proxy.publishUrl}/ready`)
    expect(down.status).toBe(503)
    const text = await down.text()
    expect(text).toContain(`origin 127.0.0.1:${port}: down (ECONNREFUSED)`)
    expect(text).toContain("no origin reachable")
    expect((await fetch(`${ops.proxy.publishUrl}/live`)).status).toBe(200)

    ops.origin = startOrigin(() => new Response("back\n"), port) // the origin restarts on its port
    await Bun.sleep(1100)
    expect((await fetch(`${ops.proxy.publishUrl}/ready`)).status).toBe(200)
    expect(await (await fetch(`${ops.proxy.baseUrl}/again`)).text()).toBe("back\n")
  })
})

describe("overload", () => {
  test("a burst of 2 000 concurrent requests to a 2-second origin is served in full at default limits", async () => {
    const { proxy, metricsUrl, ...server } = await startOpsServer()
    try {
      const outcomes = await Promise.all(Array.from({ length: 2000 }, (_, i) => burstRequest(proxy.port, `/slow/2000?n=${i}`)))
      expect(tally(outcomes)).toEqual({ "200": 2000 })
      const after = await expectIdle(metricsUrl)
      expect(after.value("pushpin_sheds", { bound: "client_maxconn" })).toBe(0)
      expect(after.value("pushpin_sheds", { bound: "max_open_requests" })).toBe(0)
      expect(await (await fetch(`${proxy.baseUrl}/plain`)).text()).toBe("plain\n")
    } finally {
      await stopOpsServer({ proxy, metricsUrl, ...server })
    }
  }, 60_000)

  test("with a smaller client_maxconn the excess gets 503 + Retry-After (never a reset or a hang), and service resumes", async () => {
    const { proxy, metricsUrl, ...server } = await startOpsServer({ runner: "client_maxconn=300" })
    try {
      const outcomes = await Promise.all(Array.from({ length: 2000 }, (_, i) => burstRequest(proxy.port, `/slow/2000?n=${i}`)))
      const counts = tally(outcomes)
      expect(Object.keys(counts).sort()).toEqual(["200", "503"])
      expect(counts["200"]).toBeGreaterThanOrEqual(290)
      expect((counts["200"] ?? 0) + (counts["503"] ?? 0)).toBe(2000)
      for (const outcome of outcomes) if (outcome.kind === "503") expect(outcome.retryAfter).toBe("1")
      expect(await (await fetch(`${proxy.baseUrl}/plain`)).text()).toBe("plain\n")
      const after = await expectIdle(metricsUrl)
      expect(after.value("pushpin_sheds", { bound: "client_maxconn" })).toBe(counts["503"] ?? 0)
    } finally {
      await stopOpsServer({ proxy, metricsUrl, ...server })
    }
  }, 60_000)
})

describe("faults", () => {
  const ops = sharedOpsServer()

  test("an origin killed mid-stream ends that client's response; a held client elsewhere is unaffected; nothing is left behind", async () => {
    const killable: Subprocess<"ignore", "pipe", "inherit"> = Bun.spawn([process.execPath, resolve(import.meta.dir, "../support/killable-origin.ts")], { stdout: "pipe", stdin: "ignore", stderr: "inherit" })
    const killablePort = Number((await readUntil(killable.stdout.getReader(), (text) => text.includes("\n"))).trim())
    const routes = join(ops.dir, "routes")
    writeFileSync(routes, `*,path_beg=/killable 127.0.0.1:${killablePort}\n* 127.0.0.1:${ops.origin.port}\n`)
    await ops.proxy.waitForLog(/routes reloaded/)

    const held = await fetch(`${ops.proxy.baseUrl}/stream/bystander`)
    const heldReader = (held.body as ReadableStream<Uint8Array>).getReader()
    await subscribed(ops.proxy, "bystander")
    const victim = await fetch(`${ops.proxy.baseUrl}/killable/stream`)
    const victimReader = (victim.body as ReadableStream<Uint8Array>).getReader()
    const first = await victimReader.read()
    expect(new TextDecoder().decode(first.value)).toBe("first part\n")
    killable.kill("SIGKILL")
    // The client's body ends (an error, since the origin never finished it) instead of hanging.
    const ended = await victimReader.read().then((result) => (result.done ? "done" : "data"), () => "error")
    expect(["done", "error"]).toContain(ended)

    expect((await publish(ops.proxy.publishUrl, [{ channel: "bystander", formats: { "http-stream": { content: "still here\n" } } }])).status).toBe(200)
    expect(await readUntil(heldReader, (text) => text.includes("still here\n"))).toContain("still here\n")
    await heldReader.cancel()
    writeFileSync(routes, `* 127.0.0.1:${ops.origin.port}\n`)
    await expectIdle(ops.metricsUrl)
  })

  test("an origin refusing connections gets 502s; clients vanishing mid-hold leave no hold, subscription or timer behind", async () => {
    const before = await scrape(ops.metricsUrl)
    const sockets = Array.from({ length: 100 }, (_, i) => {
      const socket = connect(ops.proxy.port, "127.0.0.1")
      socket.on("error", () => {})
      socket.write(`GET /${i % 2 === 0 ? "poll" : "stream"}/vanish${i % 5} HTTP/1.1\r\nHost: vanish.test\r\n\r\n`)
      return socket
    })
    await eventually("100 holds", () => ops.proxy.logs().match(/subscribe \S+ channel=vanish\d\n/g)?.length === 100, 10_000)
    const during = await scrape(ops.metricsUrl)
    expect(during.value("pushpin_holds", { mode: "response" })).toBe(50)
    expect(during.value("pushpin_holds", { mode: "stream" })).toBe(50)
    expect(during.value("pushpin_channels")).toBe(5)
    expect(during.value("pushpin_timers")).toBeGreaterThanOrEqual(50)
    for (const socket of sockets) socket.destroy()
    await expectIdle(ops.metricsUrl)

    const errorsBefore = before.value("pushpin_origin_errors", { transport: "http" })
    const refusing = join(ops.dir, "routes")
        writeFileSync(refusing, `*,path_beg=/refused 127.0.0.1:${deadPort()}\n* 127.0.0.1:${ops.origin.port}\n`)
    await eventually("routes reloaded", () => (ops.proxy.logs().match(/routes reloaded/g)?.length ?? 0) >= 3, 5000)
    const refused = await fetch(`${ops.proxy.baseUrl}/refused`)
    expect(refused.status).toBe(502)
    expect(await refused.text()).toBe("Error while proxying to origin.\n")
    expect(await (await fetch(`${ops.proxy.baseUrl}/plain`)).text()).toBe("plain\n")
    const after = await expectIdle(ops.metricsUrl)
    expect(after.value("pushpin_origin_errors", { transport: "http" }) - errorsBefore).toBe(1)
    writeFileSync(refusing, `* 127.0.0.1:${ops.origin.port}\n`)
  })

  test("a publish flood reaches every subscriber in order and leaves no queue behind", async () => {
    const subscribers = await Promise.all(Array.from({ length: 20 }, () => fetch(`${ops.proxy.baseUrl}/stream/flood`)))
    const readers = subscribers.map((response) => (response.body as ReadableStream<Uint8Array>).getReader())
    await subscribed(ops.proxy, "flood", 20)
    const batches = 100
    await Promise.all(
      Array.from({ length: batches }, (_, batch) =>
        publish(ops.proxy.publishUrl, Array.from({ length: 10 }, (_, n) => ({ channel: "flood", id: `${batch}-${n}`, formats: { "http-stream": { content: `${batch}-${n}\n` } } })))
      )
    )
    const texts = await Promise.all(readers.map((reader) => readUntil(reader, (text) => text.split("\n").length > batches * 10 + 1)))
    for (const text of texts) {
      const lines = text.split("\n").slice(1, -1)
      expect(lines.length).toBe(batches * 10)
      // Each publish request's items arrive in their order.
      const position = new Map(lines.map((line, index) => [line, index]))
      for (let batch = 0; batch < batches; batch++) {
        for (let n = 1; n < 10; n++) expect(position.get(`${batch}-${n}`) as number).toBeGreaterThan(position.get(`${batch}-${n - 1}`) as number)
      }
    }
    for (const reader of readers) await reader.cancel()
    await expectIdle(ops.metricsUrl)
  }, 30_000)

  test("a reader that never reads costs bounded memory, and its drops are counted while others receive everything", async () => {
    const stalled = connect(ops.proxy.port, "127.0.0.1")
    stalled.on("error", () => {})
    stalled.pause()
    stalled.write("GET /stream/stall HTTP/1.1\r\nHost: stall.test\r\n\r\n")
    const healthy = await fetch(`${ops.proxy.baseUrl}/stream/stall`)
    const reader = (healthy.body as ReadableStream<Uint8Array>).getReader()
    await subscribed(ops.proxy, "stall", 2)
    const before = await scrape(ops.metricsUrl)
    const chunk = `${"y".repeat(64 * 1024 - 1)}\n`
    let received = 0
    const draining = (async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        received += value.byteLength
      }
    })()
    const batches = 300
    for (let batch = 0; batch < batches; batch++) {
      const items = Array.from({ length: 10 }, () => ({ channel: "stall", formats: { "http-stream": { content: chunk } } }))
      expect((await publish(ops.proxy.publishUrl, items)).status).toBe(200)
    }
    await publish(ops.proxy.publishUrl, [{ channel: "stall", formats: { "http-stream": { action: "close" } } }])
    await draining
    expect(received).toBe("start\n".length + batches * 10 * chunk.length)
    const after = await scrape(ops.metricsUrl)
    const dropped = after.value("pushpin_drops", { reason: "slow_reader", transport: "http" }) - before.value("pushpin_drops", { reason: "slow_reader", transport: "http" })
    expect(dropped).toBeGreaterThan(0)
    // 3 000 × 64 KB (192 MB) went to the stalled reader; it may keep at most its outbox (100
    // messages) plus socket buffers, so memory grows by far less than what was published to it
    // (the rest of the growth is garbage not yet collected from the healthy reader's traffic).
    const published = batches * 10 * chunk.length
    const grown = after.value("pushpin_process_resident_memory_bytes") - before.value("pushpin_process_resident_memory_bytes")
    expect(grown).toBeLessThan(published / 2)
    await ops.proxy.waitForLog(/drop: connection \d+ route \S+ channel stall: outbox full/)
    stalled.destroy()
    await expectIdle(ops.metricsUrl)
  }, 60_000)
})

describe("graceful stop", () => {
  test("held streams end cleanly, long-polls get their timeout response, WebSockets get 1001, /ready turns 503, exit 0", async () => {
    const { proxy, origin, dir } = await startOpsServer()
    try {
      const stream = await fetch(`${proxy.baseUrl}/stream/bye`)
      const streamReader = (stream.body as ReadableStream<Uint8Array>).getReader()
      const poll = fetch(`${proxy.baseUrl}/poll/bye`)
      await subscribed(proxy, "bye", 2)
      const inFlight = fetch(`${proxy.baseUrl}/slow/1500`).then((response) => response.text())
      const routes = join(dir, "routes")
      writeFileSync(routes, `*,proto=ws test\n* 127.0.0.1:${origin.port}\n`)
      await proxy.waitForLog(/routes reloaded/)
      const ws = await connectClient(`ws://127.0.0.1:${proxy.port}/ws`)
      await Bun.sleep(100)

      const exited = proxy.stop("SIGTERM")
      await proxy.waitForLog(/SIGTERM: stopping/)
      const ready = await fetch(`${proxy.publishUrl}/ready`)
      expect(ready.status).toBe(503)
      expect(await ready.text()).toContain("lifecycle: stopping")

      expect(await readUntil(streamReader, () => false)).toBe("start\n") // ends with done, not an error
      const polled = await poll
      expect(polled.status).toBe(200)
      expect(await polled.text()).toBe("timeout-body\n")
      const closed = await ws.closed
      expect(closed.code).toBe(1001)
      expect(await inFlight).toBe("plain\n")
      expect(await exited).toBe(0)
      expect(proxy.logs()).toMatch(/stop: 2 held connection\(s\) ended/)
    } finally {
      await origin.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})
