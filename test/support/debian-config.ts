/**
 * Debian's Pushpin 1.36 configuration (/etc/pushpin/pushpin.conf and /etc/zurl.conf), made
 * private: every path inside one temp dir, every listener on a loopback port of the caller's
 * choosing. The reference tests and the benchmark both start real Pushpin from it (and the
 * benchmark pushpin-ts too), each layering its own few changes on top.
 */

export type IniSections = Readonly<Record<string, Readonly<Record<string, string>>>>

export type IniOverrides = Readonly<Record<string, Readonly<Record<string, string>> | undefined>>

export const renderIni = (sections: IniSections): string =>
  Object.entries(sections)
    .map(([name, keys]) => `[${name}]\n${Object.entries(keys).map(([key, value]) => `${key}=${value}\n`).join("")}`)
    .join("\n")

/** `base` with each section's keys replaced or added from `overrides`. */
export const withOverrides = (base: IniSections, overrides: IniOverrides): IniSections => {
  const merged: Record<string, Record<string, string>> = {}
  for (const [name, keys] of Object.entries(base)) merged[name] = { ...keys, ...overrides[name] }
  for (const [name, keys] of Object.entries(overrides)) if (merged[name] === undefined && keys !== undefined) merged[name] = { ...keys }
  return merged
}

export interface PrivatePorts {
  readonly http: number
  readonly publish: number
  readonly pushIn: number
  readonly pushInSub: number
  readonly command: number
}

export interface PrivatePaths {
  readonly runDir: string
  readonly logDir: string
  readonly routesFile: string
  /** Pushpin's internal.conf (pushpin-ts treats a missing include as empty). */
  readonly internalConf: string
  readonly condureBin: string
  readonly zurlBin: string
}

/** The sockets Pushpin's proxy and its zurl talk over, in `runDir`. */
export const privateZurlSpecs = (runDir: string) => ({
  in: `ipc://${runDir}/zurl-in`,
  inStream: `ipc://${runDir}/zurl-in-stream`,
  out: `ipc://${runDir}/zurl-out`
})

export const debianPushpinConf = (ports: PrivatePorts, paths: PrivatePaths): IniSections => {
  const zurl = privateZurlSpecs(paths.runDir)
  return {
    global: {
      include: paths.internalConf,
      rundir: paths.runDir,
      ipc_prefix: "pushpin-",
      port_offset: "0",
      stats_connection_ttl: "120"
    },
    runner: {
      services: "condure,pushpin-proxy,pushpin-handler",
      http_port: `127.0.0.1:${ports.http}`,
      logdir: paths.logDir,
      client_maxconn: "50000",
      client_buffer_size: "8192",
      log_level: "2",
      condure_bin: paths.condureBin,
      zurl_bin: paths.zurlBin
    },
    proxy: {
      routesfile: paths.routesFile,
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
      stats_spec: `ipc://${paths.runDir}/pushpin-stats`,
      command_spec: `tcp://127.0.0.1:${ports.command}`,
      message_rate: "2500",
      message_hwm: "25000",
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
 * zurl as Debian configures it, on the private sockets and with an empty deny list: Debian
 * denies 127.*, which would refuse every local origin.
 */
export const debianZurlConf = (runDir: string): IniSections => {
  const zurl = privateZurlSpecs(runDir)
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
