import { describe, expect, test } from "bun:test"
import { generateKeyPairSync } from "node:crypto"
import { join } from "node:path"
import { Result } from "effect"
import {
  DEFAULT_ROUTES_TEXT,
  loadRoutes,
  parseRouteLines,
  parseRoutes,
  RouteTable,
  tokenizeRouteLine
} from "../../src/config/routes.ts"
import { loadSettings } from "../../src/config/settings.ts"
import type { Route, Target } from "../../src/config/types.ts"
import { failure, run, tempDir } from "./helpers.ts"

/** The single route a line produces (and no warnings). */
const route = (line: string, baseDir?: string): Route => {
  const parsed = parseRoutes(line, "routes", baseDir === undefined ? undefined : { baseDir })
  expect(parsed.warnings).toEqual([])
  expect(parsed.routes).toHaveLength(1)
  const [only] = parsed.routes
  if (only === undefined) throw new Error("no route")
  return only
}
const warningsOf = (text: string) => parseRoutes(text, "routes").warnings.map((w) => w.message)

const origin = (host: string, port: number, extra: Partial<Extract<Target, { kind: "origin" }>> = {}): Target => ({
  kind: "origin",
  host,
  port,
  ssl: false,
  untrusted: false,
  trustConnectHost: false,
  insecure: false,
  hostHeader: undefined,
  subscriptions: [],
  overHttp: false,
  oneEvent: false,
  ...extra
})

describe("tokenizeRouteLine (Pushpin's routesfiletest cases)", () => {
  test.each([
    ["apple", [{ value: "apple", props: [] }]],
    ["apple banana", [{ value: "apple", props: [] }, { value: "banana", props: [] }]],
    ["  apple   banana  # comment", [{ value: "apple", props: [] }, { value: "banana", props: [] }]],
    [
      "apple,organic,type=gala,from=\"washington, \\\"usa\\\"\"",
      [{ value: "apple", props: [["organic", ""], ["type", "gala"], ["from", "washington, \"usa\""]] }]
    ],
    [
      "apple,organic banana cherry,type=bing",
      [{ value: "apple", props: [["organic", ""]] }, { value: "banana", props: [] }, { value: "cherry", props: [["type", "bing"]] }]
    ],
    [",organic", [{ value: "", props: [["organic", ""]] }]],
    ["type=gala", [{ value: "", props: [["type", "gala"]] }]],
    ["  id=x a:1", [{ value: "", props: [["id", "x"]] }, { value: "a:1", props: [] }]],
    ["a\"b c\"d e", [{ value: "ab cd", props: [] }, { value: "e", props: [] }]],
    ["x,p=\"a#b\" # c", [{ value: "x", props: [["p", "a#b"]] }]],
    ["x,p=\"back\\\\slash\"", [{ value: "x", props: [["p", "back\\slash"]] }]],
    ["# only a comment", []],
    ["", []]
  ] as const)("%p", (line, sections) => {
    expect(tokenizeRouteLine(line)).toEqual(Result.succeed(sections))
  })

  test.each([
    ["apple,organic,type=\"gala", "unterminated quoted section"],
    ["apple,type=\"ga\\la\"", "unexpected escape character: l"],
    ["apple,type=\"gala\\", "unterminated escape sequence"],
    ["apple,organic,", "expecting prop"],
    ["apple,,organic", "expecting prop"],
    ["apple,organic,=gala", "empty prop name"]
  ])("%p fails: %s", (line, message) => {
    expect(tokenizeRouteLine(line)).toEqual(Result.fail(message))
  })
})

