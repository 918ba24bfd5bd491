/**
 * The origin side of a proxied WebSocket, whatever carries it: a real WebSocket to the target
 * (`OriginWebSocket`), WebSocket-over-HTTP, or the built-in test target. The proxy's bridge
 * (client ⇄ origin relay, GRIP prefix and control messages, close codes) only sees this, as
 * Pushpin's `WsProxySession` only sees its `WebSocket` interface.
 */
import type { OriginRejected, OriginWebSocketHandlers } from "./origin-client.ts"

export interface OriginSocket {
  /** Begin delivering origin events to `handlers`; nothing is delivered before. */
  start(handlers: OriginWebSocketHandlers): void
  /** Stop delivering messages (the client is not keeping up); `resume` continues. */
  pause(): void
  resume(): void
  sendText(text: string): void
  sendBinary(data: Uint8Array): void
  ping(payload?: Uint8Array): void
  pong(payload?: Uint8Array): void
  /** Close handshake with the origin; without a code, a close without one. */
  close(code?: number, reason?: string): void
  /** The client vanished without a close handshake: drop the origin side uncleanly. */
  terminate(): void
  /** Bytes accepted by `send*` and not yet written to the origin. */
  readonly bufferedAmount: number
  /** Publish `action: refresh`: ask the origin now. Only WebSocket-over-HTTP has a use for it. */
  refresh?(): void
}

export type OriginSocketHandshake =
  | OriginRejected
  | { readonly _tag: "Open"; readonly connection: OriginSocket; readonly headers: Headers }
