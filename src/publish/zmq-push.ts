/**
 * A minimal ZeroMQ PUSH client (ZMTP 3.0, NULL mechanism) for `pushpin-ts publish` to Pushpin's
 * `push_in_spec`: connect, greet, say READY as PUSH, send one message, close.
 */
import { createConnection, type Socket } from "node:net"
import type { PublishTarget } from "./cli.ts"

const textEncoder = new TextEncoder()
const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(parts)
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true })

export const connectErrorText = (error: unknown): string => {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : ""
  switch (code) {
    case "ECONNREFUSED":
    case "ConnectionRefused":
      return "connection refused"
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "host not found"
    case "ECONNRESET":
    case "ConnectionClosed":
      return "connection closed by the server"
    case "ETIMEDOUT":
      return "connection timed out"
    case "ENOENT":
      return "no such socket file"
    default:
      return error instanceof Error ? error.message : String(error)
  }
}

const ZMQ_TIMEOUT_MS = 10_000

/** ZMTP 3.0 greeting: signature, version 3.0, NULL mechanism, as-client. */
const zmtpGreeting = (): Uint8Array => {
  const greeting = new Uint8Array(64)
  greeting[0] = 0xff
  greeting[9] = 0x7f
  greeting[10] = 3
  greeting[11] = 0
  greeting.set(textEncoder.encode("NULL"), 12)
  return greeting
}

const zmtpFrame = (flags: number, body: Uint8Array): Uint8Array => {
  if (body.length <= 255) return concatBytes([Uint8Array.of(flags, body.length), body])
  const header = new Uint8Array(9)
  header[0] = flags | 0x02
  new DataView(header.buffer).setBigUint64(1, BigInt(body.length))
  return concatBytes([header, body])
}

const zmtpReady = (socketType: string): Uint8Array => {
  const name = textEncoder.encode("Socket-Type")
  const value = textEncoder.encode(socketType)
  const length = new Uint8Array(4)
  new DataView(length.buffer).setUint32(0, value.length)
  return zmtpFrame(0x04, concatBytes([Uint8Array.of(5), textEncoder.encode("READY"), Uint8Array.of(name.length), name, length, value]))
}

/** The peer's READY properties (name → value), or undefined if the command is not READY. */
const readyProperties = (body: Uint8Array): Map<string, string> | undefined => {
  const nameLength = body[0] ?? 0
  if (lenientUtf8.decode(body.subarray(1, 1 + nameLength)) !== "READY") return undefined
  const properties = new Map<string, string>()
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  let at = 1 + nameLength
  while (at < body.length) {
    const keyLength = body[at] ?? 0
    const key = lenientUtf8.decode(body.subarray(at + 1, at + 1 + keyLength))
    at += 1 + keyLength
    if (at + 4 > body.length) break
    const valueLength = view.getUint32(at)
    properties.set(key.toLowerCase(), lenientUtf8.decode(body.subarray(at + 4, at + 4 + valueLength)))
    at += 4 + valueLength
  }
  return properties
}

/**
 * Sends one single-frame message over a ZeroMQ PUSH connection (ZMTP 3, NULL security), then
 * closes gracefully so the peer reads it before the end of the stream.
 */
export const publishZmq = (target: Extract<PublishTarget, { _tag: "Zmq" }>, timeoutMs = ZMQ_TIMEOUT_MS): Promise<string | undefined> =>
  new Promise((resolve) => {
    const socket: Socket = target.endpoint._tag === "Tcp"
      ? createConnection({ host: target.endpoint.host, port: target.endpoint.port })
      : createConnection({ path: target.endpoint.path })
    let settled = false
    let sent = false
    const finish = (error: string | undefined) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(error)
    }
    const timer = setTimeout(() => finish(sent ? undefined : `timed out publishing to ${target.spec}`), timeoutMs)
    let buffer: Uint8Array = new Uint8Array(0)
    let greeted = false

    socket.on("connect", () => {
      socket.write(zmtpGreeting())
      socket.write(zmtpReady("PUSH"))
    })
    socket.on("error", (error) => finish(sent ? undefined : `can't publish to ${target.spec}: ${connectErrorText(error)}`))
    socket.on("close", () => finish(sent ? undefined : `can't publish to ${target.spec}: connection closed by the peer`))
    socket.on("data", (chunk: Buffer) => {
      if (sent) return
      buffer = concatBytes([buffer, chunk])
      if (!greeted) {
        if (buffer.length < 64) {
          if (buffer[0] !== undefined && buffer[0] !== 0xff) finish(`${target.spec} is not a ZeroMQ endpoint`)
          return
        }
        if (buffer[0] !== 0xff || buffer[9] !== 0x7f) return finish(`${target.spec} is not a ZeroMQ endpoint`)
        if ((buffer[10] ?? 0) < 3) return finish(`${target.spec} speaks ZMTP ${buffer[10] ?? 0}, not 3`)
        const mechanism = lenientUtf8.decode(buffer.subarray(12, 32)).replace(/\0+$/, "")
        if (mechanism !== "NULL") return finish(`${target.spec} wants ${mechanism} security, which is not supported`)
        greeted = true
        buffer = buffer.slice(64)
      }
      while (buffer.length >= 2) {
        const flags = buffer[0] ?? 0
        const long = (flags & 0x02) !== 0
        const headerLength = long ? 9 : 2
        if (buffer.length < headerLength) return
        const size = long ? Number(new DataView(buffer.buffer, buffer.byteOffset + 1, 8).getBigUint64(0)) : (buffer[1] ?? 0)
        if (buffer.length < headerLength + size) return
        const body = buffer.slice(headerLength, headerLength + size)
        buffer = buffer.slice(headerLength + size)
        if ((flags & 0x04) === 0) continue
        const name = lenientUtf8.decode(body.subarray(1, 1 + (body[0] ?? 0)))
        if (name === "ERROR") return finish(`${target.spec} refused the connection: ${lenientUtf8.decode(body.subarray(7))}`)
        const properties = readyProperties(body)
        if (properties === undefined) continue
        const peerType = properties.get("socket-type") ?? ""
        if (peerType !== "PULL") return finish(`${target.spec} is a ${peerType === "" ? "ZeroMQ" : peerType} socket, not PULL`)
        sent = true
        socket.end(zmtpFrame(0x00, target.message))
        // Done once the peer has read it and closed its side ("close" → finish(undefined)).
        return
      }
    })
  })