describe("condition props", () => {
  test("a bare domain and a target", () => {
    expect(route("Example.COM localhost:8000")).toEqual({
      id: undefined,
      internalId: "example.com,*,*,*",
      domain: "example.com",
      proto: undefined,
      ssl: undefined,
      pathBeg: "",
      sigIss: undefined,
      sigKey: undefined,
      prefix: "",
      origHeaders: false,
      asHost: undefined,
      pathRem: 0,
      replaceBeg: undefined,
      headers: [],
      debug: false,
      autoCrossOrigin: false,
      jsonp: { mode: "extended", callbackParam: "callback", bodyParam: undefined, defaultCallback: undefined, defaultMethod: "GET" },
      session: false,
      sockjs: undefined,
      sockjsAsPath: undefined,
      noGrip: false,
      logLevel: undefined,
      targets: [origin("localhost", 8000)],
      source: "routes:1"
    })
  })

  test.each([
    ["*,proto=http", { proto: "http", internalId: "*,http,*,*" }],
    ["*,proto=ws", { proto: "ws", internalId: "*,ws,*,*" }],
    ["*,ssl=yes", { ssl: true, internalId: "*,*,ssl,*" }],
    ["*,ssl=no", { ssl: false, internalId: "*,*,no-ssl,*" }],
    ["*,path_beg=/api", { pathBeg: "/api", internalId: "*,*,*,/api" }],
    ["*,id=feed", { id: "feed", internalId: "*,*,*,*" }],
    ["*,sig_iss=me", { sigIss: "me" }],
    ["*,sig_key=secret", { sigKey: { kind: "secret", secret: new TextEncoder().encode("secret") } }],
    ["*,sig_key=base64:aGk=", { sigKey: { kind: "secret", secret: new TextEncoder().encode("hi") } }],
    ["*,prefix=feed-", { prefix: "feed-" }],
    ["*,orig_headers", { origHeaders: true }],
    ["*,as_host=example.com:8080", { asHost: "example.com:8080" }],
    ["*,path_rem=4", { pathRem: 4 }],
    ["*,path_beg=/old,replace_beg=/new", { pathBeg: "/old", replaceBeg: "/new", pathRem: 4 }],
    ["*,path_beg=/old,path_rem=1,replace_beg=", { replaceBeg: "", pathRem: 4 }],
    ["*,header=X-A:1,header=\"X-B:  two\",header=X-C:", { headers: [["X-A", "1"], ["X-B", "two"], ["X-C", ""]] }],
    ["*,debug", { debug: true }],
    ["*,aco", { autoCrossOrigin: true }],
    ["*,session", { session: true }],
    ["*,sockjs=/sockjs,sockjs_as_path=/ws", { sockjs: "/sockjs", sockjsAsPath: "/ws" }],
    ["*,no_grip", { noGrip: true }],
    ["*,log_level=3", { logLevel: 3 }],
    ["*,log_level=7", { logLevel: 4 }],
    ["*,proto=http,proto=ws", { proto: "ws" }],
    [
      "*,jsonp_mode=basic,jsonp_cb=cb,jsonp_body=b,jsonp_defcb=f",
      { jsonp: { mode: "basic", callbackParam: "cb", bodyParam: "b", defaultCallback: "f", defaultMethod: "POST" } }
    ],
    [
      "*,jsonp_mode=extended,jsonp_defmethod=PUT",
      { jsonp: { mode: "extended", callbackParam: "callback", bodyParam: undefined, defaultCallback: undefined, defaultMethod: "PUT" } }
    ],
    ["\"*\",prefix=\"a b,c\"", { prefix: "a b,c" }]
  ] as const)("%s", (condition, expected) => {
    expect(route(`${condition} origin:80`)).toMatchObject(expected)
  })

  test("sig_key=file: resolves against the routes file's directory", () => {
    const pem = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey.export({ format: "pem", type: "pkcs8" }).toString()
    const dir = tempDir({ "keys/route.pem": pem })
    expect(route("*,sig_key=file:keys/route.pem origin:80", dir).sigKey).toEqual({ kind: "pem", algorithm: "ES256", pem })
  })
})

