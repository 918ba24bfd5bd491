/**
 * One WebSocket-over-HTTP connection after the handshake: the `OriginSocket` the proxy's bridge
 * drives. Client events queue in a `WohOutbox` and go to the origin as POSTs of
 * `application/websocket-events`; the events in each answer are delivered to the bridge.
 *
 * This is the per-connection data path, so it is plain callbacks and promises (architecture.md,
 * "Hot paths stay plain"); only a request that failed before reaching the origin runs as an
 * Effect, retried on `RETRY_SCHEDULE`. Timers (keep-alive, request timeout) are entries in a
 * shared timer loop, not a setTimeout each.
 *
 * Invariants:
 * - One request at a time. A request "in flight" includes its retries; nothing else is sent
 *   until it completes or fails for good.
 * - State changes from a response are all made before any handler runs, so a handler that calls
 *   back (close, terminate, pause, send) finds the connection consistent.
 * - `onClose` is called exactly once, last, after the origin events that preceded it (unless
 *   `terminate` dropped them). Nothing is delivered before `start` or while paused.
 * - Once the connection has ended nothing is left behind: no timer entry, no retry fiber, no
 *   request (a DISCONNECT or a close echo still owed is sent first).
 */
import { Effect, Exit, Result, type Schedule } from "effect"
import { EMPTY_BYTES, utf8 } from "../grip/internal/bytes.ts"
import type { TimerEntry } from "../handler/timer-wheel.ts"
import { log } from "../log/log.ts"
import {
  applyMetaUpdates,
  type ClosePayload,
  closeEvent,
  decodeEvents,
  encodeEvents,
  hasWebSocketEventsContentType,
  keepAliveUpdateFromResponse,
  metaFromResponseHeaders,
  parseClosePayload,
  type WsEvent
} from "../websocket/events.ts"
import { deliverOriginMessage, type OriginMessage, type OriginWebSocketHandlers } from "../websocket/origin-client.ts"
import type { OriginSocket } from "../websocket/origin-socket.ts"
import {
  contentBytesAccepted,
  MAX_INBOUND_BUFFER_BYTES,
  MAX_RESPONSE_BODY_BYTES,
  readBody,
  RequestTimeout,
  requestFailure,
  requestHeaders,
  WohRequestError
} from "./ws-over-http-exchange.ts"
import { type Batch, type BatchLimits, type OutboundType, WohOutbox } from "./ws-over-http-outbox.ts"

/** The shared timer loop (a `TimerWheel`, or anything with its three methods). */
export interface WohTimers {
  makeEntry(fire: () => void): TimerEntry
  schedule(entry: TimerEntry, delayMs: number): void
  cancel(entry: TimerEntry): void
}

/** Everything a connection needs from outside; tests pass fakes. */
export interface WohEnvironment {
  /** One POST of `body` to the connection's URI; rejects when no response came. */
  readonly post: (headers: Headers, body: Uint8Array, signal: AbortSignal) => Promise<Response>
  /** A fresh `Grip-Sig` for each request (undefined when the route does not sign). */
  readonly gripSig: () => string | undefined
  readonly timers: WohTimers
  readonly retrySchedule: Schedule.Schedule<unknown>
  readonly requestTimeoutMs: number
  readonly limits: BatchLimits
  /** For log lines: the origin's URI. */
  readonly uri: string
  /** Counts each request sent again after a failure (metrics). */
  readonly onRetry?: () => void
}

/** An answer that arrived whole: status, headers and the body (≤ MAX_RESPONSE_BODY_BYTES). */
export interface WohResponse {
  readonly status: number
  readonly statusText: string
  readonly headers: Headers
  /** Undefined when the body was larger than MAX_RESPONSE_BODY_BYTES (a connection error). */
  readonly body: Uint8Array | undefined
}

/**
 * POSTs `body` and reads the whole answer, failing with `WohRequestError` when no complete answer
 * came within `env.requestTimeoutMs`. `signal` cancels it (the connection ended).
 */
