/**
 * The handler's face towards the proxy: a response carrying GRIP instructions is handed over
 * here together with the client connection, and the handler decides what the client sees.
 */
import { Context, Effect, Layer } from "effect"
import type { Route } from "../config/types.ts"
import type { ClientConnection } from "../platform/server.ts"

/** Largest GRIP instruct response body the proxy buffers for the handler (Pushpin: 100 000). */
export const MAX_GRIP_INSTRUCT_BODY_BYTES = 100_000

export interface GripHandoff {
  readonly request: {
    readonly method: string
    /** The client's URI as received (scheme://host/path?query). */
    readonly uri: string
    readonly headers: Headers
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

export class Handler extends Context.Service<Handler, {
  readonly accept: (handoff: GripHandoff) => Response | Promise<Response>
}>()("pushpin-ts/handler/Handler") {
  /**
   * Until GRIP holds land, an origin that answers with GRIP instructions gets a clear 501 naming
   * the missing feature instead of a silently wrong pass-through.
   */
  static readonly layerUnsupported = Layer.succeed(Handler, {
    accept: (handoff) => {
      const hold = handoff.response.headers.get("grip-hold")
      const feature = hold === null ? "GRIP instructions" : `Grip-Hold: ${hold}`
      return new Response(
        `Not Implemented: the origin answered with ${feature}, and this pushpin-ts build does not ` +
          `support GRIP holds yet (planned: long-polling, streaming, SSE).\n`,
        { status: 501, headers: { "content-type": "text/plain" } }
      )
    }
  })
}

export const logHandlerMode = Effect.logInfo("handler: GRIP holds are not supported in this build; GRIP responses get 501")