describe("targets", () => {
  test.each([
    ["localhost:8000", origin("localhost", 8000)],
    ["10.0.0.5:80", origin("10.0.0.5", 80)],
    ["[::1]:8080", origin("::1", 8080)],
    ["[2001:db8::5]:443,ssl", origin("2001:db8::5", 443, { ssl: true })],
    ["test", { kind: "test" }],
    ["zhttp/tcp://127.0.0.1:10000", { kind: "zhttp", spec: "tcp://127.0.0.1:10000" }],
    ["zhttpreq/ipc:///tmp/req,ipc_file_mode=777", { kind: "zhttpreq", spec: "ipc:///tmp/req" }],
    [
      "api:443,ssl,untrusted,trust_connect_host,insecure,host=api.example.com",
      origin("api", 443, { ssl: true, untrusted: true, trustConnectHost: true, insecure: true, hostHeader: "api.example.com" })
    ],
    ["app:80,sub=news,sub=,sub=sports", origin("app", 80, { subscriptions: ["news", "sports"] })],
    ["app:80,over_http,one_event", origin("app", 80, { overHttp: true, oneEvent: true })]
  ] as const)("%s", (target, expected) => {
    expect(route(`* ${target}`).targets).toEqual([expected])
  })

  test("several targets are kept in order (failover)", () => {
    expect(route("*,id=feed 10.0.0.5:80 10.0.0.6:80 test").targets).toEqual([
      origin("10.0.0.5", 80),
      origin("10.0.0.6", 80),
      { kind: "test" }
    ])
  })
})

describe("bad lines are skipped with routes:LINE: message", () => {
  test.each([
    ["example.com", "routes:1: must specify condition and at least one target"],
    ["*,proto=tcp a:1", "routes:1: proto must be set to 'http' or 'ws'"],
    ["*,ssl=true a:1", "routes:1: ssl must be set to 'yes' or 'no'"],
    ["*,path_beg= a:1", "routes:1: path_beg cannot be empty"],
    ["*,jsonp_mode=weird a:1", "routes:1: jsonp_mode must be set to 'basic' or 'extended'"],
    ["*,header=NoColon a:1", "routes:1: header must use format 'name:value'"],
    ["*,header=:v a:1", "routes:1: header must use format 'name:value'"],
    ["*,path_rem=x a:1", "routes:1: path_rem must be a non-negative integer"],
    ["*,log_level=-1 a:1", "routes:1: log_level must be a non-negative integer"],
    ["* localhost", "routes:1: target bad format: \"localhost\""],
    ["* :80", "routes:1: target bad format: \":80\""],
    ["* [::1]80", "routes:1: target bad format: \"[::1]80\""],
    ["* zhttp/", "routes:1: target bad format: \"zhttp/\""],
    ["* a:0", "routes:1: target invalid port: \"a:0\""],
    ["* a:65536", "routes:1: target invalid port: \"a:65536\""],
    ["* a:http", "routes:1: target invalid port: \"a:http\""],
    ["* ::1:80", "routes:1: target bad format: \"::1:80\""],
    ["*,sig_key=base64:%% a:1", "routes:1: sig_key: base64: is followed by invalid base64"],
    ["* a:1,p=\"x", "routes:1: unterminated quoted section"],
    ["* a:1,p=\"\\x\"", "routes:1: unexpected escape character: x"],
    ["path_beg=/x a:1", "routes:1: condition has no domain or id"]
  ])("%p", (line, message) => {
    const parsed = parseRoutes(line, "routes")
    expect(parsed.routes).toEqual([])
    expect(parsed.warnings.map((w) => w.message)).toEqual([message])
  })

  test("good lines around a bad one still load, with the right line numbers", () => {
    const parsed = parseRoutes("# routes\n\na.com a:1\nb.com,proto=x b:1\nc.com c:1\n", "/etc/pushpin/routes")
    expect(parsed.routes.map((r) => [r.domain, r.source])).toEqual([["a.com", "/etc/pushpin/routes:3"], ["c.com", "/etc/pushpin/routes:5"]])
    expect(parsed.warnings).toEqual([
      { source: "/etc/pushpin/routes:4", message: "/etc/pushpin/routes:4: proto must be set to 'http' or 'ws'" }
    ])
  })

  test("a duplicate condition is skipped; the first one stays", () => {
    const parsed = parseRoutes("*,path_beg=/a first:1\n*,path_beg=/a second:1\nEXAMPLE.com x:1\nexample.com y:1\n", "routes")
    expect(parsed.routes.map((r) => r.targets)).toEqual([[origin("first", 1)], [origin("x", 1)]])
    expect(parsed.warnings.map((w) => w.message)).toEqual([
      "routes:2: skipping duplicate condition",
      "routes:4: skipping duplicate condition"
    ])
  })

  test("flags given a value and unknown props warn but keep the route", () => {
    const parsed = parseRoutes("*,debug=false,colour=blue a:1,ssl=no,speed=fast,client_cert=c.pem", "routes")
    expect(parsed.routes).toHaveLength(1)
    expect(parsed.routes[0]?.debug).toBe(true)
    expect(parsed.warnings.map((w) => w.message)).toEqual([
      "routes:1: debug is a flag; its value \"false\" is ignored",
      "routes:1: unknown condition prop colour; ignored",
      "routes:1: target prop ssl is a flag; its value \"no\" is ignored",
      "routes:1: unknown target prop speed; ignored",
      "routes:1: target prop client_cert is not supported by pushpin-ts; ignored"
    ])
  })

  test("a shared id keeps both routes and warns", () => {
    expect(warningsOf("a.com,id=x a:1\nb.com,id=x b:1")).toEqual(["routes:2: duplicate route id x: Pushpin-Route can select neither route"])
  })
})

