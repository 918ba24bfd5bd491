/**
 * WebSocket helpers for end-to-end tests: a scriptable WebSocket origin that records what it
 * saw, and a client that collects what it receives.
 */
import net from "node:net"
import { encodeClosePayload, encodeFrame, FrameDecoder, MessageAssembler, Opcode } from "../../src/websocket/frames.ts"
import { webSocketAccept } from "../../src/websocket/origin-client.ts"

/** The origin's end of one connection, written frame by frame (servers do not mask). */
export interface OriginSocketWriter {
  send(message: string | Uint8Array): void
  ping(payload: string): void
  close(code?: number, reason?: string): void
}

export interface OriginConnection {
  readonly path: string
  readonly headers: Record<string, string>
  readonly received: Array<string | Uint8Array>
  readonly pings: Array<string>
  readonly closes: Array<{ readonly code: number | undefined; readonly reason: string }>
  readonly socket: OriginSocketWriter
}

export interface WsOriginBehaviour {
  /** Answer the upgrade: a Response refuses it; headers accept it with these 101 headers. */
  readonly handshake?: (request: Request) => Response | Record<string, string>
  readonly onOpen?: (connection: OriginConnection) => void
  /** Default: echo. */
  readonly onMessage?: (connection: OriginConnection, message: string | Uint8Array) => void
}

export interface WsOrigin {
  readonly port: number
  readonly connections: Array<OriginConnection>
  readonly stop: () => Promise<void>
}

const encoder = new TextEncoder()

const writerFor = (socket: net.Socket): OriginSocketWriter => ({
  send: (message) => {
    const text = typeof message === "string"
    socket.write(encodeFrame({ fin: true, opcode: text ? Opcode.Text : Opcode.Binary, payload: text ? encoder.encode(message) : message }))
  },
  ping: (payload) => socket.write(encodeFrame({ fin: true, opcode: Opcode.Ping, payload: encoder.encode(payload) })),
  close: (code, reason = "") => socket.write(encodeFrame({ fin: true, opcode: Opcode.Close, payload: encodeClosePayload(code, reason) }))
})

/**
 * A WebSocket origin over raw TCP, so its 101 can carry any header (Bun.serve drops
 * `Sec-WebSocket-Extensions` from upgrade responses, and GRIP origins need it).
 */
export const startWsOrigin = (behaviour: WsOriginBehaviour = {}): Promise<WsOrigin> =>
  new Promise((resolveOrigin) => {
    const connections: Array<OriginConnection> = []
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on("close", () => sockets.delete(socket))
      socket.on("error", () => {})
      let head = Buffer.alloc(0)
      let connection: OriginConnection | undefined
      const decoder = new FrameDecoder({ masking: "required" })
      const assembler = new MessageAssembler()
      const onFrames = (bytes: Uint8Array) => {
        const { frames } = decoder.feed(bytes)
        for (const frame of frames) {
          const message = assembler.push(frame)
          if (message._tag === "Failure" || message.success === undefined || connection === undefined) continue
          const event = message.success
          switch (event.kind) {
            case "text":
            case "binary":
              connection.received.push(event.data)
              if (behaviour.onMessage !== undefined) behaviour.onMessage(connection, event.data)
              else connection.socket.send(event.data)
              break
            case "ping":
              connection.pings.push(new TextDecoder().decode(event.payload))
              socket.write(encodeFrame({ fin: true, opcode: Opcode.Pong, payload: event.payload }))
              break
            case "pong":
              break
            case "close":
              connection.closes.push({ code: event.code, reason: event.reason })
              socket.end(encodeFrame({ fin: true, opcode: Opcode.Close, payload: encodeClosePayload(event.code, event.reason) }))
              break
          }
        }
      }
      socket.on("data", (chunk: Buffer) => {
        if (connection !== undefined) return onFrames(chunk)
        head = Buffer.concat([head, chunk])
        const end = head.indexOf("\r\n\r\n")
        if (end < 0) return
        const lines = head.subarray(0, end).toString("latin1").split("\r\n")
        const [, target = "/"] = (lines[0] ?? "").split(" ")
        const headers = new Headers()
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(":")
          if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim())
        }
        const request = new Request(`http://127.0.0.1${target}`, { headers })
        const answer = behaviour.handshake?.(request) ?? {}
        if (answer instanceof Response) {
          void answer.arrayBuffer().then((body) => {
            const lines = [`HTTP/1.1 ${answer.status} ${answer.statusText || "Refused"}`]
            for (const [name, value] of answer.headers) lines.push(`${name}: ${value}`)
            lines.push(`Content-Length: ${body.byteLength}`, "Connection: close")
            socket.end(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), Buffer.from(body)]))
          })
          return
        }
        const accept = webSocketAccept(headers.get("sec-websocket-key") ?? "")
        const response = ["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade", `Sec-WebSocket-Accept: ${accept}`]
        for (const [name, value] of Object.entries(answer)) response.push(`${name}: ${value}`)
        socket.write(`${response.join("\r\n")}\r\n\r\n`)
        connection = {
          path: target,
          headers: Object.fromEntries(headers),
          received: [],
          pings: [],
          closes: [],
          socket: writerFor(socket)
        }
        connections.push(connection)
        behaviour.onOpen?.(connection)
        const rest = head.subarray(end + 4)
        if (rest.length > 0) onFrames(rest)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      resolveOrigin({
        port: typeof address === "object" && address !== null ? address.port : 0,
        connections,
        stop: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy()
            server.close(() => done())
          })
      })
    })
  })

export interface ClientRecord {
  readonly socket: WebSocket
  readonly messages: Array<string | Uint8Array>
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>
  readonly texts: () => Array<string>
}

/** Opens a client WebSocket; resolves once open, rejects when the handshake fails. */
export const connectClient = (url: string, options: { readonly protocols?: Array<string>; readonly headers?: Record<string, string> } = {}): Promise<ClientRecord> =>
  new Promise((resolve, reject) => {
    const init: Bun.WebSocketOptions = { protocols: options.protocols ?? [], headers: options.headers ?? {} }
    // Bun's constructor takes options (headers, protocols); the DOM typing only knows protocols.
    const BunWebSocket = WebSocket as unknown as new (url: string, options: Bun.WebSocketOptions) => WebSocket
    const socket = new BunWebSocket(url, init)
    socket.binaryType = "arraybuffer"
    const messages: Array<string | Uint8Array> = []
    let closeWith: (value: { code: number; reason: string }) => void = () => {}
    const closed = new Promise<{ code: number; reason: string }>((done) => (closeWith = done))
    socket.onmessage = (event) => {
      messages.push(typeof event.data === "string" ? event.data : new Uint8Array(event.data as ArrayBuffer))
    }
    socket.onclose = (event) => {
      closeWith({ code: event.code, reason: event.reason })
      reject(new Error(`closed before open: ${event.code}`))
    }
    socket.onopen = () =>
      resolve({
        socket,
        messages,
        closed,
        texts: () => messages.filter((message): message is string => typeof message === "string")
      })
  })
