/**
 * WebSocket proxying (Pushpin's `WsProxySession`): a client upgrade is answered only once an
 * origin has accepted it, so a refusal (status, headers, body) reaches the client as the origin
 * sent it. After the 101, `WsBridge` relays messages, pings and close codes both ways, and when
 * the origin negotiated GRIP it strips the message prefix, drops unprefixed messages and hands
 * `c:` control messages to the handler's session for the connection.
 *
 * Flow control both ways: while the client's send buffer is full the origin is paused (the
 * outbox holds what one read delivered); while the origin's socket has more than
 * `ORIGIN_BUFFER_HIGH_BYTES` waiting, the client is paused.
 */
import type { Route, Target } from "../config/types.ts"
import type { WsGripSession, WsSessionContext, WsSessionHost } from "../handler/ws-session.ts"
import { log } from "../log/log.ts"
import type { ClientConnection, ClientWebSocket, ClientWebSocketHandler, OriginTransport, OriginTransportListener } from "../platform/server.ts"
import { ClientOutbox, type OutboxDropReason, type OutboxListener, type OutgoingMessage } from "../websocket/client-outbox.ts"
import {
  classifyOriginBinary,
  classifyOriginText,
  type ControlOutgoingMessage,
  decodeControl,
  gripExtensionHeader,
  type MessagePrefix,
  negotiateGrip
} from "../websocket/grip-control.ts"
import { connectOriginWebSocket, OriginConnectError, OriginHandshakeError, type OriginWebSocketHandlers } from "../websocket/origin-client.ts"
import type { OriginSocket, OriginSocketHandshake } from "../websocket/origin-socket.ts"
import { headerTokens } from "../websocket/upgrade-response.ts"

/** Pushpin's answer to an `Upgrade: websocket` request that is not a valid WebSocket handshake. */
export const INVALID_UPGRADE_TEXT =
  'Request contained an Upgrade header with value "websocket" but the request was not a valid WebSocket request.'

/** Client messages stop being read while this much waits to be written to the origin. */
export const ORIGIN_BUFFER_HIGH_BYTES = 256 * 1024

/** Never copied from the origin's 101 into the client's: the runtime writes its own. */
const HANDSHAKE_RESPONSE_HEADERS_DROPPED = [
  "connection",
  "upgrade",
  "sec-websocket-accept",
  "sec-websocket-extensions",
  "content-length",
  "transfer-encoding",
  "keep-alive",
  "date"
] as const

export const isWebSocketUpgrade = (headers: Headers): boolean =>
  headerTokens(headers.get("upgrade")).some((token) => token.toLowerCase() === "websocket")

/** RFC 6455 §4.2.1: GET, a 16-byte base64 key, version 13. */
export const validWebSocketUpgrade = (method: string, headers: Headers): boolean => {
  if (method !== "GET") return false
  if (!headerTokens(headers.get("connection")).some((token) => token.toLowerCase() === "upgrade")) return false
  const key = headers.get("sec-websocket-key")?.trim()
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key)) return false
  return headers.get("sec-websocket-version")?.trim() === "13"
}

export interface WsProxyStats {
  /** Client WebSockets open now through the proxy. */
  open: number
  accepted: number
  rejectedByOrigin: number
  failovers: number
  originErrors: number
  messagesToOrigin: number
  messagesToClient: number
  /** Origin messages without the GRIP prefix, dropped as Pushpin does. */
  droppedUnprefixed: number
  controlMessages: number
  controlErrors: number
  /** Origin or handler messages a slow client lost. */
  droppedToClient: number
  detached: number
  /** WebSocket-over-HTTP requests sent again after a failure. */
  overHttpRetries: number
}

export const makeWsProxyStats = (): WsProxyStats => ({
  open: 0,
  accepted: 0,
  rejectedByOrigin: 0,
  failovers: 0,
  originErrors: 0,
  messagesToOrigin: 0,
  messagesToClient: 0,
  droppedUnprefixed: 0,
  controlMessages: 0,
  controlErrors: 0,
  droppedToClient: 0,
  detached: 0,
  overHttpRetries: 0
})