describe("--route lines", () => {
  test("named --route #N", () => {
    const parsed = parseRouteLines(["* test", "bad", "api.example.com,path_beg=/ws,proto=ws localhost:8000,over_http"])
    expect(parsed.routes.map((r) => r.source)).toEqual(["--route #1", "--route #3"])
    expect(parsed.warnings.map((w) => w.message)).toEqual(["--route #2: must specify condition and at least one target"])
  })
})

describe("RouteTable.lookup", () => {
  const q = (host: string, path: string, isWebSocket = false, isTls = false) => ({ host, path, isWebSocket, isTls })
  const table = (text: string) => new RouteTable(parseRoutes(text, "routes").routes)
  const matched = (t: RouteTable, query: ReturnType<typeof q>) => {
    const found = t.lookup(query)
    return found._tag === "Matched" ? found.route.targets[0] : found
  }

  const specificity = [
    "*           any:1",
    "*,ssl=yes   ssl:1",
    "*,path_beg=/a       a:1",
    "*,path_beg=/a/b     ab:1",
    "*,path_beg=/a,ssl=no  a-plain:1",
    "*,proto=ws          ws:1",
    "*,proto=http,path_beg=/a  http-a:1"
  ]

  test.each([
    ["/", false, false, "any"],
    ["/", false, true, "ssl"],
    ["/x", true, false, "ws"],
    ["/a", true, false, "ws"],
    ["/a/b", false, false, "http-a"],
    ["/a/b", true, true, "ws"],
    ["/ab", false, false, "http-a"]
  ] as const)("path %s ws=%p tls=%p → %s", (path, ws, tls, expected) => {
    for (const lines of [specificity, specificity.toReversed()]) {
      expect(matched(table(lines.join("\n")), q("example.com", path, ws, tls))).toEqual(origin(expected, 1))
    }
  })

  test.each([
    ["/a/b/c", false, "ab"],
    ["/a/x", false, "a-plain"],
    ["/a/x", true, "a"],
    ["/a/b/c", true, "ab"]
  ] as const)("without proto: longer path_beg first, then ssl (path %s tls=%p → %s)", (path, tls, expected) => {
    const lines = specificity.filter((l) => !l.includes("proto"))
    for (const order of [lines, lines.toReversed()]) {
      expect(matched(table(order.join("\n")), q("example.com", path, false, tls))).toEqual(origin(expected, 1))
    }
  })

  test("a host with its own rules never falls back to *", () => {
    const t = table("api.example.com,path_beg=/v1 api:1\n* catchall:1")
    expect(matched(t, q("api.example.com", "/v1/users"))).toEqual(origin("api", 1))
    expect(t.lookup(q("api.example.com", "/v2/users"))).toEqual({ _tag: "NoRoute", host: "api.example.com" })
    expect(matched(t, q("other.example.com", "/v2"))).toEqual(origin("catchall", 1))
  })

  test("proto and ssl conditions on a host's only rule also leave it without a route", () => {
    const t = table("ws.example.com,proto=ws w:1\n* catchall:1")
    expect(t.lookup(q("ws.example.com", "/", false))).toEqual({ _tag: "NoRoute", host: "ws.example.com" })
  })

  test("no * rules and an unknown host: NoRoute", () => {
    expect(table("a.com a:1").lookup(q("b.com", "/"))).toEqual({ _tag: "NoRoute", host: "b.com" })
    expect(new RouteTable([]).lookup(q("b.com", "/"))).toEqual({ _tag: "NoRoute", host: "b.com" })
  })

  test("id-only routes are reachable only by id", () => {
    const t = table("id=hidden h:1\n* any:1")
    expect(matched(t, q("x", "/"))).toEqual(origin("any", 1))
    expect(t.findById("hidden")?.targets).toEqual([origin("h", 1)])
  })

  test("findById: explicit ids, generated ids, and shared ids", () => {
    const t = table("a.com,id=one a:1\nb.com,id=dup b:1\nc.com,id=dup c:1\nd.com,path_beg=/x d:1")
    expect(t.findById("one")?.domain).toBe("a.com")
    expect(t.findById("dup")).toBeUndefined()
    expect(t.findById("d.com,*,*,/x")?.domain).toBe("d.com")
    expect(t.findById("nope")).toBeUndefined()
  })
})

