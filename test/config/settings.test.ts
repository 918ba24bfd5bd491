import { describe, expect, test } from "bun:test"
import { generateKeyPairSync } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import {
  DEFAULT_ROUTES_TEXT,
  discoverConfigFile,
  loadSettings,
  type LoadSettingsOptions,
  resolveVars
} from "../../src/config/settings.ts"
import { mapServices } from "../../src/config/services.ts"
import { loadRoutes } from "../../src/config/routes.ts"
import { parseListenAddress, parseLogLevelSpec } from "../../src/config/values.ts"
import type { LogLevelSpec, Settings } from "../../src/config/types.ts"
import { failure, run, tempDir } from "./helpers.ts"

const FIXTURES = join(import.meta.dir, "fixtures")
const DEBIAN_CONF = readFileSync(join(FIXTURES, "pushpin-1.36.conf"), "utf8")
const DEBIAN_INTERNAL = readFileSync(join(FIXTURES, "internal-1.36.conf"), "utf8")

/** Loads `text` as ./pushpin.conf in a fresh directory; libdir is that directory. */
const load = (text: string, extra: Partial<LoadSettingsOptions> = {}, files: Record<string, string> = {}) => {
  const cwd = tempDir({ "pushpin.conf": text, ...files })
  return { cwd, ...run(loadSettings({ cwd, libdir: cwd, ...extra })) }
}
const loadError = (text: string, extra: Partial<LoadSettingsOptions> = {}, files: Record<string, string> = {}) => {
  const cwd = tempDir({ "pushpin.conf": text, ...files })
  return { cwd, error: failure(loadSettings({ cwd, libdir: cwd, ...extra })) }
}
const messages = (warnings: ReadonlyArray<{ readonly message: string }>) => warnings.map((w) => w.message)
const secretText = (settings: Settings) =>
  settings.proxy.sigKey?.kind === "secret" ? new TextDecoder().decode(settings.proxy.sigKey.secret) : undefined

const expectDebianValues = (settings: Settings, configDir: string, libdir: string) => {
  expect(settings.configDir).toBe(configDir)
  expect(settings.global).toEqual({
    include: join(libdir, "internal.conf"),
    rundir: "/var/run/pushpin",
    libdir,
    ipcPrefix: "pushpin-",
    portOffset: 0,
    statsConnectionTtl: 120,
    statsConnectionSend: true
  })
  expect(settings.runner.services).toEqual(["condure", "pushpin-proxy", "pushpin-handler"])
  expect(settings.runner.httpPorts).toEqual([{ host: "0.0.0.0", port: 7999 }])
  expect(settings.runner.httpsPorts).toEqual([])
  expect(settings.runner.localPorts).toEqual([])
  expect(settings.runner.logdir).toBe("/var/log/pushpin")
  expect(settings.runner.logLevel).toEqual({ level: 2, perService: new Map() })
  expect(settings.runner.clientBufferSize).toBe(8192)
  expect(settings.runner.clientMaxconn).toBe(50000)
  expect(settings.runner.allowCompression).toBe(false)
  expect(settings.proxy.routesFile).toBe(join(configDir, "routes"))
  expect(settings.proxy.setXForwardedProtocol).toBe("proto-only")
  expect(settings.proxy.xForwardedFor).toEqual({ truncate: undefined, append: false })
  expect(settings.proxy.sigIss).toBe("pushpin")
  expect(secretText(settings)).toBe("changeme")
  expect(settings.proxy.upstreamKey).toBeUndefined()
  expect(settings.proxy.maxOpenRequests).toBe(50000)
  expect(settings.handler.pushInSpec).toBe("tcp://127.0.0.1:5560")
  expect(settings.handler.pushInSubSpecs).toEqual(["tcp://127.0.0.1:5562"])
  expect(settings.handler.pushInHttpAddr).toBe("127.0.0.1")
  expect(settings.handler.pushInHttpPort).toBe(5561)
  expect(settings.handler.statsSpec).toBe("ipc:///var/run/pushpin/pushpin-stats")
  expect(settings.handler.commandSpec).toBe("tcp://127.0.0.1:5563")
  expect(settings.handler.messageRate).toBe(2500)
  expect(settings.handler.messageHwm).toBe(25000)
  expect(settings.handler.messageBlockSize).toBeUndefined()
  expect(settings.handler.idCacheTtl).toBe(60)
  expect(settings.handler.statsFormat).toBe("tnetstring")
}