type OriginTarget = Extract<Target, { kind: "origin" }>

export interface WsConnectRequest {
  readonly target: OriginTarget
  /** Path and query as the origin should see them (route rewrites applied). */
  readonly path: string
  /** Handshake headers after Pushpin's request rules, `grip` offered on GRIP routes. */
  readonly headers: Headers
  readonly route: Route
}

export interface WsBridgeContext {
  readonly connectionId: string
  readonly uri: string
  readonly debug: boolean
}

/** The client side of one bridge, as the runtime calls it. */
class ClientSide implements ClientWebSocketHandler {
  constructor(private readonly bridge: WsBridge) {}
  onOpen(socket: ClientWebSocket): void {
    this.bridge.clientOpened(socket)
  }
  onText(text: string): void {
    this.bridge.clientMessage(text)
  }
  onBinary(data: Uint8Array): void {
    this.bridge.clientMessage(data)
  }
  onPing(data: Uint8Array): void {
    this.bridge.clientControlFrame("ping", data)
  }
  onPong(data: Uint8Array): void {
    this.bridge.clientControlFrame("pong", data)
  }
  onDrain(): void {
    this.bridge.clientDrained()
  }
  onClose(code: number, reason: string): void {
    this.bridge.clientClosed(code, reason)
  }
}

/** The origin side of one bridge, as the origin socket calls it. */
class OriginSide implements OriginWebSocketHandlers {
  constructor(private readonly bridge: WsBridge) {}
  onMessage(...message: ["text", string] | ["binary", Uint8Array]): void {
    if (message[0] === "text") this.bridge.originText(message[1])
    else this.bridge.originBinary(message[1])
  }
  onPing(payload: Uint8Array): void {
    this.bridge.toClient({ type: "ping", content: payload })
  }
  onPong(payload: Uint8Array): void {
    this.bridge.toClient({ type: "pong", content: payload })
  }
  onClose(code: number | undefined, reason: string, wasClean: boolean): void {
    this.bridge.originClosed(code, reason, wasClean)
  }
  onDrain(): void {
    this.bridge.originDrained()
  }
  onError(error: Error): void {
    log.write("proxy", 3, `ws origin error: ${error.message}`)
  }
}

export interface WsBridgeEnvironment {
  readonly stats: WsProxyStats
  readonly openGripSession: (context: Omit<WsSessionContext, "connectionId">, host: WsSessionHost) => WsGripSession
}

/** One proxied WebSocket: client ⇄ origin, with GRIP when negotiated. */
export class WsBridge implements WsSessionHost, OutboxListener {
  readonly clientSide: ClientSide = new ClientSide(this)
  private client: ClientWebSocket | undefined = undefined
  private outbox: ClientOutbox | undefined = undefined
  private origin: OriginSocket | undefined
  private grip: WsGripSession | undefined = undefined
  private detached = false
  /** We started closing the client (or it closed): nothing more is sent to it. */
  private clientClosing = false
  private clientPaused = false

  constructor(
    private readonly environment: WsBridgeEnvironment,
    private readonly context: WsBridgeContext,
    origin: OriginSocket,
    /** Set when GRIP messages are interpreted: the origin's message prefix. */
    private readonly prefix: MessagePrefix | undefined,
    /** Open a handler session (GRIP negotiated, or the target subscribes with `sub=`). */
    private readonly session: { readonly route: Route; readonly implicitChannels: ReadonlyArray<string> } | undefined
  ) {
    this.origin = origin
  }

