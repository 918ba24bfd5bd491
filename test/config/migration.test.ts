import { describe, expect, test } from "bun:test"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { type CommandLineOverrides, isKnownKey, NO_OVERRIDES } from "../../src/config/keys.ts"
import {
  buildMigrationReport,
  type EntryStatus,
  formatMigrationLogEntry,
  formatMigrationReport,
  type GenerationKind,
  isLegacyGeneration,
  MIGRATION_LOG_TITLE,
  type MigrationReport
} from "../../src/config/migration.ts"
import { recommendServices } from "../../src/config/services.ts"
import { loadSettings, type LoadSettingsOptions } from "../../src/config/settings.ts"
import { run, tempDir } from "./helpers.ts"

const FIXTURES = join(import.meta.dir, "fixtures")
const fixture = (name: string) => readFileSync(join(FIXTURES, name), "utf8")

/** Loads `conf` as ./pushpin.conf (with `internal` as ./internal.conf, libdir = that directory). */
const reportFor = (
  conf: string,
  internal?: string,
  options: { readonly overrides?: CommandLineOverrides; readonly load?: Partial<LoadSettingsOptions>; readonly files?: Record<string, string> } = {}
) => {
  const cwd = tempDir({ "pushpin.conf": conf, ...(internal === undefined ? {} : { "internal.conf": internal }), ...options.files })
  const loaded = run(loadSettings({ cwd, libdir: cwd, ...options.load }))
  return { cwd, warnings: loaded.warnings, report: buildMigrationReport({ settings: loaded.settings, files: loaded.files, overrides: options.overrides ?? NO_OVERRIDES }) }
}

const entry = (report: MigrationReport, section: string, key: string, file = "pushpin.conf") => {
  const found = report.keys.find((k) => k.section === section && k.key === key && k.file === file)
  if (found === undefined) throw new Error(`no [${section}] ${key} from ${file} in the report`)
  return found
}
const notSet = (report: MigrationReport) => report.keys.filter((k) => k.file === undefined).map((k) => `${k.section}/${k.key}`)

type Expectation = readonly [section: string, key: string, file: string, status: EntryStatus, text: string]

