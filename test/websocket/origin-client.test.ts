/**
 * The origin WebSocket client against real servers on 127.0.0.1: Bun.serve for a correct peer,
 * raw node:net servers for the misbehaving ones Bun.serve cannot imitate.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import net from "node:net"
import type { Server, ServerWebSocket } from "bun"
import { encodeClosePayload, encodeFrame, type Frame, FrameDecoder, Opcode } from "../../src/websocket/frames.ts"
import {
  connectOriginWebSocket,
  MAX_REJECTION_BODY_BYTES,
  type OriginHandshake,
  OriginConnectError,
  OriginHandshakeError,
  type OriginOpen,
  type OriginWebSocket,
  type OriginWebSocketOptions
} from "../../src/websocket/origin-client.ts"
import { deadPort, listenOnLoopback } from "../support/origin.ts"
import { BunServerRuntime } from "../../src/platform/bun-server.ts"

/** The origin client over Bun's sockets, as the binary runs it. */
const connectOrigin = (options: OriginWebSocketOptions) => connectOriginWebSocket(options, BunServerRuntime.originTransport)

const text = (data: Uint8Array): string => new TextDecoder().decode(data)
const bytes = (data: string): Uint8Array => new TextEncoder().encode(data)

const options = (port: number, extra: Partial<OriginWebSocketOptions> = {}): OriginWebSocketOptions => ({
  host: "127.0.0.1",
  port,
  tls: false,
  path: "/ws",
  headers: new Headers(),
  ...extra
})

const expectOpen = (handshake: OriginHandshake): OriginOpen => {
  if (handshake._tag !== "Open") throw new Error(`expected Open, got ${handshake._tag} ${handshake.status}`)
  return handshake
}

const rejectionOf = async (promise: Promise<unknown>): Promise<unknown> => {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error("expected the promise to reject")
}

const waitFor = async (what: string, condition: () => boolean, timeoutMs = 3000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(2)
  }
}

type ClientEvent =
  | readonly ["text", string]
  | readonly ["binary", Uint8Array]
  | readonly ["ping" | "pong", string]
  | readonly ["close", number | undefined, string, boolean]
  | readonly ["error", string]
  | readonly ["drain"]

/** Starts the connection and records everything it reports, in order. */
const record = (connection: OriginWebSocket) => {
  const events: Array<ClientEvent> = []
  connection.start({
    onMessage: (kind, data) => {
      if (kind === "text") events.push(["text", data])
      else events.push(["binary", data])
    },
    onPing: (payload) => events.push(["ping", text(payload)]),
    onPong: (payload) => events.push(["pong", text(payload)]),
    onClose: (code, reason, wasClean) => events.push(["close", code, reason, wasClean]),
    onDrain: () => events.push(["drain"]),
    onError: (error) => events.push(["error", error.message])
  })
  const count = (kind: ClientEvent[0]): number => events.filter((event) => event[0] === kind).length
  return {
    events,
    until: (what: ClientEvent[0], n = 1) => waitFor(`${n} ${what} event(s)`, () => count(what) >= n),
    closed: () => waitFor("close", () => count("close") > 0)
  }
}

// ---------------------------------------------------------------------------------------------
// Bun.serve echo origin

interface ServerEvent {
  readonly kind: "message" | "ping" | "pong" | "close"
  readonly data: string
  readonly code?: number
}

/** Per connection, keyed by the test's `X-Test-Id` header: closes of earlier tests arrive late. */
interface EchoConnection {
  readonly id: string
}

const serverEvents = new Map<string, Array<ServerEvent>>()
const seenHeaders = new Map<string, Headers>()
let echo: Server<EchoConnection>

const note = (ws: ServerWebSocket<EchoConnection>, event: ServerEvent): void => {
  serverEvents.get(ws.data.id)?.push(event)
}

const echoMessage = (ws: ServerWebSocket<EchoConnection>, message: string | Buffer): void => {
  note(ws, { kind: "message", data: typeof message === "string" ? message : `<${message.length} bytes>` })
  if (message === "close 4001") ws.close(4001, "server bye")
  else if (message === "ping me") ws.ping("from server")
  else ws.send(message)
}

