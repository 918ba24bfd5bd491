/**
 * pushpin.conf → Settings, with Pushpin's search path, `include`, `{libdir}`/`{rundir}`/
 * `{ipc_prefix}` templating, `port_offset` and `--id`.
 *
 * Two kinds of defaults, on purpose:
 * - A config file that leaves a key out gets Pushpin's built-in fallback for that key (what
 *   `settings.value(key, fallback)` returns in proxyapp/handlerapp/runnerapp): no Grip-Sig, no
 *   message rate limit, no id dedupe, no X-Forwarded-Proto. Someone migrating a pushpin.conf
 *   gets the behaviour they had.
 * - No config file at all means the values of the pushpin.conf Pushpin ships: someone running
 *   `pushpin-ts run` bare gets what a fresh Pushpin install does (port 7999, `* test` route,
 *   publish API on 127.0.0.1:5561, message_rate 2500, message_hwm 25000, id_cache_ttl 60,
 *   X-Forwarded-Proto set, Grip-Sig signed with `changeme` so GRIP libraries that look for the
 *   header recognise the proxy). A warning names the well-known key.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname, resolve } from "node:path"
import { Effect, Option, Result } from "effect"
import { type ConfigError, configError, type ConfigWarning, configWarning, displayPath } from "./errors.ts"
import { type ConfigFiles, iniGet, type IniEntry, type IniFile, parseIni } from "./ini.ts"
import { isKnownKey } from "./keys.ts"
import { mapServices } from "./services.ts"
import { type KeyUse, parseSigningKey } from "./signingKey.ts"
import type { ListenAddress, LocalPort, LogLevelSpec, Settings, SigningKey } from "./types.ts"
import * as V from "./values.ts"

export { DEFAULT_ROUTES_TEXT } from "./routes.ts"
export type { ConfigWarning } from "./errors.ts"

export interface LoadSettingsOptions {
  /** `--config`: used as given (relative to cwd); it must exist. */
  readonly configFile?: string | undefined
  readonly cwd: string
  /** `--port`: replaces every configured listener with this one plain-HTTP listener. */
  readonly portOverride?: ListenAddress | undefined
  /** `--id`: instance number for running several instances on one host. */
  readonly id?: number | undefined
  /** Where `internal.conf` lives when the file does not say (`[global] libdir`). */
  readonly libdir?: string | undefined
}

export interface LoadedSettings {
  readonly settings: Settings
  readonly warnings: ReadonlyArray<ConfigWarning>
  /** The files read, as written (no templating). */
  readonly files: ConfigFiles
}

/**
 * Pushpin's search path without its last entries: `examples/config/` only makes sense in
 * Pushpin's source tree, and a system-wide /etc/pushpin/pushpin.conf belongs to an installed
 * Pushpin whose internal wiring we would silently inherit.
 */
export const CONFIG_SEARCH_PATH: ReadonlyArray<string> = ["config/pushpin.conf", "pushpin.conf"]

export const discoverConfigFile = (cwd: string): string | undefined =>
  CONFIG_SEARCH_PATH.map((candidate) => resolve(cwd, candidate)).find((path) => existsSync(path))

const SYSTEM_LIBDIR = "/usr/lib/pushpin"

/** The key values of the pushpin.conf Pushpin ships (examples/config/pushpin.conf, 1.41). */
export const SHIPPED_PUSHPIN_CONF = `[global]
rundir=run
ipc_prefix=pushpin-
port_offset=0
stats_connection_ttl=120
stats_connection_send=true

[runner]
services=connmgr,proxy,handler
http_port=7999
logdir=log
log_level=2
client_buffer_size=8192
client_maxconn=50000
allow_compression=false

[proxy]
routesfile=routes
debug=false
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
x_forwarded_for=
x_forwarded_for_trusted=
orig_headers_need_mark=
accept_pushpin_route=false
cdn_loop=
log_from=false
log_user_agent=false
sig_iss=pushpin
sig_key=changeme
upstream_key=
sockjs_url=http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js

[handler]
push_in_spec=tcp://127.0.0.1:5560
push_in_sub_specs=tcp://127.0.0.1:5562
push_in_sub_connect=false
push_in_http_addr=127.0.0.1
push_in_http_port=5561
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=tcp://127.0.0.1:5563
message_rate=2500
message_hwm=25000
message_wait=5000
id_cache_ttl=60
update_on_first_subscription=true
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
`

export const BUILT_IN_NAME = "built-in defaults"

