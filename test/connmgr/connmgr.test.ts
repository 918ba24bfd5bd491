/**
 * The Host check connmgr applies before a request reaches the proxy (RFC 9112 §3.2).
 */
import { describe, expect, test } from "bun:test"
import { isValidHostHeader } from "../../src/connmgr/connmgr.ts"

describe("isValidHostHeader", () => {
  test.each([
    ["example.com", true],
    ["example.com:8080", true],
    ["127.0.0.1:7999", true],
    ["[::1]:7999", true],
    ["[2001:db8::1]", true],
    ["xn--bcher-kva.example", true],
    ["under_score.example", true],
    ["", true],
    ["host:", true],
    ["a, b", false],
    ["a.example/admin", false],
    ["a?b", false],
    ["a#b", false],
    ["user@a.example", false],
    ["a example", false],
    ["a\tb", false],
    ["[::1", false],
    ["a:b:c", false],
    ["Ã©.example", false]
  ] as const)("%p → %p", (host, valid) => {
    expect(isValidHostHeader(host)).toBe(valid)
  })

  test("no Host at all is left to Bun (it refuses HTTP/1.1 without one, HTTP/1.0 may omit it)", () => {
    expect(isValidHostHeader(null)).toBe(true)
  })
})
