/**
 * The typed shape of everything pushpin-ts reads from `pushpin.conf`, the routes file and the
 * runner's command line. Parsers in this folder produce these values; every other service only
 * ever sees these types, never raw INI text.
 */

/** A `[addr:]port` listener spec. `host` is "0.0.0.0" when the spec names only a port. */
export interface ListenAddress {
  readonly host: string
  readonly port: number
}

/**
 * A `local_ports` entry: a unix-socket listener. Pushpin 1.36 took the whole value as the path;
 * 1.37 added `?mode=<octal>&user=&group=`, which is read here too.
 */
export interface LocalPort {
  /** Absolute path; a relative one resolves against the working directory, as Pushpin's does. */
  readonly path: string
  /** Permission bits set on the socket file after it is bound. */
  readonly mode: number | undefined
  /** Owner set on the socket file after it is bound: a user name or a numeric uid. */
  readonly user: string | undefined
  /** Group set on the socket file after it is bound: a group name or a numeric gid. */
  readonly group: string | undefined
}

/** Pushpin log levels: 0 error, 1 warn, 2 info, 3 debug, 4 trace. */
export type LogLevelNumber = 0 | 1 | 2 | 3 | 4

/** `log_level` / `--loglevel`: `N` or `N,service:N,...`. */
export interface LogLevelSpec {
  readonly level: LogLevelNumber
  readonly perService: ReadonlyMap<string, LogLevelNumber>
}

/** `sig_key` / route `sig_key`: where Grip-Sig signing material comes from. */
export type SigningKey =
  | { readonly kind: "secret"; readonly secret: Uint8Array }
  | { readonly kind: "pem"; readonly algorithm: "ES256" | "RS256"; readonly pem: string }

/** `x_forwarded_for` rules: `truncate:N` keeps the last N received entries, `append` adds the peer. */
export interface XForwardedForRules {
  readonly truncate: number | undefined
  readonly append: boolean
}

export type SetXForwardedProtocol = "none" | "proto-only" | "true"

export interface GlobalSettings {
  readonly include: string | undefined
  readonly rundir: string
  readonly libdir: string
  readonly ipcPrefix: string
  readonly portOffset: number
  readonly statsConnectionTtl: number
  readonly statsConnectionSend: boolean
}

export interface RunnerSettings {
  /** `services=` exactly as written (legacy names kept, so the migration log can name them). */
  readonly services: ReadonlyArray<string>
  readonly httpPorts: ReadonlyArray<ListenAddress>
  readonly httpsPorts: ReadonlyArray<ListenAddress>
  readonly localPorts: ReadonlyArray<LocalPort>
  /**
   * Where TLS certificates for `https_ports` are read from: `runner/certs/` next to pushpin.conf
   * (Pushpin's runner passes the same directory to its connmgr), or under the working directory
   * when there is no config file.
   */
  readonly certsDir: string
  readonly logdir: string
  readonly logLevel: LogLevelSpec
  readonly clientBufferSize: number
  readonly clientMaxconn: number
  readonly allowCompression: boolean
}

export interface ProxySettings {
  /** Absolute path (resolved against the directory of pushpin.conf). */
  readonly routesFile: string
  readonly debug: boolean
  readonly autoCrossOrigin: boolean
  readonly acceptXForwardedProtocol: boolean
  readonly setXForwardedProtocol: SetXForwardedProtocol
  readonly xForwardedFor: XForwardedForRules
  readonly xForwardedForTrusted: XForwardedForRules
  readonly origHeadersNeedMark: ReadonlyArray<string>
  readonly acceptPushpinRoute: boolean
  readonly cdnLoop: string | undefined
  readonly logFrom: boolean
  readonly logUserAgent: boolean
  readonly sigIss: string
  /** undefined = no Grip-Sig (Pushpin's fallback when the key is absent or empty). */
  readonly sigKey: SigningKey | undefined
  readonly upstreamKey: SigningKey | undefined
  readonly sockjsUrl: string
  readonly workers: number
  /** Cap on requests in flight through the proxy; defaults to `client_maxconn`. */
  readonly maxOpenRequests: number
  /**
   * pushpin-ts only (`[proxy] origin_max_concurrency`, default 256): requests in flight to one
   * origin at once; more wait in line (bounded by `max_open_requests`), past that 503.
   */
  readonly originMaxConcurrency: number
  readonly statsReportInterval: number
  /** `prometheus_port` as `[addr:]port`, undefined when unset. */
  readonly prometheusPort: ListenAddress | undefined
  readonly prometheusPrefix: string
}