  clientOpened(socket: ClientWebSocket): void {
    this.client = socket
    this.outbox = new ClientOutbox(socket, this)
    this.environment.stats.open++
    if (this.session !== undefined) {
      const { route, implicitChannels } = this.session
      this.grip = this.environment.openGripSession(
        { route: route.id ?? route.internalId, channelPrefix: route.prefix, uri: this.context.uri },
        this
      )
      for (const channel of implicitChannels) this.grip.subscribeImplicit(channel)
    }
    this.origin?.start(new OriginSide(this))
  }

  clientMessage(message: string | Uint8Array): void {
    const origin = this.origin
    if (this.detached || origin === undefined) return
    if (typeof message === "string") origin.sendText(message)
    else origin.sendBinary(message)
    this.environment.stats.messagesToOrigin++
    if (!this.clientPaused && origin.bufferedAmount > ORIGIN_BUFFER_HIGH_BYTES) {
      this.clientPaused = true
      this.client?.pause()
    }
  }

  clientControlFrame(kind: "ping" | "pong", data: Uint8Array): void {
    if (this.detached || this.origin === undefined) return
    if (kind === "ping") this.origin.ping(data)
    else this.origin.pong(data)
  }

  clientDrained(): void {
    this.outbox?.drain()
  }

  clientClosed(code: number, reason: string): void {
    this.clientClosing = true
    this.environment.stats.open--
    this.outbox?.clear()
    this.grip?.end()
    const origin = this.origin
    this.origin = undefined
    if (origin === undefined) return
    // 1006: the client vanished; 1005: its close frame had no code.
    if (code === 1006) origin.terminate()
    else if (code === 1005) origin.close()
    else origin.close(code, reason)
  }

  originText(text: string): void {
    const prefix = this.prefix
    if (prefix === undefined) return this.relay({ type: "text", content: text })
    const classified = classifyOriginText(text, prefix)
    switch (classified._tag) {
      case "Forward":
        return this.relay({ type: "text", content: classified.content })
      case "Drop":
        return this.dropUnprefixed(classified.reason)
      case "Control":
        return this.control(classified.json)
    }
  }

  originBinary(data: Uint8Array): void {
    const prefix = this.prefix
    if (prefix === undefined) return this.relay({ type: "binary", content: data })
    const classified = classifyOriginBinary(data, prefix)
    if (classified._tag === "Forward") this.relay({ type: "binary", content: classified.content })
    else this.dropUnprefixed(classified.reason)
  }

  originClosed(code: number | undefined, reason: string, wasClean: boolean): void {
    this.origin = undefined
    if (this.detached || this.clientClosing) return
    this.clientClosing = true
    if (!wasClean) {
      this.environment.stats.originErrors++
      this.client?.terminate()
    } else if (code === undefined) this.client?.close()
    else this.client?.close(code, reason)
  }

  originDrained(): void {
    if (!this.clientPaused) return
    this.clientPaused = false
    this.client?.resume()
  }

  /** Origin content (or an origin ping/pong) on its way to the client; never dropped. */
  toClient(message: OutgoingMessage): void {
    if (this.clientClosing || this.outbox === undefined) return
    this.outbox.send(message, false)
    this.environment.stats.messagesToClient++
    this.grip?.sentToClient()
  }

  // WsSessionHost -----------------------------------------------------------------------------

  sendToClient(message: ControlOutgoingMessage, droppable: boolean): boolean {
    if (this.clientClosing || this.outbox === undefined) return false
    const sent = this.outbox.send(message, droppable)
    if (sent) this.environment.stats.messagesToClient++
    return sent
  }

  closeByPublish(code: number | undefined, reason: string | undefined): void {
    const origin = this.origin
    this.origin = undefined
    origin?.close()
    this.closeClient(code, reason ?? "")
  }

  refreshOrigin(): void {
    this.origin?.refresh?.()
  }

  // OutboxListener ----------------------------------------------------------------------------

  onCongestion(congested: boolean): void {
    if (congested) this.origin?.pause()
    else this.origin?.resume()
  }

