/**
 * The proxy: picks a route, rewrites the request as Pushpin does, forwards it to the first
 * target that accepts a connection, and either streams the origin's answer back or hands a
 * GRIP answer to the handler. WebSocket upgrades go to `ws-upgrade.ts`.
 *
 * Everything in `handle` runs per request, so it is plain async code; Effect builds the
 * service (settings, routes, handler, stats) and owns its lifetime.
 */
import { Context, Effect, Layer } from "effect"
import type { ProxySettings, Route, Target } from "../config/types.ts"
import { AppSettings, LiveRoutes } from "../config/live.ts"
import type { RouteTable } from "../config/routes.ts"
import { GripSigner } from "../grip/jwt.ts"
import { Handler, MAX_GRIP_INSTRUCT_BODY_BYTES } from "../handler/handler.ts"
import type { LastId, LinkRequest, SessionOrigin } from "../handler/session-origin.ts"
import { log } from "../log/log.ts"
import { type ClientConnection, type ServerRuntime, ServerRuntimeService } from "../platform/server.ts"
import { clientResponseHeaders, isGripResponse, originRequestHeaders, rewritePath, splitRequestTarget, textResponse } from "./headers.ts"
import { OriginGate } from "./origin-gate.ts"
import { applyAutoCors } from "./cors.ts"
import { errorCode, NEVER_REACHED_ORIGIN_CODES } from "./connect-errors.ts"
import { parseJsonpRequest, wrapProxiedResponse, type JsonpContext } from "./jsonp.ts"
import { answerTestRoute, testRoutePath } from "./test-route.ts"
import { WEBSOCKET_EVENTS_CONTENT_TYPE } from "../websocket/events.ts"
import { isWebSocketUpgrade, type WsProxyStats } from "./ws-proxy.ts"
import { makeUpgradeHandler } from "./ws-upgrade.ts"

/** Request bodies up to this size are kept so a failed connect can be retried on the next target. */
export const MAX_REPLAYABLE_BODY_BYTES = 100_000

/** Seconds a shed client is told to wait before retrying. */
export const SHED_RETRY_AFTER_SECONDS = 1

export interface ProxyStats {
  requests: number
  originErrors: number
  failovers: number
  shedOriginQueueFull: number
  gripHandoffs: number
}

type OriginTarget = Extract<Target, { kind: "origin" }>

type RequestBody = Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | undefined

const NO_LAST_IDS: ReadonlyArray<LastId> = []


/**
 * Errors that mean "this target never got the request": safe to try the next one. A connection
 * Bun's fetch found closed before it wrote anything counts too (failover only, never a retry).
 */
const CONNECT_ERROR_CODES: ReadonlySet<string> = new Set([...NEVER_REACHED_ORIGIN_CODES, "ConnectionClosed"])

const describeError = (error: unknown): string => {
  const code = errorCode(error)
  if (code === "ECONNREFUSED" || code === "ConnectionRefused") return "connection refused"
  if (code === "ENOTFOUND") return "host not found"
  return error instanceof Error ? error.message : String(error)
}

const targetAuthority = (target: OriginTarget): string =>
  `${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`

const hostWithoutPort = (host: string): string => {
  if (host.startsWith("[")) {
    const end = host.indexOf("]")
    return (end > 0 ? host.slice(1, end) : host).toLowerCase()
  }
  const colon = host.indexOf(":")
  return (colon >= 0 ? host.slice(0, colon) : host).toLowerCase()
}

const readBodyUpTo = async (body: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array<ArrayBuffer> | undefined> => {
  const chunks: Array<Uint8Array> = []
  let size = 0
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > limit) {
      await reader.cancel()
      return undefined
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks, size)
}