describe("loadSettings: Pushpin 1.36 (Debian) files unchanged", () => {
  test("fixture copy of /etc/pushpin/pushpin.conf + internal.conf", () => {
    const cwd = tempDir({ "etc/pushpin.conf": DEBIAN_CONF, "lib/internal.conf": DEBIAN_INTERNAL })
    const { settings, warnings } = run(loadSettings({ cwd, configFile: "etc/pushpin.conf", libdir: join(cwd, "lib") }))
    expect(settings.configFile).toBe(join(cwd, "etc/pushpin.conf"))
    expectDebianValues(settings, join(cwd, "etc"), join(cwd, "lib"))
    // Every internal.conf key is known; the only complaint is the example signing key.
    expect(messages(warnings)).toEqual([
      "etc/pushpin.conf:87: [proxy] sig_key is Pushpin's example key \"changeme\": anyone can forge Grip-Sig; set your own secret"
    ])
  })

  test.skipIf(!existsSync("/etc/pushpin/pushpin.conf"))("the installed /etc/pushpin/pushpin.conf", () => {
    const { settings, warnings } = run(loadSettings({ cwd: "/tmp", configFile: "/etc/pushpin/pushpin.conf" }))
    expect(settings.configFile).toBe("/etc/pushpin/pushpin.conf")
    expectDebianValues(settings, "/etc/pushpin", settings.global.libdir)
    expect(messages(warnings).filter((m) => !m.includes("changeme"))).toEqual(
      existsSync("/usr/lib/pushpin/internal.conf") ? [] : [expect.stringContaining("[global] include")]
    )
    if (existsSync("/etc/pushpin/routes")) {
      const routes = run(loadRoutes(settings, []))
      expect(routes.warnings).toEqual([])
      expect(routes.routes.map((r) => [r.domain, r.targets])).toEqual([["*", [{ kind: "test" }]]])
    }
  })
})

describe("loadSettings: no config file", () => {
  test("built-in defaults are the shipped pushpin.conf values", () => {
    const cwd = tempDir()
    const { settings, warnings } = run(loadSettings({ cwd, libdir: "/opt/lib" }))
    expect(settings.configFile).toBeUndefined()
    expect(settings.configDir).toBe(cwd)
    expect(settings.global.include).toBeUndefined()
    expect(settings.global.libdir).toBe("/opt/lib")
    expect(settings.runner.services).toEqual(["connmgr", "proxy", "handler"])
    expect(settings.runner.httpPorts).toEqual([{ host: "0.0.0.0", port: 7999 }])
    expect(settings.proxy.routesFile).toBe(join(cwd, "routes"))
    expect(existsSync(settings.proxy.routesFile)).toBe(false)
    expect(settings.proxy.setXForwardedProtocol).toBe("proto-only")
    expect(secretText(settings)).toBe("changeme")
    expect(settings.handler.pushInHttpAddr).toBe("127.0.0.1")
    expect(settings.handler.pushInHttpPort).toBe(5561)
    expect(settings.handler.messageRate).toBe(2500)
    expect(settings.handler.messageHwm).toBe(25000)
    expect(settings.handler.idCacheTtl).toBe(60)
    expect(settings.handler.statsSpec).toBe("ipc://run/pushpin-stats")
    expect(messages(warnings)).toEqual([
      "no config file: Grip-Sig is signed with Pushpin's example key \"changeme\"; set your own [proxy] sig_key in pushpin.conf"
    ])
    expect(DEFAULT_ROUTES_TEXT).toBe("* test\n")
  })

  test("libdir defaults to /usr/lib/pushpin when present, else the config dir", () => {
    const cwd = tempDir()
    const { settings } = run(loadSettings({ cwd }))
    expect(settings.global.libdir).toBe(existsSync("/usr/lib/pushpin") ? "/usr/lib/pushpin" : cwd)
  })
})

