/**
 * A stream hold (HTTP streaming, SSE): the initial body at once, then every `http-stream`
 * publish in order until a `close`. A response with only a next link streams too: its body, then
 * each link's body, until a link answers with a stream hold or without a further link. Link
 * fetches that fail before any byte reached the client are retried after 1, 2, 4, 8 and 16 s
 * (plus up to 1 s of jitter), from the shared timer wheel.
 */
import { Result } from "effect"
import { applyFilters, responseContentFilters } from "../grip/filters.ts"
import type { PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import type { UpdatePriority } from "./channels.ts"
import {
  forgetConflicts,
  type HoldChannel,
  type HoldContext,
  type HoldEnvironment,
  type HoldPlan,
  type HoldStats,
  jittered,
  LINK_RETRY_MAX,
  lastIdsOf,
  linkRetryDelay,
  planFrom,
  sendGoneLink,
  Session,
  STREAM_OUTBOX_MAX_MESSAGES
} from "./session.ts"
import type { TimerEntry } from "./timer-wheel.ts"
import { type BatchedWriter, joinChunks } from "./write-batch.ts"
import type { PushBodySource, PushBodyWriter } from "../platform/server.ts"

/** Largest `application/grip-instruct` body a next link may answer with. */
const MAX_LINK_INSTRUCT_BODY_BYTES = 100_000

const text = new TextEncoder()

type QueuedPublish = readonly [item: PublishItem, channel: string]

export class StreamSession extends Session implements BatchedWriter, PushBodySource {
  /**
   * holding: publishes go straight out. fetching: a next link is being read; publishes wait in
   * `queued`. waiting: a low-priority update is queued. closed: done.
   */
  private state: "holding" | "fetching" | "waiting" | "closed" = "holding"
  /** The response body, once the runtime started sending it. */
  private writer: PushBodyWriter | undefined
  /** Messages written this turn, sent as one chunk by the handler's WriteBatch. */
  private pending: Array<Uint8Array> | undefined
  /**
   * The outbox: messages handed to the runtime since it last said the client is not keeping up
   * (undefined while the client keeps up). Past 100, this reader loses messages.
   */
  private unsent: number | undefined
  /** The body ended before the runtime asked for it; it closes as soon as it does. */
  private closing = false
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
    this.onCancel()
  }

  onCancel(): void {
    this.pending = undefined
    this.cleanup()
  }

  onWritable(writer: PushBodyWriter): void {
    this.writer = writer
    this.flushWrites()
    if (this.closing) writer.close()
  }

  /** The client's response: the initial body at once, then everything this session writes. */
  start(): Response {
    this.stats.streamHolds++
    const plan = this.plan
    if (plan.response.body.byteLength > 0) this.write(plan.response.body)
    // Bun 1.4.4 writes the response head only with the first body bytes (upstream:
    // oven-sh/bun#33660). With no initial body, a keep-alive is the one payload the origin
    // declared harmless, so send it now rather than leave the client without headers.
    else if (plan.keepAlive !== undefined) this.write(plan.keepAlive.data)
    const body = this.environment.pushBody(this)
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
    if (format === undefined) return
    if (!this.follows(item, channel)) {
      if (this.isSubscribed(channel)) {
        // Anything queued after a gap is stale too: the next link brings the truth.
        this.queued = undefined
        this.update("low")
      }
      return
    }
    if (format.action === "close") {
      this.end()
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
    if (this.outboxRoom() <= 0) {
      this.dropSlow(channel)
      return
    }
    this.stats.delivered++
    this.write(content)
    if (this.plan.keepAlive?.mode === "idle") this.armKeepAlive()
    this.noteActivity(channel)
  }

  /** Messages the outbox can still take: those handed over while the client is behind, and this turn's. */
  private outboxRoom(): number {
    return STREAM_OUTBOX_MAX_MESSAGES - (this.unsent ?? 0) - (this.pending?.length ?? 0)
  }

  private write(content: Uint8Array): void {
    if (this.pending === undefined) {
      this.pending = [content]
      this.environment.writes.add(this)
    } else {
      this.pending.push(content)
      // A full outbox's worth goes out now: a healthy reader takes it at once, and a stalled
      // one makes outboxRoom() refuse what follows instead of this list growing.
      if (this.pending.length >= STREAM_OUTBOX_MAX_MESSAGES) this.flushWrites()
    }
  }

  flushWrites(): void {
    const pending = this.pending
    const writer = this.writer
    // Before the runtime asks for the body, writes wait here (onWritable sends them).
    if (pending === undefined || writer === undefined) return
    this.pending = undefined
    const outcome = writer.write(joinChunks(pending))
    if (this.unsent !== undefined) this.unsent += pending.length
    else if (outcome !== "sent") {
      this.unsent = pending.length
      void outcome.then(() => {
        this.unsent = undefined
      })
    }
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
            this.write(content)
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
    if (body.byteLength > 0 && plan.response.body.byteLength > 0) this.write(plan.response.body)
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
    this.setChannels(channels)
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
      if (this.outboxRoom() > 0) this.write(current.data)
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
    if (this.state === "closed") return
    log.write("handler", 1, `connection ${this.id}: ${message}`)
    if (this.context.debug) this.write(text.encode(`\n\n${message}\n`))
    this.cleanup()
    this.closeBody()
  }

  /** Ends the body properly (the chunked terminator), so the client sees a finished stream, not a cut one. */
  shutdown(): void {
    this.end()
  }

  private end(): void {
    if (this.state === "closed") return
    this.cleanup()
    this.closeBody()
  }

  /** What this turn wrote goes out, then the end of the body (once the runtime asked for it). */
  private closeBody(): void {
    if (this.writer === undefined) {
      this.closing = true
      return
    }
    this.flushWrites()
    this.writer.close()
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
