import { describe, expect, test } from "bun:test"
import { type OutboundEvent, WohOutbox } from "../../src/proxy/ws-over-http-outbox.ts"

const bytes = (value: string): Uint8Array => new TextEncoder().encode(value)
const text = (value: string): OutboundEvent => ({ type: "TEXT", content: bytes(value) })
const decode = (content: Uint8Array | undefined): string | undefined => (content === undefined ? undefined : new TextDecoder().decode(content))
const NO_LIMIT = { maxContentBytes: 200_000, maxEvents: undefined }

const filled = (...events: Array<OutboundEvent>): WohOutbox => {
  const outbox = new WohOutbox()
  for (const event of events) outbox.push(event)
  return outbox
}

describe("WohOutbox batching", () => {
  test("a batch takes everything queued, in order, and counts its content", () => {
    const outbox = filled(text("ab"), { type: "BINARY", content: new Uint8Array([1, 2, 3]) }, text(""))
    const batch = outbox.batch(NO_LIMIT)
    expect(batch.events.map((event) => [event.type, event.content?.length])).toEqual([["TEXT", 2], ["BINARY", 3], ["TEXT", 0]])
    expect(batch).toMatchObject({ entries: 3, contentBytes: 5, maxed: false })
    expect(outbox.contentBytes).toBe(5)
  })

  test("empty pings and pongs go without content; with a payload they carry it", () => {
    const outbox = filled({ type: "PING", content: new Uint8Array(0) }, { type: "PONG", content: bytes("p") })
    expect(outbox.batch(NO_LIMIT).events).toEqual([{ type: "PING" }, { type: "PONG", content: bytes("p") }])
  })

  test("the byte budget stops a batch before the event that would overflow it", () => {
    const outbox = filled(text("aaaa"), text("bbbb"), text("cc"))
    const batch = outbox.batch({ maxContentBytes: 9, maxEvents: undefined })
    expect(batch.events.map((event) => decode(event.content))).toEqual(["aaaa", "bbbb"])
    expect(batch).toMatchObject({ entries: 2, contentBytes: 8, maxed: true })
  })

  test("an event larger than the budget goes alone", () => {
    const outbox = filled(text("x".repeat(20)), text("y"))
    const batch = outbox.batch({ maxContentBytes: 10, maxEvents: undefined })
    expect(batch).toMatchObject({ entries: 1, contentBytes: 20, maxed: true })
  })

  test("one_event: one event per batch", () => {
    const outbox = filled(text("a"), text("b"))
    const batch = outbox.batch({ maxContentBytes: 200_000, maxEvents: 1 })
    expect(batch).toMatchObject({ entries: 1, contentBytes: 1, maxed: true })
  })
})

describe("WohOutbox acceptance (Content-Bytes-Accepted)", () => {
  test("accepting everything empties the outbox and leaves nothing to replay", () => {
    const outbox = filled(text("abc"), text("de"))
    const batch = outbox.batch(NO_LIMIT)
    expect(outbox.accept(batch, 5)).toEqual({ _tag: "Accepted", entriesRemoved: 2, bytesRemoved: 5 })
    expect(outbox.isEmpty).toBe(true)
    expect(outbox.replayedBytes).toBe(0)
    expect(outbox.hasNewContent).toBe(false)
  })

  test("a partly accepted message keeps its tail, which the next request replays", () => {
    const outbox = filled(text("hello"), text("world"))
    const batch = outbox.batch(NO_LIMIT)
    expect(outbox.accept(batch, 7)).toEqual({ _tag: "Accepted", entriesRemoved: 1, bytesRemoved: 7 })
    expect(outbox.contentBytes).toBe(3)
    expect(outbox.replayedBytes).toBe(3)
    // Only replayed content is left: nothing new calls for a request.
    expect(outbox.hasNewContent).toBe(false)
    const next = outbox.batch(NO_LIMIT)
    expect(next.events).toEqual([{ type: "TEXT", content: bytes("rld") }])
    outbox.push(text("!"))
    expect(outbox.hasNewContent).toBe(true)
  })

  test("nothing accepted of a request that carried everything: all of it is replayed", () => {
    const outbox = filled(text("abc"))
    const batch = outbox.batch(NO_LIMIT)
    expect(outbox.accept(batch, 0)).toEqual({ _tag: "Accepted", entriesRemoved: 0, bytesRemoved: 0 })
    expect(outbox.replayedBytes).toBe(3)
    expect(outbox.size).toBe(1)
  })

  test("nothing accepted of a request that could not carry everything is no progress", () => {
    const outbox = filled(text("a"), text("b"))
    const batch = outbox.batch({ maxContentBytes: 200_000, maxEvents: 1 })
    expect(outbox.accept(batch, 0)).toEqual({ _tag: "NoProgress" })
  })

  test("events queued after the request went out are neither removed nor counted as replayed", () => {
    const outbox = filled(text("abc"))
    const batch = outbox.batch(NO_LIMIT)
    outbox.push({ type: "PING", content: new Uint8Array(0) })
    expect(outbox.accept(batch, 3)).toEqual({ _tag: "Accepted", entriesRemoved: 1, bytesRemoved: 3 })
    expect(outbox.size).toBe(1)
    expect(outbox.replayedBytes).toBe(0)
    expect(outbox.hasNewContent).toBe(true)
  })

  test("clear drops everything", () => {
    const outbox = filled(text("abc"))
    outbox.accept(outbox.batch(NO_LIMIT), 1)
    outbox.clear()
    expect(outbox).toMatchObject({ size: 0, contentBytes: 0, replayedBytes: 0, hasNewContent: false })
  })
})
