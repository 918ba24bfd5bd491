/**
 * The one pushpin.conf both servers are benchmarked with.
 *
 * `renderPushpinConf` is called once per server start, for pushpin-ts and for Pushpin alike,
 * so both read a file of the same shape with the same values; only the ports and the temp dir
 * differ between starts. It is Debian's /etc/pushpin/pushpin.conf for 1.36 with these changes:
 *
 * - private paths (rundir, logdir, routes, ipc sockets) inside the run's temp dir, and fresh
 *   loopback ports for every listener, so nothing system-wide is touched;
 * - `[handler] message_rate=0` and `message_hwm=0`: delivery rate limiting off (both treat a
 *   value ≤ 0 as "no limit"), so fan-out numbers measure delivery, not Debian's 2500/s cap;
 * - zurl's request/response sockets (`zurl_*_specs`) point at a zurl started privately for
 *   Pushpin; pushpin-ts accepts these wiring keys and has no use for them.
 *
 * Everything else keeps Debian's values, including `client_maxconn=50000`,
 * `client_buffer_size=8192` and `log_level=2` (both write one access-log line per request to a
 * file in the temp dir).
 */

export type IniSections = Readonly<Record<string, Readonly<Record<string, string>>>>

export interface BenchPorts {
  readonly http: number
  readonly publish: number
  readonly pushIn: number
  readonly pushInSub: number
  readonly command: number
}

export interface ConfPaths {
  /** The temp dir of one server start (holds run/, log/, routes). */
  readonly dir: string
  /** Pushpin's internal.conf, when installed (pushpin-ts treats a missing include as empty). */
  readonly internalConf: string
  readonly condureBin: string
  readonly zurlBin: string
}

/** The keys this benchmark changes from Debian's defaults, listed in the README and results. */
export const BENCH_OVERRIDES = {
  handler: { message_rate: "0", message_hwm: "0" }
} as const

/** Debian's values for the keys that size connections, reported next to the results. */
export const SHARED_LIMITS = {
  runner: { client_maxconn: "50000", client_buffer_size: "8192", log_level: "2" }
} as const

export const zurlSpecs = (dir: string) => ({
  in: `ipc://${dir}/run/zurl-in`,
  inStream: `ipc://${dir}/run/zurl-in-stream`,
  out: `ipc://${dir}/run/zurl-out`
})

export const renderIni = (sections: IniSections): string =>
  Object.entries(sections)
    .map(([name, keys]) => `[${name}]\n${Object.entries(keys).map(([key, value]) => `${key}=${value}\n`).join("")}`)
    .join("\n")

export const pushpinConfSections = (ports: BenchPorts, paths: ConfPaths): IniSections => {
  const zurl = zurlSpecs(paths.dir)
  return {
    global: {
      include: paths.internalConf,
      rundir: `${paths.dir}/run`,
      ipc_prefix: "pushpin-",
      port_offset: "0",
      stats_connection_ttl: "120"
    },
    runner: {
      services: "condure,pushpin-proxy,pushpin-handler",
      http_port: `127.0.0.1:${ports.http}`,
      logdir: `${paths.dir}/log`,
      ...SHARED_LIMITS.runner,
      condure_bin: paths.condureBin,
      zurl_bin: paths.zurlBin
    },
    proxy: {
      routesfile: `${paths.dir}/routes`,
      debug: "false",
      auto_cross_origin: "false",
      accept_x_forwarded_protocol: "false",
      set_x_forwarded_protocol: "proto-only",
      x_forwarded_for: "",
      x_forwarded_for_trusted: "",
      orig_headers_need_mark: "",
      accept_pushpin_route: "false",
      log_from: "false",
      log_user_agent: "false",
      sig_iss: "pushpin",
      sig_key: "changeme",
      upstream_key: "",
      sockjs_url: "http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js",
      updates_check: "off",
      organization_name: "",
      zurl_out_specs: zurl.in,
      zurl_out_stream_specs: zurl.inStream,
      zurl_in_specs: zurl.out
    },
    handler: {
      push_in_spec: `tcp://127.0.0.1:${ports.pushIn}`,
      push_in_sub_specs: `tcp://127.0.0.1:${ports.pushInSub}`,
      push_in_sub_connect: "false",
      push_in_http_addr: "127.0.0.1",
      push_in_http_port: String(ports.publish),
      push_in_http_max_headers_size: "10000",
      push_in_http_max_body_size: "1000000",
      stats_spec: `ipc://${paths.dir}/run/pushpin-stats`,
      command_spec: `tcp://127.0.0.1:${ports.command}`,
      ...BENCH_OVERRIDES.handler,
      message_wait: "5000",
      id_cache_ttl: "60",
      connection_subscription_max: "20",
      subscription_linger: "60",
      stats_subscription_ttl: "60",
      stats_report_interval: "10",
      stats_format: "tnetstring"
    }
  }
}

/**
 * zurl as Debian configures it (/etc/zurl.conf), on private sockets and with an empty deny
 * list: Debian denies 127.*, which would refuse every local origin.
 */
export const zurlConfSections = (dir: string): IniSections => {
  const zurl = zurlSpecs(dir)
  return {
    General: {
      instance_id: "",
      in_spec: zurl.in,
      in_stream_spec: zurl.inStream,
      out_spec: zurl.out,
      in_req_spec: "",
      defpolicy: "allow",
      allow: "",
      deny: "",
      max_open_requests: "2000",
      buffer_size: "200000",
      timeout: "600",
      in_hwm: "1000",
      out_hwm: "1000"
    }
  }
}

/** Host names the routes file gives to the built-in test handler (held streams, readiness). */
export const HOLD_HOST = "hold.bench"
export const READY_HOST = "ready.bench"

/** Every scenario uses the same routes: the test handler by Host, everything else to the origin. */
export const routesFile = (originPort: number): string =>
  [`${HOLD_HOST} test`, `${READY_HOST} test`, `* 127.0.0.1:${originPort}`].join("\n") + "\n"
