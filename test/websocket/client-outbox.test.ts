import { describe, expect, test } from "bun:test"
import type { ClientWebSocket, SendOutcome } from "../../src/platform/server.ts"
import { CLIENT_OUTBOX_MAX_MESSAGES, ClientOutbox, type OutboxDropReason, type OutgoingMessage } from "../../src/websocket/client-outbox.ts"

/** A socket whose send buffer is "full" while `congested`: each send then answers `queued`. */
class FakeSocket implements ClientWebSocket {
  readonly written: Array<[string, string]> = []
  congested = false
  refuseAll = false
  readonly bufferedAmount = 0
  private answer(kind: string, content: string): SendOutcome {
    if (this.refuseAll) return "dropped"
    this.written.push([kind, content])
    return this.congested ? "queued" : "sent"
  }
  sendText(text: string): SendOutcome {
    return this.answer("text", text)
  }
  sendBinary(data: Uint8Array): SendOutcome {
    return this.answer("binary", new TextDecoder().decode(data))
  }
  ping(data: Uint8Array): SendOutcome {
    return this.answer("ping", new TextDecoder().decode(data))
  }
  pong(data: Uint8Array): SendOutcome {
    return this.answer("pong", new TextDecoder().decode(data))
  }
  close(): void {}
  terminate(): void {}
  pause(): void {}
  resume(): void {}
}

const setup = () => {
  const socket = new FakeSocket()
  const congestion: Array<boolean> = []
  const drops: Array<[OutgoingMessage, OutboxDropReason]> = []
  const outbox = new ClientOutbox(socket, {
    onCongestion: (congested) => congestion.push(congested),
    onDrop: (message, reason) => drops.push([message, reason])
  })
  return { socket, congestion, drops, outbox }
}

const text = (content: string): OutgoingMessage => ({ type: "text", content })

describe("ClientOutbox", () => {
  test("sends straight through while the runtime keeps up", () => {
    const { socket, outbox, congestion } = setup()
    expect(outbox.send(text("a"), true)).toBe(true)
    expect(outbox.send({ type: "binary", content: new TextEncoder().encode("b") }, false)).toBe(true)
    expect(outbox.send({ type: "ping", content: "p" }, true)).toBe(true)
    expect(socket.written).toEqual([["text", "a"], ["binary", "b"], ["ping", "p"]])
    expect(outbox.congested).toBe(false)
    expect(congestion).toEqual([])
  })

  test("a queued send makes later messages wait for drain, in order", () => {
    const { socket, outbox, congestion } = setup()
    socket.congested = true
    outbox.send(text("1"), true)
    expect(outbox.congested).toBe(true)
    expect(congestion).toEqual([true])
    outbox.send(text("2"), true)
    outbox.send(text("3"), false)
    expect(socket.written).toEqual([["text", "1"]])
    expect(outbox.size).toBe(2)
    socket.congested = false
    outbox.drain()
    expect(socket.written.map(([, content]) => content)).toEqual(["1", "2", "3"])
    expect(outbox.congested).toBe(false)
    expect(congestion).toEqual([true, false])
  })

  test("a drain that fills the buffer again keeps the rest waiting", () => {
    const { socket, outbox, congestion } = setup()
    socket.congested = true
    outbox.send(text("1"), true)
    outbox.send(text("2"), true)
    outbox.send(text("3"), true)
    outbox.drain() // "2" is written and answered `queued` again
    expect(socket.written.map(([, content]) => content)).toEqual(["1", "2"])
    expect(outbox.size).toBe(1)
    expect(congestion).toEqual([true])
    socket.congested = false
    outbox.drain()
    expect(socket.written.map(([, content]) => content)).toEqual(["1", "2", "3"])
    expect(congestion).toEqual([true, false])
  })

  test(`droppable messages past ${CLIENT_OUTBOX_MAX_MESSAGES} waiting are dropped and reported; relayed ones are kept`, () => {
    const { socket, outbox, drops } = setup()
    socket.congested = true
    outbox.send(text("first"), true)
    for (let i = 0; i < CLIENT_OUTBOX_MAX_MESSAGES; i++) expect(outbox.send(text(`w${i}`), true)).toBe(true)
    expect(outbox.send(text("one too many"), true)).toBe(false)
    expect(drops).toEqual([[text("one too many"), "outbox-full"]])
    expect(outbox.send(text("from the origin"), false)).toBe(true)
    expect(outbox.size).toBe(CLIENT_OUTBOX_MAX_MESSAGES + 1)
  })

  test("a send the runtime refuses is reported as dropped", () => {
    const { socket, outbox, drops } = setup()
    socket.refuseAll = true
    expect(outbox.send(text("lost"), true)).toBe(false)
    expect(drops).toEqual([[text("lost"), "runtime-buffer-full"]])
  })

  test("clear forgets what waits", () => {
    const { socket, outbox } = setup()
    socket.congested = true
    outbox.send(text("1"), true)
    outbox.send(text("2"), true)
    outbox.clear()
    socket.congested = false
    outbox.drain()
    expect(socket.written.map(([, content]) => content)).toEqual(["1"])
  })
})