describe("config file discovery", () => {
  test.each([
    ["both", { "config/pushpin.conf": "", "pushpin.conf": "" }, "config/pushpin.conf"],
    ["./pushpin.conf only", { "pushpin.conf": "" }, "pushpin.conf"],
    ["examples/ is not searched", { "examples/config/pushpin.conf": "" }, undefined],
    ["nothing", {}, undefined]
  ] as const)("%s", (_label, files, expected) => {
    const cwd = tempDir(files)
    expect(discoverConfigFile(cwd)).toBe(expected === undefined ? undefined : join(cwd, expected))
  })

  test("a discovered file is used", () => {
    const cwd = tempDir({ "config/pushpin.conf": "[runner]\nhttp_port=8001\n" })
    const { settings } = run(loadSettings({ cwd, libdir: cwd }))
    expect(settings.configFile).toBe(join(cwd, "config/pushpin.conf"))
    expect(settings.configDir).toBe(join(cwd, "config"))
    expect(settings.runner.httpPorts).toEqual([{ host: "0.0.0.0", port: 8001 }])
  })

  test("--config that does not exist is an error", () => {
    const cwd = tempDir()
    expect(failure(loadSettings({ cwd, configFile: "nope.conf" })).message).toBe("config file not found: nope.conf")
  })
})

describe("keys absent from a config file get Pushpin's fallbacks", () => {
  test("minimal file", () => {
    const { settings, cwd } = load("[runner]\nhttp_port=8000\n")
    expect(settings.runner.services).toEqual([])
    expect(settings.runner.logLevel.level).toBe(2)
    expect(settings.proxy.routesFile).toBe(join(cwd, "routes"))
    expect(settings.proxy.sigKey).toBeUndefined()
    expect(settings.proxy.sigIss).toBe("pushpin")
    expect(settings.proxy.setXForwardedProtocol).toBe("none")
    expect(settings.proxy.workers).toBe(1)
    expect(settings.proxy.maxOpenRequests).toBe(50000)
    expect(settings.proxy.originMaxConcurrency).toBe(256)
    expect(settings.proxy.statsReportInterval).toBe(10)
    expect(settings.proxy.prometheusPort).toBeUndefined()
    expect(settings.handler.pushInSpec).toBeUndefined()
    expect(settings.handler.pushInHttpPort).toBeUndefined()
    expect(settings.handler.pushInHttpMaxHeadersSize).toBe(10000)
    expect(settings.handler.pushInHttpMaxBodySize).toBe(1000000)
    expect(settings.handler.messageRate).toBeUndefined()
    expect(settings.handler.messageHwm).toBeUndefined()
    expect(settings.handler.messageWait).toBe(5000)
    expect(settings.handler.idCacheTtl).toBe(0)
    expect(settings.handler.updateOnFirstSubscription).toBe(true)
    expect(settings.handler.connectionSubscriptionMax).toBe(20)
    expect(settings.handler.subscriptionLinger).toBe(60)
    expect(settings.handler.statsFormat).toBe("tnetstring")
    expect(settings.handler.shareAll).toBe(false)
    expect(settings.global.statsConnectionSend).toBe(true)
  })

  test("an empty value means the fallback too", () => {
    const { settings } = load("[runner]\nhttp_port=8000\nclient_maxconn=\n[handler]\nid_cache_ttl=\n")
    expect(settings.runner.clientMaxconn).toBe(50000)
    expect(settings.handler.idCacheTtl).toBe(0)
  })
})