export const exchange = async (
  env: WohEnvironment,
  headers: Headers,
  body: Uint8Array,
  signal: AbortSignal | undefined
): Promise<WohResponse> => {
  const controller = new AbortController()
  const timeout = env.timers.makeEntry(() => controller.abort(new RequestTimeout(env.requestTimeoutMs)))
  const cancel = (): void => controller.abort(signal?.reason)
  signal?.addEventListener("abort", cancel, { once: true })
  env.timers.schedule(timeout, env.requestTimeoutMs)
  try {
    const response = await env.post(headers, body, controller.signal)
    const read = await readBody(response, MAX_RESPONSE_BODY_BYTES, "fail")
    return {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      body: read._tag === "Complete" ? read.bytes : undefined
    }
  } catch (error) {
    throw requestFailure(controller.signal.aborted ? controller.signal.reason : error, `POST ${env.uri}`)
  } finally {
    env.timers.cancel(timeout)
    signal?.removeEventListener("abort", cancel)
  }
}

// ---------------------------------------------------------------------------------------------

/** What the connection is doing; see the transitions in the methods that set it. */
type Phase =
  /** Relaying both ways. */
  | "open"
  /** The client closed: pending content, then CLOSE, then wait for the origin's CLOSE. */
  | "closing"
  /** The origin closed first: the bridge was told; send pending content and a CLOSE back. */
  | "echoing"
  /** The client vanished: the bridge was told; send DISCONNECT once nothing is in flight. */
  | "disconnecting"
  /** Over: no more requests. */
  | "done"

type Inbound = OriginMessage & { readonly size: number }

type Ending =
  | { readonly kind: "closed"; readonly code: number | undefined; readonly reason: string }
  | { readonly kind: "failed"; readonly error: Error | undefined }

/** A request on its way: what it carries, so its answer can be matched against it. */
interface Flight {
  readonly kind: "events" | "disconnect"
  readonly body: Uint8Array
  /** Client content the request carries (for `Content-Bytes-Accepted`). */
  readonly batch: Batch
  /** The request ends with CLOSE; its content bytes count as offered too. */
  readonly close: { readonly contentBytes: number } | undefined
  readonly replayedBytes: number
}

type Applied =
  | { readonly _tag: "Applied"; readonly drained: boolean }
  | { readonly _tag: "Problem"; readonly problem: string }

const EMPTY_BATCH: Batch = { events: [], entries: 0, contentBytes: 0, maxed: false }

const lenientUtf8 = new TextDecoder("utf-8")

export interface WohConnectionInit {
  readonly connectionId: string
  /** Replayed on every request (see `baseRequestHeaders`). */
  readonly baseHeaders: Headers
  readonly meta: ReadonlyMap<string, string>
  readonly keepAliveSeconds: number | undefined
}

export class WohConnection implements OriginSocket {
  private phase: Phase = "open"
  private handlers: OriginWebSocketHandlers | undefined = undefined
  private paused = false
  private delivering = false
  private inbound: Array<Inbound> = []
  private inboundHead = 0
  private inboundBytes = 0
  /** Set once the connection ended for the bridge; delivered after `inbound`. */
  private ending: Ending | undefined = undefined
  private endingDelivered = false

  private readonly outbox = new WohOutbox()
  private meta: ReadonlyMap<string, string>
  private keepAliveSeconds: number | undefined
  private readonly keepAliveEntry: TimerEntry
  private inFlight: Flight | undefined = undefined
  /** Cancels the in-flight exchange or its retries when the connection ends under it. */
  private flightAbort: AbortController | undefined = undefined
  private refreshQueued = false
  /** The client's close, sent once the content before it is accepted. */
  private localClose: { readonly code: number | undefined; readonly reason: string } | undefined = undefined
  private closeSent = false
  /** The origin's CLOSE, when it came before ours: echoed back with its code. */
  private peerClose: ClosePayload | null | undefined = undefined

  constructor(
    private readonly env: WohEnvironment,
    private readonly init: WohConnectionInit
  ) {
    this.meta = init.meta
    this.keepAliveSeconds = init.keepAliveSeconds
    this.keepAliveEntry = env.timers.makeEntry(() => this.keepAlive())
  }

  /** Bytes of client content queued and not yet accepted by the origin. */
  get bufferedAmount(): number {
    return this.outbox.contentBytes
  }

  /** For tests and stats: the connection sends nothing more and holds no timer. */
  get released(): boolean {
    return this.phase === "done" && this.inFlight === undefined
  }

  // OriginSocket ------------------------------------------------------------------------------

