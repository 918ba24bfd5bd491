/** What a configuration resolved to, for `pushpin-ts check`. */
import { mapServices } from "./services.ts"
import { BUILT_IN_NAME } from "./settings.ts"
import { describeSigningKey } from "./signingKey.ts"
import type { ListenAddress, LocalPort, LogLevelSpec, Settings, XForwardedForRules } from "./types.ts"

const formatAddress = (a: ListenAddress): string => `${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`
const formatLocalPort = (p: LocalPort): string => {
  const params = [
    ...(p.mode === undefined ? [] : [`mode=${p.mode.toString(8).padStart(4, "0")}`]),
    ...(p.user === undefined ? [] : [`user=${p.user}`]),
    ...(p.group === undefined ? [] : [`group=${p.group}`])
  ]
  return params.length === 0 ? p.path : `${p.path}?${params.join("&")}`
}
const formatList = (items: ReadonlyArray<string>): string => (items.length === 0 ? "(none)" : items.join(","))
const formatOptional = (value: string | number | undefined, none: string): string => (value === undefined ? none : String(value))
const formatXff = (rules: XForwardedForRules): string =>
  formatList([...(rules.truncate === undefined ? [] : [`truncate:${rules.truncate}`]), ...(rules.append ? ["append"] : [])])
const formatLogLevel = (spec: LogLevelSpec): string =>
  [String(spec.level), ...[...spec.perService].map(([name, level]) => `${name}:${level}`)].join(",")

/** What the configuration resolved to, as `key = value` lines under Pushpin's section names. */
export const describeSettings = (settings: Settings): string => {
  const { global: g, runner, proxy: p, handler: h } = settings
  const sections: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>]> = [
    ["", [
      ["config file", settings.configFile ?? `(none: ${BUILT_IN_NAME})`],
      ["config dir", settings.configDir]
    ]],
    ["global", [
      ["include", g.include ?? "(none)"],
      ["rundir", g.rundir],
      ["libdir", g.libdir],
      ["ipc_prefix", g.ipcPrefix],
      ["port_offset", String(g.portOffset)],
      ["stats_connection_ttl", String(g.statsConnectionTtl)],
      ["stats_connection_send", String(g.statsConnectionSend)]
    ]],
    ["runner", [
      ["services", `${formatList(runner.services)} (${mapServices(runner.services).mapped})`],
      ["http_port", formatList(runner.httpPorts.map(formatAddress))],
      ["https_ports", formatList(runner.httpsPorts.map(formatAddress))],
      ["tls certs dir", runner.certsDir],
      ["local_ports", formatList(runner.localPorts.map(formatLocalPort))],
      ["logdir", runner.logdir],
      ["log_level", formatLogLevel(runner.logLevel)],
      ["client_buffer_size", String(runner.clientBufferSize)],
      ["client_maxconn", String(runner.clientMaxconn)],
      ["allow_compression", String(runner.allowCompression)]
    ]],
    ["proxy", [
      ["routesfile", p.routesFile],
      ["debug", String(p.debug)],
      ["auto_cross_origin", String(p.autoCrossOrigin)],
      ["accept_x_forwarded_protocol", String(p.acceptXForwardedProtocol)],
      ["set_x_forwarded_protocol", p.setXForwardedProtocol],
      ["x_forwarded_for", formatXff(p.xForwardedFor)],
      ["x_forwarded_for_trusted", formatXff(p.xForwardedForTrusted)],
      ["orig_headers_need_mark", formatList(p.origHeadersNeedMark)],
      ["accept_pushpin_route", String(p.acceptPushpinRoute)],
      ["cdn_loop", formatOptional(p.cdnLoop, "(none)")],
      ["log_from", String(p.logFrom)],
      ["log_user_agent", String(p.logUserAgent)],
      ["sig_iss", p.sigIss],
      ["sig_key", p.sigKey === undefined ? "(none: requests are not signed)" : describeSigningKey(p.sigKey)],
      ["upstream_key", describeSigningKey(p.upstreamKey)],
      ["sockjs_url", p.sockjsUrl],
      ["workers", String(p.workers)],
      ["max_open_requests", String(p.maxOpenRequests)],
      ["origin_max_concurrency", String(p.originMaxConcurrency)],
      ["stats_report_interval", String(p.statsReportInterval)],
      ["prometheus_port", p.prometheusPort === undefined ? "(none)" : formatAddress(p.prometheusPort)],
      ["prometheus_prefix", p.prometheusPrefix]
    ]],
    ["handler", [
      ["push_in_spec", formatOptional(h.pushInSpec, "(none)")],
      ["push_in_sub_specs", formatList(h.pushInSubSpecs)],
      ["push_in_sub_connect", String(h.pushInSubConnect)],
      ["push_in_http", h.pushInHttpPort === undefined ? "(off)" : formatAddress({ host: h.pushInHttpAddr, port: h.pushInHttpPort })],
      ["push_in_http_max_headers_size", String(h.pushInHttpMaxHeadersSize)],
      ["push_in_http_max_body_size", String(h.pushInHttpMaxBodySize)],
      ["stats_spec", formatOptional(h.statsSpec, "(none)")],
      ["command_spec", formatOptional(h.commandSpec, "(none)")],
      ["message_rate", formatOptional(h.messageRate, "(unlimited)")],
      ["message_hwm", formatOptional(h.messageHwm, "(unlimited)")],
      ["message_block_size", formatOptional(h.messageBlockSize, "(off)")],
      ["message_wait", String(h.messageWait)],
      ["id_cache_ttl", h.idCacheTtl === 0 ? "0 (no dedupe)" : String(h.idCacheTtl)],
      ["update_on_first_subscription", String(h.updateOnFirstSubscription)],
      ["connection_subscription_max", String(h.connectionSubscriptionMax)],
      ["subscription_linger", String(h.subscriptionLinger)],
      ["stats_subscription_ttl", String(h.statsSubscriptionTtl)],
      ["stats_report_interval", String(h.statsReportInterval)],
      ["stats_format", h.statsFormat],
      ["prometheus_port", h.prometheusPort === undefined ? "(none)" : formatAddress(h.prometheusPort)],
      ["prometheus_prefix", h.prometheusPrefix],
      ["share_all", String(h.shareAll)]
    ]]
  ]
  return sections
    .map(([name, lines]) => [...(name === "" ? [] : [`[${name}]`]), ...lines.map(([k, v]) => `${k} = ${v}`)].join("\n"))
    .join("\n\n") + "\n"
}