describe("include", () => {
  test("included keys are fallbacks; the main file wins", () => {
    const { settings, warnings } = load(
      "[global]\ninclude=extra.conf\n[runner]\nhttp_port=8000\n[handler]\nmessage_rate=10\n",
      {},
      { "extra.conf": "[handler]\nmessage_rate=20\nmessage_hwm=30\n" }
    )
    expect(settings.handler.messageRate).toBe(10)
    expect(settings.handler.messageHwm).toBe(30)
    expect(warnings).toEqual([])
  })

  test.each(["internal.conf", "{libdir}/internal.conf"])("include=%s resolves against libdir", (include) => {
    const cwd = tempDir({
      "pushpin.conf": `[global]\ninclude=${include}\n[runner]\nhttp_port=8000\n`,
      "lib/internal.conf": "[handler]\nmessage_hwm=7\n"
    })
    const { settings } = run(loadSettings({ cwd, libdir: join(cwd, "lib") }))
    expect(settings.global.include).toBe(join(cwd, "lib/internal.conf"))
    expect(settings.handler.messageHwm).toBe(7)
  })

  test("[global] libdir in the file wins over the default", () => {
    const { settings } = load("[global]\nlibdir=mylib\ninclude=internal.conf\n[runner]\nhttp_port=8000\n", {}, {
      "mylib/internal.conf": "[handler]\nmessage_hwm=9\n"
    })
    expect(settings.handler.messageHwm).toBe(9)
  })

  test("a missing include is a warning", () => {
    const { settings, warnings, cwd } = load("[global]\ninclude={libdir}/internal.conf\n[runner]\nhttp_port=8000\n")
    expect(settings.global.include).toBe(join(cwd, "internal.conf"))
    expect(messages(warnings)).toEqual([
      `pushpin.conf:2: [global] include: ${join(cwd, "internal.conf")} not found; skipped (it only holds Pushpin's internal wiring)`
    ])
  })

  test("unknown keys in the included file are reported there", () => {
    const { warnings } = load("[global]\ninclude=extra.conf\n[runner]\nhttp_port=8000\n", {}, {
      "extra.conf": "[proxy]\nzurl_in_specs=ipc://x\n\nbogus=1\n"
    })
    expect(messages(warnings)).toEqual(["extra.conf:4: unknown key [proxy] bogus"])
  })
})

describe("templating, port_offset and --id", () => {
  const conf = [
    "[global]",
    "rundir=/run/pp",
    "ipc_prefix=ab-",
    "port_offset=5",
    "[runner]",
    "http_port=7999",
    "local_ports={rundir}/{ipc_prefix}server",
    "[handler]",
    "push_in_spec=tcp://127.0.0.1:5560",
    "push_in_sub_specs=tcp://127.0.0.1:5562,tcp://[::1]:5564,ipc://{rundir}/{ipc_prefix}sub",
    "push_in_http_port=5561",
    "stats_spec=ipc://{rundir}/{ipc_prefix}stats",
    "command_spec=tcp://localhost:5563",
    "[proxy]",
    "routesfile={libdir}/routes"
  ].join("\n")

  test("placeholders and port_offset", () => {
    const { settings, cwd } = load(conf)
    expect(settings.global).toMatchObject({ rundir: "/run/pp", ipcPrefix: "ab-", portOffset: 5 })
    expect(settings.runner.httpPorts).toEqual([{ host: "0.0.0.0", port: 7999 }])
    expect(settings.runner.localPorts).toEqual([{ path: "/run/pp/ab-server", mode: undefined, user: undefined, group: undefined }])
    expect(settings.handler.pushInSpec).toBe("tcp://127.0.0.1:5565")
    expect(settings.handler.pushInSubSpecs).toEqual(["tcp://127.0.0.1:5567", "tcp://[::1]:5569", "ipc:///run/pp/ab-sub"])
    expect(settings.handler.pushInHttpPort).toBe(5566)
    expect(settings.handler.statsSpec).toBe("ipc:///run/pp/ab-stats")
    expect(settings.handler.commandSpec).toBe("tcp://localhost:5568")
    expect(settings.proxy.routesFile).toBe(join(cwd, "routes"))
  })

  test("--id N: ipc prefix N- and port_offset N*10, over the file's values", () => {
    const { settings } = load(conf, { id: 3 })
    expect(settings.global).toMatchObject({ ipcPrefix: "3-", portOffset: 30 })
    expect(settings.handler.statsSpec).toBe("ipc:///run/pp/3-stats")
    expect(settings.handler.pushInSpec).toBe("tcp://127.0.0.1:5590")
    expect(settings.handler.pushInHttpPort).toBe(5591)
  })

  test("--id must be a non-negative integer", () => {
    expect(loadError(conf, { id: -1 }).error.message).toBe("--id: expected a non-negative integer, got -1")
  })

  test("resolveVars leaves non-tcp ports alone", () => {
    const vars = { libdir: "/l", rundir: "/r", ipcPrefix: "p-", portOffset: 10 }
    expect(resolveVars("http://x:80,tcp://*:5560,{libdir}{rundir}{ipc_prefix}", vars)).toBe("http://x:80,tcp://*:5570,/l/rp-")
  })

  test("--port replaces every listener", () => {
    const { settings } = load("[runner]\nhttp_port=7999\nhttps_ports=443\nlocal_ports=/tmp/s\n", {
      portOverride: { host: "127.0.0.1", port: 9000 }
    })
    expect(settings.runner.httpPorts).toEqual([{ host: "127.0.0.1", port: 9000 }])
    expect(settings.runner.httpsPorts).toEqual([])
    expect(settings.runner.localPorts).toEqual([])
  })
})

