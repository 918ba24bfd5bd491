import { describe, expect, test } from "bun:test"
import {
  type Instruct,
  type InstructOptions,
  isGripResponse,
  parseInstruct,
  streamHoldError
} from "../../src/grip/instruct.ts"
import { bytes, err, ok, text } from "./helpers.ts"

const REQUEST_URI = "http://example.com/app/stream?x=1"

interface Origin {
  readonly status?: number
  readonly reason?: string
  readonly headers?: ReadonlyArray<readonly [string, string]>
  readonly body?: string | Uint8Array
}

const parse = (origin: Origin, options?: InstructOptions) => {
  const headers = new Headers()
  for (const [name, value] of origin.headers ?? []) headers.append(name, value)
  const body = origin.body ?? "hello world"
  return parseInstruct(
    {
      status: origin.status ?? 200,
      ...(origin.reason === undefined ? {} : { reason: origin.reason }),
      headers,
      body: typeof body === "string" ? bytes(body) : body,
      requestUri: REQUEST_URI
    },
    options
  )
}

const instruct = (headers: ReadonlyArray<readonly [string, string]>, options?: InstructOptions): Instruct =>
  ok(parse({ headers: [["Content-Type", "text/plain"], ...headers] }, options))

const error = (headers: ReadonlyArray<readonly [string, string]>): string => err(parse({ headers })).message

