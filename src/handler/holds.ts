/**
 * Held client connections. A response hold (long-polling) waits for one `http-response` publish
 * or its timeout; a stream hold (HTTP streaming, SSE) sends its initial body at once, then every
 * `http-stream` publish in order until a `close`.
 *
 * Costs per held connection are memory only: a subscriber object per channel, one entry in the
 * shared TimerWheel, and for streams a plain ReadableStream whose queue is the bounded outbox.
 * Nothing here allocates a fiber or a timer per connection.
 */
import { Result } from "effect"
import { applyFilters } from "../grip/filters.ts"
import { applyJsonPatch } from "../grip/json-patch.ts"
import type { PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import type { ChannelIndex, Subscriber } from "./channels.ts"
import type { TimerEntry, TimerWheel } from "./timer-wheel.ts"

/** Pushpin queues at most 100 publishes per HTTP session; past that a slow reader loses messages. */
export const STREAM_OUTBOX_MAX_MESSAGES = 100

/** Keep-alives fire at a random point up to this long before their interval ends, as Pushpin's do. */
export const KEEP_ALIVE_JITTER_MS = 1000

export interface HeldResponse {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
  readonly body: Uint8Array<ArrayBuffer>
}

export interface HoldPlan {
  readonly mode: "response" | "stream"
  /** Channel names (route prefix already applied) with the filters each was subscribed with. */
  readonly channels: ReadonlyArray<{ readonly name: string; readonly filters: ReadonlyArray<string> }>
  /** `Grip-Set-Meta`: what filters such as skip-self compare the publish's meta against. */
  readonly meta: ReadonlyMap<string, string>
  /** The channels as filters see them (require-sub, build-id), built once per hold. */
  readonly subscriptions: ReadonlyMap<string, string | undefined>
  readonly timeoutMs: number
  readonly keepAlive: { readonly data: Uint8Array<ArrayBuffer>; readonly intervalMs: number; readonly mode: "idle" | "interval" } | undefined
  /** What the client gets when a response hold times out, and a stream's initial response. */
  readonly response: HeldResponse
}

export interface HoldStats {
  responseHolds: number
  streamHolds: number
  delivered: number
  /** Messages a slow stream reader lost because its outbox was full. */
  droppedSlowReader: number
  timedOut: number
  /** Publishes a subscription's filters chose not to send. */
  filtered: number
}

export interface HoldContext {
  /** Connection id for logs and drop counts. */
  readonly connectionId: string
  /** Route id (or internal id) for logs. */
  readonly route: string
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal
}

/**
 * Runs the channel's filters for one held connection; returns the content to send (possibly
 * rewritten by var-subst), or undefined when the publish is not for this subscriber.
 */
const filtered = (
  plan: HoldPlan,
  channel: string,
  item: PublishItem,
  content: Uint8Array,
  context: HoldContext,
  stats: HoldStats
): Uint8Array | undefined => {
  const filters = plan.channels.find((entry) => entry.name === channel)?.filters ?? []
  if (filters.length === 0) return content
  const outcome = applyFilters(filters, {
    subscriptionMeta: plan.meta,
    publishMeta: item.meta,
    subscriptions: plan.subscriptions,
    content
  })
  if (outcome.error !== undefined) {
    log.write("handler", 3, `filter ${outcome.error.filter} on connection ${context.connectionId} channel ${channel}: ${outcome.error.message}`)
  }
  if (!outcome.send) {
    stats.filtered++
    return undefined
  }
  return outcome.content ?? content
}

/** `body-patch`: the held request's own body, parsed as JSON, patched, and serialized again. */
const patchedBody = (
  plan: HoldPlan,
  operations: Parameters<typeof applyJsonPatch>[1],
  context: HoldContext,
  channel: string
): Uint8Array | undefined => {
  let document: unknown
  try {
    document = JSON.parse(new TextDecoder().decode(plan.response.body))
  } catch {
    log.write("handler", 1, `connection ${context.connectionId} channel ${channel}: body-patch publish ignored: the held response body is not JSON`)
    return undefined
  }
  const patched = applyJsonPatch(document, operations)
  if (Result.isFailure(patched)) {
    log.write("handler", 1, `connection ${context.connectionId} channel ${channel}: body-patch publish ignored: ${patched.failure}`)
    return undefined
  }
  return new TextEncoder().encode(JSON.stringify(patched.success))
}

const jittered = (intervalMs: number): number =>
  Math.max(intervalMs - Math.floor(Math.random() * Math.min(KEEP_ALIVE_JITTER_MS, intervalMs / 2)), 1)

export const makeHolds = (channels: ChannelIndex<PublishItem>, wheel: TimerWheel) => {
  const stats: HoldStats = { responseHolds: 0, streamHolds: 0, delivered: 0, droppedSlowReader: 0, timedOut: 0, filtered: 0 }

  const subscribeAll = (plan: HoldPlan, subscriber: Subscriber<PublishItem>) => {
    for (const channel of plan.channels) channels.subscribe(channel.name, subscriber)
  }
  const unsubscribeAll = (plan: HoldPlan, subscriber: Subscriber<PublishItem>) => {
    for (const channel of plan.channels) channels.unsubscribe(channel.name, subscriber)
  }

  const responseHold = (plan: HoldPlan, context: HoldContext): Promise<Response> =>
    new Promise((resolve) => {
      // The client may have left while the origin was answering: hold nothing for it.
      if (context.signal.aborted) return resolve(new Response(null, { status: 499 }))
      stats.responseHolds++
      let done = false
      let timer: TimerEntry | undefined
      const finish = (response: Response | undefined) => {
        if (done) return
        done = true
        stats.responseHolds--
        unsubscribeAll(plan, subscriber)
        if (timer !== undefined) wheel.cancel(timer)
        context.signal.removeEventListener("abort", onAbort)
        if (response !== undefined) resolve(response)
      }
      const subscriber: Subscriber<PublishItem> = {
        id: context.connectionId,
        bucket: context.route,
        deliver: (item, channel) => {
          const format = item.formats.httpResponse
          // Pushpin ignores `close` for response holds; `hint` needs next-link re-fetching.
          if (format === undefined || format.action !== "send") return
          const bytes = format.body._tag === "Bytes" ? format.body.bytes : patchedBody(plan, format.body.operations, context, channel)
          if (bytes === undefined) return
          const body = filtered(plan, channel, item, bytes, context, stats)
          if (body === undefined) return
          stats.delivered++
          const headers = new Headers(plan.response.headers)
          headers.delete("content-length")
          for (const [name, value] of format.headers) headers.set(name, value)
          finish(new Response(new Uint8Array(body), { status: format.code, statusText: format.reason, headers }))
        }
      }
      const onAbort = () => finish(undefined)
      context.signal.addEventListener("abort", onAbort, { once: true })
      timer = wheel.makeEntry(() => {
        stats.timedOut++
        const { status, statusText, headers, body } = plan.response
        finish(new Response(body, { status, statusText, headers }))
      })
      wheel.schedule(timer, plan.timeoutMs)
      subscribeAll(plan, subscriber)
    })

  const streamHold = (plan: HoldPlan, context: HoldContext): Response => {
    if (context.signal.aborted) return new Response(null, { status: 499 })
    stats.streamHolds++
    let closed = false
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined
    const keepAlive = plan.keepAlive
    const keepAliveTimer = keepAlive === undefined
      ? undefined
      : wheel.makeEntry(() => {
        if (closed) return
        // A reader that is behind gains nothing from a keep-alive; it would only grow the outbox.
        if (controller !== undefined && (controller.desiredSize ?? 0) > 0) controller.enqueue(keepAlive.data)
        wheel.schedule(keepAliveTimer as TimerEntry, jittered(keepAlive.intervalMs))
      })

    const cleanup = () => {
      if (closed) return
      closed = true
      stats.streamHolds--
      unsubscribeAll(plan, subscriber)
      if (keepAliveTimer !== undefined) wheel.cancel(keepAliveTimer)
      context.signal.removeEventListener("abort", cleanup)
    }

    const subscriber: Subscriber<PublishItem> = {
      id: context.connectionId,
      bucket: context.route,
      deliver: (item, channel) => {
        const format = item.formats.httpStream
        if (closed || controller === undefined || format === undefined) return
        if (format.action === "close") {
          cleanup()
          controller.close()
          return
        }
        if (format.action !== "send") return
        const content = filtered(plan, channel, item, format.content, context, stats)
        if (content === undefined) return
        if ((controller.desiredSize ?? 0) <= 0) {
          stats.droppedSlowReader++
          log.write("handler", 1, `drop: connection ${context.connectionId} route ${context.route} channel ${channel}: outbox full (${STREAM_OUTBOX_MAX_MESSAGES} messages), reader too slow`)
          return
        }
        stats.delivered++
        controller.enqueue(content)
        if (keepAlive !== undefined && keepAliveTimer !== undefined && keepAlive.mode === "idle") {
          wheel.schedule(keepAliveTimer, jittered(keepAlive.intervalMs))
        }
      }
    }

    const body = new ReadableStream<Uint8Array>(
      {
        start(streamController) {
          controller = streamController
          if (plan.response.body.byteLength > 0) streamController.enqueue(plan.response.body)
          // Bun 1.4.4 writes the response head only with the first body bytes (upstream:
          // oven-sh/bun#33660). With no initial body, a keep-alive is the one payload the origin
          // declared harmless, so send it now rather than leave the client without headers.
          else if (keepAlive !== undefined) streamController.enqueue(keepAlive.data)
        },
        cancel: cleanup
      },
      { highWaterMark: STREAM_OUTBOX_MAX_MESSAGES, size: () => 1 }
    )
    context.signal.addEventListener("abort", cleanup, { once: true })
    subscribeAll(plan, subscriber)
    if (keepAliveTimer !== undefined && keepAlive !== undefined) wheel.schedule(keepAliveTimer, jittered(keepAlive.intervalMs))
    const headers = new Headers(plan.response.headers)
    headers.delete("content-length")
    return new Response(body, { status: plan.response.status, statusText: plan.response.statusText, headers })
  }

  return { responseHold, streamHold, stats } as const
}