beforeAll(() => {
  echo = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(request, server) {
      const id = request.headers.get("x-test-id") ?? ""
      seenHeaders.set(id, request.headers)
      const url = new URL(request.url)
      if (url.pathname === "/refuse") {
        return new Response("not for you", { status: 403, statusText: "Forbidden", headers: { "X-Refused-By": "test" } })
      }
      if (url.pathname === "/refuse-streamed") {
        const body = new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(bytes("first part, "))
            await Bun.sleep(5)
            controller.enqueue(bytes("second part"))
            controller.close()
          }
        })
        return new Response(body, { status: 401 })
      }
      if (url.pathname === "/refuse-size") {
        return new Response("b".repeat(Number(url.searchParams.get("n"))), { status: 400 })
      }
      const protocol = request.headers.get("sec-websocket-protocol")?.split(",")[0]?.trim()
      const upgraded = server.upgrade(request, {
        data: { id },
        ...(protocol === undefined ? {} : { headers: { "Sec-WebSocket-Protocol": protocol } })
      })
      return upgraded ? undefined : new Response("upgrade failed", { status: 500 })
    },
    websocket: {
      message: echoMessage,
      ping: (ws, data) => note(ws, { kind: "ping", data: text(data) }),
      pong: (ws, data) => note(ws, { kind: "pong", data: text(data) }),
      close: (ws, code, reason) => note(ws, { kind: "close", code, data: reason })
    }
  })
})

afterAll(() => echo.stop(true))

const echoPort = (): number => echo.port ?? 0

let nextTestId = 0

const openEcho = async (extra: Partial<OriginWebSocketOptions> = {}) => {
  const id = String(++nextTestId)
  const headers = new Headers(extra.headers)
  headers.set("X-Test-Id", id)
  const atOrigin: Array<ServerEvent> = []
  serverEvents.set(id, atOrigin)
  const open = expectOpen(await connectOrigin(options(echoPort(), { ...extra, headers })))
  return { ...open, ...record(open.connection), atOrigin, seen: seenHeaders.get(id) }
}