  onDrop(message: OutgoingMessage, reason: OutboxDropReason): void {
    this.environment.stats.droppedToClient++
    // A full outbox only refuses handler messages, and the handler's session logs those with
    // their channel; the runtime's buffer overflowing is logged here.
    if (reason !== "outbox-full") {
      log.write("proxy", 1, `drop: ws connection ${this.context.connectionId} ${this.context.uri}: ${message.type} message to client (${reason})`)
    }
  }

  // -------------------------------------------------------------------------------------------

  private relay(message: OutgoingMessage): void {
    this.toClient(message)
  }

  private dropUnprefixed(reason: string): void {
    this.environment.stats.droppedUnprefixed++
    log.write("proxy", 3, `ws connection ${this.context.connectionId}: ${reason}`)
  }

  private control(json: string): void {
    this.environment.stats.controlMessages++
    const decoded = decodeControl(json)
    if (decoded._tag === "Failure") {
      this.environment.stats.controlErrors++
      const error = decoded.failure
      log.write("proxy", 3, `ws connection ${this.context.connectionId}: ${error.message}`)
      const closeCode = error.closeCode
      if (closeCode !== undefined) {
        const origin = this.origin
        this.origin = undefined
        origin?.close()
        this.closeClient(closeCode, this.context.debug ? error.message : "")
      }
      return
    }
    const control = decoded.success
    if (control._tag === "Detach") return this.detach()
    this.grip?.control(control)
  }

  private detach(): void {
    if (this.detached) return
    this.detached = true
    this.environment.stats.detached++
    const origin = this.origin
    this.origin = undefined
    origin?.close()
  }

  private closeClient(code: number | undefined, reason: string): void {
    if (this.clientClosing) return
    this.clientClosing = true
    if (code === undefined) this.client?.close()
    else this.client?.close(code, reason)
  }
}

export interface WsProxyDeps {
  readonly stats: WsProxyStats
  readonly environment: WsBridgeEnvironment
  readonly accessLog: (line: string) => void
  /** WebSocket-over-HTTP targets (`over_http`). */
  readonly connectOverHttp: (request: WsConnectRequest, client: ClientConnection) => Promise<OriginSocketHandshake>
  /** The runtime adapter's byte streams, for WebSocket origins. */
  readonly originTransport: (listener: OriginTransportListener) => OriginTransport
}

let bridgeCounter = 0

/** The client's 101 headers: the origin's, minus what the runtime writes and extensions. */
export const clientUpgradeHeaders = (originHeaders: Headers, clientExtensions: string | undefined): Headers => {
  const headers = new Headers(originHeaders)
  for (const name of HANDSHAKE_RESPONSE_HEADERS_DROPPED) headers.delete(name)
  if (clientExtensions !== undefined) headers.set("sec-websocket-extensions", clientExtensions)
  return headers
}

export type WsConnectOutcome =
  | { readonly _tag: "Handshake"; readonly handshake: OriginSocketHandshake; readonly target: string; readonly implicitChannels: ReadonlyArray<string> }
  | { readonly _tag: "Failed"; readonly status: number; readonly detail: string; readonly target: string | undefined }

/**
 * Tries the route's targets in order: the next one only after a connect failure (refused,
 * unreachable, TLS), as Pushpin fails over.
 */
