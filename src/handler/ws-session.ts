/**
 * A GRIP WebSocket connection as the handler sees it (Pushpin's `WsSession` plus the keep-alive
 * half of its `WsProxySession`): its channel subscriptions with filters, its meta, keep-alives,
 * the delayed message, and delivery of `ws-message` publishes. The proxy owns the sockets and
 * gives the session a `WsSessionHost` to reach the client (and the origin, for `refresh`).
 *
 * Timers run on the handler's shared wheel: an idle GRIP WebSocket costs entries, not timers.
 */
import { applyFilters, contentFiltersMatch } from "../grip/filters.ts"
import type { PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import type { ControlOutgoingMessage, GripControl, WsKeepAlive } from "../websocket/grip-control.ts"
import type { ChannelIndex, Subscriber } from "./channels.ts"
import { jittered } from "./session.ts"
import type { TimerEntry, TimerWheel } from "./timer-wheel.ts"

/** What a session may ask of the connection it belongs to. */
export interface WsSessionHost {
  /**
   * Sends to the client after what is already on its way. `droppable` messages (publishes,
   * keep-alives) may be dropped when the client's outbox is full; returns false when dropped.
   */
  sendToClient(message: ControlOutgoingMessage, droppable: boolean): boolean
  /** Publish `action: close`: close the origin side and then the client with this code. */
  closeByPublish(code: number | undefined, reason: string | undefined): void
  /** Publish `action: refresh`: a WebSocket-over-HTTP connection asks its origin now. */
  refreshOrigin(): void
}

export interface WsSessionStats {
  /** GRIP WebSocket sessions open now. */
  open: number
  delivered: number
  filtered: number
  /** Publishes a slow WebSocket reader lost because its outbox was full. */
  droppedSlowReader: number
  keepAlivesSent: number
  delayedSent: number
  closedByPublish: number
  refreshes: number
  /** Subscribes past `connection_subscription_max`, ignored as Pushpin does. */
  subscriptionsRefused: number
}

export interface WsSessionEnvironment {
  readonly channels: ChannelIndex<PublishItem>
  readonly wheel: TimerWheel
  readonly stats: WsSessionStats
  readonly connectionSubscriptionMax: number
}

export interface WsSessionContext {
  readonly connectionId: string
  /** Route id (or internal id): the rate-limit bucket and what logs name. */
  readonly route: string
  /** The route's channel `prefix`, applied to `subscribe`/`unsubscribe` but not to `sub=`. */
  readonly channelPrefix: string
  /** The client's URI, for the log's "subscribe <uri> channel=<c>" lines. */
  readonly uri: string
}

const NO_FILTERS: ReadonlyArray<string> = []
const NO_META: ReadonlyMap<string, string> = new Map()

export class WsGripSession implements Subscriber<PublishItem> {
  readonly id: string
  readonly bucket: string
  /** channel → its filters, in subscription order. */
  private readonly channels = new Map<string, ReadonlyArray<string>>()
  /** `sub=` channels: an `unsubscribe` cannot remove them. */
  private implicit: Set<string> | undefined = undefined
  private meta: Map<string, string> | undefined = undefined
  private keepAlive: WsKeepAlive | undefined = undefined
  private keepAliveEntry: TimerEntry | undefined = undefined
  private delayed: ControlOutgoingMessage | undefined = undefined
  private delayedEntry: TimerEntry | undefined = undefined
  private ended = false

  constructor(
    private readonly environment: WsSessionEnvironment,
    private readonly context: WsSessionContext,
    private readonly host: WsSessionHost
  ) {
    this.id = context.connectionId
    this.bucket = context.route
    environment.stats.open++
  }

  /** `sub=` on the target: subscribed from the start, no prefix, never unsubscribed by the origin. */
  subscribeImplicit(channel: string): void {
    this.implicit ??= new Set()
    this.implicit.add(channel)
    this.addChannel(channel, NO_FILTERS)
  }

  /** A `c:` control message from the origin, already decoded. */
  control(control: GripControl): void {
    if (this.ended) return
    switch (control._tag) {
      case "Subscribe": {
        if (this.channels.size >= this.environment.connectionSubscriptionMax) {
          this.environment.stats.subscriptionsRefused++
          log.write("handler", 1, `ws session ${this.id}: too many subscriptions`)
          return
        }
        this.addChannel(this.context.channelPrefix + control.channel, control.filters)
        return
      }
      case "Unsubscribe": {
        const channel = this.context.channelPrefix + control.channel
        if (this.implicit?.has(channel) === true || !this.channels.delete(channel)) return
        this.environment.channels.unsubscribe(channel, this)
        return
      }
      case "SetMeta":
        if (control.value === undefined) this.meta?.delete(control.name)
        else (this.meta ??= new Map()).set(control.name, control.value)
        return
      case "KeepAlive":
        this.keepAlive = control.keepAlive
        this.armKeepAlive()
        return
      case "SendDelayed": {
        this.flushDelayed()
        this.delayed = control.message
        this.delayedEntry ??= this.environment.wheel.makeEntry(() => this.flushDelayed())
        this.environment.wheel.schedule(this.delayedEntry, control.delaySeconds * 1000)
        return
      }
      case "FlushDelayed":
        this.flushDelayed()
        return
      case "Session":
        // Pushpin's session ids need its (dormant) state service; nothing uses them here.
        return
      case "Detach":
        // The proxy acts on detach itself: it owns the origin socket.
        return
    }
  }

  deliver(item: PublishItem, channel: string): void {
    const format = item.formats.wsMessage
    if (this.ended || format === undefined) return
    const filters = this.channels.get(channel)
    if (filters === undefined) return
    if (format.action === "send" && !contentFiltersMatch(filters, format.contentFilters)) {
      log.write("handler", 3, `ws session ${this.id} channel ${channel}: content filter mismatch`)
      return
    }
    let content = format.action === "send" ? format.content : undefined
    if (filters.length > 0) {
      const outcome = applyFilters(filters, {
        subscriptionMeta: this.meta ?? NO_META,
        publishMeta: item.meta,
        subscriptions: this.subscriptionView(),
        ...(content === undefined ? {} : { content })
      })
      if (outcome.error !== undefined) {
        log.write("handler", 3, `filter ${outcome.error.filter} on ws session ${this.id} channel ${channel}: ${outcome.error.message}`)
      }
      if (!outcome.send) {
        this.environment.stats.filtered++
        return
      }
      content = outcome.content ?? content
    }
    switch (format.action) {
      case "send":
        if (this.host.sendToClient({ type: format.type, content: content ?? format.content }, true)) {
          this.environment.stats.delivered++
          this.sentToClient()
        } else {
          this.environment.stats.droppedSlowReader++
          log.write("handler", 1, `drop: ws connection ${this.id} route ${this.bucket} channel ${channel}: client outbox full (slow reader)`)
        }
        return
      case "close":
        this.environment.stats.closedByPublish++
        this.host.closeByPublish(format.code, format.reason)
        return
      case "refresh":
        this.environment.stats.refreshes++
        this.host.refreshOrigin()
        return
      case "hint":
        // Pushpin has no use for hint on WebSockets.
        return
    }
  }

  /** Something went to the client: an idle keep-alive counts from now. */
  sentToClient(): void {
    if (this.keepAlive?.mode === "idle") this.armKeepAlive()
  }

  /** The connection is over: leave every channel, stop every timer. Idempotent. */
  end(): void {
    if (this.ended) return
    this.ended = true
    this.environment.stats.open--
    for (const channel of this.channels.keys()) this.environment.channels.unsubscribe(channel, this)
    this.channels.clear()
    if (this.keepAliveEntry !== undefined) this.environment.wheel.cancel(this.keepAliveEntry)
    if (this.delayedEntry !== undefined) this.environment.wheel.cancel(this.delayedEntry)
    this.delayed = undefined
  }

  private addChannel(channel: string, filters: ReadonlyArray<string>): void {
    this.channels.set(channel, filters)
    log.write("handler", 2, `subscribe ${this.context.uri} channel=${channel}`)
    this.environment.channels.subscribe(channel, this)
  }

  private subscriptionView(): ReadonlyMap<string, string | undefined> {
    const view = new Map<string, string | undefined>()
    for (const channel of this.channels.keys()) view.set(channel, undefined)
    return view
  }

  private armKeepAlive(): void {
    const keepAlive = this.keepAlive
    if (keepAlive === undefined) {
      if (this.keepAliveEntry !== undefined) this.environment.wheel.cancel(this.keepAliveEntry)
      return
    }
    this.keepAliveEntry ??= this.environment.wheel.makeEntry(() => this.keepAliveDue())
    this.environment.wheel.schedule(this.keepAliveEntry, jittered(keepAlive.timeoutSeconds * 1000))
  }

  private keepAliveDue(): void {
    const keepAlive = this.keepAlive
    if (this.ended || keepAlive === undefined) return
    if (this.host.sendToClient(keepAlive.message, true)) this.environment.stats.keepAlivesSent++
    this.armKeepAlive()
  }

  private flushDelayed(): void {
    const message = this.delayed
    if (message === undefined) return
    this.delayed = undefined
    if (this.delayedEntry !== undefined) this.environment.wheel.cancel(this.delayedEntry)
    if (this.ended) return
    // Pushpin acknowledges delayed sends: they wait in the outbox rather than being dropped.
    this.host.sendToClient(message, false)
    this.environment.stats.delayedSent++
    this.sentToClient()
  }
}
