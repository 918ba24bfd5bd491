/**
 * Metrics and health: one snapshot of every service's counters and gauges, served as Prometheus
 * text on `prometheus_port` (any path, as Pushpin; `[proxy]` and `[handler]` may each name one)
 * and on the control port as `GET /metrics`, next to `/ready` and `/live`.
 *
 * The counters themselves are plain fields the data path increments; nothing here runs per
 * request. A heartbeat fiber beats once a second: it proves the process is not wedged (`/live`)
 * and integrates Pushpin's `connection_minute`.
 */
import { Context, Duration, Effect, Layer } from "effect"
import { AppSettings, LiveRoutes } from "../config/live.ts"
import type { ListenAddress } from "../config/types.ts"
import { Connmgr } from "../connmgr/connmgr.ts"
import { Handler } from "../handler/handler.ts"
import { ListenError, ServerRuntimeService } from "../platform/server.ts"
import { splitRequestTarget } from "../proxy/headers.ts"
import { Proxy } from "../proxy/proxy.ts"
import {
  livenessReport,
  ORIGIN_PROBE_TIMEOUT_MS,
  OriginProber,
  probeTcp,
  readinessReport,
  routeDependencies,
  type HealthReport
} from "./health.ts"
import { Operations } from "./operations.ts"
import { isValidMetricPrefix, PROMETHEUS_CONTENT_TYPE, renderPrometheus, type MetricFamily } from "./prometheus.ts"

const HEARTBEAT_INTERVAL_MS = 1000

/** Scrapers keep their connection between scrapes; idle ones are closed after this long. */
const METRICS_IDLE_TIMEOUT_SECONDS = 30

export class Metrics extends Context.Service<Metrics, {
  readonly families: () => ReadonlyArray<MetricFamily>
  readonly liveness: () => HealthReport
  readonly readiness: () => Promise<HealthReport>
}>()("pushpin-ts/metrics/Metrics") {
  static readonly layer = Layer.effect(
    Metrics,
    Effect.gen(function*() {
      const settings = yield* AppSettings
      const runtime = yield* ServerRuntimeService
      const connmgr = yield* Connmgr
      const proxy = yield* Proxy
      const handler = yield* Handler
      const routes = yield* LiveRoutes
      const operations = yield* Operations
      const startedAt = Date.now()

      let lastBeatAt = Date.now()
      let connectionMinutes = 0
      let eventLoopLagMs = 0
      const beat = Effect.sync(() => {
        const now = Date.now()
        const elapsed = now - lastBeatAt
        eventLoopLagMs = Math.max(0, elapsed - HEARTBEAT_INTERVAL_MS)
        connectionMinutes += (connmgr.inFlight() * elapsed) / 60_000
        lastBeatAt = now
      })
      yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(Duration.millis(HEARTBEAT_INTERVAL_MS)), beat)))

      const families = (): ReadonlyArray<MetricFamily> => collect({ connmgr, proxy, handler, connectionMinutes, eventLoopLagMs, routeReloads: routes.generation(), startedAt })
      const liveness = () => livenessReport(lastBeatAt, Date.now())
      const prober = new OriginProber((origin) => probeTcp(origin, ORIGIN_PROBE_TIMEOUT_MS))
      const readiness = async (): Promise<HealthReport> => {
        if (operations.stopping()) return readinessReport(true, [], new Map())
        const dependencies = routeDependencies(routes.current().routes)
        return readinessReport(false, dependencies, await prober.check(dependencies, Date.now()))
      }

      const prometheusPorts = distinctAddresses([settings.proxy, settings.handler])
      for (const { address, prefix } of prometheusPorts) {
        if (!isValidMetricPrefix(prefix)) {
          return yield* new ListenError({ address: `${address.host}:${address.port} (prometheus)`, reason: `prometheus_prefix "${prefix}" does not make valid metric names` })
        }
      }
      const defaultPrefix = prometheusPorts[0]?.prefix ?? ""
      const endpoints = makeEndpoints(families, liveness, readiness)
      operations.register("/metrics", (request) => endpoints.metrics(request, defaultPrefix))
      operations.register("/live", endpoints.live)
      operations.register("/ready", endpoints.ready)

      for (const { address, prefix } of prometheusPorts) {
        const server = yield* Effect.acquireRelease(
          Effect.try({
            try: () =>
              runtime.serve({
                listener: { kind: "tcp", host: address.host, port: address.port },
                handler: (request) => {
                  const { path } = splitRequestTarget(request.url)
                  if (path === "/live") return endpoints.live()
                  if (path === "/ready") return endpoints.ready()
                  return endpoints.metrics(request, prefix)
                },
                idleTimeoutSeconds: METRICS_IDLE_TIMEOUT_SECONDS,
                maxRequestBodyBytes: 8192,
                onError: () => new Response("Internal Server Error\n", { status: 500, headers: { "content-type": "text/plain" } })
              }),
            catch: (cause) =>
              new ListenError({ address: `${address.host}:${address.port} (prometheus)`, reason: cause instanceof Error ? cause.message : String(cause) })
          }),
          (server) => Effect.promise(() => server.stop(true))
        )
        yield* Effect.logInfo(`prometheus metrics on http://${server.description}/`)
      }
      return Metrics.of({ families, liveness, readiness })
    }).pipe(Effect.annotateLogs({ service: "handler" }))
  )
}

