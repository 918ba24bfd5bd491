/**
 * Every pushpin.conf key any Pushpin generation (1.1x to 1.41 and 2.0-dev) has read, plus the
 * pushpin-ts-only ones, and what each one does here. This table is the one place that knows
 * which keys exist: settings.ts warns about keys missing from it (and refuses to read one that
 * is), and `pushpin-ts check` / the startup migration log explain each key from it.
 *
 * A verdict is worked out from the settings the file produced, not from the text, so it tells
 * what the running program will do (including fallbacks, `--port` and `--route`).
 */
import { mapServices } from "./services.ts"
import { describeSigningKey } from "./signingKey.ts"
import type { ListenAddress, LogLevelSpec, Settings, XForwardedForRules } from "./types.ts"

/** `used`: it changes what pushpin-ts does. `no-effect`: accepted, nothing to do here. */
export type KeyStatus = "used" | "no-effect" | "unsupported"

export interface KeyVerdict {
  readonly status: KeyStatus
  /** `used`: what it became; otherwise why it does nothing, and what happens instead. */
  readonly text: string
}

/** Command-line flags that replace what the file says. */
export interface CommandLineOverrides {
  /** `--port`: one plain-HTTP listener instead of http_port/https_ports/local_ports. */
  readonly port: boolean
  /** `--publish-port`: replaces push_in_http_addr/push_in_http_port. */
  readonly publishPort: boolean
  /** `--route`: the routes file is not read. */
  readonly routes: boolean
  /** `--loglevel`/`--verbose`: replaces log_level. */
  readonly logLevel: boolean
}

export const NO_OVERRIDES: CommandLineOverrides = { port: false, publishPort: false, routes: false, logLevel: false }

export interface KeyContext {
  readonly settings: Settings
  readonly overrides: CommandLineOverrides
  /** The file `[global] include` pulled in (as shown in messages), undefined when none was read. */
  readonly includedFile: string | undefined
}

export interface KeyRule {
  readonly judge: (context: KeyContext) => KeyVerdict
  /** Left out of the file, the key still decides something (its fallback), worth showing. */
  readonly hasFallback: boolean
  /** This name is an older spelling of that key (same setting, same section). */
  readonly olderSpellingOf?: string
}

// ---------------------------------------------------------------------------------------------
// Wording

const formatAddress = (a: ListenAddress): string => `${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`
const formatAddresses = (list: ReadonlyArray<ListenAddress>): string => list.map(formatAddress).join(", ")
const formatXff = (rules: XForwardedForRules): string =>
  [...(rules.truncate === undefined ? [] : [`truncate:${rules.truncate}`]), ...(rules.append ? ["append"] : [])].join(",")
const LEVEL_NAMES = ["error", "warn", "info", "debug", "trace"] as const
const formatLogLevel = (spec: LogLevelSpec): string =>
  [`${spec.level} (${LEVEL_NAMES[spec.level]})`, ...[...spec.perService].map(([name, level]) => `${name}:${level}`)].join(", ")

const PROCESS_WIRING = "ZeroMQ wiring between Pushpin's processes; pushpin-ts is one process"
const NO_IPC = "sets up Pushpin's IPC sockets; pushpin-ts has none"
const NO_STATS =
  "feeds Pushpin's ZeroMQ stats socket, which pushpin-ts does not have; its counters are served as Prometheus metrics (prometheus_port, and GET /metrics on the publish port)"
const prometheusVerdict = (section: { readonly prometheusPort: ListenAddress | undefined; readonly prometheusPrefix: string }): string =>
  section.prometheusPort === undefined
    ? "no Prometheus listener (metrics stay on the control port's GET /metrics)"
    : `Prometheus metrics on ${formatAddress(section.prometheusPort)} (any path; /ready and /live too), names prefixed "${section.prometheusPrefix}"`
const NO_ZMQ_PUBLISH =
  "ZeroMQ publish inputs are not implemented: nothing is bound or connected here; publish over HTTP (push_in_http_port)"

// ---------------------------------------------------------------------------------------------
// Rule builders

const used = (text: (context: KeyContext) => string): KeyRule => ({
  judge: (context) => ({ status: "used", text: text(context) }),
  hasFallback: true
})

const noEffect = (text: string): KeyRule => ({ judge: () => ({ status: "no-effect", text }), hasFallback: false })

const unsupported = (text: string): KeyRule => ({ judge: () => ({ status: "unsupported", text }), hasFallback: false })

