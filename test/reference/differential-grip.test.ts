/**
 * Differential for GRIP over HTTP: the same origin instructions and publishes through real
 * Pushpin 1.36 and through pushpin-ts give the same client-visible result.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { referencePushpinAvailable, startReferencePushpin, type ReferencePushpin } from "../support/reference-pushpin.ts"

interface Side {
  readonly name: string
  readonly baseUrl: string
  readonly publishUrl: string
  readonly logs: () => Promise<string>
}

/**
 * Waits until the side logged a subscription to `channel`. Pushpin 1.36 re-asks the origin about
 * a second after a channel's first subscription and can lose a publish that lands meanwhile, so
 * give it that second before publishing.
 */
const whenSubscribed = async (side: Side, channel: string) => {
  for (let attempt = 0; attempt < 200; attempt++) {
    if ((await side.logs()).includes(`channel=${channel}`)) break
    await Bun.sleep(25)
  }
  if (side.name === "pushpin") await Bun.sleep(1500)
}

const publish = (side: Side, items: ReadonlyArray<unknown>) =>
  fetch(`${side.publishUrl}/publish/`, { method: "POST", body: JSON.stringify({ items }) }).then((response) => response.text())

describe.skipIf(!referencePushpinAvailable())("GRIP: pushpin-ts and Pushpin 1.36 deliver alike", () => {
  let origin: TestOrigin
  let reference: ReferencePushpin
  let ours: RunningPushpinTs
  let sides: Array<Side>

  beforeAll(async () => {
    origin = startOrigin((request) => {
      const url = new URL(request.url)
      const channel = url.searchParams.get("channel") ?? "c"
      if (url.pathname === "/poll") {
        return new Response("timed out\n", { headers: { "content-type": "text/plain", "x-app": "1", "grip-hold": "response", "grip-channel": channel } })
      }
      return new Response("stream start\n", { headers: { "content-type": "text/plain", "x-app": "2", "grip-hold": "stream", "grip-channel": channel } })
    })
    const routes = [`* 127.0.0.1:${origin.port}`]
    ;[reference, ours] = await Promise.all([
      startReferencePushpin({ routes }),
      startPushpinTs({ args: routes.flatMap((route) => ["--route", route]) })
    ])
    sides = [
      { name: "pushpin", baseUrl: reference.baseUrl, publishUrl: reference.publishUrl, logs: () => reference.logs() },
      { name: "pushpin-ts", baseUrl: ours.baseUrl, publishUrl: ours.publishUrl ?? "", logs: async () => ours.logs() }
    ]
  })

  afterAll(async () => {
    await Promise.all([reference?.stop(), ours?.stop()])
    await origin?.stop()
  })

  test("a long-poll released by an http-response publish", async () => {
    const results = await Promise.all(sides.map(async (side) => {
      const channel = `lp-${side.name}`
      const held = fetch(`${side.baseUrl}/poll?channel=${channel}`)
      await whenSubscribed(side, channel)
      const answer = await publish(side, [{ channel, formats: { "http-response": { code: 200, body: "released\n", headers: { "x-pub": "yes" } } } }])
      const response = await held
      return {
        answer,
        status: response.status,
        body: await response.text(),
        contentType: response.headers.get("content-type"),
        app: response.headers.get("x-app"),
        pub: response.headers.get("x-pub"),
        grip: [...response.headers.keys()].filter((name) => name.startsWith("grip-"))
      }
    }))
    expect(results[0]?.body).toBe("released\n")
    expect(results[1]).toEqual(results[0] as (typeof results)[number])
  }, 20_000)

  test("a stream: initial body, publishes in order, close", async () => {
    const results = await Promise.all(sides.map(async (side) => {
      const channel = `st-${side.name}`
      const response = await fetch(`${side.baseUrl}/stream?channel=${channel}`)
      const bodyText = response.text()
      await whenSubscribed(side, channel)
      for (const word of ["alpha", "beta", "gamma"]) {
        await publish(side, [{ channel, formats: { "http-stream": { content: `${word}\n` } } }])
      }
      await publish(side, [{ channel, formats: { "http-stream": { action: "close" } } }])
      return {
        status: response.status,
        contentType: response.headers.get("content-type"),
        contentLength: response.headers.get("content-length"),
        app: response.headers.get("x-app"),
        body: await bodyText
      }
    }))
    expect(results[0]?.body).toBe("stream start\nalpha\nbeta\ngamma\n")
    expect(results[1]).toEqual(results[0] as (typeof results)[number])
  }, 20_000)

  test("publish API errors have the same status and text", async () => {
    const bodies = ["{bad", "{}", JSON.stringify({ items: [{ channel: "a" }] }), JSON.stringify({ items: [] })]
    for (const body of bodies) {
      const [fromReference, fromOurs] = await Promise.all(sides.map(async (side) => {
        const response = await fetch(`${side.publishUrl}/publish/`, { method: "POST", body })
        return [response.status, await response.text()]
      }))
      expect(fromOurs).toEqual(fromReference as (string | number)[])
    }
  })
})