/** `[proxy]` and `[handler]` can both set prometheus_port; the same address is served once. */
const distinctAddresses = (
  sections: ReadonlyArray<{ readonly prometheusPort: ListenAddress | undefined; readonly prometheusPrefix: string }>
): ReadonlyArray<{ readonly address: ListenAddress; readonly prefix: string }> => {
  const seen = new Map<string, { readonly address: ListenAddress; readonly prefix: string }>()
  for (const section of sections) {
    if (section.prometheusPort === undefined) continue
    const key = `${section.prometheusPort.host}:${section.prometheusPort.port}`
    if (!seen.has(key)) seen.set(key, { address: section.prometheusPort, prefix: section.prometheusPrefix })
  }
  return [...seen.values()]
}

const TEXT = { "content-type": "text/plain" }

const healthResponse = (report: HealthReport): Response =>
  new Response(`${report.ok ? "OK" : "FAIL"}\n${report.lines.join("\n")}\n`, {
    status: report.ok ? 200 : 503,
    headers: { ...TEXT, "cache-control": "no-store" }
  })

const makeEndpoints = (
  families: () => ReadonlyArray<MetricFamily>,
  liveness: () => HealthReport,
  readiness: () => Promise<HealthReport>
) => ({
  metrics: (request: Request, prefix: string): Response => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response(`Method not allowed: ${request.method}.\n`, { status: 405, headers: { ...TEXT, allow: "GET, HEAD" } })
    }
    return new Response(renderPrometheus(families(), prefix), { status: 200, headers: { "content-type": PROMETHEUS_CONTENT_TYPE } })
  },
  live: (): Response => healthResponse(liveness()),
  ready: async (): Promise<Response> => healthResponse(await readiness())
})

interface Sources {
  readonly connmgr: Context.Service.Shape<typeof Connmgr>
  readonly proxy: Context.Service.Shape<typeof Proxy>
  readonly handler: Context.Service.Shape<typeof Handler>
  readonly connectionMinutes: number
  readonly eventLoopLagMs: number
  readonly routeReloads: number
  readonly startedAt: number
}

const counter = (name: string, help: string, value: number): MetricFamily => ({ name, type: "counter", help, samples: [{ value }] })
const gauge = (name: string, help: string, value: number): MetricFamily => ({ name, type: "gauge", help, samples: [{ value }] })

/**
 * The first five families are Pushpin's (same names, types and help texts); the rest are
 * pushpin-ts's own, one family per concept with labels for its kinds.
 */
