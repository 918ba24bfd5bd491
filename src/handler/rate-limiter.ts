/**
 * Delivery rate limiting for fan-out (Pushpin `src/handler/ratelimiter.cpp`, used with
 * `message_rate` and `message_hwm`).
 *
 * Every (item, connection) delivery is an action filed under a key (Pushpin: the connection's
 * route, "" without one). One rate covers the whole limiter, shared round-robin between keys, so
 * one busy route cannot starve the others; `message_rate` therefore caps fan-out deliveries per
 * second for the handler, not publishes and not per connection. An action's weight is its size
 * in `message_block_size` blocks (1 without blocks); a heavy action may run on any credit at all
 * and leaves a debt that later actions wait out, as Pushpin's per-bucket debt does.
 *
 * `message_hwm` bounds each key's queued weight: an action that would take it past the mark is
 * dropped ("exceeded publish hwm (N) for route X, dropping message").
 *
 * Pushpin runs batches of ceil(rate × 25 ms) every 25 ms (or one every 1000/rate ms below 40/s),
 * the first at once after idle. Here a credit of the same size refills continuously with the
 * injected clock: while nothing is queued and credit remains an action runs inside `offer`; the
 * rest waits for `advance()` on the handler's shared tick. Without a rate nothing ever waits, so
 * `message_hwm` only drops an action heavier than the mark itself (Pushpin defers even then, and
 * can drop past the mark within one event-loop turn of a large fan-out).
 *
 * Actions run synchronously and must not throw (the limiter's state is updated before each call).
 * An action returns `false` when it had nothing to deliver to (the connection is gone); that
 * costs no rate, as in Pushpin.
 */
import { type Clock, systemClock } from "./timer-wheel.ts"

/** Pushpin's MIN_BATCH_INTERVAL: the limiter's batches are at least 25 ms apart. */
export const MIN_BATCH_INTERVAL_MS = 25

/**
 * Not in Pushpin: without `message_hwm` queues are otherwise unbounded. A million queued
 * deliveries is several minutes of backlog at Pushpin's sample 2 500/s; anything past it is lost
 * anyway.
 */
export const QUEUED_TOTAL_MAX = 1_000_000

/** Credit is kept in thousandths of an action so refills from an integer clock stay exact. */
const MILLI = 1000

export type RateLimitedAction = () => boolean | void

export type OfferOutcome = "sent" | "queued" | "dropped"

export type RateLimiterDropReason =
  /** The key's queued weight would pass `message_hwm`. */
  | "hwm"
  /** The limiter holds `maxQueuedTotal` actions already. */
  | "queue full"

export interface RateLimiterOptions {
  /** `message_rate`: actions (weighted) per second; undefined or ≤ 0 = unlimited, as in Pushpin. */
  readonly rate?: number | undefined
  /** `message_hwm`: max queued weight per key; undefined or ≤ 0 = unlimited, as in Pushpin. */
  readonly hwm?: number | undefined
  /**
   * How often the caller runs `advance()`. The credit holds at least one tick's worth, so a tick
   * slower than Pushpin's 25 ms batches still delivers the full rate.
   */
  readonly tickMs?: number
  readonly maxQueuedTotal?: number
  readonly clock?: Clock
}

export interface RateLimiterStats {
  /** Actions run inside `offer`. */
  sent: number
  /** Actions that had to wait. */
  queued: number
  /** Queued actions run by `advance`. */
  drained: number
  readonly dropped: Record<RateLimiterDropReason, number>
}

interface QueuedAction {
  readonly action: RateLimitedAction
  readonly weight: number
}

interface Bucket {
  readonly actions: Fifo<QueuedAction>
  /** Queued weight, checked against the hwm. */
  weight: number
}

/** Below this many consumed slots compaction is not worth a copy. */
const COMPACT_AFTER = 1024

/** A FIFO with O(1) shift (Array.prototype.shift is O(n), and a queue may hold the whole hwm). */
class Fifo<T> {
  private items: Array<T | undefined> = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head++
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.items.length) {
      // Reclaim the consumed front once it is at least half the array.
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
}


/** Pushpin's batch shape for a rate: [interval ms, actions per batch]. */
export const batchFor = (rate: number): readonly [intervalMs: number, size: number] =>
  rate >= 1000 / MIN_BATCH_INTERVAL_MS
    ? [MIN_BATCH_INTERVAL_MS, Math.ceil((rate * MIN_BATCH_INTERVAL_MS) / 1000)]
    : [Math.floor(1000 / rate), 1]

