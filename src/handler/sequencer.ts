/**
 * Per-channel ordering and dedupe of published items, before fan-out (Pushpin
 * `src/handler/sequencer.cpp`, `publishlastids.cpp`).
 *
 * - Dedupe: with `id_cache_ttl` > 0, an item whose `(channel, id)` was accepted less than the TTL
 *   ago is dropped. It applies to every item, sequenced or not.
 * - Sequencing: an item is parked only when the channel has a last id, the item has a `prev-id`
 *   and the two differ. A channel with no last id (fresh, or cleared by an item without an id, an
 *   unsubscribe or `recover`) takes whatever comes first. Delivering an item makes its id the
 *   channel's last id (no id: the last id is forgotten) and releases, chained, the parked items
 *   that follow it.
 * - A parked item waits `message_wait` at most; then the gap before it is given up and it goes
 *   out, after any parked predecessors it has, so the chain keeps its order.
 * - Not sequenced (delivered at once, last id untouched): `no-seq` items and items for channels
 *   nobody is subscribed to (Pushpin forgets a channel's last id on unsubscribe and must not learn
 *   it again before a subscriber returns).
 *
 * Time comes from the injected clock; there is no timer per item. The handler's shared tick calls
 * `advance()`, so a parked item goes out on the first tick at or after its deadline (Pushpin
 * checks once a second, so its 5 s wait is really 5–6 s).
 *
 * Callbacks run synchronously inside `add`/`advance`, and may call back into the sequencer; they
 * must not throw (state is updated before each call, so a throw loses nothing but the rest of
 * that chain's release until the next `advance`).
 */
import type { PublishItem } from "../grip/publish.ts"
import { type Clock, systemClock } from "./timer-wheel.ts"

/** Pushpin's CHANNEL_PENDING_MAX: out-of-order items one channel may park. */
export const PARKED_PER_CHANNEL_MAX = 100

/**
 * Not in Pushpin: bounds the parking lot when many channels go out of order at once. Each item
 * stays at most `message_wait`, so this only bites under a flood (1 000 channels at the limit).
 */
export const PARKED_TOTAL_MAX = 100_000

/** Pushpin's PublishLastIds capacity; the least recently set channel is forgotten beyond it. */
export const LAST_IDS_MAX = 1_000_000

/**
 * Not in Pushpin (its id cache is bounded by the TTL only): the oldest ids are forgotten early
 * beyond this, so a publish storm costs a few missed dedupes instead of unbounded memory.
 */
export const CACHED_IDS_MAX = 1_000_000

/** Pushpin's default `message_wait`, for callers without configuration. */
export const DEFAULT_MESSAGE_WAIT_MS = 5_000

export type SequencerDropReason =
  /** `(channel, id)` was accepted within `id_cache_ttl`. */
  | "duplicate"
  /** Another parked item of the channel already waits for the same `prev-id`; the first one stays. */
  | "duplicate prev-id"
  /** The channel (or the whole sequencer) has no room for another parked item. */
  | "too many parked"
  /** The channel lost its last subscriber while the item was parked (`clearChannel`). */
  | "unsubscribed"

export const SEQUENCER_DROP_REASONS: ReadonlyArray<SequencerDropReason> = [
  "duplicate",
  "duplicate prev-id",
  "too many parked",
  "unsubscribed"
]

export type SequencerOutcome = "delivered" | "parked" | "dropped"

export interface SequencerOptions {
  /** `message_wait`: how long a parked item waits for its predecessor. */
  readonly messageWaitMs: number
  /** `id_cache_ttl` in ms; 0 turns dedupe off. */
  readonly idCacheTtlMs: number
  readonly maxParkedPerChannel?: number
  readonly maxParkedTotal?: number
  readonly maxLastIds?: number
  readonly maxCachedIds?: number
  readonly clock?: Clock
  /** The item is ready for fan-out, in channel order. */
  readonly onDeliver: (item: PublishItem) => void
  /** The item will never be delivered (for logging; the counters are kept regardless). */
  readonly onDrop?: (item: PublishItem, reason: SequencerDropReason) => void
}

export interface SequencerStats {
  /** Items handed to `onDeliver`, by any path. */
  delivered: number
  /** Items that had to wait. */
  parked: number
  /** Parked items released because their predecessor went out. */
  releasedInOrder: number
  /** Parked items released because the gap before them was given up after `message_wait`. */
  releasedOnTimeout: number
  readonly dropped: Record<SequencerDropReason, number>
}