describe("against a Bun.serve WebSocket origin", () => {
  test("the upgrade carries the caller's headers and the handshake's own", async () => {
    const { connection, headers, seen } = await openEcho({
      headers: new Headers({
        Host: "example.org",
        "X-Forwarded-For": "10.0.0.1",
        "Sec-WebSocket-Protocol": "chat, superchat",
        // Replaced by the client: the origin must see a valid handshake.
        Connection: "keep-alive",
        "Sec-WebSocket-Version": "8"
      })
    })
    expect(seen?.get("host")).toBe("example.org")
    expect(seen?.get("x-forwarded-for")).toBe("10.0.0.1")
    expect(seen?.get("upgrade")).toBe("websocket")
    expect(seen?.get("connection")).toBe("Upgrade")
    expect(seen?.get("sec-websocket-version")).toBe("13")
    expect(Buffer.from(seen?.get("sec-websocket-key") ?? "", "base64").length).toBe(16)
    expect(headers.get("sec-websocket-protocol")).toBe("chat")
    expect(connection.readyState).toBe("open")
    connection.terminate()
  })

  test("Host defaults to host:port", async () => {
    const { connection, seen } = await openEcho()
    expect(seen?.get("host")).toBe(`127.0.0.1:${echoPort()}`)
    connection.terminate()
  })

  test("text and binary messages round trip", async () => {
    const { connection, events, until } = await openEcho()
    connection.sendText("héllo ✓")
    connection.sendBinary(new Uint8Array([0, 1, 2, 255]))
    connection.sendText("")
    await until("text", 2)
    await until("binary")
    expect(events).toEqual([
      ["text", "héllo ✓"],
      ["binary", new Uint8Array([0, 1, 2, 255])],
      ["text", ""]
    ])
    connection.terminate()
  })

  test("200 KB messages both ways", async () => {
    const { connection, events, until, atOrigin } = await openEcho()
    const big = new Uint8Array(200_000)
    for (let i = 0; i < big.length; i++) big[i] = i % 251
    const bigText = "ü".repeat(100_000)
    connection.sendBinary(big)
    connection.sendText(bigText)
    await until("text")
    expect(events[0]).toEqual(["binary", big])
    expect(events[1]).toEqual(["text", bigText])
    expect(atOrigin.map((event) => event.data)).toEqual(["<200000 bytes>", bigText])
    connection.terminate()
  })

  test("a ping's payload comes back in Bun's automatic pong", async () => {
    const { connection, events, until, atOrigin } = await openEcho()
    connection.ping(bytes("are you there?"))
    await until("pong")
    expect(events).toEqual([["pong", "are you there?"]])
    // Bun.serve answers by itself and also tells its `ping` handler.
    expect(atOrigin).toEqual([{ kind: "ping", data: "are you there?" }])
    connection.terminate()
  })

  test("an origin's ping is relayed, not answered: only an explicit pong reaches it", async () => {
    const { connection, events, until, atOrigin } = await openEcho()
    connection.sendText("ping me")
    await until("ping")
    expect(events).toEqual([["ping", "from server"]])
    // Any automatic pong would have been read by the origin well before this echo comes back.
    connection.sendText("marker")
    await until("text")
    expect(atOrigin.filter((event) => event.kind === "pong")).toEqual([])
    connection.pong(bytes("from server"))
    await waitFor("the origin's pong", () => atOrigin.some((event) => event.kind === "pong"))
    expect(atOrigin.filter((event) => event.kind === "pong")).toEqual([{ kind: "pong", data: "from server" }])
    connection.terminate()
  })

  test("a close we start: code and reason reach the origin, its answer reaches onClose", async () => {
    const { connection, events, closed, atOrigin } = await openEcho()
    connection.close(4001, "client bye")
    expect(connection.readyState).toBe("closing")
    connection.sendText("after close") // ignored: no data after a close frame
    await closed()
    expect(events).toEqual([["close", 4001, "client bye", true]])
    expect(connection.readyState).toBe("closed")
    await waitFor("the origin's close handler", () => atOrigin.some((event) => event.kind === "close"))
    expect(atOrigin).toEqual([{ kind: "close", code: 4001, data: "client bye" }])
  })

  test("a close the origin starts: code and reason reach onClose", async () => {
    const { connection, events, closed } = await openEcho()
    connection.sendText("close 4001")
    await closed()
    expect(events).toEqual([["close", 4001, "server bye", true]])
    expect(connection.readyState).toBe("closed")
  })

  test("close without a code", async () => {
    const { connection, events, closed, atOrigin } = await openEcho()
    connection.close()
    await closed()
    // Bun.serve reports 1005 to its handler and answers with an empty close frame.
    expect(events).toEqual([["close", undefined, "", true]])
    await waitFor("the origin's close handler", () => atOrigin.some((event) => event.kind === "close"))
    expect(atOrigin).toEqual([{ kind: "close", code: 1005, data: "" }])
  })

  test("close refuses codes that may not be sent", async () => {
    const { connection } = await openEcho()
    expect(() => connection.close(1006)).toThrow(new RangeError("close code 1006 may not be sent"))
    expect(connection.readyState).toBe("open")
    connection.terminate()
  })

  test("nothing is delivered while paused; resume delivers in order", async () => {
    const { connection, events, until, atOrigin } = await openEcho()
    connection.pause()
    connection.sendText("one")
    connection.sendText("two")
    await waitFor("the origin to echo", () => atOrigin.length === 2)
    await Bun.sleep(50)
    expect(events).toEqual([])
    connection.resume()
    await until("text", 2)
    expect(events).toEqual([
      ["text", "one"],
      ["text", "two"]
    ])
    connection.terminate()
  })

  test("terminate reports an unclean close once", async () => {
    const { connection, events } = await openEcho()
    connection.terminate()
    connection.terminate()
    await Bun.sleep(20)
    expect(events).toEqual([["close", undefined, "", false]])
    expect(connection.readyState).toBe("closed")
  })
})

describe("an origin that refuses the upgrade", () => {
  test("status, reason, headers and body are returned", async () => {
    const handshake = await connectOrigin(options(echoPort(), { path: "/refuse" }))
    if (handshake._tag !== "Rejected") throw new Error("expected Rejected")
    expect(handshake.status).toBe(403)
    expect(handshake.statusText).toBe("Forbidden")
    expect(handshake.headers.get("x-refused-by")).toBe("test")
    expect(handshake.headers.get("content-length")).toBe("11")
    expect(text(handshake.body)).toBe("not for you")
  })

  test("a chunked body is decoded", async () => {
    const handshake = await connectOrigin(options(echoPort(), { path: "/refuse-streamed" }))
    if (handshake._tag !== "Rejected") throw new Error("expected Rejected")
    expect(handshake.status).toBe(401)
    expect(handshake.headers.get("transfer-encoding")).toBe("chunked")
    expect(text(handshake.body)).toBe("first part, second part")
  })

  test(`a body of exactly ${MAX_REJECTION_BODY_BYTES} bytes is returned`, async () => {
    const handshake = await connectOrigin(
      options(echoPort(), { path: `/refuse-size?n=${MAX_REJECTION_BODY_BYTES}` })
    )
    if (handshake._tag !== "Rejected") throw new Error("expected Rejected")
    expect(handshake.body.length).toBe(MAX_REJECTION_BODY_BYTES)
  })

  test("one byte more fails with Pushpin's message", async () => {
    const error = await rejectionOf(
      connectOrigin(options(echoPort(), { path: `/refuse-size?n=${MAX_REJECTION_BODY_BYTES + 1}` }))
    )
    expect(error).toBeInstanceOf(OriginHandshakeError)
    expect(error).toMatchObject({
      reason: "rejection-too-large",
      message: "Non-101 response body size exceeded limit of 100000 bytes."
    })
  })
})