/**
 * `[proxy] origin_max_concurrency` (pushpin-ts only): requests in flight to one origin at once;
 * the rest wait in line up to max_open_requests. Bun's fetch itself runs at most 256 requests at
 * once per process unless `BUN_CONFIG_MAX_HTTP_REQUESTS` is set when the process starts
 * (measured with Bun 1.4.4: 1 024 requests to a 500 ms origin took 2 s, 0.57 s with the variable
 * at 2048). A higher default would only move the line into Bun, where no metric sees it.
 */
export const DEFAULT_ORIGIN_MAX_CONCURRENCY = 256


// ---------------------------------------------------------------------------------------------
// Templating

interface Vars {
  readonly libdir: string
  readonly rundir: string
  readonly ipcPrefix: string
  readonly portOffset: number
}

const TCP_PORT = /(tcp:\/\/(?:\[[^\]]*\]|[^:/,\s]*):)(\d+)/g

/** Pushpin's Settings::resolveVars: placeholders, then port_offset on every tcp:// port. */
export const resolveVars = (value: string, vars: Vars): string => {
  const out = value
    .replaceAll("{libdir}", vars.libdir)
    .replaceAll("{rundir}", vars.rundir)
    .replaceAll("{ipc_prefix}", vars.ipcPrefix)
  return vars.portOffset === 0 ? out : out.replace(TCP_PORT, (_m, head: string, p: string) => `${head}${Number(p) + vars.portOffset}`)
}

// ---------------------------------------------------------------------------------------------
// Reading keys

interface Located extends IniEntry {
  readonly file: string
}

/** Main file first, then the include (its keys are fallbacks). */
class KeyReader {
  constructor(private readonly layers: ReadonlyArray<IniFile>, private readonly vars: Vars) {}

  entry(section: string, key: string): Located | undefined {
    // keys.ts is the list of keys that exist; reading one it lacks would warn about a key in use.
    if (!isKnownKey(section, key)) throw new Error(`settings.ts reads [${section}] ${key}, which src/config/keys.ts does not list`)
    for (const ini of this.layers) {
      const entry = iniGet(ini, section, key)
      if (entry !== undefined) return { ...entry, file: ini.file, value: resolveVars(entry.value, this.vars) }
    }
    return undefined
  }

  /** An absent key and an empty value both mean the fallback. */
  value<A, B>(section: string, key: string, codec: V.ValueCodec<A>, fallback: B): Effect.Effect<A | B, ConfigError> {
    const entry = this.entry(section, key)
    if (entry === undefined || entry.value === "") return Effect.succeed(fallback)
    return Option.match(codec.decode(entry.value), {
      onNone: () => Effect.fail(invalid(entry, section, key, codec.expected)),
      onSome: (decoded) => Effect.succeed(decoded)
    })
  }

  text<B>(section: string, key: string, fallback: B): string | B {
    const entry = this.entry(section, key)
    return entry === undefined || entry.value === "" ? fallback : entry.value
  }

  signingKey(section: string, key: string, baseDir: string, use: KeyUse): Effect.Effect<SigningKey | undefined, ConfigError> {
    const entry = this.entry(section, key)
    if (entry === undefined) return Effect.succeed(undefined)
    const parsed = parseSigningKey(entry.value, baseDir, use)
    return Result.isSuccess(parsed)
      ? Effect.succeed(parsed.success)
      : Effect.fail(configError(entry.file, entry.line, `[${section}] ${key}: ${parsed.failure}`))
  }
}

const invalid = (entry: Located, section: string, key: string, expected: string): ConfigError =>
  configError(entry.file, entry.line, `[${section}] ${key}: expected ${expected}, got ${JSON.stringify(entry.value)}`)

const readIni = (path: string, name: string): Effect.Effect<IniFile, ConfigError> =>
  Effect.try({
    try: () => readFileSync(path, "utf8"),
    catch: (cause) => configError(name, undefined, `cannot read file (${cause instanceof Error ? cause.message : String(cause)})`)
  }).pipe(Effect.flatMap((text) => parseIni(text, name)))

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * `--id N` replaces ipc_prefix with `N-` and port_offset with N*10, as Pushpin's current (Rust)
 * runner does. The C++ runner of 1.36 used `pN-`. The prefix only has to keep instances apart;
 * matching current Pushpin means tools written against it find the same `{ipc_prefix}` paths.
 */
const PORT_OFFSET_PER_ID = 10

