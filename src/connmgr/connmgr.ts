/**
 * connmgr: owns the client listeners (`http_port`, `https_ports` with certificates from
 * `tls-certs.ts`, `local_ports` unix sockets via `local-socket.ts`). All of them share one
 * request handler, so upgrades and holds behave the same on each. It admits or sheds each
 * request before any other work is done, enforces the header limit with Pushpin's text, and
 * hands admitted requests to the proxy. Most malformed heads, bodies and WebSocket frames never
 * get this far: Bun's parser answers them itself (bare 400/413/431/505, or a close frame with
 * 1002/1007/1009) and closes only that connection. What it lets through but no origin should see
 * (a repeated or invalid Host, a repeated Content-Length) is refused here with 400. Bun.serve has
 * no accept cap, so `client_maxconn` is enforced here on requests in progress plus open
 * WebSockets: past it a client gets 503 + Retry-After at once instead of a reset or a hang.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { AppSettings } from "../config/live.ts"
import type { ListenAddress } from "../config/types.ts"
import { Handler } from "../handler/handler.ts"
import { log } from "../log/log.ts"
import { ListenError, type ListenerSpec, type RunningServer, ServerRuntimeService } from "../platform/server.ts"
import { splitRequestTarget } from "../proxy/headers.ts"
import { Operations } from "../metrics/operations.ts"
import { Proxy, SHED_RETRY_AFTER_SECONDS } from "../proxy/proxy.ts"
import { MemoryReleasePolicy } from "./memory-release.ts"
import { applySocketOwnership, prepareSocketPath } from "./local-socket.ts"
import { certificatesForPort, readCertsDir } from "./tls-certs.ts"

/** Connections with no request in progress are closed after this long (slow-loris guard). */
export const CLIENT_IDLE_TIMEOUT_SECONDS = 120

/** In-flight requests get this long to finish on a graceful stop before connections are cut. */
export const SHUTDOWN_DRAIN_DEADLINE_MS = 5000

/** How often the connection count is compared with its peak (see memory-release.ts). */
const MEMORY_CHECK_INTERVAL_SECONDS = 2

/** WebSocket close code for a server going down. */
const WEBSOCKET_GOING_AWAY = 1001

/** Bun refuses request bodies past this; the proxy streams anything larger than 100 KB. */
export const MAX_REQUEST_BODY_BYTES = 1024 * 1024 * 1024

export interface ConnmgrStats {
  /** Every request a listener received, shed ones included (Pushpin's `request_received`). */
  received: number
  shedMaxconn: number
  headerTooLarge: number
  invalidHost: number
  repeatedContentLength: number
  internalErrors: number
}

/** Approximate size of the request head as it was on the wire. */
export const requestHeadSize = (request: Request, targetLength: number): number => {
  let size = request.method.length + targetLength + 12
  for (const [name, value] of request.headers) size += name.length + value.length + 4
  return size + 2
}

/**
 * `uri-host [":" port]` (RFC 3986 §3.2.2): an IP literal in brackets, or a reg-name/IPv4 address
 * of unreserved, sub-delim and percent-encoded characters. Empty is allowed: RFC 9112 §3.2 has
 * clients send an empty Host when the target has no authority.
 */
