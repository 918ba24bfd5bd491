/**
 * Differential for GRIP reliability: next links (paging, retry after a failure), prev-id recovery
 * with `Grip-Last`, `hint`, sequencing with and without `no-seq`, the update after a channel's
 * first subscription and `POST /recover`, run through real Pushpin 1.36 and through pushpin-ts
 * with default settings. Each side has its own origin, so what each origin received (method,
 * path, Grip-Last, Host, signature, whether it replays the client's request) is compared too.
 *
 * Both sides re-ask the origin about a second after a channel's first subscription (Pushpin 1.36
 * always does; pushpin-ts by default). A publish that lands during that re-request can be lost,
 * so every scenario with a held request first waits for that update and the hold that follows it.
 *
 * Not compared, known to differ: `Connection` on client responses (Pushpin sends
 * `Connection: Transfer-Encoding` with chunked ones), and on requests to the origin `Grip-Feature`
 * (1.36 lists `session`, pushpin-ts lists `link:gone`), `User-Agent`/`Connection` on next-link
 * requests (zurl sends none, pushpin-ts sends Bun's) and `Accept-Encoding` (zurl's own list).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { startOrigin, type SeenRequest, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { referencePushpinAvailable, startReferencePushpin, type ReferencePushpin } from "../support/reference-pushpin.ts"
import { readUntil } from "../support/streams.ts"

/** An origin that records when each request arrived and can be told that a channel has news. */
interface ScriptedOrigin {
  readonly origin: TestOrigin
  /** Arrival time (Date.now()) of each entry of `origin.seen`, same index. */
  readonly arrivals: Array<number>
  /** Channels for which the origin answers a re-request at once instead of holding it again. */
  readonly news: Set<string>
}

interface Side {
  readonly name: "pushpin" | "pushpin-ts"
  readonly baseUrl: string
  readonly publishUrl: string
  readonly origin: ScriptedOrigin
  readonly logs: () => Promise<string>
}

const pathOf = (request: SeenRequest): string => {
  const url = new URL(request.url)
  return url.pathname + url.search
}

const channelOf = (request: SeenRequest): string | null => new URL(request.url).searchParams.get("channel")

/** Origin routes, the same on both sides. `n` counts this path's requests so far (1 = first). */
const startScriptedOrigin = (): ScriptedOrigin => {
  const arrivals: Array<number> = []
  const news = new Set<string>()
  const origin: TestOrigin = startOrigin((request) => {
    arrivals.push(Date.now())
    const url = new URL(request.url)
    const channel = url.searchParams.get("channel") ?? "c"
    // One Grip-Last per channel (Bun joins them with ", "); Pushpin keeps channels in a hash, so sort.
    const gripLast = request.headers.get("grip-last")?.split(", ").sort().join(", ") ?? null
    const lastId = gripLast === null ? null : (/last-id=([^;,\s]+)/.exec(gripLast)?.[1] ?? null)
    const n = origin.seen.filter((seen) => new URL(seen.url).pathname === url.pathname && channelOf(seen) === url.searchParams.get("channel")).length
    const text = { "content-type": "text/plain" }
    switch (url.pathname) {
      case "/page1":
        return new Response("one,", { headers: { ...text, "grip-link": "</page2>; rel=next" } })
      case "/page2":
        return new Response("two,", { headers: { ...text, "grip-link": `<http://127.0.0.1:${origin.port}/page3?from=2>; rel=next` } })
      case "/page3":
        return new Response("three\n", { headers: text })
      case "/poll":
        // A long-poll with ids: `at` is what this origin believes was the last item.
        if (gripLast !== null && news.has(channel)) return new Response(`news since ${gripLast}\n`, { headers: text })
        return new Response(`nothing yet #${n}\n`, {
          headers: { ...text, "grip-hold": "response", "grip-channel": `${channel}; prev-id=${lastId ?? url.searchParams.get("at") ?? "0"}`, "grip-timeout": "30" }
        })
      case "/plain-poll":
        // A long-poll without ids.
        if (news.has(channel)) return new Response(`plain news #${n}\n`, { headers: text })
        return new Response(`poll #${n}\n`, { headers: { ...text, "grip-hold": "response", "grip-channel": channel, "grip-timeout": "30" } })
      case "/feed":
        // A reliable stream: ids plus a next link to catch up from.
        return new Response("feed open\n", {
          headers: {
            ...text,
            "grip-hold": "stream",
            "grip-channel": `${channel}; prev-id=${url.searchParams.get("at") ?? "0"}`,
            "grip-link": `</feed-next?channel=${channel}>; rel=next`
          }
        })
      case "/feed-next":
        return new Response(`caught up #${n} from ${gripLast}\n`, {
          headers: { ...text, "grip-hold": "stream", "grip-channel": `${channel}; prev-id=${lastId ?? "0"}`, "grip-link": `</feed-next?channel=${channel}>; rel=next` }
        })
      case "/flaky-start":
        return new Response("flaky open\n", { headers: { ...text, "grip-link": `</flaky?channel=${channel}>; rel=next` } })
      case "/flaky":
        // Fails once, then answers.
        if (n === 1) return new Response("try later\n", { status: 503, headers: text })
        return new Response("finally\n", { headers: text })
      case "/hold-next-start":
        return new Response("start,", { headers: { ...text, "grip-link": `</hold-next?channel=${channel}>; rel=next` } })
      case "/hold-next":
        // A next link may not answer with a response hold.
        return new Response("held?\n", { headers: { ...text, "grip-hold": "response", "grip-channel": channel } })
      case "/multi":
        // A long-poll on two channels with ids.
        if (gripLast !== null && news.has(channel)) return new Response(`multi news since ${gripLast}\n`, { headers: text })
        return new Response("multi nothing\n", {
          headers: { ...text, "grip-hold": "response", "grip-channel": `${channel}-a; prev-id=1, ${channel}-b; prev-id=2`, "grip-timeout": "30" }
        })
      case "/unlinked-stream":
        // A stream without ids or next link.
        return new Response("unlinked open\n", { headers: { ...text, "grip-hold": "stream", "grip-channel": channel } })
      default:
        return new Response("not grip\n", { headers: text })
    }
  })
  return { origin, arrivals, news }
}

