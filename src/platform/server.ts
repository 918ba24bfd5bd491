import { Context, Data } from "effect"

/**
 * The runtime adapter boundary. The core (connmgr, proxy, handler) speaks only web-standard
 * `Request`/`Response` plus this small interface, so a runtime other than Bun needs one new
 * file here and nothing else.
 */

export type ListenerSpec =
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string }

/** What the runtime knows about the connection a request arrived on. */
export interface ClientConnection {
  readonly remoteAddress: string | undefined
  readonly isTls: boolean
  /** Port of the listener that accepted the connection (0 for unix sockets). */
  readonly listenerPort: number
  /**
   * Stop the runtime's idle timer for this request's connection: held, streamed and slow
   * responses must never be cut by an inactivity timeout that knows nothing about GRIP.
   */
  readonly keepOpen: () => void
}

export type RequestHandler = (request: Request, client: ClientConnection) => Response | Promise<Response>

export interface ServeOptions {
  readonly listener: ListenerSpec
  readonly handler: RequestHandler
  /** Seconds a connection may sit idle (no request in progress) before it is closed. */
  readonly idleTimeoutSeconds: number
  /** Largest request body the runtime will accept before answering 413 itself. */
  readonly maxRequestBodyBytes: number
  /** Called when the runtime's own handler threw; must return the response to send. */
  readonly onError: (error: unknown) => Response
}

export interface RunningServer {
  /** The port actually bound (useful when the spec asked for port 0). */
  readonly port: number
  readonly description: string
  /** Requests in progress right now (a gauge, read cheaply). */
  readonly pendingRequests: () => number
  /** Stop accepting; when `force`, close connections that are still open. */
  readonly stop: (force: boolean) => Promise<void>
}

export interface ServerRuntime {
  readonly name: string
  readonly serve: (options: ServeOptions) => RunningServer
}

/** A listener could not be opened (port in use, permission, bad address). */
export class ListenError extends Data.TaggedError("ListenError")<{
  readonly address: string
  readonly reason: string
}> {
  override get message(): string {
    return `cannot listen on ${this.address}: ${this.reason}`
  }
}

/** The runtime every listener (clients, publish API) is opened with. */
export class ServerRuntimeService extends Context.Service<ServerRuntimeService, ServerRuntime>()(
  "pushpin-ts/platform/ServerRuntime"
) {}