const GENERATIONS: ReadonlyArray<{
  readonly name: string
  readonly conf: string
  readonly internal: string
  readonly kind: GenerationKind
  readonly label: string
  readonly evidence: string
  readonly keys: ReadonlyArray<Expectation>
  readonly notSet: ReadonlyArray<string>
  readonly setAlready: ReadonlyArray<string>
  readonly changes: ReadonlyArray<string>
}> = [
  {
    name: "1.20 (Mongrel2 + m2adapter + zurl)",
    conf: "pushpin-1.20.conf",
    internal: "internal-1.20.conf",
    kind: "mongrel2",
    label: "Pushpin 1.2x (Mongrel2)",
    evidence: "services= lists mongrel2, m2adapter",
    keys: [
      ["runner", "services", "pushpin.conf", "used", "mongrel2+m2adapter → built-in connmgr (Mongrel2 front end replaced); zurl → built-in origin client"],
      ["runner", "http_port", "pushpin.conf", "used", "client listener 0.0.0.0:7999 (plain HTTP)"],
      ["runner", "mongrel2_bin", "pushpin.conf", "no-effect", "no Mongrel2: pushpin-ts accepts client connections in-process"],
      ["runner", "zurl_bin", "pushpin.conf", "no-effect", "no zurl: pushpin-ts makes origin requests in-process"],
      ["runner", "logdir", "pushpin.conf", "no-effect", "pushpin-ts logs to stderr, or to --logfile"],
      ["proxy", "updates_check", "pushpin.conf", "no-effect", "never contacts anyone"],
      ["proxy", "sockjs_url", "pushpin.conf", "unsupported", "SockJS is not implemented"],
      ["handler", "push_in_sub_spec", "pushpin.conf", "unsupported", "ZeroMQ publish inputs are not implemented"],
      ["handler", "push_in_http_port", "pushpin.conf", "used", "HTTP publish API on 127.0.0.1:5561"],
      ["handler", "message_rate", "pushpin.conf", "used", "at most 2500 deliveries per second"],
      ["handler", "stats_format", "pushpin.conf", "unsupported", "which pushpin-ts does not have"],
      ["proxy", "m2a_in_specs", "internal.conf", "no-effect", "ZeroMQ wiring between Pushpin's processes; pushpin-ts is one process"],
      ["handler", "proxy_ws_control_out_spec", "internal.conf", "no-effect", "ZeroMQ wiring"]
    ],
    notSet: ["runner/client_maxconn", "proxy/sig_iss", "handler/message_wait", "handler/push_in_http_max_headers_size"],
    setAlready: ["runner/http_port", "handler/push_in_max_headers_size"],
    changes: ["mongrel2+m2adapter → connmgr", "zurl: drop (connmgr makes origin requests since Pushpin 1.38; pushpin-ts makes them in-process)", "pushpin-proxy → proxy", "pushpin-handler → handler"]
  },
  {
    name: "1.31 (Condure + zurl)",
    conf: "pushpin-1.31.conf",
    internal: "internal-1.31.conf",
    kind: "condure",
    label: "Pushpin 1.3x (Condure)",
    evidence: "services= lists condure",
    keys: [
      ["runner", "services", "pushpin.conf", "used", "condure → built-in connmgr; zurl → built-in origin client"],
      ["runner", "condure_bin", "pushpin.conf", "no-effect", "no separate Condure"],
      ["runner", "client_maxconn", "pushpin.conf", "used", "past 50000 requests in progress plus open WebSockets, clients get 503"],
      ["handler", "push_in_sub_specs", "pushpin.conf", "unsupported", "ZeroMQ publish inputs are not implemented"],
      ["handler", "push_in_sub_connect", "pushpin.conf", "no-effect", "ZeroMQ SUB input"],
      ["handler", "push_in_http_max_body_size", "pushpin.conf", "used", "a body over 1000000 bytes get 400"],
      ["handler", "command_spec", "pushpin.conf", "unsupported", "POST /recover"],
      ["proxy", "condure_in_specs", "internal.conf", "no-effect", "ZeroMQ wiring"]
    ],
    notSet: ["proxy/sig_iss", "proxy/accept_pushpin_route", "handler/message_wait"],
    setAlready: ["runner/client_maxconn", "handler/push_in_http_max_headers_size"],
    changes: ["condure → connmgr", "zurl: drop (connmgr makes origin requests since Pushpin 1.38; pushpin-ts makes them in-process)", "pushpin-proxy → proxy", "pushpin-handler → handler"]
  },
  {
    name: "1.36 (Debian: Condure, zurl run apart)",
    conf: "pushpin-1.36.conf",
    internal: "internal-1.36.conf",
    kind: "condure",
    label: "Pushpin 1.3x (Condure)",
    evidence: "services= lists condure",
    keys: [
      ["runner", "services", "pushpin.conf", "used", "condure → built-in connmgr; pushpin-proxy → built-in proxy; pushpin-handler → built-in handler"],
      ["proxy", "sig_iss", "pushpin.conf", "used", "Grip-Sig iss \"pushpin\""],
      ["proxy", "accept_pushpin_route", "pushpin.conf", "used", "Pushpin-Route header is ignored"],
      ["handler", "message_wait", "pushpin.conf", "used", "waits up to 5000 ms"],
      ["proxy", "zurl_out_specs", "internal.conf", "no-effect", "ZeroMQ wiring"]
    ],
    notSet: ["proxy/cdn_loop", "handler/update_on_first_subscription", "proxy/origin_max_concurrency"],
    setAlready: ["proxy/sig_iss"],
    changes: ["condure → connmgr", "pushpin-proxy → proxy", "pushpin-handler → handler"]
  },
  {
    name: "1.40 (connmgr)",
    conf: "pushpin-1.40.conf",
    internal: "internal-1.40.conf",
    kind: "connmgr",
    label: "Pushpin 1.40+ (connmgr)",
    evidence: "services= lists connmgr",
    keys: [
      ["runner", "services", "pushpin.conf", "used", "connmgr → built-in connmgr; proxy → built-in proxy; handler → built-in handler"],
      ["runner", "allow_compression", "pushpin.conf", "no-effect", "never compresses client WebSockets"],
      ["global", "stats_connection_send", "pushpin.conf", "unsupported", "which pushpin-ts does not have"],
      ["proxy", "cdn_loop", "pushpin.conf", "used", "nothing added to CDN-Loop"],
      ["proxy", "sig_key", "pushpin.conf", "used", "signed with Grip-Sig, HS256 secret (8 bytes)"],
      ["proxy", "connmgr_client_out_specs", "internal.conf", "no-effect", "ZeroMQ wiring"],
      ["handler", "proxy_inspect_specs", "internal.conf", "no-effect", "ZeroMQ wiring"]
    ],
    notSet: ["proxy/origin_max_concurrency", "proxy/max_open_requests", "handler/update_on_first_subscription"],
    setAlready: ["runner/client_maxconn", "proxy/cdn_loop"],
    changes: []
  }
]

