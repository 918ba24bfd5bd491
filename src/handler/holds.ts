/**
 * Held client connections: response holds (long-polling) and stream holds (HTTP streaming, SSE,
 * next-link paging), created from a hold plan.
 *
 * Costs per idle held connection are memory only: one session object, a subscriber entry per
 * channel, entries in the shared TimerWheel, and for streams a plain ReadableStream whose queue
 * is the bounded outbox. Nothing here allocates a fiber or a timer per connection.
 */
import { ResponseSession } from "./response-session.ts"
import type { HoldContext, HoldEnvironment, HoldPlan, HoldStats } from "./session.ts"
import { StreamSession } from "./stream-session.ts"

export { planFrom, type HoldStats } from "./session.ts"

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
