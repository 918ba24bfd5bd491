/**
 * One shared clock for every held connection's timeouts and keep-alives. A held connection must
 * cost memory, not a timer or a fiber of its own: 10 000 idle streams are 10 000 entries in
 * buckets here, checked by one interval.
 *
 * Resolution is one tick (100 ms by default, as Pushpin's connmgr batches its keep-alive
 * timeouts); an entry fires on the first tick at or after its deadline.
 */

/** Pushpin's connmgr processes its timeouts in 100 ms batches. */
export const TIMER_TICK_MS = 100

export interface TimerEntry {
  /** Tick the entry is filed under; -1 when not scheduled. */
  tick: number
  readonly fire: () => void
}

export interface Clock {
  readonly now: () => number
}

export const systemClock: Clock = { now: () => Date.now() }

export class TimerWheel {
  private readonly buckets = new Map<number, Set<TimerEntry>>()
  private lastProcessedTick: number
  private interval: ReturnType<typeof setInterval> | undefined
  private scheduled = 0
  private readonly tickListeners: Array<() => void> = []

  constructor(private readonly clock: Clock = systemClock, readonly tickMs: number = TIMER_TICK_MS) {
    this.lastProcessedTick = Math.floor(clock.now() / tickMs)
  }

  /** Entries waiting to fire (a gauge). */
  get size(): number {
    return this.scheduled
  }

  makeEntry(fire: () => void): TimerEntry {
    return { tick: -1, fire }
  }

  /** (Re)schedules `entry` to fire `delayMs` from now. */
  schedule(entry: TimerEntry, delayMs: number): void {
    this.cancel(entry)
    const tick = Math.max(Math.ceil((this.clock.now() + delayMs) / this.tickMs), this.lastProcessedTick + 1)
    let bucket = this.buckets.get(tick)
    if (bucket === undefined) {
      bucket = new Set()
      this.buckets.set(tick, bucket)
    }
    bucket.add(entry)
    entry.tick = tick
    this.scheduled++
  }

  cancel(entry: TimerEntry): void {
    if (entry.tick < 0) return
    const bucket = this.buckets.get(entry.tick)
    if (bucket !== undefined && bucket.delete(entry)) {
      this.scheduled--
      if (bucket.size === 0) this.buckets.delete(entry.tick)
    }
    entry.tick = -1
  }

  /** Runs `listener` on every tick, after due entries fired (sequencer and rate limiter clocks). */
  onTick(listener: () => void): void {
    this.tickListeners.push(listener)
  }

  /** Fires everything due up to now. Called by the interval; tests call it with a fake clock. */
  advance(): void {
    const currentTick = Math.floor(this.clock.now() / this.tickMs)
    for (let tick = this.lastProcessedTick + 1; tick <= currentTick; tick++) {
      // Set first, so an entry rescheduled while firing lands in a later tick.
      this.lastProcessedTick = tick
      const bucket = this.buckets.get(tick)
      if (bucket === undefined) continue
      this.buckets.delete(tick)
      for (const entry of bucket) {
        this.scheduled--
        entry.tick = -1
        entry.fire()
      }
    }
    this.lastProcessedTick = currentTick
    for (const listener of this.tickListeners) listener()
  }

  start(): void {
    if (this.interval !== undefined) return
    this.lastProcessedTick = Math.floor(this.clock.now() / this.tickMs)
    this.interval = setInterval(() => this.advance(), this.tickMs)
  }

  stop(): void {
    if (this.interval !== undefined) clearInterval(this.interval)
    this.interval = undefined
  }
}
