/**
 * What a client WebSocket is sent, in order, with backpressure. While the runtime's send buffer
 * is over its mark (a send answered `queued`), further messages wait here until `drain`. Relayed
 * origin messages always wait (the caller pauses the origin meanwhile, so they are few); publishes
 * and other handler messages wait up to `CLIENT_OUTBOX_MAX_MESSAGES` and are dropped past that, as
 * Pushpin's per-connection queue does, so a reader that stops reading costs bounded memory.
 */
import type { ClientWebSocket, SendOutcome } from "../platform/server.ts"
import type { WsMessageType } from "../grip/publish.ts"

/** Pushpin's connmgr queues at most 100 messages per WebSocket (`--messages-max`). */
export const CLIENT_OUTBOX_MAX_MESSAGES = 100

export interface OutgoingMessage {
  readonly type: WsMessageType
  readonly content: string | Uint8Array
}

/** Why a message did not reach the client. */
export type OutboxDropReason = "outbox-full" | "runtime-buffer-full"

export interface OutboxListener {
  /** The client stopped (true) or resumed (false) taking messages as fast as they come. */
  onCongestion(congested: boolean): void
  onDrop(message: OutgoingMessage, reason: OutboxDropReason): void
}

const encoder = new TextEncoder()

const write = (socket: ClientWebSocket, message: OutgoingMessage): SendOutcome => {
  const { type, content } = message
  switch (type) {
    case "text":
      return socket.sendText(typeof content === "string" ? content : new TextDecoder().decode(content))
    case "binary":
      return socket.sendBinary(typeof content === "string" ? encoder.encode(content) : content)
    case "ping":
      return socket.ping(typeof content === "string" ? encoder.encode(content) : content)
    case "pong":
      return socket.pong(typeof content === "string" ? encoder.encode(content) : content)
  }
}

export class ClientOutbox {
  /** Present only while congested: most connections never need one. */
  private waiting: Array<OutgoingMessage> | undefined = undefined

  constructor(private readonly socket: ClientWebSocket, private readonly listener: OutboxListener) {}

  get congested(): boolean {
    return this.waiting !== undefined
  }

  get size(): number {
    return this.waiting?.length ?? 0
  }

  /**
   * Sends now, or after what already waits. `droppable` messages (publishes, keep-alives) are
   * dropped when the outbox is full; returns false when the message was dropped.
   */
  send(message: OutgoingMessage, droppable: boolean): boolean {
    if (this.waiting !== undefined) {
      if (droppable && this.waiting.length >= CLIENT_OUTBOX_MAX_MESSAGES) {
        this.listener.onDrop(message, "outbox-full")
        return false
      }
      this.waiting.push(message)
      return true
    }
    return this.deliver(message)
  }

  /** The runtime's buffer emptied: send what waits, until it fills again. */
  drain(): void {
    const waiting = this.waiting
    if (waiting === undefined) return
    let index = 0
    while (index < waiting.length) {
      const message = waiting[index++] as OutgoingMessage
      const outcome = write(this.socket, message)
      if (outcome === "dropped") this.listener.onDrop(message, "runtime-buffer-full")
      if (outcome === "queued") {
        this.waiting = waiting.slice(index)
        return
      }
    }
    this.waiting = undefined
    this.listener.onCongestion(false)
  }

  /** Forget what waits (the connection is closing). */
  clear(): void {
    this.waiting = undefined
  }

  private deliver(message: OutgoingMessage): boolean {
    const outcome = write(this.socket, message)
    if (outcome === "dropped") {
      this.listener.onDrop(message, "runtime-buffer-full")
      return false
    }
    if (outcome === "queued" && this.waiting === undefined) {
      this.waiting = []
      this.listener.onCongestion(true)
    }
    return true
  }
}
