/**
 * Held client connections (Pushpin's `HttpSession`). A response hold (long-polling) waits for one
 * `http-response` publish or its timeout; a stream hold (HTTP streaming, SSE) sends its initial
 * body at once, then every `http-stream` publish in order until a `close`. A response with only a
 * next link streams too: its body, then each link's body, until a link answers with a stream hold
 * or without a further link.
 *
 * Reliability follows Pushpin: a channel subscribed with a `prev-id` expects each publish to name
 * the id before it; a gap, a `hint` publish, `recover`, or a channel's first subscriber makes the
 * session ask the origin again (response holds: the whole request, with `Grip-Last`; streams: the
 * next link). Link fetches that fail before any byte reached the client are retried after 1, 2,
 * 4, 8 and 16 s (plus up to 1 s of jitter).
 *
 * Costs per idle held connection are memory only: one session object, a subscriber entry per
 * channel, entries in the shared TimerWheel, and for streams a plain ReadableStream whose queue
 * is the bounded outbox. Nothing here allocates a fiber or a timer per connection.
 */
import { Result } from "effect"
import { applyFilters, responseContentFilters } from "../grip/filters.ts"
import type { Instruct, InstructError, OriginResponse } from "../grip/instruct.ts"
import { applyJsonPatch } from "../grip/json-patch.ts"
import type { PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import { wrapHeldResponse, type JsonpContext } from "../proxy/jsonp.ts"
import type { ChannelIndex, Subscriber, UpdatePriority } from "./channels.ts"
import type { LastId, SessionOrigin } from "./session-origin.ts"
import type { TimerEntry, TimerWheel } from "./timer-wheel.ts"
import type { UpdateQueue } from "./update-queue.ts"

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

/** Largest `application/grip-instruct` body a next link may answer with. */
const MAX_LINK_INSTRUCT_BODY_BYTES = 100_000

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
  /** The last published id per channel (the sequencer's). */
  readonly lastIds: { readonly get: (channel: string) => string | undefined; readonly forget: (channel: string) => void }
  /** Parses a next link's answer with the route's prefix and subscription limit. */
  readonly parseInstruct: (response: OriginResponse) => Result.Result<Instruct, InstructError>
}

const jittered = (intervalMs: number): number =>
  Math.max(intervalMs - Math.floor(Math.random() * Math.min(KEEP_ALIVE_JITTER_MS, intervalMs / 2)), 1)

const linkRetryDelay = (retries: number): number =>
  LINK_RETRY_BASE_MS * 2 ** retries + Math.floor(Math.random() * LINK_RETRY_JITTER_MS)