/** Every client request carries this header, so the origin can tell replays of it from requests the proxy made up. */
const CLIENT_HEADER = "x-client"

const get = (side: Side, path: string): Promise<Response> => fetch(`${side.baseUrl}${path}`, { headers: { [CLIENT_HEADER]: "differential" } })

interface OriginRequest {
  readonly method: string
  readonly path: string
  readonly gripLast: string | null
  /** Whom the Host header names: the proxy (a route was used) or the origin (an absolute link was followed). */
  readonly host: "proxy" | "origin" | string
  /** Grip-Sig present. */
  readonly signed: boolean
  /** The client's own headers are there (a replay of its request, not a next-link GET). */
  readonly fromClient: boolean
}

/** What the side's origin received, for the requests `select` picks, in arrival order. */
const originLog = (side: Side, select: (request: SeenRequest) => boolean): Array<OriginRequest> =>
  side.origin.origin.seen.filter(select).map((request) => {
    const host = request.headers.host ?? ""
    return {
      method: request.method,
      path: pathOf(request),
      gripLast: request.headers["grip-last"]?.split(", ").sort().join(", ") ?? null,
      host: host === new URL(side.baseUrl).host ? "proxy" : host === `127.0.0.1:${side.origin.origin.port}` ? "origin" : host,
      signed: request.headers["grip-sig"] !== undefined,
      fromClient: request.headers[CLIENT_HEADER] === "differential"
    }
  })

/** The expected origin log entry: `client` = the client's request (or a retry of it), `next` = a next-link GET through the route. */
const expected = (path: string, gripLast: string | null, kind: "client" | "next" | "absolute-next" = "client"): OriginRequest => ({
  method: "GET",
  path,
  gripLast,
  host: kind === "absolute-next" ? "origin" : "proxy",
  signed: true,
  fromClient: kind === "client"
})

const forChannel = (channel: string) => (request: SeenRequest) => channelOf(request) === channel

const countFor = (side: Side, channel: string): number => side.origin.origin.seen.filter(forChannel(channel)).length

const waitFor = async (what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(20)
  }
}

