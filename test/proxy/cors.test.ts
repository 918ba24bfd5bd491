import { describe, expect, test } from "bun:test"
import { applyAutoCors } from "../../src/proxy/cors.ts"

describe("applyAutoCors", () => {
  test("adds Pushpin's CORS headers, echoing the request's Origin and preflight asks", () => {
    const response = new Headers({ "content-type": "text/plain", "content-length": "3", "x-app": "1", "grip-hold": "stream" })
    applyAutoCors(new Headers({ origin: "http://app.test", "access-control-request-method": "PUT", "access-control-request-headers": "X-Token" }), response)
    expect(Object.fromEntries([...response].filter(([name]) => name.startsWith("access-control-")))).toEqual({
      "access-control-allow-credentials": "true",
      "access-control-allow-headers": "X-Token",
      "access-control-allow-methods": "PUT",
      "access-control-allow-origin": "http://app.test",
      "access-control-expose-headers": "x-app",
      "access-control-max-age": "3600"
    })
  })

  test("defaults without Origin or preflight, and never overrides what the origin set", () => {
    const response = new Headers({ "access-control-allow-origin": "https://only.test" })
    applyAutoCors(new Headers(), response)
    expect(response.get("access-control-allow-origin")).toBe("https://only.test")
    expect(response.get("access-control-allow-methods")).toBe("OPTIONS, HEAD, GET, POST, PUT, DELETE")
    expect(response.get("access-control-allow-headers")).toBeNull()
    expect(response.get("access-control-expose-headers")).toBeNull()
  })
})
