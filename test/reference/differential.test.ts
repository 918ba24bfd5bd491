/**
 * Differential: the same requests through real Pushpin 1.36 (Debian pushpin + zurl) and through
 * pushpin-ts, against the same origin, give the same status, body and the headers that matter.
 * Runs whenever Pushpin is installed (CI installs it).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { deadPort, startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"
import { referencePushpinAvailable, startReferencePushpin, type ReferencePushpin } from "../support/reference-pushpin.ts"

const MB = 1024 * 1024
const big = new Uint8Array(MB).map((_, i) => (i * 13 + 5) & 0xff)

interface Observed {
  readonly status: number
  readonly statusText: string
  readonly body: string
  readonly headers: Record<string, string | null>
  /** What the origin received, for requests that reached it. */
  readonly origin: {
    readonly target: string
    readonly method: string
    readonly bodyLength: number
    readonly headers: Record<string, string | undefined>
    /** Grip-Sig differs in `exp`; its algorithm and issuer must agree. */
    readonly gripSig: string | undefined
  } | undefined
}

/** Response headers whose values must agree (hop-by-hop and framing headers are each side's own). */
const RESPONSE_HEADERS = ["content-type", "x-origin", "location", "cache-control"] as const
/** Request headers the origin sees whose presence/values must agree. */
// (Connection is left out: it describes the proxy-to-origin connection, which each side manages itself.)
const ORIGIN_HEADERS = ["host", "x-client", "x-forwarded-for", "grip-foo", "grip-channel", "x-forwarded-proto", "keep-alive"] as const

const describeGripSig = (token: string | undefined): string | undefined => {
  if (token === undefined) return undefined
  const [header, claims] = token.split(".").slice(0, 2).map((part) => JSON.parse(Buffer.from(part, "base64url").toString()) as Record<string, unknown>)
  return `${String(header?.["alg"])} iss=${String(claims?.["iss"])}`
}