describe("TLS and unix-socket listeners", () => {
  test("certificates are read from runner/certs next to pushpin.conf, or under the cwd without one", () => {
    const cwd = tempDir({ "etc/pushpin.conf": "[runner]\nhttps_ports=8443\n" })
    const { settings } = run(loadSettings({ cwd, configFile: "etc/pushpin.conf", libdir: cwd }))
    expect(settings.runner.httpsPorts).toEqual([{ host: "0.0.0.0", port: 8443 }])
    expect(settings.runner.certsDir).toBe(join(cwd, "etc", "runner", "certs"))
    const bare = tempDir()
    expect(run(loadSettings({ cwd: bare, libdir: bare })).settings.runner.certsDir).toBe(join(bare, "runner", "certs"))
  })

  test("an https port of 0 is refused, as Pushpin's runner does", () => {
    expect(loadError("[runner]\nhttps_ports=127.0.0.1:0\n").error.message).toMatch(/pushpin\.conf:2: \[runner\] https_ports: port 0 is not allowed/)
  })

  test("local_ports: path with mode, user and group; relative paths resolve against the cwd", () => {
    const { settings, cwd } = load("[runner]\nlocal_ports=/tmp/a.sock?mode=0660&user=www-data&group=1001, run/b.sock, /tmp/c.sock?mode=777&user=\n")
    expect(settings.runner.localPorts).toEqual([
      { path: "/tmp/a.sock", mode: 0o660, user: "www-data", group: "1001" },
      { path: join(cwd, "run", "b.sock"), mode: undefined, user: undefined, group: undefined },
      { path: "/tmp/c.sock", mode: 0o777, user: undefined, group: undefined }
    ])
  })

  test.each(["/tmp/s?mode=888", "/tmp/s?mode=", "/tmp/s?mode=rw", "/tmp/s?mode=17777", "?mode=660"])("local_ports %p is refused", (value) => {
    expect(loadError(`[runner]\nlocal_ports=${value}\n`).error.message).toMatch(/pushpin\.conf:2: \[runner\] local_ports: /)
  })

  test("unknown local_ports parameters are ignored with a warning", () => {
    const { settings, warnings } = load("[runner]\nlocal_ports=/tmp/s?mode=600&owner=me\n")
    expect(settings.runner.localPorts).toEqual([{ path: "/tmp/s", mode: 0o600, user: undefined, group: undefined }])
    expect(messages(warnings)).toContain('pushpin.conf:2: [runner] local_ports: unknown parameter "owner" ignored (known: mode, user, group)')
  })
})