// ---------------------------------------------------------------------------------------------
// Raw origins: they answer however a test tells them to

interface RawConnection {
  readonly socket: net.Socket
  readonly request: string
  readonly key: string
  /** Everything the client sent after its request head. */
  readonly after: Array<Uint8Array>
}

const accept = (key: string): string =>
  createHash("sha1").update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64")

const switching = (key: string, acceptValue = accept(key)): string =>
  `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptValue}\r\n\r\n`

/** An origin that accepts the upgrade and then reads nothing, so writes to it queue up. */
const acceptThenStopReading = ({ socket, key }: RawConnection): void => {
  socket.write(switching(key))
  socket.pause()
}

const withRawOrigin = async (
  onRequest: (connection: RawConnection) => void,
  run: (port: number, connections: Array<RawConnection>) => Promise<void>
): Promise<void> => {
  const connections: Array<RawConnection> = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on("error", () => {})
    let head = Buffer.alloc(0)
    let connection: RawConnection | undefined
    socket.on("data", (chunk: Buffer) => {
      if (connection !== undefined) {
        connection.after.push(new Uint8Array(chunk))
        return
      }
      head = Buffer.concat([head, chunk])
      const end = head.indexOf("\r\n\r\n")
      if (end === -1) return
      const request = head.subarray(0, end).toString("latin1")
      const key = /^sec-websocket-key: *(.*)$/im.exec(request)?.[1]?.trim() ?? ""
      connection = { socket, request, key, after: [new Uint8Array(head.subarray(end + 4))] }
      connections.push(connection)
      onRequest(connection)
    })
  })
  const port = await listenOnLoopback(server)
  try {
    await run(port, connections)
  } finally {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** The frames a raw origin received from the client (which must mask them). */
const clientFrames = (connection: RawConnection | undefined): ReadonlyArray<Frame> => {
  if (connection === undefined) return []
  const decoder = new FrameDecoder({ masking: "required" })
  return connection.after.flatMap((chunk) => decoder.feed(chunk).frames)
}

const serverFrame = (opcode: Opcode, payload: Uint8Array | string): Uint8Array =>
  encodeFrame({ fin: true, opcode, payload: typeof payload === "string" ? bytes(payload) : payload })

describe("against raw origins", () => {
  test("a wrong Sec-WebSocket-Accept fails the handshake", async () => {
    await withRawOrigin(
      ({ socket, key }) => socket.write(switching(key, "d3Jvbmcgd3Jvbmcgd3Jvbmc=")),
      async (port) => {
        const error = await rejectionOf(connectOrigin(options(port)))
        expect(error).toBeInstanceOf(OriginHandshakeError)
        expect(error).toMatchObject({ _tag: "OriginHandshakeError", reason: "invalid-response" })
        expect((error as OriginHandshakeError).message).toStartWith(
          'origin answered 101 with Sec-WebSocket-Accept "d3Jvbmcgd3Jvbmcgd3Jvbmc=", expected "'
        )
      }
    )
  })

  test.each([
    ["no Upgrade header", (key: string) => switching(key).replace("Upgrade: websocket\r\n", ""), "with Upgrade null"],
    [
      "a subprotocol that was not offered",
      (key: string) => switching(key).replace("\r\n\r\n", "\r\nSec-WebSocket-Protocol: other\r\n\r\n"),
      'Sec-WebSocket-Protocol "other", which was not offered'
    ],
    ["a malformed status line", () => "HTTP/1.1 abc\r\n\r\n", 'malformed status line "HTTP/1.1 abc"'],
    ["a malformed header line", () => "HTTP/1.1 403 No\r\nBad Header: x\r\n\r\n", 'malformed header line "Bad Header: x"']
  ])("a 101 with %s fails the handshake", async (_name, answer, message) => {
    await withRawOrigin(
      ({ socket, key }) => socket.write(answer(key)),
      async (port) => {
        const error = await rejectionOf(connectOrigin(options(port)))
        expect(error).toMatchObject({ _tag: "OriginHandshakeError", reason: "invalid-response" })
        expect((error as OriginHandshakeError).message).toContain(message)
      }
    )
  })

  test("frames in the same packet as the 101 are delivered after start, in order", async () => {
    await withRawOrigin(
      ({ socket, key }) =>
        socket.write(
          Buffer.concat([
            Buffer.from(switching(key)),
            serverFrame(Opcode.Text, "early"),
            serverFrame(Opcode.Ping, "p"),
            serverFrame(Opcode.Binary, new Uint8Array([7]))
          ])
        ),
      async (port) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        await Bun.sleep(20) // nothing may be lost while no handlers are attached
        const { events, until } = record(connection)
        await until("binary")
        expect(events).toEqual([
          ["text", "early"],
          ["ping", "p"],
          ["binary", new Uint8Array([7])]
        ])
        connection.terminate()
      }
    )
  })

  test("the client masks its frames", async () => {
    await withRawOrigin(
      ({ socket, key }) => socket.write(switching(key)),
      async (port, connections) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        record(connection)
        connection.sendText("masked?")
        connection.ping(bytes("p"))
        await waitFor("two frames", () => clientFrames(connections[0]).length === 2)
        // The decoder requires masking, so decoding at all proves it.
        expect(clientFrames(connections[0])).toEqual([
          { fin: true, opcode: Opcode.Text, payload: bytes("masked?") },
          { fin: true, opcode: Opcode.Ping, payload: bytes("p") }
        ])
        connection.terminate()
      }
    )
  })

  test("a TCP end without a close frame is an unclean close", async () => {
    await withRawOrigin(
      ({ socket, key }) => socket.end(switching(key)),
      async (port) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        const { events, closed } = record(connection)
        await closed()
        expect(events).toEqual([["close", undefined, "", false]])
      }
    )
  })

  test("a close frame without a code is echoed empty", async () => {
    await withRawOrigin(
      ({ socket, key }) => socket.write(Buffer.concat([Buffer.from(switching(key)), serverFrame(Opcode.Close, "")])),
      async (port, connections) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        const { events, closed } = record(connection)
        await closed()
        expect(events).toEqual([["close", undefined, "", true]])
        await waitFor("the echo", () => clientFrames(connections[0]).length === 1)
        expect(clientFrames(connections[0])).toEqual([{ fin: true, opcode: Opcode.Close, payload: new Uint8Array() }])
      }
    )
  })

  test("an origin's close is echoed with its code and reason, and the client ends TCP", async () => {
    await withRawOrigin(
      ({ socket, key }) =>
        socket.write(Buffer.concat([Buffer.from(switching(key)), serverFrame(Opcode.Close, encodeClosePayload(4001, "done"))])),
      async (port, connections) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        const { events, closed } = record(connection)
        await closed()
        expect(events).toEqual([["close", 4001, "done", true]])
        const origin = connections[0]
        let ended = false
        origin?.socket.on("end", () => {
          ended = true
        })
        await waitFor("the client's FIN", () => ended || origin?.socket.readableEnded === true)
        expect(clientFrames(origin)).toEqual([{ fin: true, opcode: Opcode.Close, payload: encodeClosePayload(4001, "done") }])
      }
    )
  })

  test("a protocol error fails the connection and tells the origin why", async () => {
    await withRawOrigin(
      ({ socket, key }) =>
        socket.write(
          Buffer.concat([
            Buffer.from(switching(key)),
            serverFrame(Opcode.Text, "fine"),
            encodeFrame({ fin: true, opcode: Opcode.Text, payload: bytes("masked"), mask: new Uint8Array(4) })
          ])
        ),
      async (port, connections) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        const { events, closed } = record(connection)
        await closed()
        expect(events).toEqual([
          ["text", "fine"],
          ["error", "server frame is masked (close 1002: protocol error)"],
          ["close", undefined, "", false]
        ])
        await waitFor("the close frame", () => clientFrames(connections[0]).length === 1)
        const [close] = clientFrames(connections[0])
        expect(close?.opcode).toBe(Opcode.Close)
        expect(close?.payload.subarray(0, 2)).toEqual(new Uint8Array([0x03, 0xea])) // 1002
      }
    )
  })

  test("a message over maxMessageBytes fails with 1009", async () => {
    await withRawOrigin(
      ({ socket, key }) => socket.write(Buffer.concat([Buffer.from(switching(key)), serverFrame(Opcode.Binary, new Uint8Array(11))])),
      async (port, connections) => {
        const { connection } = expectOpen(await connectOrigin(options(port, { maxMessageBytes: 10 })))
        const { events, closed } = record(connection)
        await closed()
        expect(events[0]).toEqual(["error", "frame payload of 11 bytes exceeds the limit of 10 (close 1009: message too big)"])
        await waitFor("the close frame", () => clientFrames(connections[0]).length === 1)
        expect(clientFrames(connections[0])[0]?.payload.subarray(0, 2)).toEqual(new Uint8Array([0x03, 0xf1])) // 1009
      }
    )
  })

  test("bufferedAmount grows while the origin does not read, and onDrain follows", async () => {
    await withRawOrigin(
      acceptThenStopReading,
      async (port, connections) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        const { events, until } = record(connection)
        const size = 8 * 1024 * 1024
        connection.sendBinary(new Uint8Array(size))
        expect(connection.bufferedAmount).toBeGreaterThan(0)
        const origin = connections[0]
        let received = 0
        origin?.socket.on("data", (chunk: Buffer) => {
          received += chunk.length
        })
        origin?.socket.resume()
        await until("drain")
        expect(connection.bufferedAmount).toBe(0)
        await waitFor("all bytes at the origin", () => received >= size + 14)
        expect(received).toBe(size + 14) // 10-byte header, 4-byte mask
        expect(events).toEqual([["drain"]])
        connection.terminate()
      }
    )
  })

  test("frames written while the origin does not read reach it whole and in order", async () => {
    await withRawOrigin(
      acceptThenStopReading,
      async (port, connections) => {
        const { connection } = expectOpen(await connectOrigin(options(port)))
        record(connection)
        // Larger than the kernel's buffers take at once, so later frames queue behind the rest of
        // the first.
        const first = new Uint8Array(6 * 1024 * 1024).fill(1)
        const second = new Uint8Array(3 * 1024 * 1024).fill(2)
        connection.sendBinary(first)
        connection.sendText("between")
        connection.sendBinary(second)
        connection.close(4000, "done")
        expect(connection.bufferedAmount).toBeGreaterThan(0)
        connections[0]?.socket.resume()
        await waitFor("four frames", () => clientFrames(connections[0]).length === 4)
        const frames = clientFrames(connections[0])
        expect(frames.map((frame) => [frame.opcode, frame.payload.length])).toEqual([
          [Opcode.Binary, first.length],
          [Opcode.Text, 7],
          [Opcode.Binary, second.length],
          [Opcode.Close, 6]
        ])
        expect(frames[0]?.payload).toEqual(first)
        expect(frames[2]?.payload).toEqual(second)
        expect(frames[3]?.payload).toEqual(encodeClosePayload(4000, "done"))
        connection.terminate()
      }
    )
  })

  test("a close-delimited refusal body is read to the end of the connection", async () => {
    await withRawOrigin(
      ({ socket }) => socket.end("HTTP/1.1 502 Bad Gateway\r\nX-Upstream: down\r\n\r\nupstream is down"),
      async (port) => {
        const handshake = await connectOrigin(options(port))
        expect(handshake).toMatchObject({ _tag: "Rejected", status: 502, statusText: "Bad Gateway" })
        if (handshake._tag !== "Rejected") return
        expect(handshake.headers.get("x-upstream")).toBe("down")
        expect(text(handshake.body)).toBe("upstream is down")
      }
    )
  })

  test("an interim 100 Continue is skipped", async () => {
    await withRawOrigin(
      ({ socket }) => socket.write("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno"),
      async (port) => {
        const handshake = await connectOrigin(options(port))
        expect(handshake).toMatchObject({ _tag: "Rejected", status: 401, body: bytes("no") })
      }
    )
  })

  test("an origin that never answers times out", async () => {
    await withRawOrigin(
      () => {},
      async (port) => {
        const error = await rejectionOf(connectOrigin(options(port, { timeoutMs: 100 })))
        expect(error).toBeInstanceOf(OriginHandshakeError)
        expect(error).toMatchObject({
          reason: "timeout",
          message: `ws://127.0.0.1:${port} did not answer the upgrade within 100 ms`
        })
      }
    )
  })

  test("an origin that closes before answering", async () => {
    await withRawOrigin(
      ({ socket }) => socket.end(),
      async (port) => {
        const error = await rejectionOf(connectOrigin(options(port)))
        expect(error).toMatchObject({
          _tag: "OriginHandshakeError",
          reason: "closed",
          message: "origin closed the connection before answering the upgrade"
        })
      }
    )
  })
})