/**
 * For a feature pushpin-ts lacks: harmless while the setting asks for nothing (its "off" value,
 * which is what pushpin-ts does anyway), not supported once it asks for something.
 */
const unsupportedUnlessOff = (isOff: (context: KeyContext) => boolean, offText: string, onText: string): KeyRule => ({
  judge: (context) => (isOff(context) ? { status: "no-effect", text: offText } : { status: "unsupported", text: onText }),
  hasFallback: false
})

const olderSpelling = (rule: KeyRule, current: string): KeyRule => ({ ...rule, olderSpellingOf: current })

const wiring = (keys: ReadonlyArray<string>): ReadonlyArray<readonly [string, KeyRule]> =>
  keys.map((key) => [key, noEffect(PROCESS_WIRING)] as const)

const onOff = (on: boolean, yes: string, no: string): string => (on ? yes : no)

// ---------------------------------------------------------------------------------------------
// The table

const GLOBAL: ReadonlyArray<readonly [string, KeyRule]> = [
  ["include", {
    judge: ({ includedFile }) =>
      includedFile === undefined
        ? { status: "no-effect", text: "file not found, skipped (it only holds Pushpin's internal wiring)" }
        : { status: "used", text: `keys missing from this file are read from ${includedFile}` },
    hasFallback: false
  }],
  ["rundir", noEffect("only fills {rundir} in other values; pushpin-ts writes no runtime files (no IPC sockets, no pid files)")],
  ["libdir", used(({ settings }) => `{libdir} is ${settings.global.libdir} (where include looks)`)],
  ["ipc_prefix", noEffect(NO_IPC)],
  ["port_offset", used(({ settings: { global, handler }, overrides }) =>
    overrides.publishPort
      ? "no effect on the publish API: --publish-port sets its port"
      : `${global.portOffset} added to push_in_http_port${handler.pushInHttpPort === undefined ? " (publish API off)" : ` (publish API port ${handler.pushInHttpPort})`}`
  )],
  ["stats_connection_ttl", unsupported(NO_STATS)],
  ["stats_connection_send", unsupported(NO_STATS)]
]

const RUNNER: ReadonlyArray<readonly [string, KeyRule]> = [
  ["services", used(({ settings }) => {
    const mapping = mapServices(settings.runner.services)
    return [`${mapping.mapped}; all in one process`, ...mapping.notes].join("; ")
  })],
  ["http_port", used(({ settings, overrides }) => {
    const listeners = settings.runner.httpPorts
    if (overrides.port) return `replaced by --port: client listener ${formatAddresses(listeners)}`
    return listeners.length === 0 ? "no plain-HTTP client listener" : `client listener${listeners.length > 1 ? "s" : ""} ${formatAddresses(listeners)} (plain HTTP)`
  })],
  ["https_ports", used(({ settings, overrides }) => {
    if (overrides.port) return "replaced by --port: no TLS listener"
    const listeners = settings.runner.httpsPorts
    return listeners.length === 0
      ? "no TLS client listener"
      : `TLS client listener${listeners.length > 1 ? "s" : ""} ${formatAddresses(listeners)}; certificates from ${settings.runner.certsDir} (default_<port> or default, <host> by SNI)`
  })],
  ["local_ports", used(({ settings, overrides }) => {
    if (overrides.port) return "replaced by --port: no unix-socket listener"
    const sockets = settings.runner.localPorts
    return sockets.length === 0
      ? "no unix-socket client listener"
      : `unix-socket client listener${sockets.length > 1 ? "s" : ""} ${sockets.map((socket) => `${socket.path}${socket.mode === undefined ? "" : ` (mode ${socket.mode.toString(8).padStart(4, "0")})`}`).join(", ")}`
  })],
  ["logdir", noEffect("Pushpin's runner kept one log file per process there; pushpin-ts logs to stderr, or to --logfile")],
  ["log_level", used(({ settings, overrides }) =>
    overrides.logLevel ? "replaced by --loglevel/--verbose" : `log level ${formatLogLevel(settings.runner.logLevel)}`
  )],
  ["client_buffer_size", used(({ settings }) => `a request head over ${settings.runner.clientBufferSize} bytes gets 400`)],
  ["client_maxconn", used(({ settings }) =>
    `past ${settings.runner.clientMaxconn} requests in progress plus open WebSockets, clients get 503 with Retry-After`
  )],
  ["allow_compression", unsupportedUnlessOff(
    ({ settings }) => !settings.runner.allowCompression,
    "off; pushpin-ts never compresses client WebSockets",
    "permessage-deflate is not implemented: client WebSockets stay uncompressed"
  )],
  ["mongrel2_bin", noEffect("no Mongrel2: pushpin-ts accepts client connections in-process")],
  ["m2sh_bin", noEffect("no Mongrel2: pushpin-ts accepts client connections in-process")],
  ["condure_bin", noEffect("no separate Condure: pushpin-ts accepts client connections in-process")],
  ["connmgr_bin", noEffect("no separate connmgr: pushpin-ts accepts client connections in-process")],
  ["zurl_bin", noEffect("no zurl: pushpin-ts makes origin requests in-process")],
  ["rundir", noEffect("old place of [global] rundir; pushpin-ts writes no runtime files")]
]

