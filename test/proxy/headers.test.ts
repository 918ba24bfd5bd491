import { describe, expect, test } from "bun:test"
import { parseRouteLines } from "../../src/config/routes.ts"
import type { ProxySettings, Route } from "../../src/config/types.ts"
import { applyXForwardedFor, clientResponseHeaders, isGripResponse, originRequestHeaders, rewritePath, splitRequestTarget, type RequestHeaderContext } from "../../src/proxy/headers.ts"

const route = (line: string): Route => {
  const parsed = parseRouteLines([line])
  const first = parsed.routes[0]
  if (first === undefined) throw new Error(`route did not parse: ${JSON.stringify(parsed.warnings)}`)
  return first
}

const proxySettings: RequestHeaderContext["proxy"] = {
  setXForwardedProtocol: "proto-only",
  xForwardedFor: { truncate: undefined, append: false },
  acceptPushpinRoute: false,
  cdnLoop: undefined
}

const context = (overrides: Partial<RequestHeaderContext> = {}): RequestHeaderContext => ({
  route: route("* 127.0.0.1:8080"),
  proxy: proxySettings,
  peerAddress: () => "192.0.2.7",
  scheme: "http",
  host: "app.test",
  gripSig: undefined,
  ...overrides
})

describe("originRequestHeaders", () => {
  test("removes hop-by-hop, encoding and Connection-listed headers; asks for identity", () => {
    const client = new Headers({
      connection: "keep-alive, x-hop",
      "x-hop": "1",
      "keep-alive": "timeout=5",
      "accept-encoding": "gzip, br",
      "content-encoding": "gzip",
      "transfer-encoding": "chunked",
      expect: "100-continue",
      te: "trailers",
      "x-kept": "yes"
    })
    const out = originRequestHeaders(client, context())
    expect([...out.keys()].sort()).toEqual(["accept-encoding", "grip-feature", "host", "x-kept"])
    expect(out.get("accept-encoding")).toBe("identity")
  })

  test("client Grip-* headers never reach the origin; the proxy's own Grip-Sig does", () => {
    const client = new Headers({ "grip-sig": "forged", "Grip-Channel": "x", "grip-last": "y" })
    expect(originRequestHeaders(client, context()).get("grip-sig")).toBeNull()
    const signed = originRequestHeaders(client, context({ gripSig: "token" }))
    expect(signed.get("grip-sig")).toBe("token")
    expect(signed.get("grip-channel")).toBeNull()
    const pure = originRequestHeaders(client, context({ gripSig: "token", route: route("*,no_grip 127.0.0.1:1") }))
    expect(pure.get("grip-sig")).toBeNull()
    expect(pure.get("grip-feature")).toBeNull()
    expect(signed.get("grip-feature")).toContain("filter:skip-self")
  })

  test.each([
    ["proto-only", "http", undefined, undefined],
    ["proto-only", "https", "https", undefined],
    ["true", "https", "https", "https"],
    ["none", "https", "spoofed", undefined]
  ] as const)("set_x_forwarded_protocol=%s on %s", (mode, scheme, proto, protocol) => {
    const client = new Headers({ "x-forwarded-proto": "spoofed" })
    const out = originRequestHeaders(client, context({ scheme, proxy: { ...proxySettings, setXForwardedProtocol: mode } }))
    expect(out.get("x-forwarded-proto") ?? undefined).toBe(proto)
    expect(out.get("x-forwarded-protocol") ?? undefined).toBe(protocol)
  })

  test.each([
    [{ truncate: undefined, append: false }, "10.0.0.1, 10.0.0.2", "10.0.0.1, 10.0.0.2"],
    [{ truncate: undefined, append: true }, "10.0.0.1", "10.0.0.1, 192.0.2.7"],
    [{ truncate: 0, append: true }, "10.0.0.1, 10.0.0.2", "192.0.2.7"],
    [{ truncate: 1, append: false }, "10.0.0.1, 10.0.0.2", "10.0.0.2"],
    [{ truncate: 0, append: false }, "10.0.0.1", undefined]
  ] as const)("x_forwarded_for %o", (rules, received, expected) => {
    expect(applyXForwardedFor(received, rules, () => "192.0.2.7")).toBe(expected)
  })

  test("Host comes from the context; route header= sets and an empty value removes", () => {
    const client = new Headers({ host: "client.test", "x-remove": "1" })
    const out = originRequestHeaders(client, context({ host: "backend.test", route: route('*,header=X-Added:yes,header="X-Remove:" 127.0.0.1:1') }))
    expect(out.get("host")).toBe("backend.test")
    expect(out.get("x-added")).toBe("yes")
    expect(out.get("x-remove")).toBeNull()
  })

  test("accept_pushpin_route strips Pushpin-Route; cdn_loop appends", () => {
    const client = new Headers({ "pushpin-route": "r1", "cdn-loop": "upstream" })
    const out = originRequestHeaders(client, context({ proxy: { ...proxySettings, acceptPushpinRoute: true, cdnLoop: "pushpin-ts" } }))
    expect(out.get("pushpin-route")).toBeNull()
    expect(out.get("cdn-loop")).toBe("upstream, pushpin-ts")
  })
})

describe("responses", () => {
  test.each([
    [{ "grip-hold": "response" }, true],
    [{ "Grip-Channel": "a" }, true],
    [{ "content-type": "application/grip-instruct; charset=utf-8" }, true],
    [{ "content-type": "application/json", "x-grip": "no" }, false],
    [{}, false]
  ] as const)("isGripResponse %o", (headers, expected) => {
    expect(isGripResponse(new Headers(headers))).toBe(expected)
  })

  test("pass-through responses lose connection-scoped headers only", () => {
    const out = clientResponseHeaders(new Headers({ connection: "close", "keep-alive": "x", "transfer-encoding": "chunked", "content-type": "text/plain", "set-cookie": "a=1" }))
    expect([...out.keys()].sort()).toEqual(["content-type", "set-cookie"])
  })
})

describe("rewritePath", () => {
  test.each([
    ["*,path_beg=/api/,replace_beg=/v2/ 127.0.0.1:1", "/api/items", "/v2/items"],
    ["*,path_beg=/rem,path_rem=4 127.0.0.1:1", "/rem/thing", "/thing"],
    ["*,path_rem=100 127.0.0.1:1", "/short", "/"],
    ["* 127.0.0.1:1", "/unchanged", "/unchanged"]
  ])("%s: %s -> %s", (line, path, expected) => {
    expect(rewritePath(path, route(line))).toBe(expected)
  })
})

describe("splitRequestTarget", () => {
  test.each([
    ["http://host:7999/a/b?x=1&y=2", "/a/b", "?x=1&y=2"],
    ["http://host/", "/", ""],
    ["/relative?q", "/relative", "?q"],
    ["http://host", "/", ""]
  ])("%s", (url, path, search) => {
    expect(splitRequestTarget(url)).toEqual({ path, search })
  })
})