const lastIdsOf = (expected: ReadonlyMap<string, string | undefined> | undefined): ReadonlyArray<LastId> => {
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
const forgetConflicts = (environment: HoldEnvironment, channels: ReadonlyArray<HoldChannel>, context: HoldContext): boolean => {
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
const sendGoneLink = (plan: HoldPlan, context: HoldContext): void => {
  if (plan.goneLink === undefined || context.origin === undefined) return
  const uri = plan.goneLink
  context.origin
    .fetchLink({ method: "POST", uri, lastIds: [], signal: AbortSignal.timeout(30_000) })
    .then((response) => response.body?.cancel())
    .catch((error: unknown) =>
      log.write("handler", 1, `connection ${context.connectionId}: gone link ${uri} failed: ${error instanceof Error ? error.message : String(error)}`)
    )
}

const text = new TextEncoder()

/**
 * Shared by both session kinds: per-channel expected prev-ids, and running a channel's filters
 * on one publish.
 */
abstract class Session implements Subscriber<PublishItem> {
  readonly id: string
  readonly bucket: string
  protected channels: ReadonlyArray<HoldChannel>
  /**
   * channel → the prev-id the next publish must name. Only sessions that sequence a channel get
   * one: idle held connections are many, and most never use ids.
   */
  protected expected: Map<string, string | undefined> | undefined

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

  /** The channels as filters see them (require-sub, build-id's last ids). */
  protected subscriptions(): ReadonlyMap<string, string | undefined> {
    return this.expected ?? new Map(this.channels.map((channel) => [channel.name, undefined]))
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

class ResponseSession extends Session {
  private state: "holding" | "waiting" | "done" = "holding"
  private readonly timer: TimerEntry

  constructor(
    environment: HoldEnvironment,
    plan: HoldPlan,
    context: HoldContext,
    stats: HoldStats,
    private readonly resolve: (response: Response | Promise<Response>) => void
  ) {
    super(environment, plan, context, stats)
    this.timer = environment.wheel.makeEntry(() => {
      stats.timedOut++
      this.finish(this.answer(plan.response))
    })
  }

  /** The client went away (AbortSignal listener; an object, so no closure per connection). */
  handleEvent(): void {
    this.finish(undefined)
  }

  start(): void {
    this.stats.responseHolds++
    this.context.signal.addEventListener("abort", this, { once: true })
    // The origin answered with a prev-id older than what was since published: ask again at
    // once, with Grip-Last, rather than hold a client that already missed something.
    if (forgetConflicts(this.environment, this.plan.channels, this.context)) {
      this.retry()
      return
    }
    this.environment.wheel.schedule(this.timer, this.plan.timeoutMs)
    this.subscribeAll()
  }

  deliver(item: PublishItem, channel: string): void {
    const format = item.formats.httpResponse
    // Pushpin ignores `close` for response holds: a real response is expected.
    if (this.state !== "holding" || format === undefined || format.action === "close") return
    if (!this.follows(item, channel)) {
      if (this.isSubscribed(channel)) this.update("low")
      return
    }
    if (format.action !== "send") {
      this.update("high") // hint
      return
    }
    const bytes = format.body._tag === "Bytes" ? format.body.bytes : this.patchedBody(format.body.operations, channel)
    if (bytes === undefined) return
    const body = this.filtered(channel, item, bytes)
    if (body === undefined) return
    this.stats.delivered++
    const headers = new Headers(this.plan.response.headers)
    headers.delete("content-length")
    for (const [name, value] of format.headers) headers.set(name, value)
    this.finish(this.answer({ status: format.code, statusText: format.reason, headers, body: new Uint8Array(body) }))
  }

  private answer(response: HeldResponse): Response {
    const jsonp = this.context.jsonp
    if (jsonp === undefined) {
      return new Response(response.body, { status: response.status, statusText: response.statusText, headers: response.headers })
    }
    const wrapped = wrapHeldResponse(jsonp, response)
    return new Response(wrapped.body, { status: 200, statusText: "OK", headers: wrapped.headers })
  }

  update(priority: UpdatePriority): void {
    if (this.state === "done" || (this.state === "waiting" && priority === "low")) return
    if (priority === "high") this.retry()
    else {
      this.state = "waiting"
      this.environment.updates.enqueue("", this)
    }
  }

  runUpdate(): void {
    if (this.state === "waiting") this.retry()
  }

  /** Hands the client back to the proxy, which sends its request to the origin again. */
  private retry(): void {
    const lastIds = lastIdsOf(this.expected)
    if (!this.finish(undefined)) return
    this.stats.retries++
    log.write("handler", 3, `connection ${this.id}: retrying request${lastIds.length === 0 ? "" : ` with Grip-Last ${lastIds.map(([c, id]) => `${c}=${id}`).join(", ")}`}`)
    this.resolve(
      this.context.origin === undefined
        ? new Response("Error while proxying to origin.\n", { status: 502, headers: { "content-type": "text/plain" } })
        : this.context.origin.retry(lastIds)
    )
  }

  private finish(response: Response | undefined): boolean {
    if (this.state === "done") return false
    this.state = "done"
    this.stats.responseHolds--
    this.unsubscribeAll()
    this.environment.wheel.cancel(this.timer)
    this.context.signal.removeEventListener("abort", this)
    sendGoneLink(this.plan, this.context)
    if (response !== undefined) this.resolve(response)
    else if (this.context.signal.aborted) this.resolve(new Response(null, { status: 499 }))
    return true
  }

  /** `body-patch`: the timeout response's body, parsed as JSON, patched, and serialized again. */
  private patchedBody(operations: Parameters<typeof applyJsonPatch>[1], channel: string): Uint8Array | undefined {
    let document: unknown
    try {
      document = JSON.parse(new TextDecoder().decode(this.plan.response.body))
    } catch {
      log.write("handler", 1, `connection ${this.id} channel ${channel}: body-patch publish ignored: the held response body is not JSON`)
      return undefined
    }
    const patched = applyJsonPatch(document, operations)
    if (Result.isFailure(patched)) {
      log.write("handler", 1, `connection ${this.id} channel ${channel}: body-patch publish ignored: ${patched.failure}`)
      return undefined
    }
    return text.encode(JSON.stringify(patched.success))
  }
}

type QueuedPublish = readonly [item: PublishItem, channel: string]

class StreamSession extends Session {
  /**
   * holding: publishes go straight out. fetching: a next link is being read; publishes wait in
   * `queued`. waiting: a low-priority update is queued. closed: done.
   */
  private state: "holding" | "fetching" | "waiting" | "closed" = "holding"
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined
  private queued: Array<QueuedPublish> | undefined
  private pendingUpdate: UpdatePriority | undefined
  private linkRetries = 0
  private nextUri: string | undefined
  /** Channels that saw a publish since the next-link timer was last armed. */
  private activeChannels: Set<string> | undefined
  private keepAliveTimer: TimerEntry | undefined
  /** Re-fetch after the next link's `timeout`, or the delay before retrying a failed fetch. */
  private linkTimer: TimerEntry | undefined

  constructor(environment: HoldEnvironment, plan: HoldPlan, context: HoldContext, stats: HoldStats) {
    super(environment, plan, context, stats)
    this.nextUri = plan.nextLink?.uri
  }

  /** The client went away (AbortSignal listener; an object, so no closure per connection). */
  handleEvent(): void {
    this.cleanup()
  }

  /** The client's response: the initial body at once, then everything this session writes. */
  start(): Response {
    this.stats.streamHolds++
    const plan = this.plan
    const body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller
          if (plan.response.body.byteLength > 0) controller.enqueue(plan.response.body)
          // Bun 1.4.4 writes the response head only with the first body bytes (upstream:
          // oven-sh/bun#33660). With no initial body, a keep-alive is the one payload the origin
          // declared harmless, so send it now rather than leave the client without headers.
          else if (plan.keepAlive !== undefined) controller.enqueue(plan.keepAlive.data)
        },
        cancel: () => this.cleanup()
      },
      { highWaterMark: STREAM_OUTBOX_MAX_MESSAGES, size: () => 1 }
    )
    this.context.signal.addEventListener("abort", this, { once: true })
    this.armKeepAlive()
    if (plan.mode === "none") this.fetchNextLink()
    else this.hold(true)
    const headers = new Headers(plan.response.headers)
    headers.delete("content-length")
    return new Response(body, { status: plan.response.status, statusText: plan.response.statusText, headers })
  }

  deliver(item: PublishItem, channel: string): void {
    const format = item.formats.httpStream
    if (this.state === "closed" || format === undefined) return
    if (this.state !== "holding") {
      this.queued ??= []
      if (this.queued.length < STREAM_OUTBOX_MAX_MESSAGES) this.queued.push([item, channel])
      else this.dropSlow(channel)
      return
    }
    this.send(item, channel)
  }

  update(priority: UpdatePriority): void {
    if (this.state === "closed") return
    if (this.state === "fetching") {
      // Already asking the origin; ask again once this fetch is done.
      if (this.pendingUpdate !== "high") this.pendingUpdate = priority
      return
    }
    if (this.state === "waiting" && priority === "low") return
    if (this.nextUri === undefined) return // nothing to ask
    this.disarmLinkTimer()
    if (priority === "high") this.fetchNextLink()
    else {
      this.state = "waiting"
      this.environment.updates.enqueue(this.nextUri, this)
    }
  }

  runUpdate(): void {
    if (this.state === "waiting") this.fetchNextLink()
  }

  private send(item: PublishItem, channel: string): void {
    const format = item.formats.httpStream
    const controller = this.controller
    if (format === undefined || controller === undefined) return
    if (!this.follows(item, channel)) {
      if (this.isSubscribed(channel)) {
        // Anything queued after a gap is stale too: the next link brings the truth.
        this.queued = undefined
        this.update("low")
      }
      return
    }
    if (format.action === "close") {
      this.cleanup()
      controller.close()
      return
    }
    if (format.action !== "send") {
      // hint: anything queued would be redundant with what the next link brings.
      this.queued = undefined
      this.update("high")
      return
    }
    const content = this.filtered(channel, item, format.content)
    if (content === undefined) return
    if ((controller.desiredSize ?? 0) <= 0) {
      this.dropSlow(channel)
      return
    }
    this.stats.delivered++
    controller.enqueue(content)
    if (this.plan.keepAlive?.mode === "idle") this.armKeepAlive()
    this.noteActivity(channel)
  }

  private dropSlow(channel: string): void {
    this.stats.droppedSlowReader++
    log.write("handler", 1, `drop: connection ${this.id} route ${this.bucket} channel ${channel}: outbox full (${STREAM_OUTBOX_MAX_MESSAGES} messages), reader too slow`)
  }

  /** Every channel has had news since the timer was armed: the link need not be re-fetched yet. */
  private noteActivity(channel: string): void {
    if (this.plan.nextLink === undefined || this.nextUri === undefined) return
    this.activeChannels ??= new Set()
    this.activeChannels.add(channel)
    if (this.activeChannels.size >= this.channels.length) {
      this.activeChannels = undefined
      this.armLinkTimer(this.plan.nextLink.timeoutMs)
    }
  }

  /**
   * Subscribed and waiting for publishes. On the first hold, a prev-id older than the channel's
   * last published id means the client missed something: fetch the next link.
   */
  private hold(first: boolean): void {
    if (first) this.subscribeAll()
    this.state = "holding"
    if (first && forgetConflicts(this.environment, this.plan.channels, this.context)) {
      this.update("low")
      return
    }
    const queued = this.queued
    this.queued = undefined
    if (queued !== undefined) {
      for (const [item, channel] of queued) {
        if (this.state !== "holding") {
          // A queued item made this session fetch again; keep the rest for after that.
          this.deliver(item, channel)
          continue
        }
        const expected = this.expected?.get(channel)
        if (!this.isSubscribed(channel) || (expected !== undefined && expected !== item.prevId)) continue // does not follow this hold
        this.send(item, channel)
      }
    }
    if (this.state !== "holding") return
    this.activeChannels = undefined
    if (this.plan.nextLink !== undefined && this.nextUri !== undefined) this.armLinkTimer(this.plan.nextLink.timeoutMs)
    const pending = this.pendingUpdate
    this.pendingUpdate = undefined
    if (pending !== undefined) this.update(pending)
  }

  private fetchNextLink(): void {
    const uri = this.nextUri
    const origin = this.context.origin
    if (uri === undefined || origin === undefined || this.state === "closed") return
    this.state = "fetching"
    this.disarmLinkTimer()
    this.stats.linkFetches++
    let sent = 0
    const lastIds = lastIdsOf(this.expected)
    log.write("handler", 3, `connection ${this.id}: next link ${uri}`)
    origin
      .fetchLink({ method: "GET", uri, lastIds, signal: this.context.signal })
      .then(async (response) => {
        if (response.status < 200 || response.status > 299) {
          await response.body?.cancel()
          throw new Error(`next link answered ${response.status}`)
        }
        const isInstructBody = (response.headers.get("content-type") ?? "").split(";")[0]?.trim().toLowerCase() === "application/grip-instruct"
        let instructBody = new Uint8Array(0)
        if (response.body !== null) {
          const filters = responseContentFilters(this.plan.channels.map((channel) => channel.filters))
          const reader = response.body.getReader()
          const chunks: Array<Uint8Array> = []
          let size = 0
          for (;;) {
            const { done, value } = await reader.read()
            if (done) break
            if (this.state === "closed") {
              await reader.cancel()
              return
            }
            if (isInstructBody) {
              size += value.byteLength
              if (size > MAX_LINK_INSTRUCT_BODY_BYTES) throw new Error("next link instruct body too large")
              chunks.push(value)
              continue
            }
            const content = filters.length === 0 ? value : this.responseFiltered(filters, value)
            this.controller?.enqueue(content)
            sent += content.byteLength
          }
          if (isInstructBody) instructBody = Buffer.concat(chunks)
        }
        this.linkRetries = 0
        this.onLinkAnswer(uri, response, instructBody)
      })
      .catch((error: unknown) => {
        if (this.state === "closed") return
        this.stats.linkFailures++
        const reason = error instanceof Error ? error.message : String(error)
        // Bytes already went to the client: a retry would repeat them.
        if (sent === 0 && this.linkRetries < LINK_RETRY_MAX) {
          const delay = linkRetryDelay(this.linkRetries)
          this.linkRetries++
          log.write("handler", 2, `connection ${this.id}: next link ${uri} failed (${reason}); retry ${this.linkRetries} of ${LINK_RETRY_MAX} in ${delay} ms`)
          this.armLinkTimer(delay)
          return
        }
        log.write("handler", 1, `connection ${this.id}: next link ${uri} failed (${reason}); giving up`)
        this.fail("Failed to retrieve next link.")
      })
  }

  private responseFiltered(filters: ReadonlyArray<string>, content: Uint8Array): Uint8Array {
    const outcome = applyFilters(filters, { subscriptionMeta: this.plan.meta, publishMeta: new Map(), subscriptions: this.subscriptions(), content })
    return outcome.content ?? content
  }

  /** The link's body is out; its GRIP headers say what comes next. */
  private onLinkAnswer(uri: string, response: Response, body: Uint8Array): void {
    if (this.state === "closed") return
    const parsed = this.environment.parseInstruct({
      status: response.status,
      reason: response.statusText,
      headers: response.headers,
      body,
      requestUri: uri
    })
    if (Result.isFailure(parsed)) return this.fail(parsed.failure.message)
    const instruct = parsed.success
    if (instruct.holdMode === "response") return this.fail("Next link returned non-stream hold.")
    const plan = planFrom(instruct)
    if (body.byteLength > 0 && plan.response.body.byteLength > 0) this.controller?.enqueue(plan.response.body)
    this.nextUri = plan.nextLink?.uri
    // The gone link is the first response's; later links share instructions, not identity.
    this.plan = { ...plan, goneLink: this.plan.goneLink }
    if (instruct.holdMode === "none") {
      if (this.nextUri === undefined) this.end()
      else this.fetchNextLink()
      return
    }
    if (instruct.channels.some((channel) => channel.prevId !== undefined) && this.nextUri === undefined) {
      return this.fail(`channel '${instruct.channels.find((c) => c.prevId !== undefined)?.name ?? ""}' specifies prev-id, but no next link found`)
    }
    this.resubscribe(plan.channels)
    this.armKeepAlive()
    this.hold(false)
  }

  /** Moves the subscriptions to the link's channel list, keeping unchanged ones in place. */
  private resubscribe(channels: ReadonlyArray<HoldChannel>): void {
    const wanted = new Map(channels.map((channel) => [channel.name, channel]))
    for (const channel of this.channels) {
      if (!wanted.has(channel.name)) this.environment.channels.unsubscribe(channel.name, this)
    }
    const previous = this.channels
    this.channels = channels
    this.expected = expectedIdsOf(channels)
    for (const name of wanted.keys()) {
      if (!previous.some((channel) => channel.name === name)) this.environment.channels.subscribe(name, this)
    }
  }

  private armKeepAlive(): void {
    const keepAlive = this.plan.keepAlive
    if (keepAlive === undefined) {
      if (this.keepAliveTimer !== undefined) this.environment.wheel.cancel(this.keepAliveTimer)
      return
    }
    this.keepAliveTimer ??= this.environment.wheel.makeEntry(() => {
      const current = this.plan.keepAlive
      if (this.state === "closed" || current === undefined) return
      // A reader that is behind gains nothing from a keep-alive; it would only grow the outbox.
      if (this.controller !== undefined && (this.controller.desiredSize ?? 0) > 0) this.controller.enqueue(current.data)
      this.armKeepAlive()
    })
    this.environment.wheel.schedule(this.keepAliveTimer, jittered(keepAlive.intervalMs))
  }

  private armLinkTimer(delayMs: number): void {
    // Fires in two situations: a retry delay while fetching, or the link's timeout while holding.
    this.linkTimer ??= this.environment.wheel.makeEntry(() => {
      if (this.state === "fetching") this.fetchNextLink()
      else if (this.state === "holding") this.update("low")
    })
    this.environment.wheel.schedule(this.linkTimer, delayMs)
  }

  private disarmLinkTimer(): void {
    if (this.linkTimer !== undefined) this.environment.wheel.cancel(this.linkTimer)
  }

  /** Pushpin ends a stream on error; in debug mode the client sees why. */
  private fail(message: string): void {
    const controller = this.controller
    if (this.state === "closed") return
    log.write("handler", 1, `connection ${this.id}: ${message}`)
    this.cleanup()
    if (controller === undefined) return
    if (this.context.debug) controller.enqueue(text.encode(`\n\n${message}\n`))
    controller.close()
  }

  private end(): void {
    const controller = this.controller
    if (this.state === "closed") return
    this.cleanup()
    controller?.close()
  }

  private cleanup(): void {
    if (this.state === "closed") return
    this.state = "closed"
    this.stats.streamHolds--
    this.unsubscribeAll()
    this.queued = undefined
    if (this.keepAliveTimer !== undefined) this.environment.wheel.cancel(this.keepAliveTimer)
    this.disarmLinkTimer()
    this.context.signal.removeEventListener("abort", this)
    sendGoneLink(this.plan, this.context)
  }
}

export const makeHolds = (environment: HoldEnvironment) => {
  const stats: HoldStats = {
    responseHolds: 0,
    streamHolds: 0,
    delivered: 0,
    droppedSlowReader: 0,
    timedOut: 0,
    filtered: 0,
    retries: 0,
    linkFetches: 0,
    linkFailures: 0
  }

  const responseHold = (plan: HoldPlan, context: HoldContext): Promise<Response> =>
    new Promise((resolve) => {
      // The client may have left while the origin was answering: hold nothing for it.
      if (context.signal.aborted) return resolve(new Response(null, { status: 499 }))
      new ResponseSession(environment, plan, context, stats, resolve).start()
    })

  /** A stream hold, or a response that only has a next link (its bodies are streamed in turn). */
  const streamHold = (plan: HoldPlan, context: HoldContext): Response => {
    if (context.signal.aborted) return new Response(null, { status: 499 })
    return new StreamSession(environment, plan, context, stats).start()
  }

  return { responseHold, streamHold, stats } as const
}
