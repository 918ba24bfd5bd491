import { describe, expect, test } from "bun:test"
import type { JsonpOptions } from "../../src/config/types.ts"
import { parseJsonpRequest, wrapHeldResponse, wrapProxiedResponse } from "../../src/proxy/jsonp.ts"

const extended: JsonpOptions = { mode: "extended", callbackParam: "callback", bodyParam: undefined, defaultCallback: undefined, defaultMethod: "GET" }
const basic: JsonpOptions = { ...extended, mode: "basic", defaultMethod: "POST" }
const bytes = (text: string) => new TextEncoder().encode(text)

describe("parseJsonpRequest", () => {
  test("only a GET with the callback parameter is JSON-P", () => {
    expect(parseJsonpRequest("POST", "?callback=cb", new Headers(), extended)._tag).toBe("NotJsonp")
    expect(parseJsonpRequest("GET", "?a=1", new Headers(), extended)._tag).toBe("NotJsonp")
    expect(parseJsonpRequest("GET", "", new Headers(), extended)._tag).toBe("NotJsonp")
    expect(parseJsonpRequest("GET", "?callback=cb", new Headers(), extended)._tag).toBe("Jsonp")
  })

  test("a default callback activates it only when the body parameter is present", () => {
    const options: JsonpOptions = { ...extended, defaultCallback: "handle", bodyParam: "data" }
    expect(parseJsonpRequest("GET", "?x=1", new Headers(), options)._tag).toBe("NotJsonp")
    const parsed = parseJsonpRequest("GET", "?data=%7B%7D&x=1", new Headers(), options)
    if (parsed._tag !== "Jsonp") throw new Error(parsed._tag)
    expect(parsed.context).toEqual({ callback: "handle", extended: true })
    expect(new TextDecoder().decode(parsed.body)).toBe("{}")
    expect(parsed.headers.get("content-type")).toBe("application/json")
    expect(parsed.search).toBe("?x=1")
  })

  test("_method, _headers and _body describe the request; the rest of the query stays as sent", () => {
    const client = new Headers({ host: "example.com", accept: "text/html", "user-agent": "t" })
    const parsed = parseJsonpRequest(
      "GET",
      "?a=%20b&callback=my.cb&_method=PUT&_headers=%7B%22X-A%22%3A%221%22%2C%22Host%22%3A%22evil%22%7D&_body=hello%20there&z",
      client,
      extended
    )
    if (parsed._tag !== "Jsonp") throw new Error(parsed._tag)
    expect(parsed.context.callback).toBe("my.cb")
    expect(parsed.method).toBe("PUT")
    expect(parsed.search).toBe("?a=%20b&z")
    expect(parsed.headers.get("x-a")).toBe("1")
    expect(parsed.headers.get("host")).toBeNull()
    expect(parsed.headers.get("accept")).toBe("*/*")
    expect(parsed.headers.get("user-agent")).toBe("t")
    expect(new TextDecoder().decode(parsed.body)).toBe("hello there")
  })

  test("the method defaults to the route's (POST for basic mode)", () => {
    const parsed = parseJsonpRequest("GET", "?callback=cb", new Headers(), basic)
    if (parsed._tag !== "Jsonp") throw new Error(parsed._tag)
    expect(parsed.method).toBe("POST")
    expect(parsed.search).toBe("")
    expect(parsed.context.extended).toBe(false)
  })

  test.each([
    ["?callback=", "Invalid callback parameter."],
    ["?callback=cb&_method=", "Invalid _method parameter."],
    ["?callback=cb&_headers=nope", "Invalid _headers parameter."],
    ["?callback=cb&_headers=%5B%5D", "Invalid _headers parameter."],
    ["?callback=cb&_headers=%7B%22a%22%3A1%7D", "Invalid _headers parameter."],
    ["?callback=cb&_body=%E0%A4%A", "Invalid _body parameter."]
  ])("%s is rejected: %s", (search, message) => {
    expect(parseJsonpRequest("GET", search, new Headers(), extended)).toEqual({ _tag: "Invalid", message })
  })
})

describe("wrapping", () => {
  const response = {
    status: 200,
    statusText: "OK",
    headers: new Headers({ "content-type": "text/plain", "cache-control": "no-cache", "content-length": "14" }),
    body: bytes('hello "world"\n')
  }

  test("extended, proxied: Pushpin's spacing, first value per header, Cache-Control mirrored", () => {
    const wrapped = wrapProxiedResponse({ callback: "cb", extended: true }, response)
    expect(wrapped.body).toBe(
      '/**/cb({"code": 200, "reason": "OK", "headers": {"Cache-Control":"no-cache","Content-Length":"14","Content-Type":"text/plain"}, "body": "hello \\"world\\"\\n"});\n'
    )
    expect(Object.fromEntries(wrapped.headers)).toEqual({ "content-type": "application/javascript", "cache-control": "no-cache" })
  })

  test("basic: the raw body, one trailing newline trimmed", () => {
    expect(wrapProxiedResponse({ callback: "cb", extended: false }, response).body).toBe('/**/cb(hello "world");\n')
    expect(wrapProxiedResponse({ callback: "cb", extended: false }, { ...response, body: bytes("[1]\r\n\r\n") }).body).toBe("/**/cb([1]\r\n);\n")
  })

  test("extended, held: compact JSON with sorted keys, no Content-Length, other headers kept on the wrapper", () => {
    const wrapped = wrapHeldResponse({ callback: "cb", extended: true }, {
      status: 202,
      statusText: "Accepted",
      headers: new Headers({ "x-thing": "a", "content-type": "text/plain", "content-length": "5" }),
      body: bytes("done\n")
    })
    expect(wrapped.body).toBe('/**/cb({"body":"done\\n","code":202,"headers":{"Content-Type":"text/plain","X-Thing":"a"},"reason":"Accepted"});\n')
    expect(Object.fromEntries(wrapped.headers)).toEqual({ "content-type": "application/javascript", "x-thing": "a" })
  })
})
