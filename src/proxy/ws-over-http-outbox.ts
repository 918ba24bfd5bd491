/**
 * WebSocket-over-HTTP: the client's events waiting for the origin, and what one request takes
 * from them. Pure bookkeeping, no I/O, so the batching and `Content-Bytes-Accepted` rules are
 * tested on their own (test/proxy/ws-over-http-outbox.test.ts).
 *
 * Invariant: an event leaves the outbox only once the origin accepted all of its content. An
 * event the origin accepted in part keeps its unaccepted tail at the head of the outbox, and the
 * next request carries that tail first, announced by `Content-Bytes-Replayed` (Pushpin 1.41).
 *
 * The runtime hands over whole messages (never fragments), so Pushpin's "incomplete message that
 * cannot fit" failure cannot happen here; a message bigger than a request's byte budget goes
 * alone in its own request.
 */
import type { WsEvent } from "../websocket/events.ts"

/** What a client sends the origin; CLOSE, OPEN and DISCONNECT are the gateway's own. */
export type OutboundType = "TEXT" | "BINARY" | "PING" | "PONG"

export interface OutboundEvent {
  readonly type: OutboundType
  readonly content: Uint8Array
}

/** The part of the outbox one request carries, and what acceptance is measured against. */
export interface Batch {
  readonly events: ReadonlyArray<WsEvent>
  /** Outbox entries (from the head) the request carries. */
  readonly entries: number
  /** Content bytes of those entries. */
  readonly contentBytes: number
  /** The outbox held more than the request could carry. */
  readonly maxed: boolean
}

export interface BatchLimits {
  /** Content bytes per request; a single larger event still goes alone. */
  readonly maxContentBytes: number
  /** Events per request (`one_event` target option: 1); undefined for no limit. */
  readonly maxEvents: number | undefined
}

export type AcceptOutcome =
  | { readonly _tag: "Accepted"; readonly entriesRemoved: number; readonly bytesRemoved: number }
  /** The origin took nothing from a request that could not carry everything: no progress possible. */
  | { readonly _tag: "NoProgress" }

/**
 * Sent entries are dropped from the front by moving an index; the array is copied down only once
 * this many (and over half of it) are dead, so a busy connection does not copy on every answer.
 */
const COMPACT_AFTER_ENTRIES = 1024

export class WohOutbox {
  private entries: Array<OutboundEvent> = []
  private head = 0
  private bytes = 0
  /** Entries at the head that were sent and not (fully) accepted. */
  private replayEntries = 0
  /** Content bytes at the head that were sent and not accepted: `Content-Bytes-Replayed`. */
  private replayBytes = 0

  /** Content bytes queued and not yet accepted by the origin. */
  get contentBytes(): number {
    return this.bytes
  }

  get size(): number {
    return this.entries.length - this.head
  }

  get isEmpty(): boolean {
    return this.size === 0
  }

  /** Bytes the next request re-sends (announced as `Content-Bytes-Replayed`). */
  get replayedBytes(): number {
    return this.replayBytes
  }

  /**
   * Something that was never sent is waiting. Replayed content alone does not call for a
   * request: the origin said it wants more before it takes that (Pushpin waits likewise).
   */
  get hasNewContent(): boolean {
    return this.size > this.replayEntries || this.bytes > this.replayBytes
  }

  push(event: OutboundEvent): void {
    this.entries.push(event)
    this.bytes += event.content.length
  }

  /** The events the next request carries, from the head. */
  batch(limits: BatchLimits): Batch {
    const events: Array<WsEvent> = []
    let contentBytes = 0
    let index = this.head
    while (index < this.entries.length) {
      if (limits.maxEvents !== undefined && events.length >= limits.maxEvents) break
      const entry = this.entries[index]
      if (entry === undefined) break
      if (events.length > 0 && contentBytes + entry.content.length > limits.maxContentBytes) break
      events.push(toWireEvent(entry))
      contentBytes += entry.content.length
      index++
    }
    const entries = index - this.head
    return { events, entries, contentBytes, maxed: entries < this.size }
  }

  /**
   * Removes what the origin accepted of `batch` (`acceptedBytes` ≤ `batch.contentBytes`, checked
   * by the caller). A partly accepted event keeps its tail; everything of the batch not accepted
   * is replayed by the next request.
   */
  accept(batch: Batch, acceptedBytes: number): AcceptOutcome {
    let left = acceptedBytes
    let entriesRemoved = 0
    let bytesRemoved = 0
    while (entriesRemoved < batch.entries) {
      const entry = this.entries[this.head]
      if (entry === undefined) break
      if (entry.content.length > left) {
        if (left > 0) {
          // A copy, so the accepted part of a large message is not kept alive by the view.
          this.entries[this.head] = { type: entry.type, content: entry.content.slice(left) }
          bytesRemoved += left
          left = 0
        }
        break
      }
      left -= entry.content.length
      bytesRemoved += entry.content.length
      this.head++
      entriesRemoved++
    }
    this.bytes -= bytesRemoved
    this.compact()
    if (batch.maxed && entriesRemoved === 0 && bytesRemoved === 0) return { _tag: "NoProgress" }
    this.replayEntries = batch.entries - entriesRemoved
    this.replayBytes = batch.contentBytes - bytesRemoved
    return { _tag: "Accepted", entriesRemoved, bytesRemoved }
  }

  /** After the close went out (or the connection ended): nothing left is ever sent. */
  clear(): void {
    this.entries = []
    this.head = 0
    this.bytes = 0
    this.replayEntries = 0
    this.replayBytes = 0
  }

  private compact(): void {
    if (this.head === this.entries.length) {
      this.entries = []
      this.head = 0
    } else if (this.head > COMPACT_AFTER_ENTRIES && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }
}

/**
 * Pings and pongs carry content only when they have some, as Pushpin writes them; messages
 * always do (`TEXT 0` for an empty one), so an empty message is not mistaken for no message.
 */
const toWireEvent = (entry: OutboundEvent): WsEvent =>
  (entry.type === "PING" || entry.type === "PONG") && entry.content.length === 0
    ? { type: entry.type }
    : { type: entry.type, content: entry.content }
