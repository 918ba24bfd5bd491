/**
 * The handler: takes over client connections whose origin answered with GRIP instructions,
 * holds them subscribed to channels, and delivers what publishers send (HTTP publish API).
 */
import { Context, Effect, Layer } from "effect"
import { AppSettings } from "../config/live.ts"
import type { Route } from "../config/types.ts"
import { parseInstruct, streamHoldError } from "../grip/instruct.ts"
import { decodePublishBody, type PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import { Operations } from "../metrics/operations.ts"
import { splitRequestTarget } from "../proxy/headers.ts"
import { wrapProxiedResponse, type JsonpContext } from "../proxy/jsonp.ts"
import { ListenError, type ClientConnection, type RunningServer, ServerRuntimeService } from "../platform/server.ts"
import { ChannelIndex, type Subscriber } from "./channels.ts"
import { makeHolds, planFrom, type HoldStats } from "./holds.ts"
import { makePublishApi, type PublishApiStats } from "./publish-server.ts"
import { RateLimiter, type RateLimiterStats } from "./rate-limiter.ts"
import { Sequencer, type SequencerStats } from "./sequencer.ts"
import type { SessionOrigin } from "./session-origin.ts"
import { TimerWheel } from "./timer-wheel.ts"
import { WriteBatch } from "./write-batch.ts"
import { UpdateQueue } from "./update-queue.ts"
import { WsGripSession, type WsSessionContext, type WsSessionHost, type WsSessionStats } from "./ws-session.ts"

/** Largest GRIP instruct response body the proxy buffers for the handler (Pushpin: 100 000). */
export const MAX_GRIP_INSTRUCT_BODY_BYTES = 100_000

/** Pushpin's rate limiter releases deliveries in batches every 25 ms. */
const RATE_LIMIT_BATCH_MS = 25

/** Publish API connections idle this long are closed (the API is request/response only). */
const PUBLISH_API_IDLE_TIMEOUT_SECONDS = 30

/**
 * The publish API checks the declared Content-Length against `push_in_http_max_body_size`
 * before reading a byte, and never reads a body without one (411), so the runtime's own body
 * limit is not needed; left at the default, Bun would answer a large declared length itself
 * with a bare 413 instead of Pushpin's "Request body too large.".
 */
const PUBLISH_API_RUNTIME_BODY_LIMIT_BYTES = Number.MAX_SAFE_INTEGER

/**
 * A channel's first subscriber makes its sessions ask the origin again this much later
 * (Pushpin's `SUBSCRIBED_DELAY`): publishers that track subscriptions only start publishing once
 * they see one, and anything they published before that would otherwise be lost.
 */
export const FIRST_SUBSCRIPTION_UPDATE_DELAY_MS = 1000

/**
 * A channel stays subscribed this long after its last subscriber leaves (Pushpin's stats
 * linger). A long-poll that is answered and comes straight back is then not a "first"
 * subscriber again, and the channel keeps its last published id meanwhile.
 */
export const SUBSCRIPTION_LINGER_MS = 60_000

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
  /** How the session reaches the origin again (retries, next and gone links). */
  readonly origin: SessionOrigin
  /** The client asked for JSON-P: held answers are wrapped in its callback. */
  readonly jsonp: JsonpContext | undefined
}

export interface HandlerStats {
  readonly holds: Readonly<HoldStats>
  readonly webSockets: Readonly<WsSessionStats>
  readonly sequencer: Readonly<SequencerStats>
  readonly rateLimiter: Readonly<RateLimiterStats>
  readonly publishApi: Readonly<PublishApiStats>
  readonly instructErrors: () => number
  readonly channels: () => number
  readonly subscriptions: () => number
  readonly timers: () => number
  readonly updatesWaiting: () => number
  readonly lingeringChannels: () => number
  /** Deliveries waiting for their route's `message_rate`. */
  readonly rateLimiterQueued: () => number
  /** Publishes waiting for their `prev-id` (up to `message_wait`). */
  readonly sequencerParked: () => number
}

