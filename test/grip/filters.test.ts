import { describe, expect, test } from "bun:test"
import { Result } from "effect"
import {
  applyFilters,
  contentFiltersMatch,
  type FilterContext,
  renderFormat,
  responseContentFilters
} from "../../src/grip/filters.ts"
import { bytes, text } from "./helpers.ts"

const context = (parts: {
  sub?: Record<string, string>
  pub?: Record<string, string>
  subscriptions?: Record<string, string | undefined>
  content?: string
}): FilterContext => ({
  subscriptionMeta: new Map(Object.entries(parts.sub ?? {})),
  publishMeta: new Map(Object.entries(parts.pub ?? {})),
  subscriptions: new Map(Object.entries(parts.subscriptions ?? { mine: undefined })),
  ...(parts.content === undefined ? {} : { content: bytes(parts.content) })
})

describe("delivery filters", () => {
  test.each([
    ["skip-self", { sub: { user: "alice" }, pub: { sender: "alice" } }, false],
    ["skip-self", { sub: { user: "alice" }, pub: { sender: "bob" } }, true],
    ["skip-self", { sub: {}, pub: { sender: "alice" } }, true],
    ["skip-self", { sub: { user: "alice" }, pub: {} }, true],
    ["skip-users", { sub: { user: "bob" }, pub: { skip_users: "alice, bob ,carol" } }, false],
    ["skip-users", { sub: { user: "dave" }, pub: { skip_users: "alice,bob" } }, true],
    ["skip-users", { sub: {}, pub: { skip_users: "alice," } }, true],
    ["require-sub", { pub: { require_sub: "other" }, subscriptions: { mine: "1", other: undefined } }, true],
    ["require-sub", { pub: { require_sub: "other" }, subscriptions: { mine: "1" } }, false],
    ["require-sub", { pub: {} }, true],
    ["no-such-filter", {}, true]
  ] as const)("%s %j → send %p", (filter, parts, send) => {
    expect(applyFilters([filter], context(parts)).send).toBe(send)
  })

  test("stops at the first drop", () => {
    const outcome = applyFilters(
      ["skip-self", "var-subst"],
      context({ sub: { user: "alice" }, pub: { sender: "alice" }, content: "%(missing)s" })
    )
    expect(outcome).toEqual({ send: false })
  })

  test("without content only decisions run", () => {
    expect(applyFilters(["var-subst", "build-id"], context({}))).toEqual({ send: true })
  })
})

describe("var-subst", () => {
  test("substitutes sub meta (Pushpin's filter test)", () => {
    const outcome = applyFilters(["skip-self", "var-subst"], context({ sub: { user: "alice" }, content: "hello %(user)s" }))
    expect(outcome.send).toBe(true)
    expect(text(outcome.content)).toBe("hello alice")
  })

  test("%% and escapes in names", () => {
    const outcome = applyFilters(["var-subst"], context({ sub: { "a)b": "X" }, content: "100%% %(a\\)b)s" }))
    expect(text(outcome.content)).toBe("100% X")
  })

  test.each([
    ["%(nope)s", "No such variable 'nope' at position 7"],
    ["%s", "Directive 's' requires argument at position 1"],
    ["%(user)x", "Unknown directive 'x' at position 7"],
    ["50% off", "Unknown directive ' ' at position 3"],
    ["end %", "Expected directive after '%' at position 4"],
    ["%(user", "Unterminated field starting at position 1"],
    ["%(user)", "Expected directive after ')' at position 6"]
  ] as const)("%p → %p", (content, message) => {
    const outcome = applyFilters(["var-subst"], context({ sub: { user: "alice" }, content }))
    expect(outcome.send).toBe(false)
    expect(outcome.error?._tag).toBe("FilterError")
    expect(outcome.error?.filter).toBe("var-subst")
    expect(outcome.error?.message).toBe(message)
  })
})

describe("build-id", () => {
  const run = (sub: Record<string, string>, subscriptions: Record<string, string | undefined>, content: string) =>
    applyFilters(["build-id"], context({ sub, subscriptions, content }))

  test.each([
    [{ id_format: "%(a)s:%(b)s" }, { a: "1", b: "2" }, "id=%I.", "id=1:2."],
    [{ id_format: "%(a)s", id_encoding: "hex" }, { a: "C3PO" }, "%I", "4333504f"],
    [{ id_format: "x" }, { a: "1" }, "%(R2D2)I", "R2D2"],
    [{ id_format: "x", id_encoding: "hex" }, { a: "1" }, "%(R2D2)I", "52324432"],
    [{ id_format: "x" }, { a: "1" }, "no directives", "no directives"]
  ] as const)("%j %j %p → %p", (sub, subscriptions, content, expected) => {
    const outcome = run(sub, subscriptions, content)
    expect(outcome.error).toBeUndefined()
    expect(text(outcome.content)).toBe(expected)
  })

  test.each([
    [{}, { a: "1" }, "%I", "no sub meta 'id_format'"],
    [{ id_format: "%(b)s" }, { a: "1" }, "%I", "failed to render ID: No such variable 'b' at position 4"],
    [{ id_format: "%(a)s" }, { a: undefined }, "%I", "failed to render ID: No such variable 'a' at position 4"],
    [{ id_format: "%(a)s" }, {}, "%I", "No ID specified and no default ID in context at position 1"],
    [{ id_format: "%(a)s", id_encoding: "b64" }, { a: "1" }, "%I", "unsupported encoding: b64"],
    [{ id_format: "%(a)s" }, { a: "1" }, "%s", "Unknown directive 's' at position 1"]
  ] as const)("%j %j %p → %p", (sub, subscriptions, content, message) => {
    const outcome = run(sub, subscriptions, content)
    expect(outcome.send).toBe(false)
    expect(outcome.error?.message).toBe(message)
  })
})

test("renderFormat works on bytes", () => {
  const result = renderFormat(new Uint8Array([0xff, 0x25, 0x25, 0x00]), () => Result.fail("unused"))
  expect(Result.isSuccess(result) ? result.success : undefined).toEqual(new Uint8Array([0xff, 0x25, 0x00]))
})

test("contentFiltersMatch compares the content-rewriting filters in order", () => {
  expect(contentFiltersMatch(["skip-self", "var-subst"], undefined)).toBe(true)
  expect(contentFiltersMatch(["skip-self", "var-subst"], ["var-subst"])).toBe(true)
  expect(contentFiltersMatch(["var-subst", "build-id"], ["build-id", "var-subst"])).toBe(false)
  expect(contentFiltersMatch(["skip-self"], [])).toBe(true)
  expect(contentFiltersMatch(["var-subst"], [])).toBe(false)
})

test("responseContentFilters collects build-id once", () => {
  expect(responseContentFilters([["skip-self", "build-id"], ["var-subst", "build-id"]])).toEqual(["build-id"])
})