interface Parked {
  readonly item: PublishItem
  readonly prevId: string
  readonly parkedAt: number
}

interface ChannelParking {
  /** Pushpin keys parked items by the id they wait for. */
  readonly byPrevId: Map<string, Parked>
  /** To find a timed-out item's parked predecessors. */
  readonly byId: Map<string, Parked>
}

/** Length-prefixed so no (channel, id) pair can collide with another. */
const idKey = (channel: string, id: string): string => `${channel.length}:${channel}${id}`

export class Sequencer {
  private readonly messageWaitMs: number
  private readonly idCacheTtlMs: number
  private readonly maxParkedPerChannel: number
  private readonly maxParkedTotal: number
  private readonly maxLastIds: number
  private readonly maxCachedIds: number
  private readonly clock: Clock
  private readonly onDeliver: (item: PublishItem) => void
  private readonly onDrop: ((item: PublishItem, reason: SequencerDropReason) => void) | undefined

  private readonly parking = new Map<string, ChannelParking>()
  /** Every parked item in parking order, which is deadline order since the wait is fixed. */
  private readonly parkedByTime = new Set<Parked>()
  /** Map order is least recently set first (a set moves the channel to the end). */
  private readonly lastIds = new Map<string, string>()
  /** id key → expiry; Map order is expiry order since the TTL is fixed. */
  private readonly cachedIds = new Map<string, number>()

  readonly stats: SequencerStats = {
    delivered: 0,
    parked: 0,
    releasedInOrder: 0,
    releasedOnTimeout: 0,
    dropped: { duplicate: 0, "duplicate prev-id": 0, "too many parked": 0, unsubscribed: 0 }
  }

  constructor(options: SequencerOptions) {
    this.messageWaitMs = options.messageWaitMs
    this.idCacheTtlMs = options.idCacheTtlMs
    this.maxParkedPerChannel = options.maxParkedPerChannel ?? PARKED_PER_CHANNEL_MAX
    this.maxParkedTotal = options.maxParkedTotal ?? PARKED_TOTAL_MAX
    this.maxLastIds = options.maxLastIds ?? LAST_IDS_MAX
    this.maxCachedIds = options.maxCachedIds ?? CACHED_IDS_MAX
    this.clock = options.clock ?? systemClock
    this.onDeliver = options.onDeliver
    this.onDrop = options.onDrop
  }

  /** Items waiting for a predecessor (a gauge). */
  get parkedCount(): number {
    return this.parkedByTime.size
  }

  /** Ids remembered for dedupe (a gauge). */
  get cachedIdCount(): number {
    return this.cachedIds.size
  }

  /**
   * Takes a published item. `subscribed`: whether the channel has a subscriber now; Pushpin only
   * sequences those (the item is still deduped and delivered).
   */
  add(item: PublishItem, subscribed = true): SequencerOutcome {
    const now = this.clock.now()
    this.expireIds(now)

    const key = item.id !== undefined && this.idCacheTtlMs > 0 ? idKey(item.channel, item.id) : undefined
    if (key !== undefined && this.cachedIds.has(key)) return this.drop(item, "duplicate")

    if (item.noSeq || !subscribed) {
      this.rememberId(key, now)
      this.stats.delivered++
      this.onDeliver(item)
      return "delivered"
    }

    const lastId = this.lastIds.get(item.channel)
    if (lastId !== undefined && item.prevId !== undefined && item.prevId !== lastId) {
      const outcome = this.park(item, item.prevId, now)
      if (outcome === "parked") this.rememberId(key, now)
      return outcome
    }

    this.rememberId(key, now)
    this.send(item)
    return "delivered"
  }

  /**
   * Called by the shared tick: gives up the gaps before parked items older than `message_wait`
   * and forgets expired ids.
   */
  advance(): void {
    const now = this.clock.now()
    this.expireIds(now)
    const threshold = now - this.messageWaitMs
    // Set iteration is live: items released by an earlier chain are skipped, items parked by a
    // re-entrant add are visited (and are not yet due).
    for (const parked of this.parkedByTime) {
      if (parked.parkedAt > threshold) break
      const root = this.chainRoot(parked)
      this.unpark(root)
      this.stats.releasedOnTimeout++
      this.send(root.item)
    }
  }

  /** The channel's last delivered id, for `Grip-Last` and prev-id conflict checks. */
  lastId(channel: string): string | undefined {
    return this.lastIds.get(channel)
  }

  /** A response hold saw a different prev-id than ours: the origin knows better, forget ours. */
  forgetLastId(channel: string): void {
    this.lastIds.delete(channel)
  }