const collect = (sources: Sources): ReadonlyArray<MetricFamily> => {
  const { connmgr, proxy, handler } = sources
  const http = connmgr.servers.reduce((sum, server) => sum + server.pendingRequests(), 0)
  const webSockets = connmgr.servers.reduce((sum, server) => sum + server.openWebSockets(), 0)
  const h = handler.stats
  const ws = proxy.webSocketStats
  let originActive = 0
  let originWaiting = 0
  for (const gate of proxy.gates.values()) {
    originActive += gate.activeCount
    originWaiting += gate.waitingCount
  }
  const memory = process.memoryUsage()
  return [
    counter("request_received", "Number of requests received", connmgr.stats.received),
    gauge("connection_connected", "Number of concurrent connections", http + webSockets),
    counter("connection_minute", "Number of minutes clients have been connected", Math.floor(sources.connectionMinutes)),
    counter("message_received", "Number of messages received by the publish API", h.publishApi.published),
    counter("message_sent", "Number of messages sent to clients", h.holds.delivered + ws.messagesToClient),

    {
      name: "connections",
      type: "gauge",
      help: "Client connections open now, by transport (http counts requests in progress, held ones included)",
      samples: [{ labels: { transport: "http" }, value: http }, { labels: { transport: "websocket" }, value: webSockets }]
    },
    {
      name: "holds",
      type: "gauge",
      help: "Connections the handler holds now, by mode",
      samples: [
        { labels: { mode: "response" }, value: h.holds.responseHolds },
        { labels: { mode: "stream" }, value: h.holds.streamHolds },
        { labels: { mode: "websocket" }, value: h.webSockets.open }
      ]
    },
    gauge("subscriptions", "Channel subscriptions of held connections", h.subscriptions()),
    gauge("channels", "Channels with at least one subscriber", h.channels()),
    gauge("timers", "Entries on the handler's timer wheel (timeouts, keep-alives, retries)", h.timers()),
    counter("publish_rejected", "Publish API requests rejected (bad JSON, invalid format, too large)", h.publishApi.rejected),
    {
      name: "deliveries",
      type: "counter",
      help: "Published messages delivered to clients, by transport",
      samples: [{ labels: { transport: "http" }, value: h.holds.delivered }, { labels: { transport: "websocket" }, value: h.webSockets.delivered }]
    },
    {
      name: "drops",
      type: "counter",
      help: "Messages dropped, by reason (each drop is also logged with connection, route and channel)",
      samples: [
        { labels: { reason: "slow_reader", transport: "http" }, value: h.holds.droppedSlowReader },
        { labels: { reason: "slow_reader", transport: "websocket" }, value: ws.droppedToClient },
        { labels: { reason: "message_hwm" }, value: h.rateLimiter.dropped.hwm },
        { labels: { reason: "rate_queue_full" }, value: h.rateLimiter.dropped["queue full"] },
        { labels: { reason: "duplicate_id" }, value: h.sequencer.dropped.duplicate },
        { labels: { reason: "duplicate_prev_id" }, value: h.sequencer.dropped["duplicate prev-id"] },
        { labels: { reason: "too_many_parked" }, value: h.sequencer.dropped["too many parked"] },
        { labels: { reason: "unprefixed_ws_message" }, value: ws.droppedUnprefixed }
      ]
    },
    {
      name: "sheds",
      type: "counter",
      help: "Requests refused with 503 + Retry-After, by the bound that was reached",
      samples: [
        { labels: { bound: "client_maxconn" }, value: connmgr.stats.shedMaxconn },
        { labels: { bound: "max_open_requests" }, value: proxy.stats.shedOriginQueueFull }
      ]
    },
    {
      name: "queue_depth",
      type: "gauge",
      help: "Work waiting now, by queue",
      samples: [
        { labels: { queue: "origin_wait" }, value: originWaiting },
        { labels: { queue: "rate_limited_deliveries" }, value: h.rateLimiterQueued() },
        { labels: { queue: "parked_publishes" }, value: h.sequencerParked() },
        { labels: { queue: "session_updates" }, value: h.updatesWaiting() }
      ]
    },
    gauge("origin_requests_active", "Requests in flight to origins now", originActive),
    {
      name: "retries",
      type: "counter",
      help: "Requests sent to an origin again, by kind",
      samples: [
        { labels: { kind: "failover" }, value: proxy.stats.failovers + ws.failovers },
        { labels: { kind: "hold_update" }, value: h.holds.retries },
        { labels: { kind: "link_fetch_failure" }, value: h.holds.linkFailures },
        { labels: { kind: "ws_over_http" }, value: ws.overHttpRetries }
      ]
    },
    {
      name: "origin_errors",
      type: "counter",
      help: "Origin requests that failed (502 to the client, or a WebSocket the origin dropped)",
      samples: [{ labels: { transport: "http" }, value: proxy.stats.originErrors }, { labels: { transport: "websocket" }, value: ws.originErrors }]
    },
    counter("grip_handoffs", "Origin responses with GRIP instructions handed to the handler", proxy.stats.gripHandoffs),
    counter("grip_instruct_errors", "Origin responses with GRIP instructions that could not be used", h.instructErrors()),
    counter("hold_timeouts", "Response holds that timed out", h.holds.timedOut),
    {
      name: "bad_requests",
      type: "counter",
      help: "Client requests refused before routing, by reason",
      samples: [
        { labels: { reason: "header_too_large" }, value: connmgr.stats.headerTooLarge },
        { labels: { reason: "invalid_host" }, value: connmgr.stats.invalidHost },
        { labels: { reason: "repeated_content_length" }, value: connmgr.stats.repeatedContentLength }
      ]
    },
    counter("internal_errors", "Requests that hit an internal error (500)", connmgr.stats.internalErrors),
    counter("route_reloads", "Times the routes were reloaded successfully", sources.routeReloads),
    gauge("event_loop_lag_seconds", "How late the last heartbeat ran", sources.eventLoopLagMs / 1000),
    gauge("process_resident_memory_bytes", "Resident set size of the process", memory.rss),
    gauge("process_start_time_seconds", "When the process started, in seconds since the epoch", Math.floor(sources.startedAt / 1000))
  ]
}