describe("value decoding", () => {
  test("listen address lists", () => {
    const { settings } = load("[runner]\nhttp_port=7999, 127.0.0.1:8000,[::]:8001,\nhttps_ports=[::1]:8443\n")
    expect(settings.runner.httpPorts).toEqual([
      { host: "0.0.0.0", port: 7999 },
      { host: "127.0.0.1", port: 8000 },
      { host: "::", port: 8001 }
    ])
    expect(settings.runner.httpsPorts).toEqual([{ host: "::1", port: 8443 }])
  })

  test.each([
    ["7999", { host: "0.0.0.0", port: 7999 }],
    ["localhost:80", { host: "localhost", port: 80 }],
    ["[fe80::1]:0", { host: "fe80::1", port: 0 }],
    ["::1:80", undefined],
    ["80000", undefined],
    ["host:", undefined],
    ["", undefined]
  ] as const)("parseListenAddress(%p)", (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected)
  })

  test.each(["true", "TRUE", "yes", "on", "1"])("boolean %p is true", (word) => {
    expect(load(`[runner]\nhttp_port=1\n[proxy]\ndebug=${word}\n`).settings.proxy.debug).toBe(true)
  })

  test.each(["false", "No", "off", "0"])("boolean %p is false", (word) => {
    expect(load(`[runner]\nhttp_port=1\n[handler]\nupdate_on_first_subscription=${word}\n`).settings.handler.updateOnFirstSubscription).toBe(false)
  })

  const logLevelCases: ReadonlyArray<readonly [string, LogLevelSpec | undefined]> = [
    ["2", { level: 2, perService: new Map() }],
    ["3,proxy:4", { level: 3, perService: new Map([["proxy", 4]]) }],
    ["pushpin-proxy:1,pushpin-handler:3,condure:0", { level: 2, perService: new Map([["proxy", 1], ["handler", 3], ["connmgr", 0]]) }],
    ["9", { level: 4, perService: new Map() }],
    ["2,", undefined],
    [":3", undefined],
    ["x", undefined]
  ]
  test.each(logLevelCases)("parseLogLevelSpec(%p)", (text, expected) => {
    expect(parseLogLevelSpec(text)).toEqual(expected)
  })

  test("proxy and handler values", () => {
    const { settings } = load([
      "[runner]",
      "http_port=1",
      "client_maxconn=100",
      "[proxy]",
      "x_forwarded_for=truncate:0,append",
      "x_forwarded_for_trusted=append",
      "orig_headers_need_mark=Foo, Bar",
      "set_x_forwarded_protocol=true",
      "max_open_requests=500",
      "cdn_loop=pushpin",
      "prometheus_port=127.0.0.1:9090",
      "[handler]",
      "message_rate=0",
      "message_hwm=-1",
      "message_block_size=1000",
      "push_in_sub_spec=tcp://127.0.0.1:6000",
      "push_in_max_headers_size=2000",
      "stats_format=json",
      "prometheus_port=9091"
    ].join("\n"))
    expect(settings.proxy.xForwardedFor).toEqual({ truncate: 0, append: true })
    expect(settings.proxy.xForwardedForTrusted).toEqual({ truncate: undefined, append: true })
    expect(settings.proxy.origHeadersNeedMark).toEqual(["Foo", "Bar"])
    expect(settings.proxy.setXForwardedProtocol).toBe("true")
    expect(settings.proxy.maxOpenRequests).toBe(100)
    expect(settings.proxy.cdnLoop).toBe("pushpin")
    expect(settings.proxy.prometheusPort).toEqual({ host: "127.0.0.1", port: 9090 })
    expect(settings.handler.messageRate).toBeUndefined()
    expect(settings.handler.messageHwm).toBeUndefined()
    expect(settings.handler.messageBlockSize).toBe(1000)
    expect(settings.handler.pushInSubSpecs).toEqual(["tcp://127.0.0.1:6000"])
    expect(settings.handler.pushInHttpMaxHeadersSize).toBe(2000)
    expect(settings.handler.statsFormat).toBe("json")
    expect(settings.handler.prometheusPort).toEqual({ host: "0.0.0.0", port: 9091 })
  })

  test("set_x_forwarded_protocol=false means none", () => {
    expect(load("[runner]\nhttp_port=1\n[proxy]\nset_x_forwarded_protocol=false\n").settings.proxy.setXForwardedProtocol).toBe("none")
  })
})