describe("loadRoutes", () => {
  const settingsIn = (files: Record<string, string>, configFile?: string) => {
    const cwd = tempDir(files)
    return { cwd, settings: run(loadSettings({ cwd, libdir: cwd, configFile })).settings }
  }

  test("--route lines replace the routes file", () => {
    const { settings } = settingsIn({ "pushpin.conf": "[runner]\nhttp_port=1\n", routes: "* fromfile:1\n" })
    const loaded = run(loadRoutes(settings, ["* fromcli:1"]))
    expect(loaded.routes.map((r) => [r.targets, r.source])).toEqual([[[origin("fromcli", 1)], "--route #1"]])
  })

  test("no config file and no routes file: * test", () => {
    const { settings } = settingsIn({})
    const loaded = run(loadRoutes(settings, []))
    expect(loaded.routes.map((r) => [r.domain, r.targets])).toEqual([["*", [{ kind: "test" }]]])
    expect(loaded).toEqual(parseRoutes(DEFAULT_ROUTES_TEXT, "built-in routes"))
  })

  test("the routes file next to pushpin.conf", () => {
    const { settings, cwd } = settingsIn({ "etc/pushpin.conf": "[runner]\nhttp_port=1\n[proxy]\nroutesfile=routes\n", "etc/routes": "\n*,proto=x a:1\n* a:1\n" }, "etc/pushpin.conf")
    const loaded = run(loadRoutes(settings, []))
    expect(settings.proxy.routesFile).toBe(join(cwd, "etc/routes"))
    expect(loaded.routes).toHaveLength(1)
    expect(loaded.warnings.map((w) => w.source)).toEqual([expect.stringMatching(/etc\/routes:2$/)])
  })

  test("a config file naming a missing routes file is an error", () => {
    const { settings, cwd } = settingsIn({ "pushpin.conf": "[runner]\nhttp_port=1\n[proxy]\nroutesfile=missing\n" })
    const error = failure(loadRoutes(settings, []))
    expect(error._tag).toBe("ConfigError")
    expect(error.message).toEndWith(`pushpin.conf: [proxy] routesfile: routes file ${join(cwd, "missing")} does not exist`)
  })
})