export const loadSettings = Effect.fn("loadSettings")(function*(
  options: LoadSettingsOptions
): Effect.fn.Return<LoadedSettings, ConfigError> {
  const { cwd } = options
  const warnings: Array<ConfigWarning> = []

  let configFile: string | undefined
  if (options.configFile !== undefined) {
    configFile = resolve(cwd, options.configFile)
    if (!existsSync(configFile)) return yield* configError(undefined, undefined, `config file not found: ${options.configFile}`)
  } else {
    configFile = discoverConfigFile(cwd)
  }
  const configName = configFile === undefined ? BUILT_IN_NAME : displayPath(configFile, cwd)
  const main = configFile === undefined
    ? yield* parseIni(SHIPPED_PUSHPIN_CONF, BUILT_IN_NAME)
    : yield* readIni(configFile, configName)
  const configDir = configFile === undefined ? cwd : dirname(configFile)

  // Placeholders come from the main file only: Pushpin reads them before loading the include.
  const raw = (section: string, key: string): (IniEntry & { readonly file: string }) | undefined => {
    const entry = iniGet(main, section, key)
    return entry === undefined || entry.value === "" ? undefined : { ...entry, file: main.file }
  }
  const libdirEntry = raw("global", "libdir")
  const libdir = libdirEntry !== undefined
    ? resolve(configDir, libdirEntry.value)
    : options.libdir ?? (existsSync(SYSTEM_LIBDIR) ? SYSTEM_LIBDIR : configDir)

  let rundir = raw("global", "rundir")?.value
  if (rundir === undefined) {
    const legacy = raw("runner", "rundir")
    if (legacy !== undefined) {
      warnings.push(configWarning(legacy.file, legacy.line, "[runner] rundir is deprecated; put rundir in [global]"))
      rundir = legacy.value
    }
  }

  let ipcPrefix = raw("global", "ipc_prefix")?.value ?? "pushpin-"
  let portOffset = 0
  const portOffsetEntry = raw("global", "port_offset")
  if (portOffsetEntry !== undefined) {
    const decoded = Option.getOrUndefined(V.nonNegativeInt.decode(portOffsetEntry.value))
    if (decoded === undefined) return yield* invalid(portOffsetEntry, "global", "port_offset", V.nonNegativeInt.expected)
    portOffset = decoded
  }
  if (options.id !== undefined) {
    if (!Number.isSafeInteger(options.id) || options.id < 0) {
      return yield* configError(undefined, undefined, `--id: expected a non-negative integer, got ${options.id}`)
    }
    ipcPrefix = `${options.id}-`
    portOffset = options.id * PORT_OFFSET_PER_ID
  }
  const vars: Vars = { libdir, rundir: rundir ?? "run", ipcPrefix, portOffset }

  const layers: Array<IniFile> = [main]
  const includeEntry = raw("global", "include")
  let include: string | undefined
  if (includeEntry !== undefined) {
    // Pushpin rewrites a bare "internal.conf" to the one in libdir.
    const named = includeEntry.value === "internal.conf" ? "{libdir}/internal.conf" : includeEntry.value
    include = resolve(configDir, resolveVars(named, vars))
    if (existsSync(include)) {
      layers.push(yield* readIni(include, displayPath(include, cwd)))
    } else {
      warnings.push(configWarning(
        includeEntry.file,
        includeEntry.line,
        `[global] include: ${include} not found; skipped (it only holds Pushpin's internal wiring)`
      ))
    }
  }

  const r = new KeyReader(layers, vars)

  const global = {
    include,
    rundir: vars.rundir,
    libdir,
    ipcPrefix,
    portOffset,
    statsConnectionTtl: yield* r.value("global", "stats_connection_ttl", V.nonNegativeInt, 120),
    statsConnectionSend: yield* r.value("global", "stats_connection_send", V.boolean, true)
  }

  const servicesEntry = r.entry("runner", "services")
  const services = servicesEntry === undefined ? [] : V.splitList(servicesEntry.value)
  const serviceMap = mapServices(services)
  for (const unknown of serviceMap.warnings) {
    warnings.push(configWarning(servicesEntry?.file, servicesEntry?.line, `[runner] services: ${unknown}`))
  }

  const clientMaxconn = yield* r.value("runner", "client_maxconn", V.nonNegativeInt, 50000)
  let httpPorts = yield* r.value("runner", "http_port", V.listenAddresses, [])
  let httpsPorts = yield* r.value("runner", "https_ports", V.listenAddresses, [])
  if (httpsPorts.some((address) => address.port === 0)) {
    // As Pushpin's runner: the default certificate is named after the port (default_<port>.crt).
    const entry = r.entry("runner", "https_ports")
    return yield* configError(entry?.file, entry?.line, "[runner] https_ports: port 0 is not allowed (the default certificate is named after the port)")
  }
  let localPorts = yield* readLocalPorts(r, cwd, warnings)
  if (options.portOverride !== undefined) {
    httpPorts = [options.portOverride]
    httpsPorts = []
    localPorts = []
  }
  if (httpPorts.length + httpsPorts.length + localPorts.length === 0) {
    return yield* configError(configName, undefined, "no server ports configured: set [runner] http_port (or use --port)")
  }
  const runner = {
    services,
    httpPorts,
    httpsPorts,
    localPorts,
    certsDir: resolve(configDir, "runner", "certs"),
    logdir: r.text("runner", "logdir", "log"),
    logLevel: yield* r.value("runner", "log_level", V.logLevelSpec, { level: 2, perService: new Map() } satisfies LogLevelSpec),
    clientBufferSize: yield* r.value("runner", "client_buffer_size", V.positiveInt, 8192),
    clientMaxconn,
    allowCompression: yield* r.value("runner", "allow_compression", V.boolean, false)
  }

  // Pushpin caps max_open_requests at client_maxconn; unset (or negative) means client_maxconn.
  const maxOpenRequests = yield* r.value("proxy", "max_open_requests", V.integer, -1)
  const proxyPrometheusPort = yield* prometheusPort(r, "proxy", warnings)
  const proxy = {
    routesFile: resolve(configDir, r.text("proxy", "routesfile", "routes")),
    debug: yield* r.value("proxy", "debug", V.boolean, false),
    autoCrossOrigin: yield* r.value("proxy", "auto_cross_origin", V.boolean, false),
    acceptXForwardedProtocol: yield* r.value("proxy", "accept_x_forwarded_protocol", V.boolean, false),
    setXForwardedProtocol: yield* r.value("proxy", "set_x_forwarded_protocol", V.setXForwardedProtocol, "none" as const),
    xForwardedFor: yield* r.value("proxy", "x_forwarded_for", V.xForwardedForRules, V.NO_XFF_RULES),
    xForwardedForTrusted: yield* r.value("proxy", "x_forwarded_for_trusted", V.xForwardedForRules, V.NO_XFF_RULES),
    origHeadersNeedMark: yield* r.value("proxy", "orig_headers_need_mark", V.list, []),
    acceptPushpinRoute: yield* r.value("proxy", "accept_pushpin_route", V.boolean, false),
    cdnLoop: r.text("proxy", "cdn_loop", undefined),
    logFrom: yield* r.value("proxy", "log_from", V.boolean, false),
    logUserAgent: yield* r.value("proxy", "log_user_agent", V.boolean, false),
    sigIss: r.text("proxy", "sig_iss", "pushpin"),
    sigKey: yield* r.signingKey("proxy", "sig_key", configDir, "sign"),
    upstreamKey: yield* r.signingKey("proxy", "upstream_key", configDir, "verify"),
    // Pushpin leaves the SockJS page without a script when this is unset; use the shipped URL.
    sockjsUrl: r.text("proxy", "sockjs_url", "http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js"),
    workers: yield* r.value("proxy", "workers", V.positiveInt, 1),
    maxOpenRequests: maxOpenRequests < 0 ? clientMaxconn : Math.min(maxOpenRequests, clientMaxconn),
    originMaxConcurrency: yield* r.value("proxy", "origin_max_concurrency", V.positiveInt, DEFAULT_ORIGIN_MAX_CONCURRENCY),
    statsReportInterval: yield* r.value("proxy", "stats_report_interval", V.nonNegativeInt, 10),
    prometheusPort: proxyPrometheusPort,
    prometheusPrefix: r.text("proxy", "prometheus_prefix", "")
  }

  // Pushpin treats zero and negative limits as "off".
  const positiveOrUnset = (n: number | undefined) => (n === undefined || n <= 0 ? undefined : n)
  const pushInHttpPort = yield* r.value("handler", "push_in_http_port", V.port, undefined)
  const legacySubSpec = r.text("handler", "push_in_sub_spec", undefined)
  const handler = {
    pushInSpec: r.text("handler", "push_in_spec", undefined),
    pushInSubSpecs: [
      ...(yield* r.value("handler", "push_in_sub_specs", V.list, [])),
      ...(legacySubSpec === undefined ? [] : [legacySubSpec])
    ],
    pushInSubConnect: yield* r.value("handler", "push_in_sub_connect", V.boolean, false),
    // Unset in Pushpin means every interface; an unauthenticated publish API should not be.
    pushInHttpAddr: r.text("handler", "push_in_http_addr", "127.0.0.1"),
    pushInHttpPort: pushInHttpPort === undefined || pushInHttpPort === 0 ? pushInHttpPort : pushInHttpPort + portOffset,
    // Pushpin 1.36 read these under the names without "http_", while its pushpin.conf had them
    // with it; accept both.
    pushInHttpMaxHeadersSize: yield* r.value(
      "handler",
      "push_in_http_max_headers_size",
      V.positiveInt,
      yield* r.value("handler", "push_in_max_headers_size", V.positiveInt, 10000)
    ),
    pushInHttpMaxBodySize: yield* r.value(
      "handler",
      "push_in_http_max_body_size",
      V.positiveInt,
      yield* r.value("handler", "push_in_max_body_size", V.positiveInt, 1000000)
    ),
    statsSpec: r.text("handler", "stats_spec", undefined),
    commandSpec: r.text("handler", "command_spec", undefined),
    messageRate: positiveOrUnset(yield* r.value("handler", "message_rate", V.integer, undefined)),
    messageHwm: positiveOrUnset(yield* r.value("handler", "message_hwm", V.integer, undefined)),
    messageBlockSize: positiveOrUnset(yield* r.value("handler", "message_block_size", V.integer, undefined)),
    messageWait: yield* r.value("handler", "message_wait", V.nonNegativeInt, 5000),
    idCacheTtl: yield* r.value("handler", "id_cache_ttl", V.nonNegativeInt, 0),
    updateOnFirstSubscription: yield* r.value("handler", "update_on_first_subscription", V.boolean, true),
    connectionSubscriptionMax: yield* r.value("handler", "connection_subscription_max", V.nonNegativeInt, 20),
    subscriptionLinger: yield* r.value("handler", "subscription_linger", V.nonNegativeInt, 60),
    statsSubscriptionTtl: yield* r.value("handler", "stats_subscription_ttl", V.nonNegativeInt, 60),
    statsReportInterval: yield* r.value("handler", "stats_report_interval", V.nonNegativeInt, 10),
    statsFormat: yield* r.value("handler", "stats_format", V.statsFormat, "tnetstring" as const),
    prometheusPort: yield* prometheusPort(r, "handler", warnings),
    prometheusPrefix: r.text("handler", "prometheus_prefix", ""),
    shareAll: yield* r.value("handler", "share_all", V.boolean, false)
  }

  for (const ini of layers) {
    for (const [section, keys] of ini.sections) {
      for (const [key, entry] of keys) {
        if (!isKnownKey(section, key)) warnings.push(configWarning(ini.file, entry.line, `unknown key [${section}] ${key}`))
      }
    }
  }

  if (proxy.sigKey?.kind === "secret" && new TextDecoder().decode(proxy.sigKey.secret) === "changeme") {
    const entry = configFile === undefined ? undefined : r.entry("proxy", "sig_key")
    warnings.push(configWarning(
      entry?.file,
      entry?.line,
      configFile === undefined
        ? "no config file: Grip-Sig is signed with Pushpin's example key \"changeme\"; set your own [proxy] sig_key in pushpin.conf"
        : "[proxy] sig_key is Pushpin's example key \"changeme\": anyone can forge Grip-Sig; set your own secret"
    ))
  }

  const settings: Settings = { configFile, configDir, global, runner, proxy, handler }
  return { settings, warnings, files: { main, included: layers[1] } }
})

