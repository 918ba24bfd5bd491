/**
 * End to end: the compiled binary proxying to a real origin over real sockets.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHmac } from "node:crypto"
import { connect } from "node:net"
import { deadPort, startOrigin, type TestOrigin } from "../support/origin.ts"
import { startPushpinTs, type RunningPushpinTs } from "../support/pushpin-ts.ts"

const MB = 1024 * 1024

const pattern = (size: number): Uint8Array<ArrayBuffer> => {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + 3) & 0xff
  return bytes
}

/** Sends raw bytes and collects the whole answer until the server closes or `idleMs` passes. */
const rawExchange = (port: number, payload: string, idleMs = 500): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1")
    let answer = ""
    let timer: ReturnType<typeof setTimeout> | undefined
    const done = () => {
      socket.destroy()
      resolve(answer)
    }
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1")
      if (timer !== undefined) clearTimeout(timer)
      timer = setTimeout(done, idleMs)
    })
    socket.on("error", reject)
    socket.on("close", () => resolve(answer))
    socket.write(payload)
  })

describe("proxying to an origin", () => {
  let origin: TestOrigin
  let proxy: RunningPushpinTs
  const big = pattern(MB)

  beforeAll(async () => {
    origin = startOrigin((request, body) => {
      const url = new URL(request.url)
      switch (url.pathname) {
        case "/echo":
          return new Response(body, { status: 201, headers: { "x-method": request.method, "x-query": url.search } })
        case "/big":
          return new Response(big)
        case "/chunked":
          return new Response(
            new ReadableStream({
              async start(controller) {
                for (const part of ["one,", "two,", "three"]) {
                  controller.enqueue(new TextEncoder().encode(part))
                  await Bun.sleep(20)
                }
                controller.close()
              }
            }),
            { headers: { "content-type": "text/plain", "x-origin": "yes" } }
          )
        case "/gzip":
          return new Response(Bun.gzipSync(new TextEncoder().encode("compressed body")), {
            headers: { "content-encoding": "gzip", "content-type": "text/plain" }
          })
        case "/redirect":
          return new Response(null, { status: 302, headers: { location: "/elsewhere" } })
        default:
          return new Response(`origin saw ${request.method} ${url.pathname}${url.search}`, { headers: { "x-origin": "yes" } })
      }
    })
    proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port}`] })
  })

  afterAll(async () => {
    await proxy.stop()
    await origin.stop()
  })

  test.each(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])("%s reaches the origin with its query string", async (method) => {
    const response = await fetch(`${proxy.baseUrl}/echo?a=1&b=two%20words`, {
      method,
      ...(method === "GET" || method === "OPTIONS" || method === "DELETE" ? {} : { body: `body of ${method}` })
    })
    expect(response.status).toBe(201)
    expect(response.headers.get("x-method")).toBe(method)
    expect(response.headers.get("x-query")).toBe("?a=1&b=two%20words")
    const seen = origin.seen.at(-1)
    expect(seen?.url).toEndWith("/echo?a=1&b=two%20words")
  })

  test("HEAD is answered without a body", async () => {
    const response = await fetch(`${proxy.baseUrl}/plain`, { method: "HEAD" })
    expect(response.status).toBe(200)
    expect(await response.text()).toBe("")
    expect(origin.seen.at(-1)?.method).toBe("HEAD")
  })

  test("a 1 MB request body reaches the origin intact and a 1 MB response comes back intact", async () => {
    const up = await fetch(`${proxy.baseUrl}/echo`, { method: "POST", body: big })
    const echoed = new Uint8Array(await up.arrayBuffer())
    expect(echoed.byteLength).toBe(MB)
    expect(Bun.hash(echoed)).toBe(Bun.hash(big))
    expect(origin.seen.at(-1)?.body.byteLength).toBe(MB)

    const down = await fetch(`${proxy.baseUrl}/big`)
    const received = new Uint8Array(await down.arrayBuffer())
    expect(received.byteLength).toBe(MB)
    expect(Bun.hash(received)).toBe(Bun.hash(big))
  })

  test("a chunked request body (no Content-Length) is streamed to the origin", async () => {
    const parts = ["alpha-", "beta-", "gamma"]
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const part = parts.shift()
        if (part === undefined) controller.close()
        else controller.enqueue(new TextEncoder().encode(part))
      }
    })
    const response = await fetch(`${proxy.baseUrl}/echo`, { method: "POST", body })
    expect(await response.text()).toBe("alpha-beta-gamma")
  })

  test("a chunked origin response is streamed back with its headers", async () => {
    const raw = await rawExchange(proxy.port, "GET /chunked HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
    expect(raw).toStartWith("HTTP/1.1 200")
    expect(raw.toLowerCase()).toContain("transfer-encoding: chunked")
    expect(raw.toLowerCase()).toContain("x-origin: yes")
    const response = await fetch(`${proxy.baseUrl}/chunked`)
    expect(await response.text()).toBe("one,two,three")
  })

  test("request headers: hop-by-hop, Accept-Encoding and client Grip-* removed, Host kept, X-Forwarded-Proto not invented", async () => {
    const raw = await rawExchange(
      proxy.port,
      "GET /headers HTTP/1.1\r\nHost: app.example.test:7999\r\nAccept-Encoding: gzip\r\nGrip-Sig: forged\r\nGrip-Channel: spoof\r\n" +
        "Keep-Alive: timeout=5\r\nConnection: close, X-Private\r\nX-Private: secret\r\nX-Forwarded-Proto: https\r\nX-Custom: kept\r\n\r\n"
    )
    expect(raw).toStartWith("HTTP/1.1 200")
    const seen = origin.seen.at(-1)?.headers ?? {}
    expect(seen["host"]).toBe("app.example.test:7999")
    expect(seen["x-custom"]).toBe("kept")
    expect(seen["accept-encoding"]).toBe("identity")
    expect(seen["grip-channel"]).toBeUndefined()
    expect(seen["keep-alive"]).toBeUndefined()
    expect(seen["x-private"]).toBeUndefined()
    // set_x_forwarded_protocol=proto-only: a plain-HTTP client's claim is removed, not relayed
    expect(seen["x-forwarded-proto"]).toBeUndefined()
    // built-in defaults are Pushpin's shipped file: signed with sig_key=changeme, never the client's token
    expect(seen["grip-sig"]).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/)
  })

  test("HTTP/1.0 without Host is proxied with Host: localhost, as Pushpin does", async () => {
    const raw = await rawExchange(proxy.port, "GET /old-client?v=1 HTTP/1.0\r\n\r\n")
    expect(raw).toStartWith("HTTP/1.1 200")
    expect(raw).toContain("origin saw GET /old-client?v=1")
    expect(origin.seen.at(-1)?.headers["host"]).toBe("localhost")
  })

  test("compressed origin bodies pass through untouched (no silent decompression)", async () => {
    const response = await fetch(`${proxy.baseUrl}/gzip`, { decompress: false })
    expect(response.headers.get("content-encoding")).toBe("gzip")
    const bytes = new Uint8Array(await response.arrayBuffer())
    expect(new TextDecoder().decode(Bun.gunzipSync(bytes))).toBe("compressed body")
  })

  test("redirects are relayed, not followed", async () => {
    const response = await fetch(`${proxy.baseUrl}/redirect`, { redirect: "manual" })
    expect(response.status).toBe(302)
    expect(response.headers.get("location")).toBe("/elsewhere")
  })

  test("a request head larger than client_buffer_size gets Pushpin's 400 text and the server keeps serving", async () => {
    const response = await fetch(`${proxy.baseUrl}/plain`, { headers: { "x-big": "a".repeat(9000) } })
    expect(response.status).toBe(400)
    expect(await response.text()).toBe("Request header size exceeded limit of 8192 bytes.\n")
    expect((await fetch(`${proxy.baseUrl}/plain`)).status).toBe(200)
  })

  test("the access log has Pushpin's request line", async () => {
    // Log lines are written once per event-loop turn, so the line may trail the response.
    await proxy.waitForLog(/\[INFO\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[proxy\] GET http:\/\/127\.0\.0\.1:\d+\/plain -> 127\.0\.0\.1:\d+ code=200 \d+/)
  })
})

describe("origin failures", () => {
  test("a dead origin gets 502 with Pushpin's text; debug routes say why", async () => {
    const port = deadPort()
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${port}`] })
    try {
      const response = await fetch(`${proxy.baseUrl}/x`)
      expect(response.status).toBe(502)
      expect(await response.text()).toBe("Error while proxying to origin.\n")
    } finally {
      await proxy.stop()
    }
    const debug = await startPushpinTs({ args: ["--route", `*,debug 127.0.0.1:${port}`] })
    try {
      const response = await fetch(`${debug.baseUrl}/x`)
      expect(response.status).toBe(502)
      const text = await response.text()
      expect(text).toStartWith("Error while proxying to origin.\n")
      expect(text).toContain(`127.0.0.1:${port} (connection refused)`)
    } finally {
      await debug.stop()
    }
  })

  test("fails over to the second target when the first refuses connections", async () => {
    const origin = startOrigin(() => new Response("from the second target"))
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${deadPort()} 127.0.0.1:${origin.port}`] })
    try {
      const response = await fetch(`${proxy.baseUrl}/x`, { method: "POST", body: "replayed" })
      expect(response.status).toBe(200)
      expect(await response.text()).toBe("from the second target")
      expect(new TextDecoder().decode(origin.seen[0]?.body)).toBe("replayed")
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })
})

describe("routes", () => {
  test("built-in test route with no config at all", async () => {
    const proxy = await startPushpinTs()
    try {
      const hello = await fetch(`${proxy.baseUrl}/`)
      expect(hello.status).toBe(200)
      expect(await hello.text()).toBe("Hello from the Pushpin test handler!\n")
      const missing = await fetch(`${proxy.baseUrl}/nope`)
      expect(missing.status).toBe(404)
      const stream = await fetch(`${proxy.baseUrl}/stream`)
      expect(stream.status).toBe(200)
      const reader = (stream.body as ReadableStream<Uint8Array>).getReader()
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("[stream opened]\n")
      await reader.cancel()
    } finally {
      await proxy.stop()
    }
  })

  test("a host with routes, none matching, gets 502 No route for host (no fallback to *)", async () => {
    const origin = startOrigin(() => new Response("ok"))
    const proxy = await startPushpinTs({
      args: ["--route", `example.test,path_beg=/a 127.0.0.1:${origin.port}`, "--route", `* 127.0.0.1:${origin.port}`]
    })
    try {
      const matched = await fetch(`${proxy.baseUrl}/a/1`, { headers: { host: "example.test" } })
      expect(matched.status).toBe(200)
      const unmatched = await fetch(`${proxy.baseUrl}/b`, { headers: { host: "example.test" } })
      expect(unmatched.status).toBe(502)
      expect(await unmatched.text()).toContain("No route for host: example.test")
      const other = await fetch(`${proxy.baseUrl}/b`, { headers: { host: "other.test" } })
      expect(other.status).toBe(200)
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })

  test("path_rem, replace_beg, header= and as_host rewrite what the origin sees", async () => {
    const origin = startOrigin((request) => new Response(new URL(request.url).pathname))
    const proxy = await startPushpinTs({
      args: [
        "--route", `*,path_beg=/api/,replace_beg=/v2/,header=X-Route:api,as_host=backend.test 127.0.0.1:${origin.port}`,
        "--route", `*,path_beg=/rem/,path_rem=4 127.0.0.1:${origin.port}`
      ]
    })
    try {
      expect(await (await fetch(`${proxy.baseUrl}/api/items?x=1`)).text()).toBe("/v2/items")
      expect(origin.seen.at(-1)?.headers["x-route"]).toBe("api")
      expect(origin.seen.at(-1)?.headers["host"]).toBe("backend.test")
      expect(await (await fetch(`${proxy.baseUrl}/rem/thing`)).text()).toBe("/thing")
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })

  test("Grip-Sig is signed with the route's sig_key (HS256, iss, exp an hour ahead)", async () => {
    const origin = startOrigin(() => new Response("ok"))
    const proxy = await startPushpinTs({ args: ["--route", `*,sig_iss=tester,sig_key=s3cret 127.0.0.1:${origin.port}`] })
    try {
      await fetch(`${proxy.baseUrl}/x`)
      const token = origin.seen.at(-1)?.headers["grip-sig"] ?? ""
      const [header, claims, signature] = token.split(".")
      expect(JSON.parse(Buffer.from(header ?? "", "base64url").toString())).toEqual({ typ: "JWT", alg: "HS256" })
      const decoded = JSON.parse(Buffer.from(claims ?? "", "base64url").toString()) as { iss: string; exp: number }
      expect(decoded.iss).toBe("tester")
      expect(decoded.exp).toBeGreaterThan(Date.now() / 1000 + 3000)
      expect(signature).toBe(createHmac("sha256", "s3cret").update(`${header}.${claims}`).digest("base64url"))
    } finally {
      await proxy.stop()
      await origin.stop()
    }
  })
})
