/**
 * The channel index: which held connections listen on which channel. Fan-out walks one Set per
 * channel synchronously, so one publish to 10 000 subscribers is one plain loop.
 */

/**
 * How soon a session asks its origin again: `high` at once (a `hint`), `low` through the
 * handler's shared update queue (gaps, `recover`, first subscriptions), which paces them.
 */
export type UpdatePriority = "low" | "high"

export interface Subscriber<Item> {
  /** Connection id, for logs and drop counts. */
  readonly id: string
  /** Rate-limit bucket (Pushpin: the route), so one busy route cannot starve the others. */
  readonly bucket: string
  deliver(item: Item, channel: string): void
  /** Ask the origin again for what this subscriber may have missed (HTTP sessions only). */
  update?(priority: UpdatePriority): void
  /**
   * The server is stopping: end the connection cleanly now (HTTP sessions only; WebSockets are
   * closed by connmgr with 1001).
   */
  shutdown?(): void
}

export interface ChannelEvents {
  /** A channel got its first subscriber. */
  readonly onChannelFirst?: (channel: string) => void
  /** A channel lost its last subscriber. */
  readonly onChannelEmpty?: (channel: string) => void
}

export class ChannelIndex<Item> {
  private readonly channels = new Map<string, Set<Subscriber<Item>>>()
  private subscriptions = 0

  constructor(private readonly events: ChannelEvents = {}) {}

  has(channel: string): boolean {
    return this.channels.has(channel)
  }

  get channelCount(): number {
    return this.channels.size
  }

  get subscriptionCount(): number {
    return this.subscriptions
  }

  /** Returns true when this made the channel go from no subscribers to one. */
  subscribe(channel: string, subscriber: Subscriber<Item>): boolean {
    let set = this.channels.get(channel)
    const first = set === undefined
    if (set === undefined) {
      set = new Set()
      this.channels.set(channel, set)
    }
    if (!set.has(subscriber)) {
      set.add(subscriber)
      this.subscriptions++
    }
    if (first) this.events.onChannelFirst?.(channel)
    return first
  }

  unsubscribe(channel: string, subscriber: Subscriber<Item>): void {
    const set = this.channels.get(channel)
    if (set === undefined || !set.delete(subscriber)) return
    this.subscriptions--
    if (set.size === 0) {
      this.channels.delete(channel)
      this.events.onChannelEmpty?.(channel)
    }
  }

  /**
   * Delivers to every current subscriber of `channel` and returns how many were reached. A
   * snapshot is taken first, so a subscriber that unsubscribes while receiving (a response hold
   * completing) does not disturb the walk.
   */
  publish(channel: string, item: Item, dispatch?: (subscriber: Subscriber<Item>, item: Item, channel: string) => void): number {
    const set = this.channels.get(channel)
    if (set === undefined) return 0
    const receivers = [...set]
    if (dispatch === undefined) for (const subscriber of receivers) subscriber.deliver(item, channel)
    else for (const subscriber of receivers) dispatch(subscriber, item, channel)
    return receivers.length
  }

  /** The subscribers of one channel, or of every channel (each once), as a snapshot. */
  subscribers(channel?: string): ReadonlyArray<Subscriber<Item>> {
    if (channel !== undefined) return [...(this.channels.get(channel) ?? [])]
    const all = new Set<Subscriber<Item>>()
    for (const set of this.channels.values()) for (const subscriber of set) all.add(subscriber)
    return [...all]
  }
}