describe("migration report: one fixture per Pushpin generation", () => {
  for (const generation of GENERATIONS) {
    describe(generation.name, () => {
      const { report, warnings } = reportFor(fixture(generation.conf), fixture(generation.internal))

      test("generation and what gave it away", () => {
        expect(report.generation).toEqual({ kind: generation.kind, label: generation.label, evidence: generation.evidence })
        expect(isLegacyGeneration(report.generation)).toBe(generation.kind !== "connmgr")
        expect(report.includedFile).toBe("internal.conf")
      })

      test.each(generation.keys)("[%s] %s (%s): %s", (section, key, file, status, text) => {
        const found = entry(report, section, key, file)
        expect(found.status).toBe(status)
        expect(found.text).toContain(text)
        expect(found.line).toBeGreaterThan(0)
      })

      test("every key of the shipped files is known; none warned as unknown", () => {
        expect(report.keys.filter((k) => k.status === "unknown")).toEqual([])
        expect(warnings.filter((w) => w.message.includes("unknown key"))).toEqual([])
      })

      test("keys left out that still decide something are listed with their fallback", () => {
        const listed = notSet(report)
        for (const key of generation.notSet) expect(listed).toContain(key)
        for (const key of generation.setAlready) expect(listed).not.toContain(key)
        for (const key of listed) expect(report.keys.find((k) => `${k.section}/${k.key}` === key)?.status).toBe("used")
      })

      test("recommended services line", () => {
        expect(report.services.line).toBe("services=connmgr,proxy,handler")
        expect(report.services.current).toBe(generation.changes.length === 0)
        expect(report.services.changes).toEqual(generation.changes)
      })

      test("the secret is never shown", () => {
        expect(entry(report, "proxy", "sig_key").value).toBe("<hidden>")
        expect(formatMigrationReport(report).join("\n")).not.toContain("changeme")
      })
    })
  }

  test("no config file: pushpin-ts defaults", () => {
    const cwd = tempDir()
    const loaded = run(loadSettings({ cwd, libdir: cwd }))
    const report = buildMigrationReport({ settings: loaded.settings, files: loaded.files, overrides: NO_OVERRIDES })
    expect(report.generation.kind).toBe("defaults")
    expect(report.generation.label).toBe("pushpin-ts defaults")
    expect(isLegacyGeneration(report.generation)).toBe(false)
    expect(report.configFile).toBe("built-in defaults")
    expect(report.services.current).toBe(true)
    expect(entry(report, "runner", "http_port", "built-in defaults").text).toBe("client listener 0.0.0.0:7999 (plain HTTP)")
  })
})

describe("detectGeneration without a front end in services=", () => {
  test.each([
    ["[runner]\nhttp_port=1\nservices=condure,proxy,handler\n", "condure", "services= lists condure"],
    ["[runner]\nhttp_port=1\nservices=pushpin-proxy,pushpin-handler\ncondure_bin=condure\n", "condure", "services= names no front end and the file has [runner] condure_bin"],
    ["[runner]\nhttp_port=1\nservices=pushpin-proxy,pushpin-handler\n", "condure", "services= uses the pre-1.40 names pushpin-proxy, pushpin-handler"],
    ["[runner]\nhttp_port=1\nservices=pushpin-proxy,pushpin-handler\n[handler]\npush_in_sub_spec=tcp://127.0.0.1:5562\n", "mongrel2", "services= names no front end and the file has [handler] push_in_sub_spec"],
    ["[runner]\nhttp_port=1\nservices=proxy,handler\n", "connmgr", "services= uses the current names"],
    ["[runner]\nhttp_port=1\nallow_compression=false\n", "connmgr", "services= names no front end and the file has [runner] allow_compression"],
    ["[runner]\nhttp_port=1\n", "connmgr", "there is no services= line and nothing older in the file"]
  ] as const)("%p → %s", (conf, kind, evidence) => {
    const { report } = reportFor(conf)
    expect(report.generation.kind).toBe(kind)
    expect(report.generation.evidence).toBe(evidence)
  })

  test("keys of the include do not decide the generation", () => {
    const { report } = reportFor("[global]\ninclude=internal.conf\n[runner]\nhttp_port=1\n", fixture("internal-1.20.conf"))
    expect(report.includedFile).toBe("internal.conf")
    expect(report.generation.kind).toBe("connmgr")
  })
})

