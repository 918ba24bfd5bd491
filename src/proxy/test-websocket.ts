/**
 * The `test` target's WebSocket (Pushpin's `TestWebSocket`): `/ws` echoes what the client sends.
 * When the proxy offers `grip` (every GRIP route does), it answers with the extension, subscribes
 * the connection to the `?channel=` channels (default `test`) with control messages, and prefixes
 * its echoes with `m:`, exactly as a GRIP origin would. Any other path is refused with 404.
 */
import { deliverOriginMessage, type OriginMessage, type OriginWebSocketHandlers } from "../websocket/origin-client.ts"
import type { OriginSocket, OriginSocketHandshake } from "../websocket/origin-socket.ts"
import { GRIP_EXTENSION, parseGripExtension } from "../websocket/grip-control.ts"

const PREFIX = "m:"
const PREFIX_BYTES = new TextEncoder().encode(PREFIX)

export const TEST_WEBSOCKET_PATH = "/ws"

type Echo = OriginMessage | { readonly kind: "close"; readonly code: number | undefined; readonly reason: string }

class TestOriginSocket implements OriginSocket {
  private handlers: OriginWebSocketHandlers | undefined = undefined
  private readonly pending: Array<Echo> = []
  private paused = false
  private closed = false

  constructor(private readonly grip: boolean, channels: ReadonlyArray<string>) {
    if (grip) {
      for (const channel of channels) this.pending.push({ kind: "text", data: `c:${JSON.stringify({ type: "subscribe", channel })}` })
    }
  }

  readonly bufferedAmount = 0

  start(handlers: OriginWebSocketHandlers): void {
    this.handlers = handlers
    this.schedule()
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    this.schedule()
  }

  sendText(text: string): void {
    this.echo({ kind: "text", data: this.grip ? PREFIX + text : text })
  }

  sendBinary(data: Uint8Array): void {
    this.echo({ kind: "binary", data: this.grip ? Buffer.concat([PREFIX_BYTES, data]) : data })
  }

  ping(payload: Uint8Array = new Uint8Array(0)): void {
    this.echo({ kind: "ping", data: payload })
  }

  pong(payload: Uint8Array = new Uint8Array(0)): void {
    this.echo({ kind: "pong", data: payload })
  }

  close(code?: number, reason = ""): void {
    this.echo({ kind: "close", code, reason })
  }

  terminate(): void {
    this.closed = true
    this.pending.length = 0
  }

  private echo(frame: Echo): void {
    if (this.closed) return
    this.pending.push(frame)
    this.schedule()
  }

  private schedule(): void {
    if (this.handlers !== undefined && !this.paused && this.pending.length > 0) queueMicrotask(() => this.flush())
  }

  private flush(): void {
    const handlers = this.handlers
    while (handlers !== undefined && !this.paused && this.pending.length > 0) {
      const frame = this.pending.shift() as Echo
      if (frame.kind === "close") {
        this.closed = true
        this.pending.length = 0
        handlers.onClose(frame.code, frame.reason, true)
        return
      }
      deliverOriginMessage(handlers, frame)
    }
  }
}

/** The handshake as an origin would answer it; `path` is relative to the route. */
export const connectTestWebSocket = (path: string, search: string, requestHeaders: Headers): OriginSocketHandshake => {
  const trimmed = path.length >= 2 && path.endsWith("/") ? path.slice(0, -1) : path
  if (trimmed !== TEST_WEBSOCKET_PATH) {
    return {
      _tag: "Rejected",
      status: 404,
      statusText: "Not Found",
      headers: new Headers({ "content-type": "text/plain" }),
      body: new TextEncoder().encode("no such test resource\n")
    }
  }
  const grip = parseGripExtension(requestHeaders.get("sec-websocket-extensions"))._tag === "Present"
  const requested = [...new Set(new URLSearchParams(search).getAll("channel"))]
  const channels = requested.length > 0 ? requested : ["test"]
  return {
    _tag: "Open",
    connection: new TestOriginSocket(grip, channels),
    headers: new Headers(grip ? { "sec-websocket-extensions": GRIP_EXTENSION } : {})
  }
}