export class Handler extends Context.Service<Handler, {
  readonly accept: (handoff: GripHandoff) => Response | Promise<Response>
  /** A WebSocket whose origin negotiated GRIP (or whose target has `sub=`) joins the handler. */
  readonly openWebSocket: (context: Omit<WsSessionContext, "connectionId">, host: WsSessionHost) => WsGripSession
  /** Sequences (id/prev-id, dedupe) and fans out; delivery may follow later (parking, rate). */
  readonly publish: (items: ReadonlyArray<PublishItem>) => void
  /** Pushpin's `recover`: forget every last id and have every HTTP session ask its origin again. */
  readonly recover: () => void
  /** Graceful stop: answer every held request now (streams end, response holds get their timeout response). */
  readonly endHeldSessions: () => number
  readonly stats: HandlerStats
  /** The publish API listener, when `push_in_http_port` is set. */
  readonly publishServer: RunningServer | undefined
}>()("pushpin-ts/handler/Handler") {
  static readonly layer = Layer.effect(
    Handler,
    Effect.gen(function*() {
      const settings = yield* AppSettings
      const runtime = yield* ServerRuntimeService
      const operations = yield* Operations
      const { handler: handlerSettings, proxy: proxySettings } = settings
      const wheel = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const wheel = new TimerWheel()
          wheel.start()
          return wheel
        }),
        (wheel) => Effect.sync(() => wheel.stop())
      )

      // channel → when its linger ends. Map order is expiry order: every entry lingers as long.
      const lingering = new Map<string, number>()
      const updateChannel = (channel: string) => {
        for (const subscriber of channels.subscribers(channel)) subscriber.update?.("low")
      }
      const channels: ChannelIndex<PublishItem> = new ChannelIndex<PublishItem>({
        onChannelFirst: (channel) => {
          if (lingering.delete(channel) || !handlerSettings.updateOnFirstSubscription) return
          const entry = wheel.makeEntry(() => updateChannel(channel))
          wheel.schedule(entry, FIRST_SUBSCRIPTION_UPDATE_DELAY_MS)
        },
        onChannelEmpty: (channel) => lingering.set(channel, Date.now() + SUBSCRIPTION_LINGER_MS)
      })
      wheel.onTick(() => {
        const now = Date.now()
        for (const [channel, until] of lingering) {
          if (until > now) break
          lingering.delete(channel)
          // Nobody listens any more: the sequencer forgets the channel, as Pushpin's does.
          sequencer.clearChannel(channel)
        }
      })
      const updates = new UpdateQueue()
      wheel.onTick(() => updates.advance())
      const holds = makeHolds({
        channels,
        wheel,
        updates,
        writes: new WriteBatch(),
        pushBody: runtime.pushBody,
        lastIds: { get: (channel) => sequencer.lastId(channel), forget: (channel) => sequencer.forgetLastId(channel) },
        parseInstruct: (response) => parseInstruct(response, { connectionSubscriptionMax: handlerSettings.connectionSubscriptionMax })
      })
      let connectionCounter = 0
      const webSocketStats: WsSessionStats = {
        open: 0,
        delivered: 0,
        filtered: 0,
        droppedSlowReader: 0,
        keepAlivesSent: 0,
        delayedSent: 0,
        closedByPublish: 0,
        refreshes: 0,
        subscriptionsRefused: 0
      }
      const webSocketEnvironment = {
        channels,
        wheel,
        stats: webSocketStats,
        connectionSubscriptionMax: handlerSettings.connectionSubscriptionMax
      }
      const openWebSocket = (context: Omit<WsSessionContext, "connectionId">, host: WsSessionHost): WsGripSession =>
        new WsGripSession(webSocketEnvironment, { ...context, connectionId: `${++connectionCounter}` }, host)
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
        for (const item of items) sequencer.add(item, channels.has(item.channel) || lingering.has(item.channel))
      }

      const recover = (): void => {
        sequencer.clearLastIds()
        const sessions = channels.subscribers()
        log.write("handler", 2, `recover: updating ${sessions.length} sessions`)
        for (const subscriber of sessions) subscriber.update?.("low")
      }

      const endHeldSessions = (): number => {
        let ended = 0
        for (const subscriber of channels.subscribers()) {
          if (subscriber.shutdown === undefined) continue
          subscriber.shutdown()
          ended++
        }
        return ended
      }

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
        const plan = planFrom(instruct)
        // While stopping, a hold arriving late is answered at once, as the held ones were.
        if ((instruct.holdMode === "none" && plan.nextLink === undefined) || operations.stopping()) {
          const { status, statusText, headers, body } = plan.response
          if (handoff.jsonp === undefined) return new Response(body, { status, statusText, headers })
          // Pushpin's handler gives such a response back to the proxy, which wraps it as any other.
          const wrapped = wrapProxiedResponse(handoff.jsonp, plan.response)
          return new Response(wrapped.body, { status: 200, statusText: "OK", headers: wrapped.headers })
        }
        const connectionId = `${++connectionCounter}`
        const context = {
          connectionId,
          route: handoff.route.id ?? handoff.route.internalId,
          signal: handoff.request.signal,
          debug: proxySettings.debug || handoff.route.debug,
          origin: instruct.holdMode === "response" || plan.nextLink !== undefined || plan.goneLink !== undefined ? handoff.origin : undefined,
          jsonp: handoff.jsonp
        }
        for (const channel of instruct.channels) {
          log.write("handler", 2, `subscribe ${handoff.request.uri} channel=${channel.name}`)
        }
        handoff.client.keepOpen()
        return instruct.holdMode === "response" ? holds.responseHold(plan, context) : holds.streamHold(plan, context)
      }

      const publishApi = makePublishApi<PublishItem>(
        {
          decode: (body) => {
            const decoded = decodePublishBody(body)
            return decoded._tag === "Success"
              ? { _tag: "Decoded", items: decoded.success }
              : { _tag: "Rejected", message: decoded.failure.message }
          },
          publish,
          recover
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
                handler: (request) => {
                  const operatorEndpoint = request.method === "GET" ? operations.endpoint(splitRequestTarget(request.url).path) : undefined
                  return operatorEndpoint === undefined ? publishApi.handle(request) : operatorEndpoint(request)
                },
                idleTimeoutSeconds: PUBLISH_API_IDLE_TIMEOUT_SECONDS,
                maxRequestBodyBytes: PUBLISH_API_RUNTIME_BODY_LIMIT_BYTES,
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
        openWebSocket,
        publish,
        recover,
        endHeldSessions,
        publishServer,
        stats: {
          holds: holds.stats,
          webSockets: webSocketStats,
          sequencer: sequencer.stats,
          rateLimiter: limiter.stats,
          publishApi: publishApi.stats,
          instructErrors: () => instructErrors,
          channels: () => channels.channelCount,
          subscriptions: () => channels.subscriptionCount,
          timers: () => wheel.size,
          updatesWaiting: () => updates.size,
          lingeringChannels: () => lingering.size,
          rateLimiterQueued: () => limiter.queuedCount,
          sequencerParked: () => sequencer.parkedCount
        }
      })
    }).pipe(Effect.annotateLogs({ service: "handler" }))
  )
}
