/**
 * The handler: takes over client connections whose origin answered with GRIP instructions,
 * holds them subscribed to channels, and delivers what publishers send (HTTP publish API).
 */
import { Context, Effect, Layer } from "effect"
import { AppSettings } from "../config/live.ts"
import type { Route } from "../config/types.ts"
import { parseInstruct, streamHoldError, type Instruct } from "../grip/instruct.ts"
import { decodePublishBody, type PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import { ListenError, type ClientConnection, type RunningServer, ServerRuntimeService } from "../platform/server.ts"
import { ChannelIndex, type Subscriber } from "./channels.ts"
import { makeHolds, type HoldPlan, type HoldStats } from "./holds.ts"
import { makePublishApi, type PublishApiStats } from "./publish-server.ts"
import { RateLimiter, type RateLimiterStats } from "./rate-limiter.ts"
import { Sequencer, type SequencerStats } from "./sequencer.ts"
import { TimerWheel } from "./timer-wheel.ts"

/** Largest GRIP instruct response body the proxy buffers for the handler (Pushpin: 100 000). */
export const MAX_GRIP_INSTRUCT_BODY_BYTES = 100_000

/** Pushpin's rate limiter releases deliveries in batches every 25 ms. */
const RATE_LIMIT_BATCH_MS = 25

/** Publish API connections idle this long are closed (the API is request/response only). */
const PUBLISH_API_IDLE_TIMEOUT_SECONDS = 30

export interface GripHandoff {
  readonly request: {
    readonly method: string
    /** The client's URI as received (scheme://host/path?query). */
    readonly uri: string
    readonly headers: Headers
    /** Aborts when the client goes away. */
    readonly signal: AbortSignal
  }
  readonly route: Route
  readonly response: {
    readonly status: number
    readonly statusText: string
    readonly headers: Headers
    readonly body: Uint8Array<ArrayBuffer>
  }
  readonly client: ClientConnection
}

export interface HandlerStats {
  readonly holds: Readonly<HoldStats>
  readonly sequencer: Readonly<SequencerStats>
  readonly rateLimiter: Readonly<RateLimiterStats>
  readonly publishApi: Readonly<PublishApiStats>
  readonly instructErrors: () => number
  readonly channels: () => number
  readonly subscriptions: () => number
  readonly timers: () => number
}

export class Handler extends Context.Service<Handler, {
  readonly accept: (handoff: GripHandoff) => Response | Promise<Response>
  /** Sequences (id/prev-id, dedupe) and fans out; delivery may follow later (parking, rate). */
  readonly publish: (items: ReadonlyArray<PublishItem>) => void
  readonly stats: HandlerStats
  /** The publish API listener, when `push_in_http_port` is set. */
  readonly publishServer: RunningServer | undefined
}>()("pushpin-ts/handler/Handler") {
  static readonly layer = Layer.effect(
    Handler,
    Effect.gen(function*() {
      const settings = yield* AppSettings
      const runtime = yield* ServerRuntimeService
      const { handler: handlerSettings, proxy: proxySettings } = settings
      // The sequencer forgets a channel nobody listens to, as Pushpin's does.
      const channels: ChannelIndex<PublishItem> = new ChannelIndex<PublishItem>((channel) => sequencer.clearChannel(channel))
      const wheel = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const wheel = new TimerWheel()
          wheel.start()
          return wheel
        }),
        (wheel) => Effect.sync(() => wheel.stop())
      )
      const holds = makeHolds(channels, wheel)
      let connectionCounter = 0
      let instructErrors = 0

      // message_rate/message_hwm: deliveries past the rate wait per route bucket; past the high
      // water mark they are dropped, counted and logged.
      const limiter = new RateLimiter({ rate: handlerSettings.messageRate, hwm: handlerSettings.messageHwm, tickMs: RATE_LIMIT_BATCH_MS })
      const limited = handlerSettings.messageRate !== undefined && handlerSettings.messageRate > 0
      const dispatch = (subscriber: Subscriber<PublishItem>, item: PublishItem, channel: string) => {
        const outcome = limiter.offer(subscriber.bucket, () => subscriber.deliver(item, channel))
        if (outcome === "dropped") {
          log.write("handler", 1, `drop: connection ${subscriber.id} route ${subscriber.bucket} channel ${channel}: message_hwm reached`)
        }
      }
      const fanOut = (item: PublishItem) => {
        const reached = channels.publish(item.channel, item, limited ? dispatch : undefined)
        log.write("handler", 2, `publish channel=${item.channel} receivers=${reached}`)
      }
      const sequencer = new Sequencer({
        messageWaitMs: handlerSettings.messageWait,
        idCacheTtlMs: handlerSettings.idCacheTtl * 1000,
        onDeliver: fanOut,
        onDrop: (item, reason) =>
          log.write("handler", 1, `drop: publish channel=${item.channel}${item.id === undefined ? "" : ` id=${item.id}`}: ${reason}`)
      })
      wheel.onTick(() => sequencer.advance())
      if (limited) {
        // Small batches, as Pushpin's: a whole 100 ms tick of deliveries at once would overrun a
        // healthy reader's 100-message outbox.
        yield* Effect.acquireRelease(
          Effect.sync(() => setInterval(() => limiter.advance(), RATE_LIMIT_BATCH_MS)),
          (interval) => Effect.sync(() => clearInterval(interval))
        )
      }

      const publish = (items: ReadonlyArray<PublishItem>): void => {
        for (const item of items) sequencer.add(item, channels.has(item.channel))
      }

      const planFrom = (instruct: Instruct, mode: "response" | "stream"): HoldPlan => ({
        mode,
        channels: instruct.channels,
        meta: instruct.meta,
        subscriptions: new Map(instruct.channels.map((channel) => [channel.name, undefined])),
        timeoutMs: instruct.timeoutSeconds * 1000,
        keepAlive: instruct.keepAlive === undefined || instruct.keepAlive.data.byteLength === 0
          ? undefined
          : {
            data: new Uint8Array(instruct.keepAlive.data),
            intervalMs: instruct.keepAlive.timeoutSeconds * 1000,
            mode: instruct.keepAlive.mode === "interval" ? "interval" : "idle"
          },
        response: {
          status: instruct.response.code,
          statusText: instruct.response.reason,
          headers: new Headers(instruct.response.headers.map(([name, value]) => [name, value] as [string, string])),
          body: new Uint8Array(instruct.response.body)
        }
      })

      const instructFailed = (handoff: GripHandoff, message: string): Response => {
        instructErrors++
        log.write("handler", 1, `${handoff.request.method} ${handoff.request.uri}: bad GRIP instructions from origin: ${message}`)
        const debug = proxySettings.debug || handoff.route.debug
        return new Response(`Error while proxying to origin.${debug ? `\n${message}` : ""}\n`, {
          status: 502,
          headers: { "content-type": "text/plain" }
        })
      }

      const accept = (handoff: GripHandoff): Response | Promise<Response> => {
        const parsed = parseInstruct(
          {
            status: handoff.response.status,
            reason: handoff.response.statusText,
            headers: handoff.response.headers,
            body: handoff.response.body,
            requestUri: handoff.request.uri
          },
          { prefix: handoff.route.prefix, connectionSubscriptionMax: handlerSettings.connectionSubscriptionMax }
        )
        if (parsed._tag === "Failure") return instructFailed(handoff, parsed.failure.message)
        const instruct = parsed.success
        const streamError = streamHoldError(instruct)
        if (streamError !== undefined) return instructFailed(handoff, streamError.message)
        if (instruct.holdMode === "none") {
          const plan = planFrom(instruct, "response")
          return new Response(plan.response.body, { status: plan.response.status, statusText: plan.response.statusText, headers: plan.response.headers })
        }
        const connectionId = `${++connectionCounter}`
        const context = { connectionId, route: handoff.route.id ?? handoff.route.internalId, signal: handoff.request.signal }
        for (const channel of instruct.channels) {
          log.write("handler", 2, `subscribe ${handoff.request.uri} channel=${channel.name}`)
        }
        handoff.client.keepOpen()
        return instruct.holdMode === "response"
          ? holds.responseHold(planFrom(instruct, "response"), context)
          : holds.streamHold(planFrom(instruct, "stream"), context)
      }

      const publishApi = makePublishApi<PublishItem>(
        {
          decode: (body) => {
            const decoded = decodePublishBody(body)
            return decoded._tag === "Success"
              ? { _tag: "Decoded", items: decoded.success }
              : { _tag: "Rejected", message: decoded.failure.message }
          },
          publish
        },
        { maxHeadersBytes: handlerSettings.pushInHttpMaxHeadersSize, maxBodyBytes: handlerSettings.pushInHttpMaxBodySize }
      )

      let publishServer: RunningServer | undefined
      if (handlerSettings.pushInHttpPort !== undefined) {
        const address = `${handlerSettings.pushInHttpAddr}:${handlerSettings.pushInHttpPort}`
        publishServer = yield* Effect.acquireRelease(
          Effect.try({
            try: () =>
              runtime.serve({
                listener: { kind: "tcp", host: handlerSettings.pushInHttpAddr, port: handlerSettings.pushInHttpPort ?? 0 },
                handler: (request) => publishApi.handle(request),
                idleTimeoutSeconds: PUBLISH_API_IDLE_TIMEOUT_SECONDS,
                maxRequestBodyBytes: handlerSettings.pushInHttpMaxBodySize + 1,
                onError: (error) => {
                  log.write("handler", 0, `publish API internal error: ${error instanceof Error ? error.message : String(error)}`)
                  return new Response("Internal Server Error\n", { status: 500, headers: { "content-type": "text/plain" } })
                }
              }),
            catch: (cause) =>
              new ListenError({ address: `${address} (publish API)`, reason: cause instanceof Error ? cause.message : String(cause) })
          }),
          (server) => Effect.promise(() => server.stop(true))
        )
        yield* Effect.logInfo(`publish API listening on http://${publishServer.description}`)
      }

      return Handler.of({
        accept,
        publish,
        publishServer,
        stats: {
          holds: holds.stats,
          sequencer: sequencer.stats,
          rateLimiter: limiter.stats,
          publishApi: publishApi.stats,
          instructErrors: () => instructErrors,
          channels: () => channels.channelCount,
          subscriptions: () => channels.subscriptionCount,
          timers: () => wheel.size
        }
      })
    }).pipe(Effect.annotateLogs({ service: "handler" }))
  )
}