  start(handlers: OriginWebSocketHandlers): void {
    if (this.handlers !== undefined) throw new Error("WohConnection.start called twice")
    this.handlers = handlers
    this.deliver()
    this.pump()
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    this.deliver()
    // Delivering made room: a request held back by MAX_INBOUND_BUFFER_BYTES may go now.
    this.pump()
  }

  sendText(text: string): void {
    this.queue("TEXT", utf8(text))
  }

  sendBinary(data: Uint8Array): void {
    this.queue("BINARY", data)
  }

  ping(payload: Uint8Array = EMPTY_BYTES): void {
    this.queue("PING", payload)
  }

  pong(payload: Uint8Array = EMPTY_BYTES): void {
    this.queue("PONG", payload)
  }

  /**
   * The client closed cleanly: CLOSE follows the content already queued. `onClose` comes with the
   * origin's CLOSE, or unclean when an origin without keep-alive answers anything else.
   */
  close(code?: number, reason?: string): void {
    if (this.phase !== "open") return
    this.phase = "closing"
    this.localClose = { code, reason: reason ?? "" }
    this.pump()
  }

  /**
   * The client vanished: the bridge hears `onClose` now (pending events are dropped), and the
   * origin gets DISCONNECT once the request in flight, if any, is answered.
   */
  terminate(): void {
    const owesDisconnect = this.phase === "open" || this.phase === "closing"
    this.inbound = []
    this.inboundHead = 0
    this.inboundBytes = 0
    this.paused = false
    this.end({ kind: "failed", error: undefined })
    if (owesDisconnect) {
      this.phase = "disconnecting"
      this.cancelKeepAlive()
    }
    this.deliver()
    this.pump()
  }

  /** Publish `action: refresh`: a request now, empty when nothing is queued. */
  refresh(): void {
    if (this.phase !== "open") return
    this.refreshQueued = true
    this.pump()
  }

  // Requests ----------------------------------------------------------------------------------

  private queue(type: OutboundType, content: Uint8Array): void {
    // After the client's close nothing more is sent (RFC 6455 §5.5.1), as for a real WebSocket.
    if (this.phase !== "open") return
    this.outbox.push({ type, content })
    this.pump()
  }

  /** Sends the next request if one is due and none is outstanding; else arms the keep-alive. */
  pump(): void {
    if (this.inFlight !== undefined) return
    const flight = this.nextFlight()
    if (flight !== undefined) return this.send(flight)
    if (this.phase === "echoing" || this.phase === "disconnecting") this.phase = "done"
    if (this.phase === "done") return this.release()
    if (this.phase === "closing" && !this.closeSent && this.keepAliveSeconds === undefined) {
      // The origin left part of the content unaccepted and nothing new will come after a close:
      // without keep-alives it would never be asked again.
      return this.fail(new Error("origin did not accept the content before the close"))
    }
    this.armKeepAlive()
  }

  private nextFlight(): Flight | undefined {
    switch (this.phase) {
      case "done":
        return undefined
      case "disconnecting":
        return { kind: "disconnect", body: encodeEvents([{ type: "DISCONNECT" }]), batch: EMPTY_BATCH, close: undefined, replayedBytes: 0 }
      case "echoing":
        return !this.closeSent && this.contentToOffer ? this.eventsFlight(true) : undefined
      case "closing":
        if (!this.closeSent && (this.contentToOffer || this.refreshQueued)) return this.eventsFlight(true)
        return this.refreshQueued ? this.eventsFlight(false) : undefined
      case "open":
        if (this.refreshQueued) return this.eventsFlight(false)
        if (this.outbox.hasNewContent && this.inboundBytes < MAX_INBOUND_BUFFER_BYTES) return this.eventsFlight(false)
        return undefined
    }
  }

  /**
   * Whether a request towards the close is worth sending now: nothing is queued, or something
   * new is. When only content the origin left unaccepted remains, asking again at once would
   * only repeat its answer; it waits for a keep-alive, as Pushpin does.
   */
  private get contentToOffer(): boolean {
    return this.outbox.isEmpty || this.outbox.hasNewContent
  }

