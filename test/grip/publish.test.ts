import { describe, expect, test } from "bun:test"
import { decodePublishBody, decodePublishItem, type PublishItem } from "../../src/grip/publish.ts"
import { bytes, err, ok } from "./helpers.ts"

const body = (...items: ReadonlyArray<unknown>) => JSON.stringify({ items })

const one = (item: unknown): PublishItem => {
  const items = ok(decodePublishBody(body(item)))
  expect(items).toHaveLength(1)
  const [first] = items
  if (first === undefined) throw new Error("no item")
  return first
}

/** The 400 text for a body holding just this item. */
const rejected = (item: unknown): string => {
  const error = err(decodePublishBody(body(item)))
  expect(error.status).toBe(400)
  return error.message
}

describe("envelope", () => {
  test("empty list is accepted", () => {
    expect(ok(decodePublishBody("{\"items\": []}"))).toEqual([])
  })

  test.each([
    ["{bad", "Body is not valid JSON."],
    ["", "Body is not valid JSON."],
    ["[]", "Invalid format."],
    ["\"items\"", "Invalid format."],
    ["{}", "Invalid format: object does not contain 'items'"],
    ["{\"items\": {}}", "Invalid format: object contains 'items' with wrong type"],
    ["{\"items\": [5]}", "Invalid format: publish item object is not an object"]
  ] as const)("%s → %s", (text, message) => {
    const error = err(decodePublishBody(text))
    expect(error._tag).toBe("PublishError")
    expect(error.status).toBe(400)
    expect(error.message).toBe(message)
  })

  test("all or nothing: one bad item rejects the batch", () => {
    const good = { channel: "a", formats: { "http-stream": { content: "x" } } }
    const bad = { channel: "b", formats: { "http-stream": { content: "x", action: "explode" } } }
    expect(err(decodePublishBody(body(good, bad, good))).message).toBe(
      "Invalid format: 'http-stream' contains 'action' with unknown value 'explode'"
    )
  })
})

describe("item fields", () => {
  test("everything", () => {
    const item = one({
      channel: "test",
      id: "2",
      "prev-id": "1",
      meta: { sender: "alice" },
      size: 10,
      "no-seq": true,
      formats: { "http-stream": { content: "hi\n" } }
    })
    expect(item).toEqual({
      channel: "test",
      id: "2",
      prevId: "1",
      meta: new Map([["sender", "alice"]]),
      size: 10,
      noSeq: true,
      formats: { httpStream: { action: "send", content: bytes("hi\n") } }
    })
  })

  test("formats at the top level", () => {
    const item = one({ channel: "c", "ws-message": { content: "x" } })
    expect(item.formats).toEqual({ wsMessage: { action: "send", type: "text", content: bytes("x") } })
    expect(item.noSeq).toBe(false)
    expect(item.meta.size).toBe(0)
  })

  test("formats object wins over top-level formats", () => {
    const item = one({ channel: "c", formats: { "http-stream": { content: "a" } }, "ws-message": { bogus: true } })
    expect(Object.keys(item.formats)).toEqual(["httpStream"])
  })

  test("channel from the transport (ZeroMQ SUB)", () => {
    const item = ok(decodePublishItem({ formats: { "http-stream": { content: "x" } } }, "from-frame"))
    expect(item.channel).toBe("from-frame")
  })

  test.each([
    [{ formats: { "http-stream": { content: "x" } } }, "publish item object does not contain 'channel'"],
    [{ channel: 5, formats: {} }, "publish item object contains 'channel' with wrong type"],
    [{ channel: "", formats: { "http-stream": { content: "x" } } }, "publish item object contains 'channel' with invalid value"],
    [{ channel: "c", id: 1 }, "publish item object contains 'id' with wrong type"],
    [{ channel: "c", "prev-id": null }, "publish item object contains 'prev-id' with wrong type"],
    [{ channel: "c", formats: [] }, "publish item object contains 'formats' with wrong type"],
    [{ channel: "c" }, "no formats specified"],
    [{ channel: "c", formats: {} }, "no formats specified"],
    [{ channel: "c", formats: { "sse-message": {} } }, "no formats specified"],
    [{ channel: "c", meta: "x" }, "publish item object contains 'meta' with wrong type"],
    [{ channel: "c", meta: { user: 1 } }, "'meta' contains 'user' with wrong type"],
    [{ channel: "c", size: -1 }, "publish item object contains 'size' with invalid value"],
    [{ channel: "c", size: "1" }, "publish item object contains 'size' with wrong type"],
    [{ channel: "c", "no-seq": "yes" }, "publish item object contains 'no-seq' with wrong type"]
  ] as const)("%j → %s", (item, message) => {
    expect(rejected(item)).toBe(`Invalid format: ${message}`)
  })
})