describe("connect errors", () => {
  test("a dead port rejects with code ECONNREFUSED", async () => {
    const port = deadPort()
    const error = await rejectionOf(connectOrigin(options(port)))
    expect(error).toBeInstanceOf(OriginConnectError)
    expect(error).toMatchObject({ _tag: "OriginConnectError", code: "ECONNREFUSED" })
    expect((error as OriginConnectError).message).toStartWith(`cannot connect to ws://127.0.0.1:${port}: `)
  })
})

// ---------------------------------------------------------------------------------------------
// TLS (wss), with a self-signed certificate for localhost and 127.0.0.1 valid until 2126

const CERTIFICATE = `-----BEGIN CERTIFICATE-----
MIIBmjCCAUGgAwIBAgIUcXKn++bk7S+SCUZ3fEyH8N00h74wCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNDE4NDk1NVoYDzIxMjYxMDMx
MTg0OTU1WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAATwt0nRlN0GrzzLmUiKjxDbhVFgXOKp1opd4MOz09BmZ1/ViBb/gp4T
wymBI/jU30vcdGaGtqPsjrq0pN1bR1vIo28wbTAdBgNVHQ4EFgQUYHVImLFfVR5y
VBF4v0j6lyQ560swHwYDVR0jBBgwFoAUYHVImLFfVR5yVBF4v0j6lyQ560swDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDRwAwRAIgH0kc04HruL4iopnN3r4aJWwcSe4C/IL5HYLxvYqUBqQCIFi3
JaUcwJzPpEDi14pg+MdehQNIk6gJtX8F0e+CM49I
-----END CERTIFICATE-----`