describe("sig_key and upstream_key", () => {
  const ec = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
  const ecPkcs8 = ec.privateKey.export({ format: "pem", type: "pkcs8" }).toString()
  const ecSec1 = ec.privateKey.export({ format: "pem", type: "sec1" }).toString()
  const rsaPem = rsa.privateKey.export({ format: "pem", type: "pkcs1" }).toString()
  const ecPublic = ec.publicKey.export({ format: "pem", type: "spki" }).toString()
  const files = { "keys/ec.pem": ecPkcs8, "keys/ec-sec1.pem": ecSec1, "keys/rsa.pem": rsaPem, "keys/secret.hex": "68656c6c6f\n" }
  const withKey = (line: string) => load(`[runner]\nhttp_port=1\n[proxy]\n${line}\n`, {}, files).settings.proxy

  test.each([
    ["sig_key=hello", { kind: "secret", secret: new TextEncoder().encode("hello") }],
    ["sig_key=base64:aGVsbG8=", { kind: "secret", secret: new TextEncoder().encode("hello") }],
    ["sig_key=file:keys/secret.hex", { kind: "secret", secret: new TextEncoder().encode("hello") }],
    ["sig_key=file:keys/ec.pem", { kind: "pem", algorithm: "ES256", pem: ecPkcs8 }],
    ["sig_key=file:keys/ec-sec1.pem", { kind: "pem", algorithm: "ES256", pem: ecSec1 }],
    ["sig_key=file:keys/rsa.pem", { kind: "pem", algorithm: "RS256", pem: rsaPem }],
    ["sig_key=", undefined]
  ] as const)("%s", (line, expected) => {
    expect(withKey(line).sigKey).toEqual(expected)
  })

  test("upstream_key may be a public key", () => {
    const cwd = tempDir({ "pushpin.conf": "[runner]\nhttp_port=1\n[proxy]\nupstream_key=file:pub.pem\n", "pub.pem": ecPublic })
    expect(run(loadSettings({ cwd, libdir: cwd })).settings.proxy.upstreamKey).toEqual({ kind: "pem", algorithm: "ES256", pem: ecPublic })
  })

  test("sig_key must be a private key", () => {
    const { error } = loadError("[runner]\nhttp_port=1\n[proxy]\nsig_key=file:pub.pem\n", {}, { "pub.pem": ecPublic })
    expect(error.message).toStartWith("pushpin.conf:4: [proxy] sig_key: cannot read the PEM private key (")
  })

  test("a missing key file is an error", () => {
    const { error, cwd } = loadError("[runner]\nhttp_port=1\n[proxy]\nsig_key=file:missing.pem\n")
    expect(error.message).toBe(`pushpin.conf:4: [proxy] sig_key: cannot read key file ${join(cwd, "missing.pem")} (ENOENT)`)
  })
})

describe("bad values fail with file:line, key and what was expected", () => {
  test.each([
    ["[runner]\nhttp_port=1\nclient_maxconn=lots", "pushpin.conf:3: [runner] client_maxconn: expected a non-negative integer, got \"lots\""],
    ["[runner]\nhttp_port=1\nclient_maxconn=-5", "pushpin.conf:3: [runner] client_maxconn: expected a non-negative integer, got \"-5\""],
    ["[runner]\nhttp_port=1\nclient_buffer_size=0", "pushpin.conf:3: [runner] client_buffer_size: expected a positive integer, got \"0\""],
    ["[runner]\nhttp_port=seven", "pushpin.conf:2: [runner] http_port: expected a comma-separated list of [addr:]port (e.g. 7999, 127.0.0.1:7999 or [::]:7999), got \"seven\""],
    ["[runner]\nhttp_port=1\nlog_level=2,proxy:x", "pushpin.conf:3: [runner] log_level: expected a log level N or N,service:N,... (0 error, 1 warn, 2 info, 3 debug, 4 trace), got \"2,proxy:x\""],
    ["[runner]\nhttp_port=1\n[proxy]\ndebug=maybe", "pushpin.conf:4: [proxy] debug: expected true or false, got \"maybe\""],
    ["[runner]\nhttp_port=1\n[proxy]\nset_x_forwarded_protocol=yes", "pushpin.conf:4: [proxy] set_x_forwarded_protocol: expected true, proto-only or false, got \"yes\""],
    ["[runner]\nhttp_port=1\n[proxy]\nx_forwarded_for=truncate:x", "pushpin.conf:4: [proxy] x_forwarded_for: expected truncate:N and/or append (e.g. \"truncate:0,append\"), got \"truncate:x\""],
    ["[runner]\nhttp_port=1\n[proxy]\nsig_key=base64:!!", "pushpin.conf:4: [proxy] sig_key: base64: is followed by invalid base64"],
    ["[runner]\nhttp_port=1\n[handler]\npush_in_http_port=70000", "pushpin.conf:4: [handler] push_in_http_port: expected a port number (0-65535), got \"70000\""],
    ["[runner]\nhttp_port=1\n[handler]\nstats_format=xml", "pushpin.conf:4: [handler] stats_format: expected tnetstring or json, got \"xml\""],
    ["[global]\nport_offset=ten\n[runner]\nhttp_port=1", "pushpin.conf:2: [global] port_offset: expected a non-negative integer, got \"ten\""],
    ["[runner]\nhttp_port=", "pushpin.conf: no server ports configured: set [runner] http_port (or use --port)"],
    ["[runner]\nhttp_port=1\n\n\nbroken line", "pushpin.conf:5: expected key=value, [section] or a comment, got \"broken line\""]
  ])("%p", (text, message) => {
    const { error } = loadError(text)
    expect(error._tag).toBe("ConfigError")
    expect(error.message).toBe(message)
  })

  test("the error carries file and line", () => {
    const { error } = loadError("[runner]\nhttp_port=1\nclient_maxconn=lots")
    expect(error.file).toBe("pushpin.conf")
    expect(error.line).toBe(3)
  })
})