export class RateLimiter {
  private readonly rate: number | undefined
  private readonly hwm: number | undefined
  private readonly maxQueuedTotal: number
  private readonly clock: Clock
  /** In thousandths of an action; 0 when unlimited. */
  private readonly capacity: number
  private credit: number
  private lastRefill: number

  private readonly buckets = new Map<string, Bucket>()
  /** Keys with queued actions, served in turn. */
  private readonly turns = new Fifo<string>()
  private queuedTotal = 0

  readonly stats: RateLimiterStats = { sent: 0, queued: 0, drained: 0, dropped: { hwm: 0, "queue full": 0 } }

  constructor(options: RateLimiterOptions = {}) {
    const rate = options.rate
    this.rate = rate !== undefined && rate > 0 ? rate : undefined
    this.hwm = options.hwm !== undefined && options.hwm > 0 ? options.hwm : undefined
    this.maxQueuedTotal = options.maxQueuedTotal ?? QUEUED_TOTAL_MAX
    this.clock = options.clock ?? systemClock
    if (this.rate === undefined) {
      this.capacity = 0
    } else {
      const [, batchSize] = batchFor(this.rate)
      const perTick = Math.ceil((this.rate * (options.tickMs ?? MIN_BATCH_INTERVAL_MS)) / 1000)
      this.capacity = Math.max(batchSize, perTick) * MILLI
    }
    // Pushpin runs its first batch at once after idle: start full.
    this.credit = this.capacity
    this.lastRefill = this.clock.now()
  }

  /** Actions waiting (a gauge). */
  get queuedCount(): number {
    return this.queuedTotal
  }

  /** Weight waiting under `key` (what the hwm is checked against). */
  queuedWeight(key: string): number {
    return this.buckets.get(key)?.weight ?? 0
  }

  /**
   * Runs `action` now if the rate allows and nothing is waiting ("sent"), else queues it behind
   * the key's earlier actions ("queued"), or drops it past the hwm ("dropped"; not run, ever).
   */
  offer(key: string, action: RateLimitedAction, weight = 1): OfferOutcome {
    // Pushpin counts anything below one as one.
    const w = Math.max(1, weight)
    // Checked first, as Pushpin does, so even an idle key drops an action heavier than the mark.
    const bucket = this.buckets.get(key)
    if (this.hwm !== undefined && (bucket?.weight ?? 0) + w > this.hwm) return this.drop("hwm")
    if (this.rate === undefined) {
      this.stats.sent++
      action()
      return "sent"
    }
    this.refill()
    // Only when nothing waits anywhere: a waiting key has first claim on the credit.
    if (this.queuedTotal === 0 && this.credit >= MILLI) {
      this.stats.sent++
      this.run(action, w)
      return "sent"
    }
    if (this.queuedTotal >= this.maxQueuedTotal) return this.drop("queue full")
    if (bucket === undefined) {
      const fresh: Bucket = { actions: new Fifo(), weight: w }
      fresh.actions.push({ action, weight: w })
      this.buckets.set(key, fresh)
      this.turns.push(key)
    } else {
      bucket.actions.push({ action, weight: w })
      bucket.weight += w
    }
    this.queuedTotal++
    this.stats.queued++
    return "queued"
  }

  /** Called by the shared tick: runs queued actions, one key at a time in turn, while credit lasts. */
  advance(): void {
    if (this.rate === undefined) return
    this.refill()
    while (this.queuedTotal > 0 && this.credit >= MILLI) {
      const key = this.turns.shift()
      if (key === undefined) break
      const bucket = this.buckets.get(key)
      const next = bucket?.actions.shift()
      if (bucket === undefined || next === undefined) continue
      bucket.weight -= next.weight
      this.queuedTotal--
      if (bucket.actions.length > 0) this.turns.push(key)
      else this.buckets.delete(key)
      this.stats.drained++
      this.run(next.action, next.weight)
    }
  }

  private run(action: RateLimitedAction, weight: number): void {
    // Charged before running, so a re-entrant offer sees the spent credit; refunded if nothing was sent.
    this.credit -= weight * MILLI
    if (action() === false) this.credit = Math.min(this.capacity, this.credit + weight * MILLI)
  }

  private refill(): void {
    const now = this.clock.now()
    const elapsed = now - this.lastRefill
    if (elapsed <= 0) return
    this.lastRefill = now
    // rate actions per 1000 ms = rate milli-actions per ms.
    this.credit = Math.min(this.capacity, this.credit + elapsed * (this.rate ?? 0))
  }

  private drop(reason: RateLimiterDropReason): "dropped" {
    this.stats.dropped[reason]++
    return "dropped"
  }
}