export const connectToTargets = async (
  deps: WsProxyDeps,
  route: Route,
  client: ClientConnection,
  requestFor: (target: OriginTarget) => WsConnectRequest
): Promise<WsConnectOutcome> => {
  const failures: Array<string> = []
  const lastTarget = route.targets[route.targets.length - 1]
  for (const target of route.targets) {
    if (target.kind !== "origin") continue
    const request = requestFor(target)
    const authority = `${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`
    try {
      const handshake: OriginSocketHandshake = target.overHttp
        ? await deps.connectOverHttp(request, client)
        : await connectOriginWebSocket({
          host: target.host,
          port: target.port,
          tls: target.ssl,
          insecure: target.insecure,
          path: request.path,
          headers: request.headers
        }, deps.originTransport)
      return { _tag: "Handshake", handshake, target: authority, implicitChannels: target.subscriptions }
    } catch (error) {
      if (error instanceof OriginConnectError) {
        failures.push(`${authority} (${error.message})`)
        if (target !== lastTarget) deps.stats.failovers++
        continue
      }
      if (error instanceof OriginHandshakeError && error.reason === "rejection-too-large") {
        return { _tag: "Failed", status: 500, detail: error.message, target: authority }
      }
      const message = error instanceof Error ? error.message : String(error)
      return { _tag: "Failed", status: 502, detail: message, target: authority }
    }
  }
  return { _tag: "Failed", status: 502, detail: `Unable to connect to any targets. Tried: ${failures.join(", ")}`, target: undefined }
}

/**
 * Answers an origin's handshake to the client: the refusal as the origin sent it, or the 101 and
 * a bridge. `undefined` means upgraded.
 */
export const completeUpgrade = (
  deps: WsProxyDeps,
  outcome: Extract<WsConnectOutcome, { _tag: "Handshake" }>,
  route: Route,
  client: ClientConnection,
  context: { readonly uri: string; readonly debug: boolean; readonly logPrefix: string }
): Response | undefined => {
  const { handshake } = outcome
  if (handshake._tag === "Rejected") {
    deps.stats.rejectedByOrigin++
    deps.accessLog(`${context.logPrefix} -> ${outcome.target} code=${handshake.status} ${handshake.body.byteLength}`)
    const headers = new Headers(handshake.headers)
    for (const name of ["connection", "keep-alive", "transfer-encoding", "upgrade", "content-length"]) headers.delete(name)
    return new Response(handshake.body.byteLength === 0 ? null : new Uint8Array(handshake.body), {
      status: handshake.status,
      statusText: handshake.statusText,
      headers
    })
  }
  const negotiated = negotiateGrip(handshake.headers.get("sec-websocket-extensions"), {
    routeGrip: !route.noGrip,
    trustedClient: false
  })
  const prefix = negotiated._tag === "Grip" ? negotiated.prefix : undefined
  if (negotiated._tag === "PassThrough" && negotiated.malformed !== undefined) {
    log.write("proxy", 1, `${context.uri}: ${negotiated.malformed}; relaying messages untouched`)
  }
  const wantsSession = negotiated._tag === "Grip" || outcome.implicitChannels.length > 0
  const bridge = new WsBridge(
    deps.environment,
    { connectionId: `ws-${++bridgeCounter}`, uri: context.uri, debug: context.debug },
    handshake.connection,
    prefix,
    wantsSession ? { route, implicitChannels: outcome.implicitChannels } : undefined
  )
  const clientExtensions = negotiated._tag === "PassThrough" ? negotiated.clientExtensions : undefined
  if (!client.upgrade(clientUpgradeHeaders(handshake.headers, clientExtensions), bridge.clientSide)) {
    handshake.connection.terminate()
    deps.accessLog(`${context.logPrefix} -> ${outcome.target} code=400 (upgrade refused by the runtime)`)
    return new Response(`${INVALID_UPGRADE_TEXT}\n`, { status: 400, headers: { "content-type": "text/plain" } })
  }
  deps.stats.accepted++
  deps.accessLog(`${context.logPrefix} -> ${outcome.target} code=101 0${prefix === undefined ? "" : " grip"}`)
  return undefined
}

/**
 * The proxied request headers made fit for a WebSocket handshake: no content coding to
 * negotiate, and the client's extensions replaced by `grip` on GRIP routes (Pushpin never
 * forwards extensions it could not handle itself).
 */
export const offerGrip = (headers: Headers, routeGrip: boolean): Headers => {
  headers.delete("accept-encoding")
  headers.delete("sec-websocket-extensions")
  if (routeGrip) headers.set("sec-websocket-extensions", gripExtensionHeader())
  return headers
}