export class Proxy extends Context.Service<Proxy, {
  /** `undefined`: the request was upgraded to a WebSocket. */
  readonly handle: (request: Request, client: ClientConnection) => Promise<Response | undefined>
  readonly stats: Readonly<ProxyStats>
  readonly webSocketStats: Readonly<WsProxyStats>
  readonly gates: ReadonlyMap<string, OriginGate>
}>()("pushpin-ts/proxy/Proxy") {
  static readonly layer = Layer.effect(
    Proxy,
    Effect.gen(function*() {
      const settings = yield* AppSettings
      const routes = yield* LiveRoutes
      const handler = yield* Handler
      const runtime = yield* ServerRuntimeService
      return makeProxy(settings.proxy, routes.current, handler, runtime)
    })
  )
}

interface OriginEngine<Facts> {
  readonly serveRoute: (request: Request, client: ClientConnection, route: Route, facts: Facts, lastIds: ReadonlyArray<LastId>) => Promise<Response>
  readonly fetchLink: (route: Route, facts: Facts, client: ClientConnection, link: LinkRequest) => Promise<Response>
}

/**
 * What a held session may ask of the origin later: a retry, next links, the gone link. A class,
 * not closures: one of these lives as long as each held connection, and there are many.
 */
class HeldRequestOrigin<Facts extends { readonly uri: string }> implements SessionOrigin {
  constructor(
    private readonly engine: OriginEngine<Facts>,
    private readonly request: Request,
    private readonly client: ClientConnection,
    private readonly route: Route,
    private readonly facts: Facts
  ) {}

  get requestUri(): string {
    return this.facts.uri
  }

  retry(lastIds: ReadonlyArray<LastId>): Promise<Response> {
    return this.engine.serveRoute(this.request, this.client, this.route, this.facts, lastIds)
  }

  fetchLink(link: LinkRequest): Promise<Response> {
    return this.engine.fetchLink(this.route, this.facts, this.client, link)
  }
}