const readLocalPorts = (
  r: KeyReader,
  cwd: string,
  warnings: Array<ConfigWarning>
): Effect.Effect<ReadonlyArray<LocalPort>, ConfigError> => {
  const entry = r.entry("runner", "local_ports")
  if (entry === undefined) return Effect.succeed([])
  const ports: Array<LocalPort> = []
  for (const item of V.splitList(entry.value)) {
    const parsed = V.parseLocalPort(item)
    if (!parsed.ok) return Effect.fail(configError(entry.file, entry.line, `[runner] local_ports: ${parsed.reason}`))
    for (const name of parsed.ignoredParams) {
      warnings.push(configWarning(entry.file, entry.line, `[runner] local_ports: unknown parameter "${name}" ignored (known: mode, user, group)`))
    }
    ports.push({ ...parsed.port, path: resolve(cwd, parsed.port.path) })
  }
  return Effect.succeed(ports)
}

// Pushpin also takes `ipc://path` here; we serve Prometheus over TCP only.
const prometheusPort = (
  r: KeyReader,
  section: "proxy" | "handler",
  warnings: Array<ConfigWarning>
): Effect.Effect<ListenAddress | undefined, ConfigError> => {
  const entry = r.entry(section, "prometheus_port")
  if (entry?.value.startsWith("ipc://") === true) {
    warnings.push(configWarning(entry.file, entry.line, `[${section}] prometheus_port: ipc:// endpoints are not supported; no Prometheus endpoint`))
    return Effect.succeed(undefined)
  }
  return r.value(section, "prometheus_port", V.listenAddress, undefined)
}