/** Waits until the side logged `count` subscriptions (holds, retries included) to `channel`. */
const holds = (side: Side, channel: string, count: number): Promise<void> => {
  const pattern = new RegExp(`subscribe \\S+ channel=${channel}( retry)?$`, "gm")
  return waitFor(`${side.name}: ${count} holds on ${channel}`, async () => ((await side.logs()).match(pattern)?.length ?? 0) >= count)
}

/**
 * Waits out the first-subscription update of the request for `channel` (the origin's `channel`
 * parameter): the origin was asked twice and the request is held again on `subscribedAs`.
 */
const afterFirstUpdate = async (side: Side, channel: string, subscribedAs = channel): Promise<void> => {
  await waitFor(`${side.name}: the first-subscription update on ${channel}`, () => countFor(side, channel) >= 2)
  await holds(side, subscribedAs, 2)
}

/**
 * readUntil with a deadline: a stream that never shows `until` (or, for "end", never ends) fails
 * the test with what it did show.
 */
const readWithin = async (
  what: string,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  until: ((text: string) => boolean) | "end",
  sofar: string,
  timeoutMs = 5000
): Promise<string> => {
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    void reader.cancel().catch(() => undefined)
  }, timeoutMs)
  let seen: string
  try {
    seen = await readUntil(reader, until === "end" ? () => false : until, sofar)
  } finally {
    clearTimeout(timer)
  }
  if (timedOut || (until !== "end" && !until(seen))) throw new Error(`${what}: the stream ${timedOut ? "stalled" : "ended"} with ${JSON.stringify(seen)}`)
  return seen
}

const publish = async (side: Side, items: ReadonlyArray<unknown>): Promise<string> => {
  const response = await fetch(`${side.publishUrl}/publish/`, { method: "POST", body: JSON.stringify({ items }) })
  return `${response.status} ${await response.text()}`
}

/**
 * The response headers a client sees, less `Date` and `Connection` (hop-by-hop; Pushpin adds
 * `Connection: Transfer-Encoding` to its chunked responses, pushpin-ts does not).
 */
const headersOf = (response: Response): Array<[string, string]> =>
  [...response.headers].filter(([name]) => name !== "date" && name !== "connection").sort(([a], [b]) => a.localeCompare(b))

/** What a client saw of a whole response. */
interface Answer {
  readonly status: number
  readonly headers: Array<[string, string]>
  readonly body: string
}

const summary = async (response: Response): Promise<Answer> => ({ status: response.status, headers: headersOf(response), body: await response.text() })

/** A 200 text/plain answer with a Content-Length. */
const plainText = (body: string): Answer => ({ status: 200, headers: [["content-length", String(Buffer.byteLength(body))], ["content-type", "text/plain"]], body })

/** A 200 chunked (streamed or paged) text/plain answer. */
const chunkedText = (body: string): Answer => ({ status: 200, headers: [["content-type", "text/plain"], ["transfer-encoding", "chunked"]], body })