describe("headers", () => {
  test("no hold: Grip headers stripped, origin response kept", () => {
    const i = ok(parse({ reason: "Fine", headers: [["Content-Type", "text/plain"], ["Grip-Channel", "test"], ["X-A", "1"]] }))
    expect(i.holdMode).toBe("none")
    expect(i.channels).toEqual([{ name: "test", filters: [] }])
    expect(i.response.code).toBe(200)
    expect(i.response.reason).toBe("Fine")
    expect(i.response.headers).toEqual([["content-type", "text/plain"], ["x-a", "1"]])
    expect(text(i.response.body)).toBe("hello world")
    expect(i.timeoutSeconds).toBe(55)
    expect(i.keepAlive).toBeUndefined()
  })

  test("response hold with repeated and comma-separated channels, timeout, meta", () => {
    const i = instruct([
      ["Grip-Hold", "response"],
      ["Grip-Channel", "apple"],
      ["Grip-Channel", "banana, cherry"],
      ["Grip-Timeout", "120"],
      ["Grip-Set-Meta", "foo=bar, bar=\"b,az\""]
    ])
    expect(i.holdMode).toBe("response")
    expect(i.channels.map((c) => c.name)).toEqual(["apple", "banana", "cherry"])
    expect(i.timeoutSeconds).toBe(120)
    expect([...i.meta]).toEqual([["foo", "bar"], ["bar", "b,az"]])
  })

  test("channel params: prev-id and filters", () => {
    const i = instruct([
      ["Grip-Hold", "response"],
      ["Grip-Channel", "apple; prev-id=item1; filter=skip-self"],
      ["Grip-Channel", "banana; filter=f2, cherry; filter=f1; filter=f2"]
    ])
    expect(i.channels).toEqual([
      { name: "apple", prevId: "item1", filters: ["skip-self"] },
      { name: "banana", filters: ["f2"] },
      { name: "cherry", filters: ["f1", "f2"] }
    ])
  })

  test("route prefix and connection_subscription_max", () => {
    const i = instruct([["Grip-Hold", "stream"], ["Grip-Channel", "a, b, c; prev-id=3"]], {
      prefix: "p:",
      connectionSubscriptionMax: 2
    })
    expect(i.channels.map((c) => c.name)).toEqual(["p:a", "p:b"])
  })

  test("channel names are UTF-8", () => {
    // Fetch hands out one character per byte; the name is decoded from those bytes.
    const i = instruct([["Grip-Channel", Buffer.from("café", "utf8").toString("latin1")]])
    expect(i.channels[0]?.name).toBe("café")
  })

  test("timeout floor and default", () => {
    expect(instruct([["Grip-Hold", "response"], ["Grip-Timeout", "1"]]).timeoutSeconds).toBe(5)
    expect(instruct([["Grip-Hold", "response"], ["Grip-Timeout", "0"]]).timeoutSeconds).toBe(5)
    expect(instruct([["Grip-Hold", "response"]]).timeoutSeconds).toBe(55)
  })

  test.each([
    ["Grip-Status", "404", 404, "Not Found"],
    ["Grip-Status", "404 Nothing To See Here", 404, "Nothing To See Here"],
    ["Grip-Status", "299", 299, "Undefined Reason"],
    ["Grip-Status", "0", 0, "Undefined Reason"]
  ] as const)("%s: %s", (name, value, code, reason) => {
    const i = instruct([[name, value]])
    expect(i.response.code).toBe(code)
    expect(i.response.reason).toBe(reason)
    expect(i.status).toEqual({ code, reason })
  })

  test("Grip-Status without reason replaces the origin's reason", () => {
    const i = ok(parse({ status: 200, reason: "Fine", headers: [["Grip-Status", "503"]] }))
    expect(i.response.reason).toBe("Service Unavailable")
  })

  test("Grip-Expose-Headers keeps only the named headers", () => {
    const i = instruct([
      ["Grip-Hold", "stream"],
      ["Grip-Channel", "c"],
      ["Grip-Expose-Headers", "X-Keep, content-type"],
      ["X-Keep", "1"],
      ["X-Drop", "2"]
    ])
    expect(i.exposeHeaders).toEqual(["x-keep", "content-type"])
    expect(i.response.headers).toEqual([["content-type", "text/plain"], ["x-keep", "1"]])
  })

  test.each([
    ["<next>; rel=next", { uri: "http://example.com/app/next", timeoutSeconds: 120 }, undefined],
    ["</other?p=2>; rel=next; timeout=30", { uri: "http://example.com/other?p=2", timeoutSeconds: 30 }, undefined],
    ["<https://cdn.example/x>; rel=next", { uri: "https://cdn.example/x", timeoutSeconds: 120 }, undefined],
    ["<gone>; rel=gone", undefined, "http://example.com/app/gone"],
    ["<a>; rel=next, <../b>; rel=gone", { uri: "http://example.com/app/a", timeoutSeconds: 120 }, "http://example.com/b"],
    ["<ignored>", undefined, undefined]
  ] as const)("Grip-Link %p", (value, next, gone) => {
    const i = instruct([["Grip-Link", value]])
    expect(i.nextLink).toEqual(next)
    expect(i.goneLink).toBe(gone)
  })

  test.each([
    [["Grip-Hold", "forever"], "Grip-Hold must be set to either 'response' or 'stream'"],
    [["Grip-Timeout", "soon"], "failed to parse Grip-Timeout"],
    [["Grip-Timeout", "-1"], "Grip-Timeout has invalid value"],
    [["Grip-Channel", "a,,b"], "failed to parse Grip-Channel"],
    [["Grip-Channel", "a; x=\"open"], "failed to parse Grip-Channel"],
    [["Grip-Channel", "a; filter=1; filter=2; filter=3; filter=4; filter=5; filter=6"], "too many filters for channel 'a'"],
    [["Grip-Status", "abc"], "Grip-Status contains invalid status code"],
    [["Grip-Status", "1000 Big"], "Grip-Status contains invalid status code"],
    [["Grip-Set-Meta", "a=1,,b=2"], "Grip-Set-Meta cannot be empty"],
    [["Grip-Link", "next; rel=next"], "failed to parse Grip-Link value"],
    [["Grip-Link", "<>; rel=next"], "failed to parse Grip-Link value"],
    [["Grip-Link", "<http://[bad>; rel=next"], "Grip-Link contains invalid link"],
    [["Grip-Link", "<n>; rel=next; timeout=x"], "failed to parse Grip-Link timeout value"],
    [["Grip-Link", "<n>; rel=next; timeout=-5"], "Grip-Link timeout has invalid value"]
  ] as const)("%p → %p", (header, message) => {
    expect(error([header])).toBe(message)
  })

  test("up to five filters is fine", () => {
    const i = instruct([["Grip-Channel", "a; filter=1; filter=2; filter=3; filter=4; filter=5"]])
    expect(i.channels[0]?.filters).toHaveLength(5)
  })
})