describe("http-response", () => {
  const format = (f: unknown) => one({ channel: "c", formats: { "http-response": f } }).formats.httpResponse

  test("defaults", () => {
    expect(format({ body: "hello\n" })).toEqual({
      action: "send",
      code: 200,
      reason: "OK",
      headers: [],
      body: { _tag: "Bytes", bytes: bytes("hello\n") }
    })
  })

  test("code, reason, headers as object or list, body-bin, content-filters", () => {
    expect(format({ code: 404, headers: { "X-A": "1" }, "body-bin": "aGk=", "content-filters": ["var-subst"] })).toEqual({
      action: "send",
      code: 404,
      reason: "Not Found",
      headers: [["X-A", "1"]],
      body: { _tag: "Bytes", bytes: bytes("hi") },
      contentFilters: ["var-subst"]
    })
    expect(format({ code: 201, reason: "Made", headers: [["Set", "1"], ["Set", "2"]], body: "" })).toMatchObject({
      reason: "Made",
      headers: [["Set", "1"], ["Set", "2"]]
    })
  })

  test("body-patch", () => {
    const ops = [
      { op: "add", path: "/a", value: 1 },
      { op: "test", path: "/n", value: null },
      { op: "remove", path: "/b" },
      { op: "move", from: "/c", path: "/d" }
    ]
    expect(format({ "body-patch": ops })).toMatchObject({
      body: {
        _tag: "Patch",
        operations: [
          { op: "add", path: "/a", value: 1 },
          { op: "test", path: "/n", value: null },
          { op: "remove", path: "/b" },
          { op: "move", from: "/c", path: "/d" }
        ]
      }
    })
  })

  test.each(["hint", "close"] as const)("action %s needs nothing else", (action) => {
    expect(format({ action })).toEqual({ action })
  })

  test.each([
    [5, "'http-response' is not an object"],
    [{}, "'http-response' does not contain 'body', 'body-bin', or 'body-patch'"],
    [{ action: "refresh" }, "'http-response' contains 'action' with unknown value 'refresh'"],
    [{ action: 1 }, "'http-response' contains 'action' with wrong type"],
    [{ body: "", code: 1000 }, "'http-response' contains 'code' with invalid value"],
    [{ body: "", code: 2.5 }, "'http-response' contains 'code' with wrong type"],
    [{ body: "", code: "two hundred" }, "'http-response' contains 'code' with wrong type"],
    [{ body: "", reason: 1 }, "'http-response' contains 'reason' with wrong type"],
    [{ body: "", headers: "x" }, "'http-response' contains 'headers' with wrong type"],
    [{ body: "", headers: { A: 1 } }, "headers contains 'A' with wrong type"],
    [{ body: "", headers: [["A"]] }, "headers contains list with wrong number of elements"],
    [{ body: "", headers: [[1, "v"]] }, "header contains name element with wrong type"],
    [{ body: 1 }, "'http-response' contains 'body' with wrong type"],
    [{ "body-bin": "not base64!" }, "'http-response' contains 'body-bin' with invalid base64"],
    [{ body: "", "content-filters": "x" }, "'http-response' contains 'content-filters' with wrong type"],
    [{ body: "", "content-filters": [1] }, "content-filters contains element with wrong type"],
    [{ "body-patch": {} }, "'http-response' contains 'body-patch' with wrong type"],
    [{ "body-patch": [5] }, "invalid op"],
    [{ "body-patch": [{ path: "/a" }] }, "op does not contain 'op'"],
    [{ "body-patch": [{ op: "zap", path: "/a" }] }, "unsupported op: zap"],
    [{ "body-patch": [{ op: "add" }] }, "op does not contain 'path'"],
    [{ "body-patch": [{ op: "add", path: "/a" }] }, "op does not contain 'value'"],
    [{ "body-patch": [{ op: "copy", path: "/a" }] }, "op does not contain 'from'"]
  ] as const)("%j → %s", (f, message) => {
    expect(rejected({ channel: "c", formats: { "http-response": f } })).toBe(`Invalid format: ${message}`)
  })
})