export interface HandlerSettings {
  readonly pushInSpec: string | undefined
  readonly pushInSubSpecs: ReadonlyArray<string>
  readonly pushInSubConnect: boolean
  readonly pushInHttpAddr: string
  /** undefined = no HTTP publish API (Pushpin: port unset). port_offset already applied. */
  readonly pushInHttpPort: number | undefined
  readonly pushInHttpMaxHeadersSize: number
  readonly pushInHttpMaxBodySize: number
  readonly statsSpec: string | undefined
  readonly commandSpec: string | undefined
  /** undefined = unlimited */
  readonly messageRate: number | undefined
  /** undefined = unlimited */
  readonly messageHwm: number | undefined
  readonly messageBlockSize: number | undefined
  readonly messageWait: number
  /** 0 = no dedupe */
  readonly idCacheTtl: number
  readonly updateOnFirstSubscription: boolean
  readonly connectionSubscriptionMax: number
  readonly subscriptionLinger: number
  readonly statsSubscriptionTtl: number
  readonly statsReportInterval: number
  readonly statsFormat: "tnetstring" | "json"
  readonly prometheusPort: ListenAddress | undefined
  readonly prometheusPrefix: string
  readonly shareAll: boolean
}

export interface Settings {
  /** The pushpin.conf that was read, or undefined when running on built-in defaults. */
  readonly configFile: string | undefined
  /** Directory relative paths resolve against (pushpin.conf's directory, or the cwd). */
  readonly configDir: string
  readonly global: GlobalSettings
  readonly runner: RunnerSettings
  readonly proxy: ProxySettings
  readonly handler: HandlerSettings
}

// ---------------------------------------------------------------------------------------------
// Routes

export type Target =
  | {
      readonly kind: "origin"
      /** Host name or IP address (IPv6 without brackets). */
      readonly host: string
      readonly port: number
      readonly ssl: boolean
      readonly untrusted: boolean
      readonly trustConnectHost: boolean
      readonly insecure: boolean
      /** `host=`: Host/URI authority sent to this target instead of the client's. */
      readonly hostHeader: string | undefined
      /** `sub=` implicit subscriptions (repeatable). */
      readonly subscriptions: ReadonlyArray<string>
      readonly overHttp: boolean
      readonly oneEvent: boolean
    }
  | { readonly kind: "test" }
  | { readonly kind: "zhttp" | "zhttpreq"; readonly spec: string }

export interface JsonpOptions {
  readonly mode: "basic" | "extended"
  readonly callbackParam: string
  readonly bodyParam: string | undefined
  readonly defaultCallback: string | undefined
  readonly defaultMethod: string | undefined
}

export interface Route {
  /** Explicit `id=`; undefined when the route has none. */
  readonly id: string | undefined
  /** Pushpin's generated id `domain,proto,ssl,pathbeg` when no explicit id. */
  readonly internalId: string
  /** Exact host (lower-cased) or "*". Undefined for id-only rules (first token contains "="). */
  readonly domain: string | undefined
  readonly proto: "http" | "ws" | undefined
  readonly ssl: boolean | undefined
  readonly pathBeg: string
  readonly sigIss: string | undefined
  readonly sigKey: SigningKey | undefined
  readonly prefix: string
  readonly origHeaders: boolean
  readonly asHost: string | undefined
  readonly pathRem: number
  readonly replaceBeg: string | undefined
  /** `header=name:value` in order; an empty value means "remove the header". */
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly debug: boolean
  readonly autoCrossOrigin: boolean
  readonly jsonp: JsonpOptions
  readonly session: boolean
  readonly sockjs: string | undefined
  readonly sockjsAsPath: string | undefined
  readonly noGrip: boolean
  readonly logLevel: LogLevelNumber | undefined
  readonly targets: ReadonlyArray<Target>
  /** Where the route came from, for messages: `routes:3` or `--route #1`. */
  readonly source: string
}

/** What the proxy asks of the route table for each request. */
export interface RouteQuery {
  /** Host without port, lower-cased. */
  readonly host: string
  /** Percent-encoded path (no query string). */
  readonly path: string
  readonly isWebSocket: boolean
  readonly isTls: boolean
}

export type RouteLookup =
  | { readonly _tag: "Matched"; readonly route: Route }
  /** No rule matched. Pushpin answers 502 "No route for host: <host>". */
  | { readonly _tag: "NoRoute"; readonly host: string }