  /** The `recover` command: forget every channel's last id. */
  clearLastIds(): void {
    this.lastIds.clear()
  }

  /**
   * The channel lost its last subscriber: parked items have no one to go to, and the last id
   * must not survive until the next subscriber (its origin starts a new sequence).
   */
  clearChannel(channel: string): void {
    this.lastIds.delete(channel)
    const channelParking = this.parking.get(channel)
    if (channelParking === undefined) return
    this.parking.delete(channel)
    for (const parked of channelParking.byPrevId.values()) {
      this.parkedByTime.delete(parked)
      this.drop(parked.item, "unsubscribed")
    }
  }

  private park(item: PublishItem, prevId: string, now: number): SequencerOutcome {
    let channelParking = this.parking.get(item.channel)
    if (channelParking?.byPrevId.has(prevId) === true) return this.drop(item, "duplicate prev-id")
    if ((channelParking?.byPrevId.size ?? 0) >= this.maxParkedPerChannel || this.parkedByTime.size >= this.maxParkedTotal) {
      return this.drop(item, "too many parked")
    }
    if (channelParking === undefined) {
      channelParking = { byPrevId: new Map(), byId: new Map() }
      this.parking.set(item.channel, channelParking)
    }
    const parked: Parked = { item, prevId, parkedAt: now }
    channelParking.byPrevId.set(prevId, parked)
    if (item.id !== undefined) channelParking.byId.set(item.id, parked)
    this.parkedByTime.add(parked)
    this.stats.parked++
    return "parked"
  }

  private unpark(parked: Parked): void {
    this.parkedByTime.delete(parked)
    const channelParking = this.parking.get(parked.item.channel)
    if (channelParking === undefined) return
    channelParking.byPrevId.delete(parked.prevId)
    if (parked.item.id !== undefined && channelParking.byId.get(parked.item.id) === parked) {
      channelParking.byId.delete(parked.item.id)
    }
    if (channelParking.byPrevId.size === 0) this.parking.delete(parked.item.channel)
  }

  /**
   * The earliest parked item in `parked`'s chain, so a timeout releases the chain in order.
   * (Pushpin releases timed-out items in arrival order, which can invert a chain whose tail was
   * published first.) Bounded by the channel's parked count, so id cycles cannot loop.
   */
  private chainRoot(parked: Parked): Parked {
    const channelParking = this.parking.get(parked.item.channel)
    if (channelParking === undefined) return parked
    let root = parked
    for (let steps = channelParking.byPrevId.size; steps > 0; steps--) {
      const predecessor = channelParking.byId.get(root.prevId)
      if (predecessor === undefined || predecessor === parked) break
      root = predecessor
    }
    return root
  }

  /** Delivers in sequence: updates the last id, then releases the chain waiting on it. */
  private send(item: PublishItem): void {
    let next: PublishItem | undefined = item
    while (next !== undefined) {
      const current: PublishItem = next
      this.setLastId(current.channel, current.id)
      this.stats.delivered++
      this.onDeliver(current)
      next = undefined
      if (current.id === undefined) break
      const successor = this.parking.get(current.channel)?.byPrevId.get(current.id)
      if (successor !== undefined) {
        this.unpark(successor)
        this.stats.releasedInOrder++
        next = successor.item
      }
    }
  }

  private setLastId(channel: string, id: string | undefined): void {
    // Re-inserting moves the channel to the most recently set end.
    this.lastIds.delete(channel)
    if (id === undefined) return
    for (const oldest of this.lastIds.keys()) {
      if (this.lastIds.size < this.maxLastIds) break
      this.lastIds.delete(oldest)
    }
    this.lastIds.set(channel, id)
  }

  private rememberId(key: string | undefined, now: number): void {
    if (key === undefined) return
    for (const oldest of this.cachedIds.keys()) {
      if (this.cachedIds.size < this.maxCachedIds) break
      this.cachedIds.delete(oldest)
    }
    this.cachedIds.set(key, now + this.idCacheTtlMs)
  }

  /** Pushpin forgets an id once its expiry is at or before now: a repeat exactly one TTL later passes. */
  private expireIds(now: number): void {
    for (const [key, expiresAt] of this.cachedIds) {
      if (expiresAt > now) break
      this.cachedIds.delete(key)
    }
  }

  private drop(item: PublishItem, reason: SequencerDropReason): "dropped" {
    this.stats.dropped[reason]++
    this.onDrop?.(item, reason)
    return "dropped"
  }
}