  /** Queued content (as much as one request carries), and the CLOSE when `withClose` and it all fits. */
  private eventsFlight(withClose: boolean): Flight {
    const limits = this.env.limits
    const batch = this.outbox.batch(limits)
    const events: Array<WsEvent> = [...batch.events]
    let close: Flight["close"] = undefined
    const roomForClose = limits.maxEvents === undefined || events.length < limits.maxEvents
    // CLOSE only after everything queued: Pushpin also appends it to a request that could not
    // carry all messages, and then drops the rest once the CLOSE is accepted.
    if (withClose && !batch.maxed && roomForClose) {
      const event = this.closeEventToSend()
      events.push(event)
      close = { contentBytes: event.content?.length ?? 0 }
    }
    return { kind: "events", body: encodeEvents(events), batch, close, replayedBytes: this.outbox.replayedBytes }
  }

  private closeEventToSend(): WsEvent {
    // Echoing the origin's close: its code and reason back, as a client answers a close frame
    // (RFC 6455 §5.5.1) and as Pushpin relays that answer.
    const closing = this.phase === "echoing" ? this.peerClose : this.localClose
    if (closing === undefined || closing === null || closing.code === undefined) return { type: "CLOSE" }
    return closeEvent(closing.code, closing.reason)
  }

  private send(flight: Flight): void {
    this.inFlight = flight
    this.refreshQueued = false
    this.cancelKeepAlive()
    const abort = new AbortController()
    this.flightAbort = abort
    exchange(this.env, this.headersFor(flight), flight.body, abort.signal)
      .then(
        (response) => this.answered(flight, abort, response),
        (error: unknown) => this.requestFailed(flight, abort, requestFailure(error, `POST ${this.env.uri}`))
      )
      .catch(this.reportBug)
  }

  /** A throw from our own code or a handler while taking an answer: logged, not left unhandled. */
  private readonly reportBug = (error: unknown): void => {
    const detail = error instanceof Error ? (error.stack ?? error.message) : String(error)
    log.write("proxy", 0, `woh ${this.init.connectionId}: internal error: ${detail}`)
  }

  private headersFor(flight: Flight): Headers {
    return requestHeaders(this.init.baseHeaders, {
      connectionId: this.init.connectionId,
      meta: this.meta,
      gripSig: this.env.gripSig(),
      replayedBytes: flight.replayedBytes
    })
  }

  /**
   * A later request failed before reaching the origin: try again on `retrySchedule` (1, 2, 4, 8,
   * 16 s plus jitter), each attempt freshly signed. Retries are rare, so one Effect per retrying
   * request; the abort signal interrupts it when the connection ends meanwhile.
   */
  private requestFailed(flight: Flight, abort: AbortController, failure: WohRequestError): void {
    if (abort.signal.aborted || this.inFlight !== flight) return
    if (!failure.retryable) return this.flightFailed(flight, failure)
    log.write("proxy", 3, `woh ${this.init.connectionId}: ${failure.message}; retrying`)
    let attempts = 0
    const attempt = Effect.suspend(() =>
      // The first attempt is the one that just failed: the schedule starts from it.
      attempts++ === 0
        ? Effect.fail(failure)
        : Effect.tryPromise({
          try: (signal) => {
            this.env.onRetry?.()
            return exchange(this.env, this.headersFor(flight), flight.body, signal)
          },
          catch: (error) => requestFailure(error, `POST ${this.env.uri}`)
        })
    )
    const retried = attempt.pipe(
      Effect.retry({ schedule: this.env.retrySchedule, while: (error: WohRequestError) => error.retryable }),
      Effect.result
    )
    Effect.runPromiseExit(retried, { signal: abort.signal })
      .then((exit) => {
        if (!Exit.isSuccess(exit) || abort.signal.aborted || this.inFlight !== flight) return
        const result = exit.value
        if (Result.isSuccess(result)) this.answered(flight, abort, result.success)
        else this.flightFailed(flight, result.failure)
      })
      .catch(this.reportBug)
  }

  private flightFailed(flight: Flight, failure: WohRequestError): void {
    this.inFlight = undefined
    this.flightAbort = undefined
    log.write("proxy", 3, `woh ${this.init.connectionId}: ${failure.message}`)
    if (flight.kind === "disconnect" || this.phase === "echoing" || this.phase === "disconnecting") {
      // The bridge has already been told; the origin will not hear the rest.
      this.phase = "done"
      return this.release()
    }
    this.fail(failure)
  }

