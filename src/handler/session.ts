/**
 * What every held HTTP session (Pushpin's `HttpSession`) shares: the hold plan built from the
 * origin's instructions, stats, the environment the handler provides, and the `Session` base
 * with per-channel expected ids and filters.
 *
 * Reliability follows Pushpin: a channel subscribed with a `prev-id` expects each publish to name
 * the id before it; a gap, a `hint` publish, `recover`, or a channel's first subscriber makes the
 * session ask the origin again (response holds: the whole request, with `Grip-Last`; streams: the
 * next link).
 */
import type { Result } from "effect"
import { applyFilters } from "../grip/filters.ts"
import type { Instruct, InstructError, OriginResponse } from "../grip/instruct.ts"
import type { PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import type { PushBodySource } from "../platform/server.ts"
import type { JsonpContext } from "../proxy/jsonp.ts"
import type { ChannelIndex, Subscriber, UpdatePriority } from "./channels.ts"
import type { LastId, SessionOrigin } from "./session-origin.ts"
import type { TimerWheel } from "./timer-wheel.ts"
import type { UpdateQueue } from "./update-queue.ts"
import type { WriteBatch } from "./write-batch.ts"

/** Pushpin queues at most 100 publishes per HTTP session; past that a slow reader loses messages. */
export const STREAM_OUTBOX_MAX_MESSAGES = 100

/** Keep-alives fire at a random point up to this long before their interval ends, as Pushpin's do. */
export const KEEP_ALIVE_JITTER_MS = 1000

/** Next-link fetches that fail before any byte was sent are retried this many times. */
export const LINK_RETRY_MAX = 5

/** First retry delay; each further retry doubles it (1, 2, 4, 8, 16 s). */
export const LINK_RETRY_BASE_MS = 1000

/** Up to this much random delay is added to each retry, so sessions do not retry in lockstep. */
export const LINK_RETRY_JITTER_MS = 1000


export interface HeldResponse {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
  readonly body: Uint8Array<ArrayBuffer>
}

export interface HoldChannel {
  readonly name: string
  readonly filters: ReadonlyArray<string>
  readonly prevId: string | undefined
}

export interface HoldPlan {
  readonly mode: "none" | "response" | "stream"
  /** Channel names (route prefix already applied) with their filters and expected prev-ids. */
  readonly channels: ReadonlyArray<HoldChannel>
  /** `Grip-Set-Meta`: what filters such as skip-self compare the publish's meta against. */
  readonly meta: ReadonlyMap<string, string>
  readonly timeoutMs: number
  readonly keepAlive: { readonly data: Uint8Array<ArrayBuffer>; readonly intervalMs: number; readonly mode: "idle" | "interval" } | undefined
  readonly nextLink: { readonly uri: string; readonly timeoutMs: number } | undefined
  readonly goneLink: string | undefined
  /** What the client gets when a response hold times out, and a stream's initial response. */
  readonly response: HeldResponse
}

export const planFrom = (instruct: Instruct): HoldPlan => ({
  mode: instruct.holdMode,
  channels: instruct.channels.map((channel) => ({ name: channel.name, filters: channel.filters, prevId: channel.prevId })),
  meta: instruct.meta,
  timeoutMs: instruct.timeoutSeconds * 1000,
  keepAlive: instruct.keepAlive === undefined || instruct.keepAlive.data.byteLength === 0
    ? undefined
    : {
      data: new Uint8Array(instruct.keepAlive.data),
      intervalMs: instruct.keepAlive.timeoutSeconds * 1000,
      mode: instruct.keepAlive.mode === "interval" ? "interval" : "idle"
    },
  nextLink: instruct.nextLink === undefined
    ? undefined
    : { uri: instruct.nextLink.uri, timeoutMs: instruct.nextLink.timeoutSeconds * 1000 },
  goneLink: instruct.goneLink,
  response: {
    status: instruct.response.code,
    statusText: instruct.response.reason,
    headers: new Headers(instruct.response.headers.map(([name, value]) => [name, value] as [string, string])),
    body: new Uint8Array(instruct.response.body)
  }
})

export interface HoldStats {
  responseHolds: number
  streamHolds: number
  delivered: number
  /** Messages a slow stream reader lost because its outbox was full. */
  droppedSlowReader: number
  timedOut: number
  /** Publishes a subscription's filters chose not to send. */
  filtered: number
  /** Response holds sent to the origin again (prev-id gap, hint, recover, first subscription). */
  retries: number
  /** Next links fetched, including retries of failed fetches. */
  linkFetches: number
  linkFailures: number
}

export interface HoldContext {
  /** Connection id for logs and drop counts. */
  readonly connectionId: string
  /** Route id (or internal id) for logs. */
  readonly route: string
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal
  /** Whether error details reach the client (`debug` on the route or proxy). */
  readonly debug: boolean
  /**
   * How to reach the origin again. Only sessions that can need it keep it (response holds, and
   * streams with a next or gone link), so an idle plain stream does not pin its request.
   */
  readonly origin: SessionOrigin | undefined
  /** Held answers (delivery, timeout) are wrapped in this JSON-P callback. */
  readonly jsonp: JsonpContext | undefined
}

/** What the sessions share with the handler. */
export interface HoldEnvironment {
  readonly channels: ChannelIndex<PublishItem>
  readonly wheel: TimerWheel
  readonly updates: UpdateQueue
  /** Joins what each stream writes within one event-loop turn into one chunk. */
  readonly writes: WriteBatch
  /** A stream's response body (the runtime adapter's). */
  readonly pushBody: (source: PushBodySource) => ReadableStream<Uint8Array>
  /** The last published id per channel (the sequencer's). */
  readonly lastIds: { readonly get: (channel: string) => string | undefined; readonly forget: (channel: string) => void }
  /** Parses a next link's answer with the route's prefix and subscription limit. */
  readonly parseInstruct: (response: OriginResponse) => Result.Result<Instruct, InstructError>
}

export const jittered = (intervalMs: number): number =>
  Math.max(intervalMs - Math.floor(Math.random() * Math.min(KEEP_ALIVE_JITTER_MS, intervalMs / 2)), 1)

export const linkRetryDelay = (retries: number): number =>
  LINK_RETRY_BASE_MS * 2 ** retries + Math.floor(Math.random() * LINK_RETRY_JITTER_MS)

export const lastIdsOf = (expected: ReadonlyMap<string, string | undefined> | undefined): ReadonlyArray<LastId> => {
  const ids: Array<LastId> = []
  for (const [channel, id] of expected ?? []) if (id !== undefined) ids.push([channel, id])
  return ids
}

/** channel → expected prev-id, only for holds that sequence at least one channel. */
const expectedIdsOf = (channels: ReadonlyArray<HoldChannel>): Map<string, string | undefined> | undefined =>
  channels.some((channel) => channel.prevId !== undefined)
    ? new Map(channels.map((channel) => [channel.name, channel.prevId]))
    : undefined

/** Every channel whose prev-id disagrees with the id last published to it; their last ids are forgotten. */
export const forgetConflicts = (environment: HoldEnvironment, channels: ReadonlyArray<HoldChannel>, context: HoldContext): boolean => {
  let conflict = false
  for (const channel of channels) {
    if (channel.prevId === undefined) continue
    const lastId = environment.lastIds.get(channel.name)
    if (lastId !== undefined && lastId !== channel.prevId) {
      log.write("handler", 3, `connection ${context.connectionId} channel ${channel.name}: last id inconsistency (got ${channel.prevId}, expected ${lastId}), retrying`)
      environment.lastIds.forget(channel.name)
      conflict = true
    }
  }
  return conflict
}

/** Pushpin's gone link: an empty POST when the session ends, its answer ignored. */
export const sendGoneLink = (plan: HoldPlan, context: HoldContext): void => {
  if (plan.goneLink === undefined || context.origin === undefined) return
  const uri = plan.goneLink
  context.origin
    .fetchLink({ method: "POST", uri, lastIds: [], signal: AbortSignal.timeout(30_000) })
    .then((response) => response.body?.cancel())
    .catch((error: unknown) =>
      log.write("handler", 1, `connection ${context.connectionId}: gone link ${uri} failed: ${error instanceof Error ? error.message : String(error)}`)
    )
}


/**
 * Shared by both session kinds: per-channel expected prev-ids, and running a channel's filters
 * on one publish.
 */
export abstract class Session implements Subscriber<PublishItem> {
  readonly id: string
  readonly bucket: string
  protected channels: ReadonlyArray<HoldChannel>
  /**
   * channel → the prev-id the next publish must name. Only sessions that sequence a channel get
   * one: idle held connections are many, and most never use ids.
   */
  protected expected: Map<string, string | undefined> | undefined
  /** What filters see of an unsequenced session's channels, built on first use. */
  private channelView: ReadonlyMap<string, string | undefined> | undefined

  constructor(
    protected readonly environment: HoldEnvironment,
    protected plan: HoldPlan,
    protected readonly context: HoldContext,
    protected readonly stats: HoldStats
  ) {
    this.id = context.connectionId
    this.bucket = context.route
    this.channels = plan.channels
    this.expected = expectedIdsOf(plan.channels)
    this.channelView = undefined
  }

  abstract deliver(item: PublishItem, channel: string): void
  abstract update(priority: UpdatePriority): void
  /** Runs a low-priority update the UpdateQueue released. */
  abstract runUpdate(): void

  /**
   * For a sequenced channel: true when the item follows what this session has seen (and it now
   * expects the item's id next); false on a gap, after forgetting the channel's last id.
   */
  protected follows(item: PublishItem, channel: string): boolean {
    if (!this.isSubscribed(channel)) return false
    const expected = this.expected?.get(channel)
    if (expected === undefined) return true
    if (item.prevId !== expected) {
      log.write("handler", 3, `connection ${this.id} channel ${channel}: last id inconsistency (got ${item.prevId ?? "none"}, expected ${expected}), retrying`)
      this.environment.lastIds.forget(channel)
      return false
    }
    this.expected?.set(channel, item.id)
    return true
  }

  protected isSubscribed(channel: string): boolean {
    return this.channels.some((entry) => entry.name === channel)
  }

  /** Switches to another channel list (a next link's); expected ids come with it. */
  protected setChannels(channels: ReadonlyArray<HoldChannel>): void {
    this.channels = channels
    this.expected = expectedIdsOf(channels)
    this.channelView = undefined
  }

  /** The channels as filters see them (require-sub, build-id's last ids). */
  protected subscriptions(): ReadonlyMap<string, string | undefined> {
    if (this.expected !== undefined) return this.expected
    this.channelView ??= new Map(this.channels.map((channel) => [channel.name, undefined]))
    return this.channelView
  }

  /** The content to send after the channel's filters, or undefined when they drop the publish. */
  protected filtered(channel: string, item: PublishItem, content: Uint8Array): Uint8Array | undefined {
    const filters = this.channels.find((entry) => entry.name === channel)?.filters ?? []
    if (filters.length === 0) return content
    const outcome = applyFilters(filters, {
      subscriptionMeta: this.plan.meta,
      publishMeta: item.meta,
      subscriptions: this.subscriptions(),
      content
    })
    if (outcome.error !== undefined) {
      log.write("handler", 3, `filter ${outcome.error.filter} on connection ${this.id} channel ${channel}: ${outcome.error.message}`)
    }
    if (!outcome.send) {
      this.stats.filtered++
      return undefined
    }
    return outcome.content ?? content
  }

  protected subscribeAll(): void {
    for (const channel of this.channels) this.environment.channels.subscribe(channel.name, this)
  }

  protected unsubscribeAll(): void {
    for (const channel of this.channels) this.environment.channels.unsubscribe(channel.name, this)
  }
}