const PROXY: ReadonlyArray<readonly [string, KeyRule]> = [
  ["routesfile", used(({ settings, overrides }) =>
    overrides.routes ? "not read: --route given" : `routes from ${settings.proxy.routesFile} (reloaded on change and SIGHUP)`
  )],
  ["debug", used(({ settings }) =>
    onOff(settings.proxy.debug, "error responses explain what failed, on every route", "error responses carry no detail (per route: debug)")
  )],
  ["auto_cross_origin", used(({ settings }) =>
    onOff(settings.proxy.autoCrossOrigin, "CORS headers and JSON-P on every route", "off (per route: aco)")
  )],
  ["accept_x_forwarded_protocol", used(({ settings }) =>
    onOff(settings.proxy.acceptXForwardedProtocol, "a client's X-Forwarded-Proto: https marks the request as TLS", "a client's X-Forwarded-Proto is not trusted")
  )],
  ["set_x_forwarded_protocol", used(({ settings }) => {
    switch (settings.proxy.setXForwardedProtocol) {
      case "none":
        return "X-Forwarded-Proto is not set"
      case "proto-only":
        return "X-Forwarded-Proto sent to origins for TLS requests"
      case "true":
        return "X-Forwarded-Proto and X-Forwarded-Protocol sent to origins for TLS requests"
    }
  })],
  ["x_forwarded_for", used(({ settings }) => {
    const rules = formatXff(settings.proxy.xForwardedFor)
    return rules === "" ? "X-Forwarded-For passed on as received" : `X-Forwarded-For rules ${rules}`
  })],
  ["x_forwarded_for_trusted", unsupportedUnlessOff(
    ({ settings }) => formatXff(settings.proxy.xForwardedForTrusted) === "",
    "empty; pushpin-ts treats every client as untrusted anyway",
    "trusted clients (upstream_key) are not implemented: every client gets the x_forwarded_for rules"
  )],
  ["orig_headers_need_mark", unsupportedUnlessOff(
    ({ settings }) => settings.proxy.origHeadersNeedMark.length === 0,
    "empty; the route option orig_headers it qualifies is not implemented",
    "the route option orig_headers it qualifies is not implemented: these headers are not treated specially"
  )],
  ["accept_pushpin_route", used(({ settings }) =>
    onOff(settings.proxy.acceptPushpinRoute, "a client's Pushpin-Route header picks the route (then it is removed)", "a client's Pushpin-Route header is ignored")
  )],
  ["cdn_loop", used(({ settings }) =>
    settings.proxy.cdnLoop === undefined ? "nothing added to CDN-Loop" : `"${settings.proxy.cdnLoop}" appended to CDN-Loop`
  )],
  ["log_from", unsupportedUnlessOff(
    ({ settings }) => !settings.proxy.logFrom,
    "off, as pushpin-ts's access log is",
    "access log lines carry no from=<client address>"
  )],
  ["log_user_agent", unsupportedUnlessOff(
    ({ settings }) => !settings.proxy.logUserAgent,
    "off, as pushpin-ts's access log is",
    "access log lines carry no ua=<user agent>"
  )],
  ["sig_iss", used(({ settings }) =>
    `Grip-Sig iss "${settings.proxy.sigIss}"${settings.proxy.sigKey === undefined ? " (unused: no sig_key)" : ""}`
  )],
  ["sig_key", used(({ settings }) =>
    settings.proxy.sigKey === undefined
      ? "no Grip-Sig: requests to origins are not signed"
      : `requests to origins signed with Grip-Sig, ${describeSigningKey(settings.proxy.sigKey)}`
  )],
  ["upstream_key", unsupportedUnlessOff(
    ({ settings }) => settings.proxy.upstreamKey === undefined,
    "empty; no client is trusted as a GRIP proxy, as in pushpin-ts",
    "trusting a GRIP proxy in front is not implemented: every client is untrusted and its Grip-* headers are removed"
  )],
  ["sockjs_url", unsupported("SockJS is not implemented; routes with sockjs= are proxied as plain routes")],
  ["updates_check", noEffect("Pushpin's update check; pushpin-ts never contacts anyone (Pushpin 2.0 dropped it too)")],
  ["organization_name", noEffect("Pushpin's update check; pushpin-ts never contacts anyone (Pushpin 2.0 dropped it too)")],
  ["workers", noEffect("Pushpin's proxy threads; pushpin-ts serves every connection from one event loop")],
  ["max_open_requests", used(({ settings }) =>
    `up to ${settings.proxy.maxOpenRequests} requests wait in line for each busy origin; past that 503 with Retry-After`
  )],
  ["origin_max_concurrency", used(({ settings }) =>
    `pushpin-ts only: ${settings.proxy.originMaxConcurrency} requests in flight to one origin at once`
  )],
  ["stats_report_interval", unsupported(NO_STATS)],
  ["stats_connections_max_ttl", unsupported(NO_STATS)],
  ["prometheus_port", used(({ settings }) => prometheusVerdict(settings.proxy))],
  ["prometheus_prefix", used(({ settings }) => prometheusVerdict(settings.proxy))],
  ["ipc_file_mode", noEffect(NO_IPC)],
  ...wiring([
    "connmgr_in_specs", "connmgr_in_stream_specs", "connmgr_out_specs",
    "connmgr_client_out_specs", "connmgr_client_out_stream_specs", "connmgr_client_in_specs",
    "condure_in_specs", "condure_in_stream_specs", "condure_out_specs",
    "condure_client_out_specs", "condure_client_out_stream_specs", "condure_client_in_specs",
    "m2a_in_specs", "m2a_in_stream_specs", "m2a_out_specs",
    "zurl_out_specs", "zurl_out_stream_specs", "zurl_in_specs",
    "handler_inspect_spec", "handler_accept_spec", "handler_retry_in_spec",
    "handler_ws_control_in_spec", "handler_ws_control_out_spec",
    "handler_ws_control_init_specs", "handler_ws_control_stream_specs",
    "stats_spec", "command_spec",
    "intreq_in_specs", "intreq_in_stream_specs", "intreq_out_specs"
  ])
]

