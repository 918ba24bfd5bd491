/**
 * A response hold (long-polling): waits for one `http-response` publish or its timeout. A gap in
 * ids, a `hint`, `recover` or a first subscription hands the client back to the proxy, which
 * sends the request to the origin again with `Grip-Last`.
 */
import { Result } from "effect"
import { applyJsonPatch } from "../grip/json-patch.ts"
import type { PublishItem } from "../grip/publish.ts"
import { log } from "../log/log.ts"
import { wrapHeldResponse } from "../proxy/jsonp.ts"
import type { UpdatePriority } from "./channels.ts"
import {
  forgetConflicts,
  type HeldResponse,
  type HoldContext,
  type HoldEnvironment,
  type HoldPlan,
  type HoldStats,
  lastIdsOf,
  sendGoneLink,
  Session
} from "./session.ts"
import type { TimerEntry } from "./timer-wheel.ts"

const text = new TextEncoder()

export class ResponseSession extends Session {
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

  /** The timeout response is the answer the origin chose for "nothing happened": the client polls again. */
  shutdown(): void {
    this.finish(this.answer(this.plan.response))
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