export const makeProxy = (
  settings: ProxySettings,
  currentRoutes: () => RouteTable,
  handler: Pick<Context.Service.Shape<typeof Handler>, "accept" | "openWebSocket">,
  runtime: Pick<ServerRuntime, "fetchOrigin" | "originTransport">
) => {
  const acceptGrip = handler.accept
  const stats: ProxyStats = { requests: 0, originErrors: 0, failovers: 0, shedOriginQueueFull: 0, gripHandoffs: 0 }
  const gates = new Map<string, OriginGate>()
  // Keyed by the Route object: a routes reload makes new routes, and their signers go with them.
  const signers = new WeakMap<Route, GripSigner>()
  const defaultSigner = settings.sigKey === undefined ? undefined : new GripSigner(settings.sigIss, settings.sigKey)

  const signerFor = (route: Route): GripSigner | undefined => {
    if (route.noGrip) return undefined
    if (route.sigKey === undefined && route.sigIss === undefined) return defaultSigner
    const key = route.sigKey ?? settings.sigKey
    if (key === undefined) return undefined
    let signer = signers.get(route)
    if (signer === undefined) {
      signer = new GripSigner(route.sigIss ?? settings.sigIss, key)
      signers.set(route, signer)
    }
    return signer
  }

  const gateFor = (target: OriginTarget): OriginGate => {
    const key = targetAuthority(target)
    let gate = gates.get(key)
    if (gate === undefined) {
      gate = new OriginGate({ maxActive: settings.originMaxConcurrency, maxWaiting: settings.maxOpenRequests })
      gates.set(key, gate)
    }
    return gate
  }

  const accessLog = (line: string) => log.write("proxy", 2, line)

  const badGateway = (route: Route | undefined, uri: string, method: string, detail: string, target?: string) => {
    const debug = settings.debug || route?.debug === true
    const body = `Error while proxying to origin.${debug ? `\n${detail}` : ""}\n`
    accessLog(`${method} ${uri}${target === undefined ? "" : ` -> ${target}`} code=502 ${Buffer.byteLength(body)}`)
    return textResponse(502, body)
  }

  const handle = async (request: Request, client: ClientConnection): Promise<Response | undefined> => {
    stats.requests++
    const upgrade = isWebSocketUpgrade(request.headers)
    const url = splitRequestTarget(request.url)
    const hostHeader = request.headers.get("host") ?? "localhost"
    const forwardedProto = settings.acceptXForwardedProtocol
      ? (request.headers.get("x-forwarded-proto") ?? request.headers.get("x-forwarded-protocol"))?.toLowerCase()
      : undefined
    const isTls = client.isTls || forwardedProto === "https" || forwardedProto === "wss"
    const scheme = isTls ? "https" : "http"
    const uri = `${upgrade ? (isTls ? "wss" : "ws") : scheme}://${hostHeader}${url.path}${url.search}`
    const method = request.method
    const table = currentRoutes()

    const requestedRouteId = settings.acceptPushpinRoute ? request.headers.get("pushpin-route") : null
    let route: Route
    const chosen = requestedRouteId === null ? undefined : table.findById(requestedRouteId)
    if (chosen !== undefined) route = chosen
    else {
      const lookup = table.lookup({ host: hostWithoutPort(hostHeader), path: url.path, isWebSocket: upgrade, isTls })
      if (lookup._tag === "NoRoute") {
        const body = `No route for host: ${lookup.host}\n`
        accessLog(`${method} ${uri} code=502 ${Buffer.byteLength(body)}`)
        return textResponse(502, body)
      }
      route = lookup.route
    }
    if (upgrade) return handleUpgrade(request, client, route, { url, hostHeader, uri, isTls })
    let body: RequestBody = undefined
    if (request.body !== null && method !== "GET" && method !== "HEAD") {
      const declared = Number(request.headers.get("content-length") ?? Number.NaN)
      // Kept bodies can be sent again: to the next target on failover, and on GRIP retries.
      body = declared <= MAX_REPLAYABLE_BODY_BYTES ? new Uint8Array(await request.arrayBuffer()) : request.body
    }
    const crossOrigin = settings.autoCrossOrigin || route.autoCrossOrigin
    const jsonp = crossOrigin ? parseJsonpRequest(method, url.search, request.headers, route.jsonp) : undefined
    if (jsonp?._tag === "Invalid") {
      accessLog(`${method} ${uri} code=400 ${jsonp.message.length + 1}`)
      const invalid = textResponse(400, `${jsonp.message}\n`)
      applyAutoCors(request.headers, invalid.headers)
      return invalid
    }
    const facts: RequestFacts = jsonp?._tag === "Jsonp"
      ? {
        url: { path: url.path, search: jsonp.search },
        headers: jsonp.headers,
        hostHeader,
        scheme,
        uri: `${scheme}://${hostHeader}${url.path}${jsonp.search}`,
        method: jsonp.method,
        body: jsonp.body,
        jsonp: jsonp.context
      }
      : { url, headers: request.headers, hostHeader, scheme, uri, method, body, jsonp: undefined }
    const response = await serveRoute(request, client, route, facts, NO_LAST_IDS)
    // A JSON-P answer is a script, not a cross-origin response.
    if (crossOrigin && facts.jsonp === undefined) applyAutoCors(request.headers, response.headers)
    return response
  }

  const { handleUpgrade, webSocketStats } = makeUpgradeHandler({
    settings,
    signerFor,
    accessLog,
    badGateway,
    countOriginError: () => {
      stats.originErrors++
    },
    openGripSession: handler.openWebSocket,
    runtime
  })

  interface RequestFacts {
    readonly url: { readonly path: string; readonly search: string }
    /** The client's headers, or for JSON-P the ones its query describes. */
    readonly headers: Headers
    readonly hostHeader: string
    readonly scheme: "http" | "https"
    readonly uri: string
    readonly method: string
    /** Bytes when small enough to keep (replayable), else the client's stream. */
    readonly body: RequestBody
    /** Set when the client asked for JSON-P: answers are wrapped in the callback. */
    readonly jsonp: JsonpContext | undefined
  }

  /**
   * Sends the client's request to the route's targets and answers it. Called again, with
   * `Grip-Last` ids, when the handler retries a held request (Pushpin's "retry" path).
   */
  const serveRoute = async (
    request: Request,
    client: ClientConnection,
    route: Route,
    facts: RequestFacts,
    lastIds: ReadonlyArray<LastId>
  ): Promise<Response> => {
    const { url, hostHeader, scheme, uri, method, body } = facts
    const routeTag = route.id === undefined ? "" : ` route=${route.id}`
    const first = route.targets[0]
    if (first === undefined) return badGateway(route, uri, method, "Route has no targets.")
    if (first.kind === "test") {
      const answer = answerTestRoute(method, testRoutePath(route, url.path), url.search)
      if (answer._tag === "Hold") {
        // The test route speaks GRIP to the handler exactly as an origin would.
        accessLog(`${method} ${uri} -> test${routeTag} accept`)
        return acceptGrip({
          request: { method, uri, headers: facts.headers, signal: request.signal },
          route,
          response: { status: 200, statusText: "OK", headers: answer.headers, body: answer.body },
          client,
          origin: sessionOrigin(request, client, route, facts),
          jsonp: facts.jsonp
        })
      }
      accessLog(`${method} ${uri} -> test${routeTag} code=${answer.status} ${Buffer.byteLength(answer.body)}`)
      return textResponse(answer.status, answer.body)
    }
    if (first.kind !== "origin") {
      return badGateway(route, uri, method, `Target type ${first.kind}/ is not supported by pushpin-ts.`)
    }

    // Only the gateway may speak WebSocket-over-HTTP to such an origin; a client that sends
    // events itself could pose as any connection.
    if (first.overHttp && (facts.headers.get("content-type") ?? "").split(";")[0] === WEBSOCKET_EVENTS_CONTENT_TYPE) {
      const text = "Client not allowed to send WebSocket events directly.\n"
      accessLog(`${method} ${uri}${routeTag} code=403 ${text.length}`)
      return textResponse(403, text)
    }

    // Slow origins and long responses must not be cut by the connection's idle timer.
    client.keepOpen()

    const outcome = await sendToTargets(route, {
      method,
      path: rewritePath(url.path, route) + url.search,
      body,
      signal: request.signal,
      headersFor: (target) =>
        originRequestHeaders(facts.headers, {
          route,
          proxy: settings,
          peerAddress: () => client.remoteAddress,
          scheme,
          host: target.hostHeader ?? route.asHost ?? hostHeader,
          gripSig: signerFor(route)?.current(),
          gripLast: lastIds
        })
    })
    const retryTag = lastIds === NO_LAST_IDS ? "" : " retry"
    switch (outcome._tag) {
      case "Answered":
        return respond(outcome.upstream, route, {
          method,
          uri,
          authority: outcome.authority,
          routeTag: routeTag + retryTag,
          request,
          client,
          facts
        })
      case "Shed": {
        stats.shedOriginQueueFull++
        log.write("proxy", 1, `shed: ${method} ${uri} -> ${outcome.authority}${routeTag}: origin queue full (${outcome.waiting} waiting, ${outcome.active} active)`)
        const text = "Service Unavailable: too many requests waiting for the origin.\n"
        accessLog(`${method} ${uri} -> ${outcome.authority}${routeTag} code=503 ${text.length}`)
        return textResponse(503, text, { "retry-after": String(SHED_RETRY_AFTER_SECONDS) })
      }
      case "ClientGone":
        // Nobody is left to answer; this is not the origin's failure.
        accessLog(`${method} ${uri} -> ${outcome.authority}${routeTag}${retryTag} error (client went away)`)
        return new Response(null, { status: 499 })
      case "Unreachable":
        stats.originErrors++
        return badGateway(route, uri, method, `Unable to connect to any targets. Tried: ${outcome.failures.join(", ")}`, outcome.failures[0]?.split(" ")[0])
    }
  }

  interface TargetRequest {
    readonly method: string
    /** Path and query as the origin should see them (route rewrites applied). */
    readonly path: string
    readonly body: RequestBody
    readonly signal: AbortSignal
    readonly headersFor: (target: OriginTarget) => Headers
  }

  type TargetOutcome =
    | { readonly _tag: "Answered"; readonly upstream: Response; readonly authority: string }
    | { readonly _tag: "Shed"; readonly authority: string; readonly waiting: number; readonly active: number }
    | { readonly _tag: "ClientGone"; readonly authority: string }
    | { readonly _tag: "Unreachable"; readonly failures: ReadonlyArray<string> }

  /** Tries the route's targets in order; the next one only when this one never got the request. */
  const sendToTargets = async (route: Route, outgoing: TargetRequest): Promise<TargetOutcome> => {
    const failures: Array<string> = []
    const lastTarget = route.targets[route.targets.length - 1]
    for (const target of route.targets) {
      if (target.kind !== "origin") continue
      const authority = targetAuthority(target)
      const gate = gateFor(target)
      const admission = await gate.acquire(outgoing.signal)
      if (admission._tag === "Full") return { _tag: "Shed", authority, waiting: gate.waitingCount, active: gate.activeCount }
      try {
        const upstream = await runtime.fetchOrigin(`${target.ssl ? "https" : "http"}://${authority}${outgoing.path}`, {
          method: outgoing.method,
          headers: outgoing.headersFor(target),
          body: outgoing.body ?? null,
          signal: outgoing.signal,
          insecure: target.insecure
        })
        return { _tag: "Answered", upstream, authority }
      } catch (error) {
        if (outgoing.signal.aborted) return { _tag: "ClientGone", authority }
        failures.push(`${authority} (${describeError(error)})`)
        const replayable = outgoing.body === undefined || outgoing.body instanceof Uint8Array
        if (replayable && CONNECT_ERROR_CODES.has(errorCode(error) ?? "")) {
          if (target !== lastTarget) stats.failovers++
          continue
        }
        break
      } finally {
        admission.release()
      }
    }
    return { _tag: "Unreachable", failures }
  }

  /**
   * A next link on the held request's own scheme, host and port goes through the same route
   * (rewrites, targets, signing), as Pushpin routes it internally; any other URI is fetched as
   * is, still signed with the route's key.
   */
  const fetchLink = async (
    route: Route,
    facts: RequestFacts,
    client: ClientConnection,
    link: LinkRequest
  ): Promise<Response> => {
    const target = new URL(link.uri)
    const current = new URL(facts.uri)
    const routeTag = route.id === undefined ? "" : ` route=${route.id}`
    const sameService = target.protocol === current.protocol && target.host === current.host
    const signer = signerFor(route)
    if (!sameService) {
      const headers = originRequestHeaders(new Headers(), {
        route,
        proxy: settings,
        peerAddress: () => undefined,
        scheme: target.protocol === "https:" ? "https" : "http",
        host: target.host,
        gripSig: signer?.current(),
        gripLast: link.lastIds
      })
      const upstream = await runtime.fetchOrigin(link.uri, { method: link.method, headers, signal: link.signal })
      accessLog(`${link.method} ${link.uri}${routeTag} link code=${upstream.status}`)
      return upstream
    }
    const outcome = await sendToTargets(route, {
      method: link.method,
      path: rewritePath(target.pathname, route) + target.search,
      body: undefined,
      signal: link.signal,
      headersFor: (origin) =>
        originRequestHeaders(new Headers(), {
          route,
          proxy: settings,
          peerAddress: () => client.remoteAddress,
          scheme: facts.scheme,
          host: origin.hostHeader ?? route.asHost ?? facts.hostHeader,
          gripSig: signer?.current(),
          gripLast: link.lastIds
        })
    })
    switch (outcome._tag) {
      case "Answered":
        accessLog(`${link.method} ${link.uri} -> ${outcome.authority}${routeTag} link code=${outcome.upstream.status}`)
        return outcome.upstream
      case "Shed":
        throw new Error(`origin queue full at ${outcome.authority}`)
      case "ClientGone":
        throw new Error("client went away")
      case "Unreachable":
        throw new Error(`Unable to connect to any targets. Tried: ${outcome.failures.join(", ")}`)
    }
  }

  const engine: OriginEngine<RequestFacts> = { serveRoute, fetchLink }
  const sessionOrigin = (request: Request, client: ClientConnection, route: Route, facts: RequestFacts): SessionOrigin =>
    new HeldRequestOrigin(engine, request, client, route, facts)

  interface ExchangeContext {
    readonly method: string
    readonly uri: string
    readonly authority: string
    readonly routeTag: string
    readonly request: Request
    readonly client: ClientConnection
    readonly facts: RequestFacts
  }

  const respond = async (upstream: Response, route: Route, context: ExchangeContext): Promise<Response> => {
    const { method, uri, authority, routeTag } = context
    if (!route.noGrip && isGripResponse(upstream.headers)) {
      if (context.facts.body instanceof ReadableStream) {
        // A held request may have to be sent to the origin again; Pushpin refuses to hold one
        // whose body it did not keep.
        await upstream.body?.cancel()
        const text = "Request too large to accept GRIP instruct.\n"
        accessLog(`${method} ${uri} -> ${authority}${routeTag} code=400 ${text.length}`)
        return textResponse(400, text)
      }
      const body = upstream.body === null ? new Uint8Array(0) : await readBodyUpTo(upstream.body, MAX_GRIP_INSTRUCT_BODY_BYTES)
      if (body === undefined) return badGateway(route, uri, method, "GRIP instruct response too large.", authority)
      stats.gripHandoffs++
      accessLog(`${method} ${uri} -> ${authority}${routeTag} accept`)
      return acceptGrip({
        request: { method, uri, headers: context.facts.headers, signal: context.request.signal },
        route,
        response: { status: upstream.status, statusText: upstream.statusText, headers: upstream.headers, body },
        client: context.client,
        origin: sessionOrigin(context.request, context.client, route, context.facts),
        jsonp: context.facts.jsonp
      })
    }
    const jsonp = context.facts.jsonp
    if (jsonp !== undefined) {
      const body = new Uint8Array(await upstream.arrayBuffer())
      const wrapped = wrapProxiedResponse(jsonp, { status: upstream.status, statusText: upstream.statusText, headers: upstream.headers, body })
      accessLog(`${method} ${uri} -> ${authority}${routeTag} code=200 ${Buffer.byteLength(wrapped.body)} (JSON-P of ${upstream.status})`)
      return new Response(wrapped.body, { status: 200, statusText: "OK", headers: wrapped.headers })
    }
    const headers = clientResponseHeaders(upstream.headers)
    const declaredLength = upstream.headers.get("content-length")
    if (declaredLength !== null || upstream.body === null) {
      accessLog(`${method} ${uri} -> ${authority}${routeTag} code=${upstream.status} ${declaredLength ?? 0}`)
      return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers })
    }
    // Length unknown (chunked): count what actually passes so the access log tells the truth.
    const reader = upstream.body.getReader()
    let sent = 0
    let logged = false
    const finish = (outcome: string) => {
      if (logged) return
      logged = true
      accessLog(`${method} ${uri} -> ${authority}${routeTag} code=${upstream.status} ${sent}${outcome}`)
    }
    const counted = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read()
          if (done) {
            finish("")
            controller.close()
          } else {
            sent += value.byteLength
            controller.enqueue(value)
          }
        } catch (error) {
          finish(` (origin stream failed: ${describeError(error)})`)
          controller.error(error)
        }
      },
      cancel(reason) {
        finish(" (client went away)")
        return reader.cancel(reason)
      }
    }, { highWaterMark: 0 })
    return new Response(counted, { status: upstream.status, statusText: upstream.statusText, headers })
  }

  return { handle, stats, webSocketStats, gates } as const
}
