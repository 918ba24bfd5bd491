/**
 * End to end: GRIP reliability through the compiled binary. Next links (paging, re-fetch on
 * timeout, retry after a failure), gone links, prev-id recovery with `Grip-Last`, `hint`,
 * `POST /recover` and the update after a channel's first subscription, against a real origin.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { eventually, publish, subscribed } from "../support/grip.ts"
import { startOrigin, type SeenRequest, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { readUntil } from "../support/streams.ts"

const pathOf = (request: SeenRequest): string => {
  const url = new URL(request.url)
  return url.pathname + url.search
}

/** Requests the origin saw whose path (with query) starts with `prefix`. */
const requestsTo = (origin: TestOrigin, prefix: string): Array<SeenRequest> =>
  origin.seen.filter((request) => pathOf(request).startsWith(prefix))

const withConfig = (conf: string): string => {
  const dir = mkdtempSync(join(tmpdir(), "pushpin-ts-reliability-"))
  writeFileSync(join(dir, "pushpin.conf"), conf)
  return dir
}

describe("GRIP reliability", () => {
  let origin: TestOrigin
  let proxy: RunningPushpinTs
  /** Answers for /flaky: how many more times it fails before it succeeds. */
  let flakyFailures = 0

  beforeAll(async () => {
    origin = startOrigin((request) => {
      const url = new URL(request.url)
      const channel = url.searchParams.get("channel") ?? "c"
      const lastId = request.headers.get("grip-last")
      switch (url.pathname) {
        case "/page1":
          return new Response("one,", { headers: { "grip-link": "</page2?x=1>; rel=next" } })
        case "/page2":
          return new Response("two,", { headers: { "grip-link": `<http://127.0.0.1:${origin.port}/page3>; rel=next` } })
        case "/page3":
          return new Response("three\n")
        case "/feed":
          // A reliable stream: the origin knows item ids and offers a next link to catch up.
          return new Response("feed open\n", {
            headers: { "grip-hold": "stream", "grip-channel": `${channel}; prev-id=${url.searchParams.get("at") ?? "0"}`, "grip-link": `</feed-next?channel=${channel}>; rel=next` }
          })
        case "/feed-next":
          return new Response(`caught up from ${lastId}\n`, {
            headers: { "grip-hold": "stream", "grip-channel": `${channel}; prev-id=5`, "grip-link": `</feed-next?channel=${channel}>; rel=next` }
          })
        case "/timed":
          return new Response("timed open\n", {
            headers: { "grip-hold": "stream", "grip-channel": channel, "grip-link": `</timed-next?channel=${channel}>; rel=next; timeout=1` }
          })
        case "/timed-next":
          return new Response("refetched\n", { headers: { "grip-hold": "stream", "grip-channel": channel } })
        case "/flaky-start":
          return new Response("flaky open\n", { headers: { "grip-link": "</flaky>; rel=next" } })
        case "/flaky":
          if (flakyFailures > 0) {
            flakyFailures--
            return new Response("try later\n", { status: 503 })
          }
          return new Response("finally\n")
        case "/gone-stream":
          return new Response("gone open\n", {
            headers: { "grip-hold": "stream", "grip-channel": channel, "grip-link": `</bye?channel=${channel}>; rel=gone` }
          })
        case "/bye":
          return new Response(null, { status: 204 })
        case "/poll":
          // Long-poll with ids: on a retry (Grip-Last present) the origin has news.
          if (lastId !== null) return new Response(`news since ${lastId}\n`)
          return new Response("nothing yet\n", {
            headers: { "grip-hold": "response", "grip-channel": `${channel}; prev-id=${url.searchParams.get("at") ?? "0"}`, "grip-timeout": "30" }
          })
        case "/plain-poll":
          return new Response(`poll #${requestsTo(origin, `/plain-poll?channel=${channel}`).length}\n`, {
            headers: { "grip-hold": "response", "grip-channel": channel, "grip-timeout": "30" }
          })
        default:
          return new Response("not grip\n")
      }
    })
    const cwd = withConfig("[proxy]\ndebug=true\nsig_key=reliability-test-key\n[handler]\nupdate_on_first_subscription=false\n")
    proxy = await startPushpinTs({ cwd, args: ["--route", `* 127.0.0.1:${origin.port}`] })
  })

  afterAll(async () => {
    await proxy.stop()
    await origin.stop()
  })

  test("a response with only a next link pages through every link, then ends", async () => {
    const response = await fetch(`${proxy.baseUrl}/page1`)
    expect(response.status).toBe(200)
    expect(await response.text()).toBe("one,two,three\n")
    const page2 = requestsTo(origin, "/page2")[0]
    expect(page2?.method).toBe("GET")
    expect(pathOf(page2 as SeenRequest)).toBe("/page2?x=1")
    // Signed and GRIP-aware like any proxied request.
    expect(page2?.headers["grip-sig"]).toBeDefined()
    expect(page2?.headers["grip-feature"]).toContain("link:next")
  })

  test("a stream hold whose prev-id is stale fetches the next link with Grip-Last at once", async () => {
    // Establish channel r1's last id: 5 (a subscriber must be present for ids to be tracked).
    const first = await fetch(`${proxy.baseUrl}/feed?channel=r1&at=4`)
    const firstReader = (first.body as ReadableStream<Uint8Array>).getReader()
    expect(await readUntil(firstReader, (t) => t.includes("feed open\n"))).toBe("feed open\n")
    await subscribed(proxy, "r1")
    await publish(proxy.publishUrl, [{ channel: "r1", id: "5", "prev-id": "4", formats: { "http-stream": { content: "item 5\n" } } }])
    expect(await readUntil(firstReader, (t) => t.includes("item 5\n"))).toBe("item 5\n")

    // A second client whose origin only knew up to 3: pushpin-ts knows 5 was published.
    const second = await fetch(`${proxy.baseUrl}/feed?channel=r1&at=3`)
    const reader = (second.body as ReadableStream<Uint8Array>).getReader()
    const text = await readUntil(reader, (t) => t.includes("caught up"))
    expect(text).toBe("feed open\ncaught up from r1; last-id=3\n")

    // Both now expect 6 after 5: one publish reaches both, in order.
    await publish(proxy.publishUrl, [{ channel: "r1", id: "6", "prev-id": "5", formats: { "http-stream": { content: "item 6\n" } } }])
    expect(await readUntil(reader, (t) => t.includes("item 6\n"))).toBe("item 6\n")
    expect(await readUntil(firstReader, (t) => t.includes("item 6\n"))).toBe("item 6\n")
    await firstReader.cancel()
    await reader.cancel()
  })

  test("a publish that skips an id makes the stream fetch its next link instead", async () => {
    const response = await fetch(`${proxy.baseUrl}/feed?channel=r2&at=1`)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    await readUntil(reader, (t) => t.includes("feed open\n"))
    await subscribed(proxy, "r2")
    const before = requestsTo(origin, "/feed-next?channel=r2").length
    // no-seq: straight to the session, which sees prev-id 7 where it expected 1.
    await publish(proxy.publishUrl, [{ channel: "r2", id: "8", "prev-id": "7", "no-seq": true, formats: { "http-stream": { content: "item 8\n" } } }])
    const text = await readUntil(reader, (t) => t.includes("caught up"))
    expect(text).toBe("caught up from r2; last-id=1\n")
    expect(requestsTo(origin, "/feed-next?channel=r2").length).toBe(before + 1)
    await reader.cancel()
  })

  test("a hint publish makes a stream fetch its next link", async () => {
    const response = await fetch(`${proxy.baseUrl}/feed?channel=r3&at=2`)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    await readUntil(reader, (t) => t.includes("feed open\n"))
    await subscribed(proxy, "r3")
    await publish(proxy.publishUrl, [{ channel: "r3", formats: { "http-stream": { action: "hint" } } }])
    expect(await readUntil(reader, (t) => t.includes("caught up"))).toBe("caught up from r3; last-id=2\n")
    await reader.cancel()
  })

  test("a next link is fetched again when its timeout passes without news on every channel", async () => {
    const response = await fetch(`${proxy.baseUrl}/timed?channel=t1`)
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    const started = Date.now()
    const text = await readUntil(reader, (t) => t.includes("refetched\n"))
    expect(text).toBe("timed open\nrefetched\n")
    // timeout=1: not before a second, and (with the 100 ms update pacing) soon after.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    await reader.cancel()
  })

  test("a failed next link is retried after a delay and then appended", async () => {
    flakyFailures = 1
    const started = Date.now()
    const response = await fetch(`${proxy.baseUrl}/flaky-start`)
    expect(await response.text()).toBe("flaky open\nfinally\n")
    expect(origin.seen.filter((request) => new URL(request.url).pathname === "/flaky").length).toBe(2)
    // The first retry waits 1 s plus up to 1 s of jitter.
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
    await eventually("the retry log line", () => /next link \S+\/flaky failed \(next link answered 503\); retry 1 of 5/.test(proxy.logs()))
  })

  test("when the client leaves, the gone link is POSTed", async () => {
    const controller = new AbortController()
    const response = await fetch(`${proxy.baseUrl}/gone-stream?channel=g1`, { signal: controller.signal })
    const reader = (response.body as ReadableStream<Uint8Array>).getReader()
    await readUntil(reader, (t) => t.includes("gone open\n"))
    expect(requestsTo(origin, "/bye").length).toBe(0)
    controller.abort()
    await eventually("the gone link", () => requestsTo(origin, "/bye?channel=g1").length === 1)
    const gone = requestsTo(origin, "/bye?channel=g1")[0]
    expect(gone?.method).toBe("POST")
    expect(gone?.body.byteLength).toBe(0)
  })

  test("a long-poll whose prev-id is stale is retried at once with Grip-Last", async () => {
    // Channel p1's last id becomes 9 while one client holds it.
    const holder = fetch(`${proxy.baseUrl}/poll?channel=p1&at=8`)
    await subscribed(proxy, "p1")
    await publish(proxy.publishUrl, [{ channel: "p1", id: "9", "prev-id": "8", formats: { "http-response": { body: "item 9\n" } } }])
    expect(await (await holder).text()).toBe("item 9\n")

    // The channel lingers with last id 9; a client whose origin thought 7 is retried.
    const late = await fetch(`${proxy.baseUrl}/poll?channel=p1&at=7`)
    expect(await late.text()).toBe("news since p1; last-id=7\n")
  })

  test("a hint publish makes a long-poll ask its origin again", async () => {
    const held = fetch(`${proxy.baseUrl}/poll?channel=p2&at=3`)
    await subscribed(proxy, "p2")
    await publish(proxy.publishUrl, [{ channel: "p2", formats: { "http-response": { action: "hint" } } }])
    const response = await held
    expect(await response.text()).toBe("news since p2; last-id=3\n")
  })

  test("POST /recover answers Updated and every held long-poll asks its origin again", async () => {
    const held = fetch(`${proxy.baseUrl}/plain-poll?channel=rc1`)
    await subscribed(proxy, "rc1")
    const recovered = await fetch(`${proxy.publishUrl}/recover`, { method: "POST" })
    expect(recovered.status).toBe(200)
    expect(await recovered.text()).toBe("Updated\n")
    // The retry is held again (same channel); release it to see which origin answer it holds.
    await subscribed(proxy, "rc1", 2)
    expect(requestsTo(origin, "/plain-poll?channel=rc1").length).toBe(2)
    await publish(proxy.publishUrl, [{ channel: "rc1", formats: { "http-response": { body: "after recover\n" } } }])
    expect(await (await held).text()).toBe("after recover\n")

    const json = await fetch(`${proxy.publishUrl}/recover`, { method: "POST", headers: { accept: "application/json" } })
    expect(await json.json()).toEqual({ message: "Updated" })
    const wrongMethod = await fetch(`${proxy.publishUrl}/recover`)
    expect(wrongMethod.status).toBe(405)
    expect(wrongMethod.headers.get("allow")).toBe("POST")
  })
})

describe("update after a channel's first subscription", () => {
  test("on by default: a long-poll on a new channel is asked again about a second later, once", async () => {
    const origin = startOrigin((request) => {
      const url = new URL(request.url)
      const count = origin.seen.filter((seen) => new URL(seen.url).pathname === url.pathname).length
      return new Response(`answer ${count}\n`, { headers: { "grip-hold": "response", "grip-channel": url.pathname.slice(1), "grip-timeout": "30" } })
    })
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port}`] })
    try {
      const held = fetch(`${proxy.baseUrl}/fresh`)
      await subscribed(proxy, "fresh")
      const subscribedAt = Date.now()
      await eventually("the update request", () => origin.seen.length === 2, 4000)
      expect(Date.now() - subscribedAt).toBeGreaterThanOrEqual(800)
      // The retried request is held again; the channel is not "new" a second time.
      await subscribed(proxy, "fresh", 2)
      await Bun.sleep(1500)
      expect(origin.seen.length).toBe(2)
      await publish(proxy.publishUrl, [{ channel: "fresh", formats: { "http-response": { body: "done\n" } } }])
      expect(await (await held).text()).toBe("done\n")
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })
})