describe("Grip-Keep-Alive", () => {
  const keepAlive = (value: string) => instruct([["Grip-Hold", "stream"], ["Grip-Channel", "c"], ["Grip-Keep-Alive", value]]).keepAlive

  test("absent", () => {
    expect(instruct([["Grip-Hold", "stream"], ["Grip-Channel", "c"]]).keepAlive).toBeUndefined()
  })

  test.each([
    ["ping1\\n; timeout=10", "ping1\\n", 10, "idle"],
    ["ping2\\n; format=cstring", "ping2\n", 55, "idle"],
    ["a\\\\b\\r\\x41\\x7e; format=cstring", "a\\b\rA~", 55, "idle"],
    ["cGluZzMK; format=base64", "ping3\n", 55, "idle"],
    ["cGluZzMK; format=base64", "ping3\n", 55, "idle"],
    ["ping4; mode=interval", "ping4", 55, "interval"],
    ["ping5; mode=idle; timeout=0", "ping5", 1, "idle"],
    ["\"quoted\"; format=raw", "\"quoted\"", 55, "idle"]
  ] as const)("%p", (value, data, timeoutSeconds, mode) => {
    const ka = keepAlive(value)
    expect(text(ka?.data)).toBe(data)
    expect(ka?.timeoutSeconds).toBe(timeoutSeconds)
    expect(ka?.mode).toBe(mode)
  })

  test("cstring \\xHH gives raw bytes", () => {
    expect(keepAlive("\\xff\\x00; format=cstring")?.data).toEqual(new Uint8Array([0xff, 0x00]))
  })

  test.each([
    ["; format=raw", "Grip-Keep-Alive cannot be empty"],
    ["", "Grip-Keep-Alive cannot be empty"],
    ["x; format=hex", "no such Grip-Keep-Alive format 'hex'"],
    ["x; mode=sometimes", "no such Grip-Keep-Alive mode 'sometimes'"],
    ["x; timeout=abc", "failed to parse Grip-Keep-Alive timeout value"],
    ["x; timeout=-1", "Grip-Keep-Alive timeout has invalid value"],
    ["bad\\q; format=cstring", "failed to parse Grip-Keep-Alive cstring format"],
    ["bad\\x4; format=cstring", "failed to parse Grip-Keep-Alive cstring format"],
    ["bad\\xzz; format=cstring", "failed to parse Grip-Keep-Alive cstring format"],
    ["trailing\\; format=cstring", "failed to parse Grip-Keep-Alive cstring format"],
    ["!!!; format=base64", "failed to parse Grip-Keep-Alive base64 format"],
    ["x; mode=\"open", "failed to parse Grip-Keep-Alive"]
  ] as const)("%p → %p", (value, message) => {
    expect(error([["Grip-Keep-Alive", value]])).toBe(message)
  })
})