const PRIVATE_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgiP3Wj4lP1ycexVVJ
ruxclbrH5wPir+IR9vSYY4y62AShRANCAATwt0nRlN0GrzzLmUiKjxDbhVFgXOKp
1opd4MOz09BmZ1/ViBb/gp4TwymBI/jU30vcdGaGtqPsjrq0pN1bR1vI
-----END PRIVATE KEY-----`

describe("wss", () => {
  let secure: Server<undefined>
  beforeAll(() => {
    secure = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: CERTIFICATE, key: PRIVATE_KEY },
      fetch: (request, server) => (server.upgrade(request) ? undefined : new Response("no", { status: 400 })),
      websocket: { message: (ws, message) => void ws.send(message) }
    })
  })
  afterAll(() => secure.stop(true))

  test("insecure accepts the self-signed certificate", async () => {
    const { connection } = expectOpen(await connectOrigin(options(secure.port ?? 0, { tls: true, insecure: true })))
    const { events, until } = record(connection)
    connection.sendText("over tls")
    await until("text")
    expect(events).toEqual([["text", "over tls"]])
    connection.terminate()
  })

  test("a 4 MB message round trips over TLS", async () => {
    const { connection } = expectOpen(await connectOrigin(options(secure.port ?? 0, { tls: true, insecure: true })))
    const { events, until } = record(connection)
    const big = new Uint8Array(4 * 1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = i % 253
    connection.sendBinary(big)
    await until("binary")
    // A drain may come first: TLS need not take 4 MB in one write.
    expect(events.filter((event) => event[0] !== "drain")).toEqual([["binary", big]])
    connection.terminate()
  })

  test("without insecure the certificate is checked, and failing is a connect error", async () => {
    const error = await rejectionOf(connectOrigin(options(secure.port ?? 0, { tls: true })))
    expect(error).toBeInstanceOf(OriginConnectError)
    expect((error as OriginConnectError).code).toBe("DEPTH_ZERO_SELF_SIGNED_CERT")
  })
})