describe("verdicts follow the value and the command line", () => {
  test.each([
    ["runner", "allow_compression", "true", "unsupported", "permessage-deflate is not implemented"],
    ["runner", "https_ports", "443", "used", "TLS client listener 0.0.0.0:443; certificates from"],
    ["runner", "https_ports", "", "used", "no TLS client listener"],
    ["runner", "local_ports", "/tmp/pushpin-ts-test.sock?mode=660", "used", "unix-socket client listener /tmp/pushpin-ts-test.sock (mode 0660)"],
    ["proxy", "upstream_key", "secret", "unsupported", "its Grip-* headers are removed"],
    ["proxy", "log_from", "true", "unsupported", "no from=<client address>"],
    ["proxy", "x_forwarded_for_trusted", "truncate:0", "unsupported", "every client gets the x_forwarded_for rules"],
    ["proxy", "x_forwarded_for", "truncate:0,append", "used", "X-Forwarded-For rules truncate:0,append"],
    ["proxy", "set_x_forwarded_protocol", "false", "used", "X-Forwarded-Proto is not set"],
    ["proxy", "sig_key", "", "used", "no Grip-Sig: requests to origins are not signed"],
    ["proxy", "workers", "4", "no-effect", "one event loop"],
    ["handler", "share_all", "true", "unsupported", "request sharing is not implemented"],
    ["handler", "message_rate", "0", "used", "deliveries are not rate-limited"],
    ["handler", "id_cache_ttl", "0", "used", "no dedupe of published ids"],
    ["handler", "prometheus_port", "9090", "used", "Prometheus metrics on 0.0.0.0:9090 (any path; /ready and /live too)"],
    ["handler", "push_in_spec", "", "no-effect", "empty"]
  ] as const)("[%s] %s=%p → %s", (section, key, value, status, text) => {
    const { report } = reportFor(`[runner]\nhttp_port=1\n[${section}]\n${key}=${value}\n`)
    const found = entry(report, section, key)
    expect(found.status).toBe(status)
    expect(found.text).toContain(text)
  })

  test("--port, --route, --loglevel and --publish-port replace what the file says", () => {
    const { report } = reportFor(
      "[global]\nport_offset=3\n[runner]\nhttp_port=7999\nhttps_ports=443\nlog_level=3\n[proxy]\nroutesfile=routes\n[handler]\npush_in_http_port=5561\n",
      undefined,
      {
        overrides: { port: true, publishPort: true, routes: true, logLevel: true },
        load: { portOverride: { host: "127.0.0.1", port: 0 } }
      }
    )
    expect(entry(report, "runner", "http_port").text).toBe("replaced by --port: client listener 127.0.0.1:0")
    expect(entry(report, "runner", "https_ports").text).toBe("replaced by --port: no TLS listener")
    expect(entry(report, "runner", "log_level").text).toBe("replaced by --loglevel/--verbose")
    expect(entry(report, "proxy", "routesfile").text).toBe("not read: --route given")
    expect(entry(report, "handler", "push_in_http_port").text).toStartWith("replaced by --publish-port: ")
    expect(entry(report, "global", "port_offset").text).toBe("no effect on the publish API: --publish-port sets its port")
  })

  test("port_offset is counted into the publish port", () => {
    const { report } = reportFor("[global]\nport_offset=3\n[runner]\nhttp_port=7999\n[handler]\npush_in_http_port=5561\n")
    expect(entry(report, "global", "port_offset").text).toBe("3 added to push_in_http_port (publish API port 5564)")
  })
})