describe("application/grip-instruct", () => {
  const json = (
    doc: unknown,
    headers: ReadonlyArray<readonly [string, string]> = [],
    status = 200,
    options?: InstructOptions
  ) =>
    parse({
      status,
      headers: [["Content-Type", "application/grip-instruct"], ...headers],
      body: typeof doc === "string" ? doc : JSON.stringify(doc)
    }, options)

  test("no hold: the JSON response replaces the origin's", () => {
    const i = ok(json({ response: { code: 200, headers: { "Content-Type": "text/plain" }, body: "hello world" } }))
    expect(i.holdMode).toBe("none")
    expect(i.response).toEqual({
      code: 200,
      reason: "OK",
      headers: [["Content-Type", "text/plain"]],
      body: bytes("hello world")
    })
  })

  test("response hold with channels, timeout, meta", () => {
    const i = ok(json({
      hold: {
        mode: "response",
        channels: [{ name: "apple", "prev-id": "item1", filters: ["f1"] }, { name: "banana" }],
        timeout: 120,
        meta: { foo: "bar" }
      },
      response: { code: 404, headers: [["X-A", "1"], ["X-A", "2"]], "body-bin": "aGk=" }
    }, [["Grip-Set-Meta", "from=header"]], 200, { prefix: "p-" }))
    expect(i.holdMode).toBe("response")
    expect(i.channels).toEqual([
      { name: "p-apple", prevId: "item1", filters: ["f1"] },
      { name: "p-banana", filters: [] }
    ])
    expect(i.timeoutSeconds).toBe(120)
    expect([...i.meta]).toEqual([["from", "header"], ["foo", "bar"]])
    expect(i.response.code).toBe(404)
    expect(i.response.reason).toBe("Not Found")
    expect(i.response.headers).toEqual([["X-A", "1"], ["X-A", "2"]])
    expect(text(i.response.body)).toBe("hi")
  })

  test("mode defaults to response; stream mode; keep-alive", () => {
    expect(ok(json({ hold: { channels: [{ name: "a" }] } })).holdMode).toBe("response")
    const i = ok(json({ hold: { mode: "stream", channels: [{ name: "a" }], "keep-alive": { content: ":\n", timeout: 20 } } }))
    expect(i.holdMode).toBe("stream")
    expect(i.keepAlive).toEqual({ data: bytes(":\n"), timeoutSeconds: 20, mode: "interval" })
    const bin = ok(json({ hold: { mode: "stream", channels: [{ name: "a" }], "keep-alive": { "content-bin": "eA==" } } }))
    expect(bin.keepAlive).toEqual({ data: bytes("x"), timeoutSeconds: 55, mode: "interval" })
  })

  test("headers still apply: Grip-Status and Grip-Link; JSON channels are added", () => {
    const i = ok(json({ hold: { channels: [{ name: "b" }] } }, [
      ["Grip-Status", "202"],
      ["Grip-Link", "<next>; rel=next"],
      ["Grip-Channel", "a"]
    ]))
    expect(i.response.code).toBe(202)
    expect(i.response.reason).toBe("Accepted")
    expect(i.response.headers).toEqual([])
    expect(i.response.body).toEqual(new Uint8Array())
    expect(i.nextLink?.uri).toBe("http://example.com/app/next")
    expect(i.channels.map((c) => c.name)).toEqual(["a", "b"])
  })

  test("JSON reason wins; JSON code resets the reason", () => {
    expect(ok(json({ response: { code: 200, reason: "Fine" } })).response.reason).toBe("Fine")
    expect(ok(json({ response: { code: 410 } }, [["Grip-Status", "200 Custom"]])).response.reason).toBe("Gone")
  })

  test.each([
    ["{bad json", "failed to parse application/grip-instruct content as JSON"],
    ["[1]", "instruct must be an object"],
    [{ hold: 5 }, "instruct contains 'hold' with wrong type"],
    [{ hold: {} }, "hold does not contain 'channels'"],
    [{ hold: { channels: {} } }, "hold contains 'channels' with wrong type"],
    [{ hold: { mode: "poll", channels: [] } }, "hold 'mode' must be set to either 'response' or 'stream'"],
    [{ hold: { mode: 1, channels: [] } }, "hold contains 'mode' with wrong type"],
    [{ hold: { channels: ["a"] } }, "channel is not an object"],
    [{ hold: { channels: [{}] } }, "channel does not contain 'name'"],
    [{ hold: { channels: [{ name: 1 }] } }, "channel contains 'name' with wrong type"],
    [{ hold: { channels: [{ name: "a", filters: [1] }] } }, "filters contains value with wrong type"],
    [{ hold: { channels: [{ name: "a", filters: ["1", "2", "3", "4", "5", "6"] }] } }, "too many filters for channel 'a'"],
    [{ hold: { channels: [], timeout: "x" } }, "hold contains 'timeout' with wrong type"],
    [{ hold: { channels: [], timeout: -1 } }, "hold contains 'timeout' with invalid value"],
    [{ hold: { channels: [], meta: { a: 1 } } }, "'meta' contains 'a' with wrong type"],
    [{ hold: { channels: [], "keep-alive": { content: 5 } } }, "keep-alive contains 'content' with wrong type"],
    [{ hold: { channels: [], "keep-alive": { "content-bin": "@@" } } }, "keep-alive contains 'content-bin' with invalid base64"],
    [{ response: [] }, "instruct contains 'response' with wrong type"],
    [{ response: { code: 1000 } }, "response contains 'code' with invalid value"],
    [{ response: { code: "200" } }, "response contains 'code' with wrong type"],
    [{ response: { headers: 5 } }, "response contains 'headers' with wrong type"],
    [{ response: { headers: { A: 1 } } }, "headers contains 'A' with wrong type"],
    [{ response: { headers: [5] } }, "headers contains element with wrong type"],
    [{ response: { headers: [["A"]] } }, "headers contains list with wrong number of elements"],
    [{ response: { headers: [["A", "b", "c"]] } }, "headers contains list with wrong number of elements"],
    [{ response: { headers: [[1, "b"]] } }, "header contains name element with wrong type"],
    [{ response: { headers: [["A", 2]] } }, "header contains value element with wrong type"],
    [{ response: { body: 5 } }, "response contains 'body' with wrong type"]
  ] as const)("%j → %s", (doc, message) => {
    expect(err(json(doc)).message).toBe(message)
  })

  test("only with status 200", () => {
    expect(err(json({ response: {} }, [], 404)).message).toBe(
      "response code for application/grip-instruct content must be 200"
    )
  })
})

test("isGripResponse", () => {
  expect(isGripResponse(new Headers({ "Content-Type": "application/grip-instruct; charset=utf-8" }))).toBe(true)
  expect(isGripResponse(new Headers({ "Grip-Foo": "x" }))).toBe(true)
  expect(isGripResponse(new Headers({ "Content-Type": "text/plain" }))).toBe(false)
})

test("streamHoldError: prev-id without next link", () => {
  const held = instruct([["Grip-Hold", "stream"], ["Grip-Channel", "a; prev-id=1"]])
  expect(streamHoldError(held)?.message).toBe("channel 'a' specifies prev-id, but no next link found")
  const linked = instruct([["Grip-Hold", "stream"], ["Grip-Channel", "a; prev-id=1"], ["Grip-Link", "<n>; rel=next"]])
  expect(streamHoldError(linked)).toBeUndefined()
})