  private answered(flight: Flight, abort: AbortController, response: WohResponse): void {
    if (abort.signal.aborted || this.inFlight !== flight) return
    this.inFlight = undefined
    this.flightAbort = undefined
    if (flight.kind === "disconnect") {
      // Whatever the origin answers, the connection is over.
      this.phase = "done"
      return this.release()
    }
    if (this.phase === "disconnecting") {
      // The request in flight when the client vanished: DISCONNECT follows unless the origin
      // already ended the connection.
      if (!this.answerEndsConnection(flight, response)) return this.pump()
      this.phase = "done"
      return this.release()
    }
    const applied = this.apply(flight, response)
    if (applied._tag === "Problem") {
      log.write("proxy", 3, `woh ${this.init.connectionId}: ${applied.problem}`)
      if (this.phase === "echoing") {
        this.phase = "done"
        return this.release()
      }
      return this.fail(new Error(applied.problem))
    }
    if (applied.drained && this.ending === undefined) this.handlers?.onDrain()
    this.deliver()
    this.pump()
  }

  /**
   * Takes in one answer: keep-alive, acceptance, meta, events. A problem fails the connection.
   * Handlers are not called here (see the file header): events wait in `inbound`.
   */
  private apply(flight: Flight, response: WohResponse): Applied {
    const problem = (text: string): Applied => ({ _tag: "Problem", problem: text })
    if (response.status !== 200) return problem(`origin answered ${response.status} ${response.statusText}`)
    if (!hasWebSocketEventsContentType(response.headers)) {
      return problem(`origin answered with Content-Type ${JSON.stringify(response.headers.get("content-type"))}`)
    }
    if (response.body === undefined) return problem(`origin's response body exceeds ${MAX_RESPONSE_BODY_BYTES} bytes`)

    const keepAlive = keepAliveUpdateFromResponse(response.headers)
    if (keepAlive._tag === "Disabled") this.keepAliveSeconds = undefined
    else if (keepAlive._tag === "Interval") this.keepAliveSeconds = keepAlive.seconds

    // Content-Bytes-Accepted (Pushpin 1.41): how much of the offered content the origin took.
    const offered = flight.batch.contentBytes
    const offeredWithClose = offered + (flight.close?.contentBytes ?? 0)
    const accepted = contentBytesAccepted(response.headers) ?? offeredWithClose
    if (accepted > offeredWithClose) return problem(`origin accepted ${accepted} content bytes of ${offeredWithClose} offered`)
    const outcome = this.outbox.accept(flight.batch, Math.min(accepted, offered))
    if (outcome._tag === "NoProgress") return problem("origin accepted nothing of a request that could not carry everything")
    if (flight.close !== undefined && accepted >= offered) {
      // All content before the CLOSE was taken, so the CLOSE must be too: after it no more
      // content will come to wait for.
      if (accepted < offeredWithClose) return problem("origin accepted the content but not the CLOSE after it")
      this.closeSent = true
      this.outbox.clear()
    }

    this.meta = applyMetaUpdates(this.meta, metaFromResponseHeaders(response.headers))

    const decoded = decodeEvents(response.body)
    if (Result.isFailure(decoded)) return problem(`origin's events: ${decoded.failure.message}`)
    const received = this.receive(decoded.success)
    if (received !== undefined) return problem(received)

    // Our CLOSE went out (now or earlier) and the origin did not answer with its own: without
    // keep-alives it never gets another chance to.
    if (this.phase === "closing" && this.closeSent && this.keepAliveSeconds === undefined) {
      return problem("origin did not answer the CLOSE")
    }
    if (this.phase === "echoing" && this.closeSent) this.phase = "done"
    return { _tag: "Applied", drained: outcome.bytesRemoved > 0 }
  }

  /**
   * Origin events after the handshake (including those that followed OPEN in its answer).
   * Returns a problem that fails the connection.
   */
  receive(events: ReadonlyArray<WsEvent>): string | undefined {
    for (const event of events) {
      const content = event.content ?? EMPTY_BYTES
      switch (event.type) {
        case "TEXT":
          this.push({ kind: "text", data: lenientUtf8.decode(content), size: content.length })
          break
        case "BINARY":
          this.push({ kind: "binary", data: content, size: content.length })
          break
        case "PING":
          this.push({ kind: "ping", data: content, size: content.length })
          break
        case "PONG":
          this.push({ kind: "pong", data: content, size: content.length })
          break
        case "CLOSE":
          this.peerClosed(parseClosePayload(event.content) ?? null)
          return undefined
        case "OPEN":
          return "origin sent OPEN on an open connection"
        case "DISCONNECT":
          // The origin dropped the connection: for the client, as if its TCP connection broke.
          this.phase = "done"
          this.cancelKeepAlive()
          this.end({ kind: "failed", error: undefined })
          return undefined
      }
    }
    return undefined
  }

