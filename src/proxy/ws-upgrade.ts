/**
 * The proxy's entry for WebSocket upgrades: checks the handshake, picks the socket on the other
 * side (the test route, or the route's origins through `ws-proxy.ts`, by raw TCP/TLS or
 * WebSocket-over-HTTP), and answers with the origin's 101 (bridged) or its refusal.
 */
import type { ProxySettings, Route } from "../config/types.ts"
import type { GripSigner } from "../grip/jwt.ts"
import type { WsGripSession, WsSessionContext, WsSessionHost } from "../handler/ws-session.ts"
import type { ClientConnection, ServerRuntime } from "../platform/server.ts"
import { originRequestHeaders, rewritePath, textResponse } from "./headers.ts"
import { testRoutePath } from "./test-route.ts"
import { connectTestWebSocket } from "./test-websocket.ts"
import { makeOverHttpConnector } from "./ws-over-http.ts"
import {
  completeUpgrade,
  connectToTargets,
  INVALID_UPGRADE_TEXT,
  makeWsProxyStats,
  offerGrip,
  validWebSocketUpgrade,
  type WsConnectOutcome,
  type WsProxyDeps
} from "./ws-proxy.ts"

/** What the proxy already worked out about the request. */
export interface UpgradeFacts {
  readonly url: { readonly path: string; readonly search: string }
  readonly hostHeader: string
  readonly uri: string
  readonly isTls: boolean
}

/** What the upgrade entry shares with the rest of the proxy. */
export interface UpgradeEnvironment {
  readonly settings: ProxySettings
  readonly signerFor: (route: Route) => GripSigner | undefined
  readonly accessLog: (line: string) => void
  /** Pushpin's 502 text (with the detail under `debug`), access-logged. */
  readonly badGateway: (route: Route, uri: string, method: string, detail: string, target?: string) => Response
  readonly countOriginError: () => void
  readonly openGripSession: (context: Omit<WsSessionContext, "connectionId">, host: WsSessionHost) => WsGripSession
  readonly runtime: Pick<ServerRuntime, "fetchOrigin" | "originTransport">
}

export const makeUpgradeHandler = (environment: UpgradeEnvironment) => {
  const { settings, signerFor, accessLog, badGateway } = environment
  const webSocketStats = makeWsProxyStats()
  const webSocketDeps: WsProxyDeps = {
    stats: webSocketStats,
    environment: { stats: webSocketStats, openGripSession: environment.openGripSession },
    accessLog,
    originTransport: environment.runtime.originTransport,
    connectOverHttp: makeOverHttpConnector({
      fetchOrigin: environment.runtime.fetchOrigin,
      gripSig: (request) => signerFor(request.route)?.current(),
      onRetry: () => {
        webSocketStats.overHttpRetries++
      }
    })
  }

  const handleUpgrade = async (request: Request, client: ClientConnection, route: Route, facts: UpgradeFacts): Promise<Response | undefined> => {
    const { url, hostHeader, uri, isTls } = facts
    const logPrefix = `GET ${uri}${route.id === undefined ? "" : ` route=${route.id}`}`
    if (!validWebSocketUpgrade(request.method, request.headers)) {
      accessLog(`${logPrefix} code=400 ${INVALID_UPGRADE_TEXT.length + 1}`)
      return textResponse(400, `${INVALID_UPGRADE_TEXT}\n`)
    }
    const debug = settings.debug || route.debug
    const first = route.targets[0]
    if (first === undefined) return badGateway(route, uri, "GET", "Route has no targets.")
    let outcome: WsConnectOutcome
    if (first.kind === "test") {
      const handshake = connectTestWebSocket(testRoutePath(route, url.path), url.search, offerGrip(new Headers(), !route.noGrip))
      outcome = { _tag: "Handshake", handshake, target: "test", implicitChannels: [] }
    } else if (first.kind !== "origin") {
      return badGateway(route, uri, "GET", `Target type ${first.kind}/ is not supported by pushpin-ts.`)
    } else {
      client.keepOpen()
      outcome = await connectToTargets(webSocketDeps, route, client, (target) => ({
        target,
        route,
        path: rewritePath(url.path, route) + url.search,
        headers: offerGrip(
          originRequestHeaders(request.headers, {
            route,
            proxy: settings,
            peerAddress: () => client.remoteAddress,
            scheme: isTls ? "wss" : "ws",
            host: target.hostHeader ?? route.asHost ?? hostHeader,
            gripSig: signerFor(route)?.current()
          }),
          !route.noGrip
        )
      }))
    }
    if (outcome._tag === "Failed") {
      environment.countOriginError()
      if (outcome.status === 500) {
        accessLog(`${logPrefix} -> ${outcome.target ?? "?"} code=500`)
        return textResponse(500, `${outcome.detail}\n`)
      }
      return badGateway(route, uri, "GET", outcome.detail, outcome.target)
    }
    return completeUpgrade(webSocketDeps, outcome, route, client, { uri, debug, logPrefix })
  }

  return { handleUpgrade, webSocketStats } as const
}