const httpPublishLimit = (bytes: number, what: string) => `publish requests with ${what} over ${bytes} bytes get 400`

const HANDLER: ReadonlyArray<readonly [string, KeyRule]> = [
  ["push_in_spec", unsupportedUnlessOff(({ settings }) => settings.handler.pushInSpec === undefined, "empty", NO_ZMQ_PUBLISH)],
  ["push_in_sub_specs", unsupportedUnlessOff(({ settings }) => settings.handler.pushInSubSpecs.length === 0, "empty", NO_ZMQ_PUBLISH)],
  ["push_in_sub_spec", olderSpelling(
    unsupportedUnlessOff(({ settings }) => settings.handler.pushInSubSpecs.length === 0, "empty", NO_ZMQ_PUBLISH),
    "push_in_sub_specs"
  )],
  ["push_in_sub_connect", unsupportedUnlessOff(
    ({ settings }) => !settings.handler.pushInSubConnect,
    "off; it only shapes the ZeroMQ SUB input, which pushpin-ts does not have",
    NO_ZMQ_PUBLISH
  )],
  ["push_in_http_addr", used(({ settings, overrides }) =>
    `${overrides.publishPort ? "replaced by --publish-port: " : ""}HTTP publish API address ${settings.handler.pushInHttpAddr}` +
    " (pushpin-ts listens on 127.0.0.1 when unset; Pushpin on every interface)"
  )],
  ["push_in_http_port", used(({ settings, overrides }) => {
    const { pushInHttpAddr, pushInHttpPort } = settings.handler
    const replaced = overrides.publishPort ? "replaced by --publish-port: " : ""
    return pushInHttpPort === undefined
      ? `${replaced}no HTTP publish API`
      : `${replaced}HTTP publish API on ${formatAddress({ host: pushInHttpAddr, port: pushInHttpPort })}`
  })],
  ["push_in_http_max_headers_size", used(({ settings }) => httpPublishLimit(settings.handler.pushInHttpMaxHeadersSize, "headers"))],
  ["push_in_http_max_body_size", used(({ settings }) => httpPublishLimit(settings.handler.pushInHttpMaxBodySize, "a body"))],
  // The names Pushpin 1.3x's handler read, while its shipped file used the ones above.
  ["push_in_max_headers_size", olderSpelling(
    used(({ settings }) => httpPublishLimit(settings.handler.pushInHttpMaxHeadersSize, "headers")),
    "push_in_http_max_headers_size"
  )],
  ["push_in_max_body_size", olderSpelling(
    used(({ settings }) => httpPublishLimit(settings.handler.pushInHttpMaxBodySize, "a body")),
    "push_in_http_max_body_size"
  )],
  ["stats_spec", unsupported(NO_STATS)],
  ["command_spec", unsupportedUnlessOff(
    ({ settings }) => settings.handler.commandSpec === undefined,
    "empty",
    "the ZeroMQ command socket is not implemented: nothing is bound; recover is POST /recover on the HTTP publish API"
  )],
  ["message_rate", used(({ settings }) =>
    settings.handler.messageRate === undefined
      ? "deliveries are not rate-limited"
      : `at most ${settings.handler.messageRate} deliveries per second, shared by all routes`
  )],
  ["message_hwm", used(({ settings }) =>
    settings.handler.messageHwm === undefined
      ? "no cap on deliveries waiting for the rate limit"
      : `past ${settings.handler.messageHwm} deliveries waiting per route, more are dropped (and logged)`
  )],
  ["message_block_size", unsupportedUnlessOff(
    ({ settings }) => settings.handler.messageBlockSize === undefined,
    "off",
    "deliveries count 1 each against message_rate and message_hwm, not by size in blocks"
  )],
  ["message_wait", used(({ settings }) => `an item whose prev-id is unseen waits up to ${settings.handler.messageWait} ms`)],
  ["id_cache_ttl", used(({ settings }) =>
    settings.handler.idCacheTtl === 0 ? "no dedupe of published ids" : `published ids remembered ${settings.handler.idCacheTtl} s; repeats dropped`
  )],
  ["update_on_first_subscription", used(({ settings }) =>
    onOff(settings.handler.updateOnFirstSubscription, "a channel's first subscriber makes its sessions re-fetch", "off")
  )],
  ["connection_subscription_max", used(({ settings }) =>
    `${settings.handler.connectionSubscriptionMax} channels per connection; more are ignored`
  )],
  ["subscription_linger", unsupported(NO_STATS)],
  ["stats_subscription_ttl", unsupported(NO_STATS)],
  ["stats_report_interval", unsupported(NO_STATS)],
  ["stats_format", unsupported(NO_STATS)],
  ["prometheus_port", used(({ settings }) => prometheusVerdict(settings.handler))],
  ["prometheus_prefix", used(({ settings }) => prometheusVerdict(settings.handler))],
  ["share_all", unsupportedUnlessOff(
    ({ settings }) => !settings.handler.shareAll,
    "off",
    "request sharing is not implemented: identical requests each go to the origin"
  )],
  ["state_spec", noEffect("Pushpin's external session-state service (dormant in open-source Pushpin)")],
  ["ipc_file_mode", noEffect(NO_IPC)],
  ...wiring([
    "proxy_inspect_spec", "proxy_inspect_specs", "proxy_accept_spec", "proxy_accept_specs",
    "proxy_retry_out_spec", "proxy_retry_out_specs",
    "proxy_ws_control_in_spec", "proxy_ws_control_out_spec",
    "proxy_ws_control_init_specs", "proxy_ws_control_stream_specs",
    "proxy_stats_spec", "proxy_stats_specs", "proxy_command_spec",
    "connmgr_in_stream_specs", "connmgr_out_specs",
    "condure_in_stream_specs", "condure_out_specs",
    "m2a_in_stream_specs", "m2a_out_specs",
    "proxy_intreq_out_specs", "proxy_intreq_out_stream_specs", "proxy_intreq_in_specs"
  ])
]

/** Section → key → rule, in the order `check` lists them. */
export const KEY_RULES: ReadonlyMap<string, ReadonlyMap<string, KeyRule>> = new Map([
  ["global", new Map(GLOBAL)],
  ["runner", new Map(RUNNER)],
  ["proxy", new Map(PROXY)],
  ["handler", new Map(HANDLER)]
])

export const keyRule = (section: string, key: string): KeyRule | undefined => KEY_RULES.get(section)?.get(key)

export const isKnownKey = (section: string, key: string): boolean => keyRule(section, key) !== undefined

/** Keys whose value is a secret: shown as `<hidden>` unless they name a file. */
export const SECRET_KEYS: ReadonlySet<string> = new Set(["proxy/sig_key", "proxy/upstream_key"])