describe.skipIf(!referencePushpinAvailable())("pushpin-ts and Pushpin 1.36 answer alike", () => {
  let origin: TestOrigin
  let reference: ReferencePushpin
  let ours: RunningPushpinTs
  let failoverReference: ReferencePushpin
  let failoverOurs: RunningPushpinTs

  beforeAll(async () => {
    origin = startOrigin((request, body) => {
      const url = new URL(request.url)
      switch (url.pathname) {
        case "/echo":
          return new Response(body, { headers: { "content-type": "application/octet-stream", "x-origin": "echo" } })
        case "/big":
          return new Response(big, { headers: { "content-type": "application/octet-stream" } })
        case "/teapot":
          return new Response("short and stout\n", { status: 418, statusText: "I'm a teapot", headers: { "content-type": "text/plain" } })
        case "/cookies": {
          const headers = new Headers({ "content-type": "text/plain" })
          headers.append("set-cookie", "a=1; Path=/")
          headers.append("set-cookie", "b=2; Path=/")
          return new Response("cookies\n", { headers })
        }
        case "/redirect":
          return new Response(null, { status: 302, headers: { location: "/elsewhere", "cache-control": "no-store" } })
        case "/chunked":
          return new Response(
            new ReadableStream({
              async start(controller) {
                controller.enqueue(new TextEncoder().encode("part one, "))
                await Bun.sleep(30)
                controller.enqueue(new TextEncoder().encode("part two\n"))
                controller.close()
              }
            }),
            { headers: { "content-type": "text/plain", "x-origin": "chunked" } }
          )
        default:
          return new Response(`origin: ${request.method} ${url.pathname}${url.search}\n`, { headers: { "content-type": "text/plain", "x-origin": "default" } })
      }
    })
    const routes = [`example.test,path_beg=/a 127.0.0.1:${origin.port}`, `* 127.0.0.1:${origin.port}`]
    const failoverRoutes = [`* 127.0.0.1:${deadPort()} 127.0.0.1:${origin.port}`]
    ;[reference, ours, failoverReference, failoverOurs] = await Promise.all([
      startReferencePushpin({ routes }),
      startPushpinTs({ args: routes.flatMap((route) => ["--route", route]) }),
      startReferencePushpin({ routes: failoverRoutes }),
      startPushpinTs({ args: failoverRoutes.flatMap((route) => ["--route", route]) })
    ])
  })

  afterAll(async () => {
    await Promise.all([reference?.stop(), ours?.stop(), failoverReference?.stop(), failoverOurs?.stop()])
    await origin?.stop()
  })

  const observe = async (baseUrl: string, path: string, init: RequestInit = {}): Promise<Observed> => {
    const before = origin.seen.length
    const response = await fetch(`${baseUrl}${path}`, { redirect: "manual", ...init })
    const body = new Uint8Array(await response.arrayBuffer())
    const headers: Record<string, string | null> = {}
    for (const name of RESPONSE_HEADERS) headers[name] = response.headers.get(name)
    headers["set-cookie"] = response.headers.getSetCookie().join(" | ") || null
    const seen = origin.seen.length > before ? origin.seen.at(-1) : undefined
    return {
      status: response.status,
      statusText: response.statusText,
      // large bodies compare by hash and length
      body: body.byteLength > 4096 ? `${body.byteLength} bytes, hash ${Bun.hash(body)}` : new TextDecoder().decode(body),
      headers,
      origin: seen === undefined
        ? undefined
        : {
          target: new URL(seen.url).pathname + new URL(seen.url).search,
          method: seen.method,
          bodyLength: seen.body.byteLength,
          headers: Object.fromEntries(ORIGIN_HEADERS.map((name) => [name, seen.headers[name]])),
          gripSig: describeGripSig(seen.headers["grip-sig"])
        }
    }
  }

  /** Runs the same request against both and returns [Pushpin, pushpin-ts]; Host is fixed so both send the same. */
  const both = async (path: string, init: RequestInit = {}, pair: "main" | "failover" = "main"): Promise<[Observed, Observed]> => {
    const headers = new Headers(init.headers)
    if (!headers.has("host")) headers.set("host", "proxy.test")
    const withHost = { ...init, headers }
    const [referenceBase, oursBase] = pair === "main" ? [reference.baseUrl, ours.baseUrl] : [failoverReference.baseUrl, failoverOurs.baseUrl]
    const fromReference = await observe(referenceBase, path, withHost)
    const fromOurs = await observe(oursBase, path, withHost)
    return [fromReference, fromOurs]
  }

  test.each([
    ["GET with a query string", "/plain?q=1&r=%20x", {}],
    ["POST with a body", "/echo", { method: "POST", body: "posted body" }],
    ["PUT with a 1 MB body", "/echo", { method: "PUT", body: big }],
    ["a 1 MB response", "/big", {}],
    ["DELETE", "/plain", { method: "DELETE" }],
    ["a 418 with its reason phrase", "/teapot", {}],
    ["two Set-Cookie headers", "/cookies", {}],
    ["a redirect, relayed not followed", "/redirect", {}],
    ["a chunked origin response", "/chunked", {}],
    ["client Grip-* headers, Connection-scoped headers and X-Forwarded-Proto", "/plain", {
      headers: { "grip-foo": "x", "grip-channel": "spoof", "x-client": "yes", "keep-alive": "timeout=5", "x-forwarded-proto": "https", "x-forwarded-for": "192.0.2.1" }
    }]
  ] as const)("%s", async (_name, path, init) => {
    const [fromReference, fromOurs] = await both(path, init as RequestInit)
    expect(fromOurs).toEqual(fromReference)
  })

  test("a host that has routes, none matching, gets the same 502", async () => {
    const [fromReference, fromOurs] = await both("/b", { headers: { host: "example.test" } })
    expect(fromReference.status).toBe(502)
    expect(fromOurs).toEqual(fromReference)
  })

  test("failover to the second target when the first refuses", async () => {
    const [fromReference, fromOurs] = await both("/after-failover", { method: "POST", body: "replayed" }, "failover")
    expect(fromReference.status).toBe(200)
    expect(fromOurs).toEqual(fromReference)
  })

  test("a dead origin: the same 502 text", async () => {
    const port = deadPort()
    const [deadReference, deadOurs] = await Promise.all([
      startReferencePushpin({ routes: [`* 127.0.0.1:${port}`] }),
      startPushpinTs({ args: ["--route", `* 127.0.0.1:${port}`] })
    ])
    try {
      const fromReference = await fetch(`${deadReference.baseUrl}/x`)
      const fromOurs = await fetch(`${deadOurs.baseUrl}/x`)
      expect(fromOurs.status).toBe(fromReference.status)
      expect(await fromOurs.text()).toBe(await fromReference.text())
      expect(fromOurs.headers.get("content-type")).toBe(fromReference.headers.get("content-type"))
    } finally {
      await Promise.all([deadReference.stop(), deadOurs.stop()])
    }
  })

  test("auto cross-origin (route aco): the same CORS headers on a GET and a preflight", async () => {
    const routes = [`*,aco 127.0.0.1:${origin.port}`]
    const [corsReference, corsOurs] = await Promise.all([
      startReferencePushpin({ routes }),
      startPushpinTs({ args: ["--route", routes[0] as string] })
    ])
    const corsHeaders = async (baseUrl: string, init: RequestInit) => {
      const response = await fetch(`${baseUrl}/cors`, init)
      await response.arrayBuffer()
      // fetch gives no raw header case or order, so the exposed-header list compares as a set.
      const normalise = ([name, value]: [string, string]) =>
        name === "access-control-expose-headers" ? [name, value.toLowerCase().split(", ").sort().join(", ")] : [name, value]
      return [response.status, ...[...response.headers].filter(([name]) => name.startsWith("access-control-")).map(normalise).sort()]
    }
    try {
      for (const init of [
        { headers: { origin: "http://app.test" } },
        { method: "OPTIONS", headers: { origin: "http://app.test", "access-control-request-method": "PUT", "access-control-request-headers": "X-Token, Content-Type" } },
        {}
      ] as ReadonlyArray<RequestInit>) {
        expect(await corsHeaders(corsOurs.baseUrl, init)).toEqual(await corsHeaders(corsReference.baseUrl, init))
      }
    } finally {
      await Promise.all([corsReference.stop(), corsOurs.stop()])
    }
  })

  test("the built-in test route", async () => {
    const [testReference, testOurs] = await Promise.all([startReferencePushpin({ routes: ["* test"] }), startPushpinTs()])
    try {
      for (const path of ["/", "/nonexistent"]) {
        const fromReference = await fetch(`${testReference.baseUrl}${path}`)
        const fromOurs = await fetch(`${testOurs.baseUrl}${path}`)
        expect([fromOurs.status, fromOurs.headers.get("content-type"), await fromOurs.text()]).toEqual([
          fromReference.status,
          fromReference.headers.get("content-type"),
          await fromReference.text()
        ])
      }
    } finally {
      await Promise.all([testReference.stop(), testOurs.stop()])
    }
  })
})