describe("keys across files", () => {
  test("an include key the main file overrides says so", () => {
    const { report } = reportFor(
      "[global]\ninclude=internal.conf\n[runner]\nhttp_port=1\n[handler]\nmessage_rate=10\n",
      "[handler]\nmessage_rate=99\n"
    )
    expect(entry(report, "handler", "message_rate").text).toBe("at most 10 deliveries per second, shared by all routes")
    expect(entry(report, "handler", "message_rate", "internal.conf")).toMatchObject({ status: "no-effect", text: "overridden by pushpin.conf:6" })
  })

  test("a missing include is skipped", () => {
    const { report } = reportFor("[global]\ninclude={libdir}/internal.conf\n[runner]\nhttp_port=1\n")
    expect(report.includedFile).toBeUndefined()
    expect(entry(report, "global", "include")).toMatchObject({ status: "no-effect", text: "file not found, skipped (it only holds Pushpin's internal wiring)" })
  })

  test("unknown keys and sections are reported and warned", () => {
    const { report, warnings } = reportFor("[runner]\nhttp_port=1\nfrobnicate=yes\n[extras]\nthing=1\n")
    expect(entry(report, "runner", "frobnicate")).toMatchObject({ status: "unknown", line: 3, value: "yes" })
    expect(entry(report, "extras", "thing")).toMatchObject({ status: "unknown", line: 5 })
    expect(warnings.map((w) => w.message)).toEqual(["pushpin.conf:3: unknown key [runner] frobnicate", "pushpin.conf:5: unknown key [extras] thing"])
  })

  test("the older spelling of a key stands for the current one", () => {
    const { report } = reportFor("[runner]\nhttp_port=1\n[handler]\npush_in_max_headers_size=500\n")
    expect(entry(report, "handler", "push_in_max_headers_size").text).toBe("publish requests with headers over 500 bytes get 400")
    expect(notSet(report)).not.toContain("handler/push_in_http_max_headers_size")
    expect(notSet(report)).not.toContain("handler/push_in_max_headers_size")
    expect(notSet(report)).toContain("handler/push_in_http_max_body_size")
  })

  test("a key file is named; an inline secret is hidden", () => {
    const cwd = tempDir()
    writeFileSync(join(cwd, "key.hex"), "736563726574\n")
    const inline = reportFor("[runner]\nhttp_port=1\n[proxy]\nsig_key=base64:c2VjcmV0\nupstream_key=hunter2\n").report
    expect(entry(inline, "proxy", "sig_key").value).toBe("<hidden>")
    expect(entry(inline, "proxy", "upstream_key").value).toBe("<hidden>")
    const fromFile = reportFor(`[runner]\nhttp_port=1\n[proxy]\nsig_key=file:${join(cwd, "key.hex")}\n`).report
    expect(entry(fromFile, "proxy", "sig_key").value).toBe(`file:${join(cwd, "key.hex")}`)
  })
})

/** Every key Pushpin's proxy, handler and runner read in 1.11 … 1.41 and 2.0-dev (from their sources). */
const PUSHPIN_KEYS: Readonly<Record<string, string>> = {
  global: "include ipc_prefix libdir port_offset rundir stats_connection_send stats_connection_ttl",
  runner:
    "allow_compression client_buffer_size client_maxconn condure_bin http_port https_ports local_ports log_level logdir m2sh_bin mongrel2_bin rundir services zurl_bin",
  proxy:
    "accept_pushpin_route accept_x_forwarded_protocol auto_cross_origin cdn_loop command_spec condure_client_in_specs condure_client_out_specs " +
    "condure_client_out_stream_specs condure_in_specs condure_in_stream_specs condure_out_specs connmgr_client_in_specs connmgr_client_out_specs " +
    "connmgr_client_out_stream_specs connmgr_in_specs connmgr_in_stream_specs connmgr_out_specs debug handler_accept_spec handler_inspect_spec " +
    "handler_retry_in_spec handler_ws_control_in_spec handler_ws_control_init_specs handler_ws_control_out_spec handler_ws_control_stream_specs " +
    "intreq_in_specs intreq_in_stream_specs intreq_out_specs ipc_file_mode log_from log_user_agent m2a_in_specs m2a_in_stream_specs m2a_out_specs " +
    "max_open_requests organization_name orig_headers_need_mark prometheus_port prometheus_prefix routesfile set_x_forwarded_protocol sig_iss " +
    "sig_key sockjs_url stats_connections_max_ttl stats_report_interval stats_spec updates_check upstream_key workers x_forwarded_for " +
    "x_forwarded_for_trusted zurl_in_specs zurl_out_specs zurl_out_stream_specs",
  handler:
    "command_spec connection_subscription_max id_cache_ttl ipc_file_mode m2a_in_stream_specs m2a_out_specs message_block_size message_hwm " +
    "message_rate message_wait prometheus_port prometheus_prefix proxy_accept_spec proxy_accept_specs proxy_command_spec proxy_inspect_spec " +
    "proxy_inspect_specs proxy_intreq_in_specs proxy_intreq_out_specs proxy_intreq_out_stream_specs proxy_retry_out_spec proxy_retry_out_specs " +
    "proxy_stats_spec proxy_stats_specs proxy_ws_control_in_spec proxy_ws_control_init_specs proxy_ws_control_out_spec " +
    "proxy_ws_control_stream_specs push_in_http_addr push_in_http_max_body_size push_in_http_max_headers_size push_in_http_port " +
    "push_in_max_body_size push_in_max_headers_size push_in_spec push_in_sub_connect push_in_sub_spec push_in_sub_specs share_all state_spec " +
    "stats_format stats_report_interval stats_spec stats_subscription_ttl subscription_linger update_on_first_subscription " +
    "connmgr_in_stream_specs connmgr_out_specs condure_in_stream_specs condure_out_specs"
}

