import { expect, test } from "bun:test"
import { decodeKeepAliveData, unescapeCString } from "../../src/grip/keepalive.ts"
import { statusReason } from "../../src/grip/status-reasons.ts"
import { err, ok } from "./helpers.ts"

test.each([
  ["plain", [0x70, 0x6c, 0x61, 0x69, 0x6e]],
  ["\\\\\\r\\n", [0x5c, 0x0d, 0x0a]],
  ["\\x00\\xFf", [0x00, 0xff]],
  ["", []]
] as const)("cstring %p", (input, expected) => {
  expect(unescapeCString(input)).toEqual(new Uint8Array(expected))
})

test.each(["\\", "\\t", "\\x", "\\x1", "\\xg0"])("bad cstring %p", (input) => {
  expect(unescapeCString(input)).toBeUndefined()
})

test("raw keeps the received bytes", () => {
  // Fetch gives one character per byte: "\u00e9" here is the single byte 0xE9.
  expect(ok(decodeKeepAliveData("a\u00e9", "raw"))).toEqual(new Uint8Array([0x61, 0xe9]))
})

test("base64 must be base64", () => {
  expect(ok(decodeKeepAliveData("OgoK", "base64"))).toEqual(new Uint8Array([0x3a, 0x0a, 0x0a]))
  expect(err(decodeKeepAliveData("O g", "base64"))).toBe("failed to parse Grip-Keep-Alive base64 format")
})

test.each([
  [200, "OK"],
  [404, "Not Found"],
  [413, "Request Entity Too Large"],
  [418, "Undefined Reason"],
  [511, "Network Authentication Required"]
] as const)("statusReason(%d) = %p", (code, reason) => {
  expect(statusReason(code)).toBe(reason)
})