const VALID_HOST = /^(?:\[[0-9A-Za-z:._~!$&'()*+,;=-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?$/

/**
 * RFC 9112 §3.2 asks for 400 on a repeated Host or one with an invalid value. Bun does not check
 * either: it joins repeated Host lines into one value with ", " (never a valid host, so one test
 * covers both), and it builds `request.url` from the Host as sent, so a Host holding "/", "?" or
 * "#" would shift the path and query every route match and the origin see. Pushpin 1.36 passes
 * such requests on.
 */
export const isValidHostHeader = (host: string | null): boolean => host === null || VALID_HOST.test(host)

/** The request is refused before it reaches the proxy; its body is unread, so the connection ends. */
const badRequest = (text: string): Response =>
  new Response(text, { status: 400, headers: { "content-type": "text/plain", connection: "close" } })

export class Connmgr extends Context.Service<Connmgr, {
  readonly servers: ReadonlyArray<RunningServer>
  readonly stats: Readonly<ConnmgrStats>
  readonly inFlight: () => number
}>()("pushpin-ts/connmgr/Connmgr") {
  static readonly layer = Layer.effect(
    Connmgr,
    Effect.gen(function*() {
      const settings = yield* AppSettings
      const runtime = yield* ServerRuntimeService
      const proxy = yield* Proxy
      const operations = yield* Operations
      const handler = yield* Handler
      const { clientMaxconn, clientBufferSize } = settings.runner
      const stats: ConnmgrStats = { received: 0, shedMaxconn: 0, headerTooLarge: 0, invalidHost: 0, repeatedContentLength: 0, internalErrors: 0 }
      const servers: Array<RunningServer> = []
      const inFlight = () => {
        let total = 0
        for (const server of servers) total += server.pendingRequests() + server.openWebSockets()
        return total
      }

      const admit = (request: Request, client: Parameters<typeof proxy.handle>[1]): Response | Promise<Response | undefined> => {
        stats.received++
        // pendingRequests already counts this request.
        if (inFlight() > clientMaxconn) {
          stats.shedMaxconn++
          log.write("connmgr", 1, `shed: ${request.method} ${request.url}: client_maxconn (${clientMaxconn}) reached`)
          return new Response("Service Unavailable: connection limit reached.\n", {
            status: 503,
            headers: { "content-type": "text/plain", "retry-after": String(SHED_RETRY_AFTER_SECONDS) }
          })
        }
        const target = splitRequestTarget(request.url)
        if (requestHeadSize(request, target.path.length + target.search.length) > clientBufferSize) {
          stats.headerTooLarge++
          return badRequest(`Request header size exceeded limit of ${clientBufferSize} bytes.\n`)
        }
        if (!isValidHostHeader(request.headers.get("host"))) {
          stats.invalidHost++
          log.write("connmgr", 2, `bad request: invalid Host header ${JSON.stringify(request.headers.get("host"))}`)
          return badRequest("Invalid Host header.\n")
        }
        // Bun refuses differing Content-Length values but passes identical repeats on joined
        // ("5, 5"), which no origin request can carry. RFC 9110 §8.6 lets a recipient reject them.
        if (request.headers.get("content-length")?.includes(",") === true) {
          stats.repeatedContentLength++
          log.write("connmgr", 2, `bad request: repeated Content-Length ${JSON.stringify(request.headers.get("content-length"))}`)
          return badRequest("Repeated Content-Length header.\n")
        }
        return proxy.handle(request, client)
      }

      const onError = (error: unknown): Response => {
        stats.internalErrors++
        log.write("connmgr", 0, `internal error while handling a request: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
        return new Response("Internal Server Error\n", { status: 500, headers: { "content-type": "text/plain" } })
      }

      const listen = (listener: ListenerSpec, address: string) =>
        Effect.acquireRelease(
          Effect.try({
            try: () =>
              runtime.serve({
                listener,
                handler: admit,
                idleTimeoutSeconds: CLIENT_IDLE_TIMEOUT_SECONDS,
                maxRequestBodyBytes: MAX_REQUEST_BODY_BYTES,
                onError
              }),
            catch: (cause) => new ListenError({ address, reason: cause instanceof Error ? cause.message : String(cause) })
          }),
          // Whatever the graceful stop below left open is cut here.
          (server) => Effect.promise(() => server.stop(true))
        )
      const tcpAddress = (address: ListenAddress) => `${address.host}:${address.port}`

      /**
       * Graceful stop, in order: readiness turns false, listeners stop accepting, held requests
       * are answered (streams end, response holds get their timeout response), WebSockets get a
       * 1001 close, and requests still in flight to origins get until the deadline.
       */
      const drain = Effect.promise(async () => {
        operations.markStopping()
        const drained = Promise.all(servers.map((server) => server.stop(false)))
        const ended = handler.endHeldSessions()
        for (const server of servers) server.closeWebSockets(WEBSOCKET_GOING_AWAY, "Server shutting down")
        const deadline = new Promise<"deadline">((resolve) => setTimeout(() => resolve("deadline"), SHUTDOWN_DRAIN_DEADLINE_MS).unref())
        const outcome = await Promise.race([drained, deadline])
        log.write("connmgr", 2, `stop: ${ended} held connection(s) ended${outcome === "deadline" ? `; requests still in flight after ${SHUTDOWN_DRAIN_DEADLINE_MS} ms are cut` : ""}`)
      })

      for (const address of settings.runner.httpPorts) {
        const server = yield* listen({ kind: "tcp", host: address.host, port: address.port }, tcpAddress(address))
        servers.push(server)
        yield* Effect.logInfo(`listening for clients on http://${server.description}`)
      }

      const { httpsPorts } = settings.runner
      if (httpsPorts.length > 0) {
        const certsDir = yield* readCertsDir(settings.runner.certsDir)
        for (const warning of certsDir.warnings) yield* Effect.logWarning(warning)
        const serverNames = certsDir.byServerName.map((identity) => identity.serverName)
        for (const address of httpsPorts) {
          const tls = yield* certificatesForPort(certsDir, address.port)
          const server = yield* listen({ kind: "tcp", host: address.host, port: address.port, tls }, tcpAddress(address))
          servers.push(server)
          yield* Effect.logInfo(
            `listening for clients on https://${server.description} (certificates from ${certsDir.path}` +
              `${serverNames.length === 0 ? "" : `; by server name: ${serverNames.join(", ")}`})`
          )
        }
      }

      for (const local of settings.runner.localPorts) {
        yield* prepareSocketPath(local.path)
        const server = yield* listen({ kind: "unix", path: local.path }, `unix:${local.path}`)
        servers.push(server)
        yield* applySocketOwnership(local)
        yield* Effect.logInfo(`listening for clients on ${server.description}${local.mode === undefined ? "" : ` (mode ${local.mode.toString(8).padStart(4, "0")})`}`)
      }
      // Added after the listeners, so it runs before their release.
      yield* Effect.addFinalizer(() => drain)

      const memory = new MemoryReleasePolicy()
      const releaseMemoryAfterDrops = Effect.sync(() => {
        const open = inFlight()
        if (!memory.observe(open)) return
        const before = process.memoryUsage().rss
        runtime.releaseMemory()
        log.write("connmgr", 3, `memory: full collection after connections fell to ${open}: RSS ${Math.round(before / 1e6)} MB -> ${Math.round(process.memoryUsage().rss / 1e6)} MB`)
      })
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(Duration.seconds(MEMORY_CHECK_INTERVAL_SECONDS)), releaseMemoryAfterDrops)))
      return Connmgr.of({ servers, stats, inFlight })
    }).pipe(Effect.annotateLogs({ service: "connmgr" }))
  )
}
