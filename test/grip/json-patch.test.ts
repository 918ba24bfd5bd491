import { describe, expect, test } from "bun:test"
import { Result } from "effect"
import { applyJsonPatch } from "../../src/grip/json-patch.ts"
import type { JsonPatchOperation } from "../../src/grip/publish.ts"

describe("applyJsonPatch", () => {
  test.each<[string, unknown, ReadonlyArray<JsonPatchOperation>, unknown]>([
    ["add a member", { a: 1 }, [{ op: "add", path: "/b", value: 2 }], { a: 1, b: 2 }],
    ["add to an array end", { l: [1] }, [{ op: "add", path: "/l/-", value: 2 }], { l: [1, 2] }],
    ["insert into an array", { l: [1, 3] }, [{ op: "add", path: "/l/1", value: 2 }], { l: [1, 2, 3] }],
    ["replace", { a: { b: 1 } }, [{ op: "replace", path: "/a/b", value: "x" }], { a: { b: "x" } }],
    ["remove", { a: 1, b: 2 }, [{ op: "remove", path: "/a" }], { b: 2 }],
    ["move", { a: 1 }, [{ op: "move", from: "/a", path: "/b" }], { b: 1 }],
    ["copy", { a: [1] }, [{ op: "copy", from: "/a", path: "/b" }], { a: [1], b: [1] }],
    ["test then replace", { a: 1 }, [{ op: "test", path: "/a", value: 1 }, { op: "replace", path: "/a", value: 2 }], { a: 2 }],
    ["escaped pointer", { "a/b": 1 }, [{ op: "replace", path: "/a~1b", value: 2 }], { "a/b": 2 }],
    ["replace the root", { a: 1 }, [{ op: "replace", path: "", value: [1] }], [1]]
  ])("%s", (_name, document, operations, expected) => {
    const result = applyJsonPatch(document, operations)
    expect(Result.isSuccess(result) ? result.success : result.failure).toEqual(expected)
  })

  test.each<[string, unknown, ReadonlyArray<JsonPatchOperation>, string]>([
    ["failing test", { a: 1 }, [{ op: "test", path: "/a", value: 2 }], "test failed at /a"],
    ["missing member", { a: 1 }, [{ op: "remove", path: "/b" }], "path not found: /b"],
    ["replace missing", { a: 1 }, [{ op: "replace", path: "/b", value: 1 }], "path not found: /b"],
    ["bad pointer", { a: 1 }, [{ op: "add", path: "a", value: 1 }], "invalid JSON pointer: a"]
  ])("%s fails with a reason", (_name, document, operations, message) => {
    const result = applyJsonPatch(document, operations)
    expect(Result.isFailure(result) ? result.failure : "succeeded").toBe(message)
  })

  test("the input document is not modified", () => {
    const document = { a: [1] }
    applyJsonPatch(document, [{ op: "add", path: "/a/-", value: 2 }])
    expect(document).toEqual({ a: [1] })
  })
})
