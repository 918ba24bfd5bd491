/**
 * Differential for JSON-P on auto-cross-origin routes: the same GETs through real Pushpin 1.36
 * and through pushpin-ts give byte-identical scripts, and the origin sees the same requests.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { referencePushpinAvailable, startReferencePushpin, type ReferencePushpin } from "../support/reference-pushpin.ts"

/** Two requests a second apart carry different Date headers; everything else must agree. */
const withoutDates = (text: string) => text.replace(/"Date":"[^"]*"/g, '"Date":"…"')

describe.skipIf(!referencePushpinAvailable())("JSON-P: pushpin-ts and Pushpin 1.36 wrap alike", () => {
  let origins: Array<TestOrigin>
  let reference: ReferencePushpin
  let ours: RunningPushpinTs

  beforeAll(async () => {
    const answer = (request: Request) => {
      const url = new URL(request.url)
      if (url.pathname === "/held") {
        return new Response("timed out\n", {
          headers: { "Content-Type": "text/plain", "X-Thing": "a", "Grip-Hold": "response", "Grip-Channel": "jp", "Grip-Timeout": "5" }
        })
      }
      return new Response('hello "world"\n', { status: 201, headers: { "Content-Type": "text/plain", "X-Multi": "1", "Cache-Control": "no-cache" } })
    }
    origins = [startOrigin(answer), startOrigin(answer)]
    const routes = (port: number) => [`*,aco,path_beg=/basic/,jsonp_mode=basic ${`127.0.0.1:${port}`}`, `*,aco 127.0.0.1:${port}`]
    ;[reference, ours] = await Promise.all([
      startReferencePushpin({ routes: routes(origins[0]?.port ?? 0) }),
      startPushpinTs({ args: routes(origins[1]?.port ?? 0).flatMap((route) => ["--route", route]) })
    ])
  })

  afterAll(async () => {
    await Promise.all([reference?.stop(), ours?.stop()])
    for (const origin of origins ?? []) await origin.stop()
  })

  const both = async (path: string) =>
    Promise.all([reference.baseUrl, ours.baseUrl].map(async (base) => {
      const response = await fetch(`${base}${path}`)
      return {
        status: response.status,
        contentType: response.headers.get("content-type"),
        cacheControl: response.headers.get("cache-control"),
        allowOrigin: response.headers.get("access-control-allow-origin"),
        body: withoutDates(await response.text())
      }
    }))

  test.each([
    "/x?callback=cb",
    "/x?callback=app.handle&keep=1",
    "/basic/x?callback=cb",
    "/x?callback=",
    "/x?callback=cb&_headers=nope",
    "/x?callback=cb&_headers=%7B%22n%22%3A1%7D"
  ])("%s", async (path) => {
    const [pushpin, pushpinTs] = await both(path)
    expect(pushpinTs).toEqual(pushpin as NonNullable<typeof pushpin>)
  })

  test("_method, _headers and _body become the origin's request", async () => {
    const path = "/x?a=1&callback=cb&_method=PUT&_headers=%7B%22X-Custom%22%3A%22v%22%7D&_body=payload"
    const [pushpin, pushpinTs] = await both(path)
    expect(pushpinTs).toEqual(pushpin as NonNullable<typeof pushpin>)
    const seen = origins.map((origin) => {
      const request = origin.seen.at(-1)
      return {
        method: request?.method,
        path: request === undefined ? undefined : new URL(request.url).pathname + new URL(request.url).search,
        custom: request?.headers["x-custom"],
        accept: request?.headers["accept"],
        body: new TextDecoder().decode(request?.body)
      }
    })
    expect(seen[0]).toEqual({ method: "PUT", path: "/x?a=1", custom: "v", accept: "*/*", body: "payload" })
    expect(seen[1]).toEqual(seen[0] as NonNullable<(typeof seen)[0]>)
  })

  test("a held long-poll's timeout response is wrapped by the handler", async () => {
    const [pushpin, pushpinTs] = await both("/held?callback=cb")
    expect(pushpin?.body).toStartWith('/**/cb({"body":"timed out\\n","code":200,')
    expect(pushpinTs).toEqual(pushpin as NonNullable<typeof pushpin>)
  }, 20_000)
})
