import { describe, expect, test } from "bun:test"
import { paramValue, parseHeaderElement, parseHeaderList, parseHeaderPairs, splitHeaderList } from "../../src/grip/header-params.ts"

describe("splitHeaderList", () => {
  test.each([
    ["a", ["a"]],
    ["a, b,c", ["a", "b", "c"]],
    ["a,", ["a"]],
    ["a,,b", ["a", "", "b"]],
    ["a; x=\"1,2\", b", ["a; x=\"1,2\"", "b"]],
    ["a; x=\"q\\\"uote,\", b", ["a; x=\"q\\\"uote,\"", "b"]]
  ] as const)("%p", (input, expected) => {
    expect(splitHeaderList(input)).toEqual([...expected])
  })

  test.each(["a; x=\"open, b", "a; x=\"end\\"])("unterminated quote %p", (input) => {
    expect(splitHeaderList(input)).toBeUndefined()
  })
})

describe("parseHeaderElement", () => {
  test("first part verbatim, then params", () => {
    expect(parseHeaderElement("name=with=equals ; prev-id=7; filter=\"skip-self\"; bare")).toEqual({
      first: "name=with=equals",
      params: [["prev-id", "7"], ["filter", "skip-self"], ["bare", undefined]]
    })
  })

  test("quoted value keeps ; and unescapes", () => {
    const element = parseHeaderElement("x; a=\"1;2 \\\"3\\\"\" junk; b=2")
    expect(element?.params).toEqual([["a", "1;2 \"3\""], ["b", "2"]])
  })

  test("empty value versus no value", () => {
    const element = parseHeaderElement("x; a=; b")
    expect(element?.params).toEqual([["a", ""], ["b", undefined]])
  })

  test("broken quote", () => {
    expect(parseHeaderElement("x; a=\"open")).toBeUndefined()
  })

  test("param lookup is case-insensitive", () => {
    const element = parseHeaderElement("x; Prev-ID=3")
    expect(element === undefined ? undefined : paramValue(element.params, "prev-id")).toBe("3")
  })
})

test("parseHeaderPairs reads the first pair too", () => {
  expect(parseHeaderPairs("user=\"alice b\"")).toEqual([["user", "alice b"]])
  expect(parseHeaderPairs("")).toEqual([])
})

test("parseHeaderList", () => {
  expect(parseHeaderList("a; filter=f1, b")).toEqual([
    { first: "a", params: [["filter", "f1"]] },
    { first: "b", params: [] }
  ])
})