describe("warnings", () => {
  test("unknown keys warn; internal wiring keys are silent", () => {
    const { warnings } = load([
      "[global]",
      "stats_connection_ttl=120",
      "[runner]",
      "http_port=1",
      "condure_bin=condure",
      "frobnicate=yes",
      "[proxy]",
      "zurl_out_specs=ipc:///var/run/zurl/zurl-in",
      "updates_check=off",
      "[handler]",
      "proxy_inspect_specs=ipc://x",
      "[extras]",
      "thing=1"
    ].join("\n"))
    expect(messages(warnings)).toEqual(["pushpin.conf:6: unknown key [runner] frobnicate", "pushpin.conf:13: unknown key [extras] thing"])
  })

  test("[runner] rundir is deprecated but used", () => {
    const { settings, warnings } = load("[runner]\nrundir=/r\nhttp_port=1\n[handler]\nstats_spec=ipc://{rundir}/s\n")
    expect(settings.handler.statsSpec).toBe("ipc:///r/s")
    expect(messages(warnings)).toEqual(["pushpin.conf:2: [runner] rundir is deprecated; put rundir in [global]"])
  })

  test("unknown service names warn", () => {
    const { warnings } = load("[runner]\nhttp_port=1\nservices=condure,pushpin-proxy,nginx\n")
    expect(messages(warnings)).toEqual(["pushpin.conf:3: [runner] services: unknown service nginx; ignored"])
  })

  test("prometheus over ipc is not supported", () => {
    const { settings, warnings } = load("[runner]\nhttp_port=1\n[handler]\nprometheus_port=ipc:///tmp/prom\n")
    expect(settings.handler.prometheusPort).toBeUndefined()
    expect(messages(warnings)).toEqual(["pushpin.conf:4: [handler] prometheus_port: ipc:// endpoints are not supported; no Prometheus endpoint"])
  })
})

describe("mapServices", () => {
  test.each([
    [["condure", "pushpin-proxy", "pushpin-handler"], "condure → built-in connmgr; pushpin-proxy → built-in proxy; pushpin-handler → built-in handler", [], []],
    [["mongrel2", "m2adapter", "zurl", "pushpin-proxy", "pushpin-handler"], "mongrel2+m2adapter → built-in connmgr (Mongrel2 front end replaced); zurl → built-in origin client; pushpin-proxy → built-in proxy; pushpin-handler → built-in handler", [], []],
    [["connmgr", "proxy", "handler"], "connmgr → built-in connmgr; proxy → built-in proxy; handler → built-in handler", [], []],
    [["m2adapter", "proxy"], "m2adapter → built-in connmgr (Mongrel2 front end replaced); proxy → built-in proxy", ["handler is not listed in services; pushpin-ts runs its built-in handler anyway"], []],
    [[], "no services listed → built-in connmgr, proxy and handler", [
      "connmgr is not listed in services; pushpin-ts runs its built-in connmgr anyway",
      "proxy is not listed in services; pushpin-ts runs its built-in proxy anyway",
      "handler is not listed in services; pushpin-ts runs its built-in handler anyway"
    ], []],
    [["condure", "proxy", "handler", "varnish"], "condure → built-in connmgr; proxy → built-in proxy; handler → built-in handler", [], ["unknown service varnish; ignored"]]
  ] as const)("%p", (services, mapped, notes, warnings) => {
    expect(mapServices(services)).toEqual({ mapped, notes, warnings })
  })
})