test("the key table knows every key any Pushpin release reads", () => {
  const missing = Object.entries(PUSHPIN_KEYS).flatMap(([section, keys]) =>
    keys.split(" ").filter((key) => !isKnownKey(section, key)).map((key) => `${section}/${key}`)
  )
  expect(missing).toEqual([])
})

describe("recommendServices", () => {
  test.each([
    [["connmgr", "proxy", "handler"], true, []],
    [["handler", "connmgr", "proxy"], true, []],
    [["condure", "proxy", "handler"], false, ["condure → connmgr"]],
    [["mongrel2", "pushpin-proxy"], false, ["mongrel2 → connmgr", "pushpin-proxy → proxy", "+ handler"]],
    [["connmgr", "proxy", "handler", "varnish"], false, ["varnish: drop (not a Pushpin service)"]],
    [[], false, ["+ connmgr", "+ proxy", "+ handler"]]
  ] as const)("%p", (services, current, changes) => {
    expect(recommendServices(services)).toEqual({ line: "services=connmgr,proxy,handler", current, changes })
  })
})

describe("report text", () => {
  const { report } = reportFor(fixture("pushpin-1.20.conf"), fixture("internal-1.20.conf"))
  const lines = formatMigrationReport(report)

  test("header, files grouped by section, fallbacks, services advice", () => {
    expect(lines.slice(0, 3)).toEqual([
      "Config file: pushpin.conf (keys it lacks come from internal.conf)",
      "Generation: Pushpin 1.2x (Mongrel2), because services= lists mongrel2, m2adapter",
      "Keys: 19 used, 41 accepted with no effect, 10 not supported, 0 unknown"
    ])
    const at = (text: string) => lines.indexOf(text)
    expect(at("pushpin.conf")).toBeLessThan(at("internal.conf"))
    expect(at("internal.conf")).toBeLessThan(at("Not set (the fallback applies)"))
    expect(lines).toContain("  [runner]")
    expect(lines.find((line) => line.includes("mongrel2_bin=mongrel2"))).toMatch(/^ +\d+  mongrel2_bin=mongrel2 +accepted, no effect: no Mongrel2/)
    expect(lines.find((line) => line.includes(" client_maxconn "))).toMatch(/^ +client_maxconn +used: past 50000 /)
    expect(lines).toContain("Recommended services line: services=connmgr,proxy,handler")
    // socket lists are cut to the column; values that matter are kept whole
    expect(lines.find((line) => line.includes("m2a_in_stream_specs="))).toContain("…")
    expect(lines.find((line) => line.includes("services=mongrel2"))).toContain("services=mongrel2,m2adapter,zurl,pushpin-proxy,pushpin-handler  used:")
  })

  test("the startup log entry: a title, the same lines indented, nothing blank", () => {
    const logged = formatMigrationLogEntry(report).split("\n")
    expect(logged[0]).toBe(`${MIGRATION_LOG_TITLE} (Pushpin 1.2x (Mongrel2); pushpin-ts check prints the same):`)
    expect(logged.slice(1)).toEqual(lines.filter((line) => line !== "").map((line) => `  ${line}`))
  })
})