describe.skipIf(!referencePushpinAvailable())("GRIP reliability: pushpin-ts and Pushpin 1.36 behave alike", () => {
  let reference: ReferencePushpin
  let ours: RunningPushpinTs
  let sides: Array<Side>
  const origins: Array<ScriptedOrigin> = []

  /** Runs `scenario` on both sides at once; [pushpin, pushpin-ts]. A failure on either side reports both. */
  const onBoth = async <A>(scenario: (side: Side) => Promise<A>): Promise<Array<A>> => {
    const settled = await Promise.allSettled(sides.map(scenario))
    if (settled.every((outcome) => outcome.status === "fulfilled")) return settled.map((outcome) => (outcome as PromiseFulfilledResult<A>).value)
    const report = settled.map((outcome, i) => `${sides[i]?.name}: ${outcome.status === "fulfilled" ? JSON.stringify(outcome.value) : String(outcome.reason)}`)
    throw new Error(`the scenario failed\n${report.join("\n")}`)
  }

  beforeAll(async () => {
    const [forReference, forOurs] = [startScriptedOrigin(), startScriptedOrigin()]
    origins.push(forReference, forOurs)
    ;[reference, ours] = await Promise.all([
      startReferencePushpin({ routes: [`* 127.0.0.1:${forReference.origin.port}`] }),
      startPushpinTs({ args: ["--route", `* 127.0.0.1:${forOurs.origin.port}`] })
    ])
    sides = [
      { name: "pushpin", baseUrl: reference.baseUrl, publishUrl: reference.publishUrl, origin: forReference, logs: () => reference.logs() },
      { name: "pushpin-ts", baseUrl: ours.baseUrl, publishUrl: ours.publishUrl ?? "", origin: forOurs, logs: async () => ours.logs() }
    ]
  })

  afterAll(async () => {
    await Promise.all([reference?.stop(), ours?.stop()])
    await Promise.all(origins.map((o) => o.origin.stop()))
  })

  describe("next links", () => {
    test("a no-hold response with a next link pages through every link, then ends", async () => {
      const results = await onBoth(async (side) => {
        const client = await summary(await get(side, "/page1?q=1"))
        return { client, origin: originLog(side, (request) => pathOf(request).startsWith("/page")) }
      })
      expect(results[0]).toEqual({
        client: chunkedText("one,two,three\n"),
        origin: [
          expected("/page1?q=1", null),
          // Relative: resolved against the client's URI, so through the route; none of the client's headers.
          expected("/page2", null, "next"),
          // Absolute: straight to the origin it names.
          expected("/page3?from=2", null, "absolute-next")
        ]
      })
      expect(results[1]).toEqual(results[0] as (typeof results)[number])
    })

    test("a next link that fails is tried again after about a second, then appended", async () => {
      const results = await onBoth(async (side) => {
        const started = Date.now()
        const client = await summary(await get(side, "/flaky-start?channel=flaky"))
        return { tookMs: Date.now() - started, client, origin: originLog(side, forChannel("flaky")) }
      })
      console.log(`failed next link answered after: pushpin ${results[0]?.tookMs} ms, pushpin-ts ${results[1]?.tookMs} ms`)
      for (const result of results) {
        // The first retry waits 1 s plus up to 1 s of jitter.
        expect(result.tookMs).toBeGreaterThanOrEqual(900)
        expect(result.tookMs).toBeLessThanOrEqual(2500)
      }
      const [fromReference, fromOurs] = results.map(({ tookMs: _, ...rest }) => rest)
      expect(fromReference).toEqual({
        client: chunkedText("flaky open\nfinally\n"),
        origin: [expected("/flaky-start?channel=flaky", null), expected("/flaky?channel=flaky", null, "next"), expected("/flaky?channel=flaky", null, "next")]
      })
      expect(fromOurs).toEqual(fromReference as NonNullable<typeof fromReference>)
    })

    test("a next link answering with a response hold: its body is appended and the response ends", async () => {
      const results = await onBoth(async (side) => {
        const client = await summary(await get(side, "/hold-next-start?channel=hold-next"))
        return { client, origin: originLog(side, forChannel("hold-next")) }
      })
      expect(results[0]).toEqual({
        client: chunkedText("start,held?\n"),
        origin: [expected("/hold-next-start?channel=hold-next", null), expected("/hold-next?channel=hold-next", null, "next")]
      })
      expect(results[1]).toEqual(results[0] as (typeof results)[number])
    })
  })

  describe("long-polls with prev-id", () => {
    test("a long-poll whose prev-id is behind the channel's last id is retried at once with Grip-Last", async () => {
      const channel = "stale"
      const results = await onBoth(async (side) => {
        // A first client holds the channel; publishing id 9 after 8 releases it and makes 9 the last id.
        const holder = get(side, `/poll?channel=${channel}&at=8`)
        await afterFirstUpdate(side, channel)
        const published = await publish(side, [{ channel, id: "9", "prev-id": "8", formats: { "http-response": { body: "item 9\n" } } }])
        const first = await summary(await holder)
        // A second client whose origin only knew up to 7.
        side.origin.news.add(channel)
        const second = await summary(await get(side, `/poll?channel=${channel}&at=7`))
        return { published, first, second, origin: originLog(side, forChannel(channel)) }
      })
      expect(results[0]).toEqual({
        published: "200 Published\n",
        first: plainText("item 9\n"),
        second: plainText("news since stale; last-id=7\n"),
        origin: [
          expected("/poll?channel=stale&at=8", null),
          // The first-subscription update is a retry of the client's request, with Grip-Last.
          expected("/poll?channel=stale&at=8", "stale; last-id=8"),
          expected("/poll?channel=stale&at=7", null),
          expected("/poll?channel=stale&at=7", "stale; last-id=7")
        ]
      })
      expect(results[1]).toEqual(results[0] as (typeof results)[number])
    })

    test("a publish whose prev-id does not follow retries the long-poll; a prev-id equal to or ahead of the last id is held", async () => {
      const channel = "skip"
      const results = await onBoth(async (side) => {
        const behind = get(side, `/poll?channel=${channel}&at=3`)
        await afterFirstUpdate(side, channel)
        side.origin.news.add(channel)
        // The channel has no last id yet, so the sequencer passes it on; the session expected 3.
        const skipping = await publish(side, [{ channel, id: "5", "prev-id": "4", formats: { "http-response": { body: "item 5\n" } } }])
        const behindAnswer = await summary(await behind)
        // 5 is the last id now. Equal: nothing to catch up; ahead (6): not retried at accept either.
        const equal = get(side, `/poll?channel=${channel}&at=5`)
        // One at a time, so the origin log's order does not depend on which request won a race.
        await waitFor(`${side.name}: the at=5 request`, () => originLog(side, forChannel(channel)).some((request) => request.path.endsWith("at=5")))
        const ahead = get(side, `/poll?channel=${channel}&at=6`)
        await holds(side, channel, 4)
        await Bun.sleep(300)
        const heldOriginLog = originLog(side, forChannel(channel))
        // 6 after 5 follows for `equal`, but `ahead` expected 6 as the prev-id: retried with Grip-Last.
        const following = await publish(side, [{ channel, id: "6", "prev-id": "5", formats: { "http-response": { body: "item 6\n" } } }])
        return {
          published: [skipping, following],
          behind: behindAnswer,
          heldRequests: heldOriginLog.length,
          equal: await summary(await equal),
          ahead: await summary(await ahead),
          origin: originLog(side, forChannel(channel))
        }
      })
      expect(results[0]).toEqual({
        published: ["200 Published\n", "200 Published\n"],
        behind: plainText("news since skip; last-id=3\n"),
        heldRequests: 5,
        equal: plainText("item 6\n"),
        ahead: plainText("news since skip; last-id=6\n"),
        origin: [
          expected("/poll?channel=skip&at=3", null),
          expected("/poll?channel=skip&at=3", "skip; last-id=3"),
          expected("/poll?channel=skip&at=3", "skip; last-id=3"),
          expected("/poll?channel=skip&at=5", null),
          expected("/poll?channel=skip&at=6", null),
          expected("/poll?channel=skip&at=6", "skip; last-id=6")
        ]
      })
      expect(results[1]).toEqual(results[0] as (typeof results)[number])
    })

    test("a hint publish makes a held long-poll ask the origin again (with Grip-Last for each channel that has a prev-id)", async () => {
      const results = await onBoth(async (side) => {
        const withId = get(side, "/poll?channel=hint-id&at=3")
        const withoutId = get(side, "/plain-poll?channel=hint-plain")
        const twoChannels = get(side, "/multi?channel=hint-multi")
        await Promise.all([
          afterFirstUpdate(side, "hint-id"),
          afterFirstUpdate(side, "hint-plain"),
          afterFirstUpdate(side, "hint-multi", "hint-multi-a"),
          holds(side, "hint-multi-b", 2)
        ])
        for (const channel of ["hint-id", "hint-plain", "hint-multi"]) side.origin.news.add(channel)
        const published = await publish(side, [
          { channel: "hint-id", formats: { "http-response": { action: "hint" } } },
          { channel: "hint-plain", formats: { "http-response": { action: "hint" } } },
          { channel: "hint-multi-a", formats: { "http-response": { action: "hint" } } }
        ])
        return {
          published,
          withId: await summary(await withId),
          withoutId: await summary(await withoutId),
          twoChannels: await summary(await twoChannels),
          originWithId: originLog(side, forChannel("hint-id")),
          originWithoutId: originLog(side, forChannel("hint-plain")),
          originTwoChannels: originLog(side, forChannel("hint-multi"))
        }
      })
      const both = "hint-multi-a; last-id=1, hint-multi-b; last-id=2"
      expect(results[0]).toEqual({
        published: "200 Published\n",
        withId: plainText("news since hint-id; last-id=3\n"),
        withoutId: plainText("plain news #3\n"),
        twoChannels: plainText(`multi news since ${both}\n`),
        originWithId: [
          expected("/poll?channel=hint-id&at=3", null),
          expected("/poll?channel=hint-id&at=3", "hint-id; last-id=3"),
          expected("/poll?channel=hint-id&at=3", "hint-id; last-id=3")
        ],
        originWithoutId: [
          expected("/plain-poll?channel=hint-plain", null),
          expected("/plain-poll?channel=hint-plain", null),
          expected("/plain-poll?channel=hint-plain", null)
        ],
        originTwoChannels: [expected("/multi?channel=hint-multi", null), expected("/multi?channel=hint-multi", both), expected("/multi?channel=hint-multi", both)]
      })
      expect(results[1]).toEqual(results[0] as (typeof results)[number])
    })
  })

  describe("reliable streams", () => {
    test("a no-seq publish whose prev-id does not follow makes the stream fetch its next link with Grip-Last", async () => {
      const channel = "feed"
      const results = await onBoth(async (side) => {
        const response = await get(side, `/feed?channel=${channel}&at=1`)
        const reader = (response.body as ReadableStream<Uint8Array>).getReader()
        const what = `${side.name} stream`
        // The first-subscription update fetches the next link (Grip-Last: feed; last-id=1).
        let text = await readWithin(what, reader, (t) => t.includes("caught up #1"), "")
        await Bun.sleep(100)
        // In sequence: delivered, and the stream now expects 5 before the next item.
        const inSequence = await publish(side, [{ channel, id: "5", "prev-id": "1", formats: { "http-stream": { content: "item 5\n" } } }])
        text = await readWithin(what, reader, (t) => t.includes("item 5\n"), text)
        // Out of sequence with no-seq: not parked by the sequencer (that would take message_wait,
        // 5 s; see the next test) but handed to the stream, which fetches its next link instead.
        const sentAt = Date.now()
        const outOfSequence = await publish(side, [{ channel, id: "8", "prev-id": "7", "no-seq": true, formats: { "http-stream": { content: "item 8\n" } } }])
        text = await readWithin(what, reader, (t) => t.includes("caught up #2"), text)
        const fetchedAfterMs = Date.now() - sentAt
        await Bun.sleep(100)
        // An item without prev-id does not follow either: another fetch, and it is not delivered.
        const withoutPrevId = await publish(side, [{ channel, formats: { "http-stream": { content: "no ids\n" } } }])
        text = await readWithin(what, reader, (t) => t.includes("caught up #3"), text)
        await Bun.sleep(100)
        // The next link said prev-id 5: a close that follows it ends the response.
        const closed = await publish(side, [{ channel, id: "6", "prev-id": "5", formats: { "http-stream": { action: "close" } } }])
        text = await readWithin(what, reader, "end", text)
        return {
          fetchedAfterMs,
          client: { status: response.status, headers: headersOf(response), body: text },
          published: [inSequence, outOfSequence, withoutPrevId, closed],
          origin: originLog(side, forChannel(channel))
        }
      })
      console.log(`no-seq out-of-sequence item, next link fetched after: pushpin ${results[0]?.fetchedAfterMs} ms, pushpin-ts ${results[1]?.fetchedAfterMs} ms`)
      for (const result of results) expect(result.fetchedAfterMs).toBeLessThan(2000)
      const [fromReference, fromOurs] = results.map(({ fetchedAfterMs: _, ...rest }) => rest)
      expect(fromReference).toEqual({
        client: chunkedText("feed open\ncaught up #1 from feed; last-id=1\nitem 5\ncaught up #2 from feed; last-id=5\ncaught up #3 from feed; last-id=5\n"),
        published: ["200 Published\n", "200 Published\n", "200 Published\n", "200 Published\n"],
        origin: [
          expected("/feed?channel=feed&at=1", null),
          expected("/feed-next?channel=feed", "feed; last-id=1", "next"),
          expected("/feed-next?channel=feed", "feed; last-id=5", "next"),
          expected("/feed-next?channel=feed", "feed; last-id=5", "next")
        ]
      })
      expect(fromOurs).toEqual(fromReference as NonNullable<typeof fromReference>)
    })

    test("without no-seq the same publish is parked for message_wait, then makes the stream fetch its next link", async () => {
      const channel = "feed-seq"
      const results = await onBoth(async (side) => {
        const response = await get(side, `/feed?channel=${channel}&at=1`)
        const reader = (response.body as ReadableStream<Uint8Array>).getReader()
        const what = `${side.name} stream`
        let text = await readWithin(what, reader, (t) => t.includes("caught up #1"), "")
        await Bun.sleep(100)
        await publish(side, [{ channel, id: "5", "prev-id": "1", formats: { "http-stream": { content: "item 5\n" } } }])
        text = await readWithin(what, reader, (t) => t.includes("item 5\n"), text)
        const sentAt = Date.now()
        await publish(side, [{ channel, id: "8", "prev-id": "7", formats: { "http-stream": { content: "item 8\n" } } }])
        text = await readWithin(what, reader, (t) => t.includes("caught up #2"), text, 9000)
        const fetchedAfterMs = Date.now() - sentAt
        await reader.cancel()
        return { fetchedAfterMs, body: text, origin: originLog(side, forChannel(channel)) }
      })
      console.log(`parked out-of-sequence item, next link fetched after: pushpin ${results[0]?.fetchedAfterMs} ms, pushpin-ts ${results[1]?.fetchedAfterMs} ms`)
      for (const result of results) {
        // message_wait is 5 s, checked every second.
        expect(result.fetchedAfterMs).toBeGreaterThanOrEqual(4500)
        expect(result.fetchedAfterMs).toBeLessThanOrEqual(7500)
      }
      const [fromReference, fromOurs] = results.map(({ fetchedAfterMs: _, ...rest }) => rest)
      expect(fromReference).toEqual({
        body: "feed open\ncaught up #1 from feed-seq; last-id=1\nitem 5\ncaught up #2 from feed-seq; last-id=5\n",
        origin: [
          expected("/feed?channel=feed-seq&at=1", null),
          expected("/feed-next?channel=feed-seq", "feed-seq; last-id=1", "next"),
          expected("/feed-next?channel=feed-seq", "feed-seq; last-id=5", "next")
        ]
      })
      expect(fromOurs).toEqual(fromReference as NonNullable<typeof fromReference>)
    }, 20_000)
  })

  test("a long-poll on a fresh channel is asked again about a second after the subscription, once", async () => {
    const channel = "fresh"
    const results = await onBoth(async (side) => {
      const held = get(side, `/plain-poll?channel=${channel}`)
      await waitFor(`${side.name}: the update request`, () => countFor(side, channel) >= 2, 4000)
      const [first, second] = side.origin.origin.seen.flatMap((request, i) => (channelOf(request) === channel ? [side.origin.arrivals[i] ?? 0] : []))
      const delayMs = (second ?? 0) - (first ?? 0)
      await holds(side, channel, 2)
      await Bun.sleep(2000)
      const requestsTwoSecondsLater = countFor(side, channel)
      const published = await publish(side, [{ channel, formats: { "http-response": { body: "done\n" } } }])
      return { delayMs, requestsTwoSecondsLater, published, client: await summary(await held), origin: originLog(side, forChannel(channel)) }
    })
    console.log(`first-subscription update delay: pushpin ${results[0]?.delayMs} ms, pushpin-ts ${results[1]?.delayMs} ms`)
    for (const result of results) {
      expect(result.delayMs).toBeGreaterThanOrEqual(800)
      expect(result.delayMs).toBeLessThanOrEqual(2500)
    }
    const [fromReference, fromOurs] = results.map(({ delayMs: _, ...rest }) => rest)
    expect(fromReference).toEqual({
      requestsTwoSecondsLater: 2,
      published: "200 Published\n",
      client: plainText("done\n"),
      origin: [expected("/plain-poll?channel=fresh", null), expected("/plain-poll?channel=fresh", null)]
    })
    expect(fromOurs).toEqual(fromReference as NonNullable<typeof fromReference>)
  })

  test("POST /recover answers Updated; held long-polls ask their origin again and streams fetch their next link", async () => {
    const results = await onBoth(async (side) => {
      const plain = get(side, "/plain-poll?channel=rec-plain")
      const withId = get(side, "/poll?channel=rec-id&at=4")
      const stream = await get(side, "/feed?channel=rec-feed&at=2")
      const streamReader = (stream.body as ReadableStream<Uint8Array>).getReader()
      const unlinked = await get(side, "/unlinked-stream?channel=rec-unlinked")
      const unlinkedReader = (unlinked.body as ReadableStream<Uint8Array>).getReader()
      let streamText = await readWithin(`${side.name} stream`, streamReader, (t) => t.includes("caught up #1"), "")
      let unlinkedText = await readWithin(`${side.name} unlinked stream`, unlinkedReader, (t) => t.includes("unlinked open\n"), "")
      await Promise.all([afterFirstUpdate(side, "rec-plain"), afterFirstUpdate(side, "rec-id"), holds(side, "rec-unlinked", 1)])
      await Bun.sleep(100)

      const recover = await summary(await fetch(`${side.publishUrl}/recover`, { method: "POST" }))
      await waitFor(`${side.name}: the recover re-requests`, () => countFor(side, "rec-plain") >= 3 && countFor(side, "rec-id") >= 3)
      streamText = await readWithin(`${side.name} stream`, streamReader, (t) => t.includes("caught up #2"), streamText)
      await Promise.all([holds(side, "rec-plain", 3), holds(side, "rec-id", 3)])
      await Bun.sleep(100)

      const published = await publish(side, [
        { channel: "rec-plain", formats: { "http-response": { body: "plain released\n" } } },
        { channel: "rec-id", id: "5", "prev-id": "4", formats: { "http-response": { body: "item 5\n" } } },
        { channel: "rec-unlinked", formats: { "http-stream": { content: "still here\n" } } }
      ])
      unlinkedText = await readWithin(`${side.name} unlinked stream`, unlinkedReader, (t) => t.includes("still here\n"), unlinkedText)
      await Promise.all([streamReader.cancel(), unlinkedReader.cancel()])
      // The same endpoint asked for JSON, and with the wrong method.
      const recoverJson = await summary(await fetch(`${side.publishUrl}/recover`, { method: "POST", headers: { accept: "application/json" } }))
      const recoverGet = await summary(await fetch(`${side.publishUrl}/recover`))
      return {
        recover,
        recoverJson,
        recoverGet,
        published,
        plain: await summary(await plain),
        withId: await summary(await withId),
        streamText,
        unlinkedText,
        // The kinds of request interleave differently from run to run; within each, the order is fixed.
        origin: Object.groupBy(originLog(side, (request) => channelOf(request)?.startsWith("rec-") === true), (request) => request.path.split("?")[0] ?? "")
      }
    })
    expect(results[0]).toEqual({
      recover: plainText("Updated\n"),
      recoverJson: { status: 200, headers: [["content-length", "22"], ["content-type", "application/json"]], body: '{"message":"Updated"}\n' } satisfies Answer,
      recoverGet: { status: 405, headers: [["allow", "POST"], ["content-length", "25"], ["content-type", "text/plain"]], body: "Method not allowed: GET.\n" } satisfies Answer,
      published: "200 Published\n",
      plain: plainText("plain released\n"),
      withId: plainText("item 5\n"),
      streamText: "feed open\ncaught up #1 from rec-feed; last-id=2\ncaught up #2 from rec-feed; last-id=2\n",
      // No next link: recover leaves it alone.
      unlinkedText: "unlinked open\nstill here\n",
      origin: {
        "/plain-poll": [expected("/plain-poll?channel=rec-plain", null), expected("/plain-poll?channel=rec-plain", null), expected("/plain-poll?channel=rec-plain", null)],
        "/poll": [
          expected("/poll?channel=rec-id&at=4", null),
          expected("/poll?channel=rec-id&at=4", "rec-id; last-id=4"),
          // After recover, still the session's own prev-id.
          expected("/poll?channel=rec-id&at=4", "rec-id; last-id=4")
        ],
        "/feed": [expected("/feed?channel=rec-feed&at=2", null)],
        "/feed-next": [expected("/feed-next?channel=rec-feed", "rec-feed; last-id=2", "next"), expected("/feed-next?channel=rec-feed", "rec-feed; last-id=2", "next")],
        "/unlinked-stream": [expected("/unlinked-stream?channel=rec-unlinked", null)]
      }
    })
    expect(results[1]).toEqual(results[0] as (typeof results)[number])
  })
})