describe("http-stream", () => {
  const format = (f: unknown) => one({ channel: "c", formats: { "http-stream": f } }).formats.httpStream

  test.each([
    [{ content: "hi" }, { action: "send", content: bytes("hi") }],
    [{ "content-bin": "AAE=" }, { action: "send", content: new Uint8Array([0, 1]) }],
    [{ "content-bin": "AAE", content: "ignored" }, { action: "send", content: new Uint8Array([0, 1]) }],
    [{ action: "send", content: "", "content-filters": [] }, { action: "send", content: bytes(""), contentFilters: [] }],
    [{ action: "close" }, { action: "close" }],
    [{ action: "hint" }, { action: "hint" }]
  ] as const)("%j", (f, expected) => {
    expect(format(f)).toEqual(expected)
  })

  test.each([
    [{}, "'http-stream' does not contain 'content' or 'content-bin'"],
    [{ content: 1 }, "'http-stream' contains 'content' with wrong type"],
    [{ "content-bin": "a" }, "'http-stream' contains 'content-bin' with invalid base64"],
    [{ "content-bin": "ab!=" }, "'http-stream' contains 'content-bin' with invalid base64"],
    [{ action: "refresh" }, "'http-stream' contains 'action' with unknown value 'refresh'"]
  ] as const)("%j → %s", (f, message) => {
    expect(rejected({ channel: "c", formats: { "http-stream": f } })).toBe(`Invalid format: ${message}`)
  })
})

describe("ws-message", () => {
  const format = (f: unknown) => one({ channel: "c", formats: { "ws-message": f } }).formats.wsMessage

  test.each([
    [{ content: "hi" }, { action: "send", type: "text", content: bytes("hi") }],
    [{ "content-bin": "AAE=" }, { action: "send", type: "binary", content: new Uint8Array([0, 1]) }],
    [{ type: "text", "content-bin": "aGk=" }, { action: "send", type: "text", content: bytes("hi") }],
    [{ type: "ping" }, { action: "send", type: "ping", content: new Uint8Array() }],
    [{ type: "pong", content: "p" }, { action: "send", type: "pong", content: bytes("p") }],
    [{ content: "x", "content-filters": ["build-id"] }, { action: "send", type: "text", content: bytes("x"), contentFilters: ["build-id"] }],
    [{ action: "close" }, { action: "close" }],
    [{ action: "close", code: 1001, reason: "bye" }, { action: "close", code: 1001, reason: "bye" }],
    [{ action: "refresh" }, { action: "refresh" }],
    [{ action: "hint" }, { action: "hint" }]
  ] as const)("%j", (f, expected) => {
    expect(format(f)).toEqual(expected)
  })

  test.each([
    [{}, "'ws-message' does not contain 'content' or 'content-bin'"],
    [{ type: "binary" }, "'ws-message' does not contain 'content' or 'content-bin'"],
    [{ type: "frame", content: "x" }, "'ws-message' contains 'type' with unknown value"],
    [{ content: [] }, "'ws-message' contains 'content' with wrong type"],
    [{ "content-bin": 5 }, "'ws-message' contains 'content-bin' with wrong type"],
    [{ action: "close", code: -1 }, "'ws-message' contains 'code' with invalid value"],
    [{ action: "close", code: "1000" }, "'ws-message' contains 'code' with wrong type"],
    [{ action: "close", reason: 5 }, "'ws-message' contains 'reason' with wrong type"],
    [{ action: "shout" }, "'ws-message' contains 'action' with unknown value 'shout'"]
  ] as const)("%j → %s", (f, message) => {
    expect(rejected({ channel: "c", formats: { "ws-message": f } })).toBe(`Invalid format: ${message}`)
  })
})

test("several formats in one item", () => {
  const item = one({
    channel: "c",
    formats: {
      "http-response": { action: "hint" },
      "http-stream": { action: "close" },
      "ws-message": { content: "x" }
    }
  })
  expect(Object.keys(item.formats).sort()).toEqual(["httpResponse", "httpStream", "wsMessage"])
})