  /** The origin's CLOSE: the answer to ours, or its own close that we echo. */
  private peerClosed(payload: ClosePayload | null): void {
    const code = payload?.code
    const reason = payload?.reason ?? ""
    if (this.phase === "closing" && this.closeSent) {
      this.phase = "done"
    } else if (this.phase === "open" || this.phase === "closing") {
      // "closing" without our CLOSE through yet: the two crossed. A CLOSE still goes back, with
      // the origin's code, after whatever the client had queued.
      this.peerClose = payload
      this.phase = "echoing"
      this.closeSent = false
      this.localClose = undefined
    }
    this.cancelKeepAlive()
    this.end({ kind: "closed", code, reason })
  }

  /**
   * Whether the answer to the request in flight when the client vanished already ended the
   * connection (an error, the origin's DISCONNECT, or its CLOSE answering ours), so no DISCONNECT
   * is owed.
   */
  private answerEndsConnection(flight: Flight, response: WohResponse): boolean {
    if (response.status !== 200 || !hasWebSocketEventsContentType(response.headers) || response.body === undefined) return true
    const decoded = decodeEvents(response.body)
    if (Result.isFailure(decoded)) return true
    const ourCloseOut = flight.close !== undefined || this.closeSent
    return decoded.success.some((event) => event.type === "DISCONNECT" || (event.type === "CLOSE" && ourCloseOut))
  }

  private keepAlive(): void {
    if (this.inFlight !== undefined || (this.phase !== "open" && this.phase !== "closing")) return
    this.send(this.eventsFlight(this.phase === "closing" && !this.closeSent))
  }

  private armKeepAlive(): void {
    if (this.keepAliveSeconds === undefined || (this.phase !== "open" && this.phase !== "closing")) return
    // Counted from the last request, so an armed timer is left running.
    if (this.keepAliveEntry.tick >= 0) return
    this.env.timers.schedule(this.keepAliveEntry, this.keepAliveSeconds * 1000)
  }

  private cancelKeepAlive(): void {
    this.env.timers.cancel(this.keepAliveEntry)
  }

  // Ending ------------------------------------------------------------------------------------

  /** A connection error: the bridge hears it (after pending events) and nothing more is sent. */
  private fail(error: Error): void {
    this.phase = "done"
    this.end({ kind: "failed", error })
    this.release()
    this.deliver()
  }

  /** Records how the connection ended for the bridge; `deliver` tells it, after pending events. */
  private end(ending: Ending): void {
    this.ending ??= ending
  }

  /** Cancels whatever is outstanding: timers, the request in flight and its retries. */
  private release(): void {
    this.cancelKeepAlive()
    this.flightAbort?.abort()
    this.flightAbort = undefined
    this.inFlight = undefined
    this.outbox.clear()
  }

  // Delivery ----------------------------------------------------------------------------------

  private push(event: Inbound): void {
    if (this.ending !== undefined) return
    this.inbound.push(event)
    this.inboundBytes += event.size
  }

  private deliver(): void {
    const handlers = this.handlers
    // A handler may pause, close or terminate; the loop re-checks after each event instead of
    // starting a nested one.
    if (handlers === undefined || this.delivering) return
    this.delivering = true
    try {
      while (!this.paused && this.inboundHead < this.inbound.length) {
        const event = this.inbound[this.inboundHead++]
        if (event === undefined) continue
        this.inboundBytes -= event.size
        deliverOriginMessage(handlers, event)
      }
      if (this.inboundHead === this.inbound.length) {
        this.inbound = []
        this.inboundHead = 0
      }
      const ending = this.ending
      if (ending !== undefined && !this.endingDelivered && !this.paused && this.inbound.length === 0) {
        this.endingDelivered = true
        if (ending.kind === "closed") handlers.onClose(ending.code, ending.reason, true)
        else {
          if (ending.error !== undefined) handlers.onError?.(ending.error)
          handlers.onClose(undefined, "", false)
        }
      }
    } finally {
      this.delivering = false
    }
  }
}
