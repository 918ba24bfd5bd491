/**
 * The routes file (Pushpin's `routes`, `src/proxy/routesfile.cpp` + `domainmap.cpp`) and the
 * table the proxy consults for every request.
 *
 * One route per line: `<condition>[,prop[=value]...] <target>[,prop[=value]...] [<target>...]`.
 * Sections are separated by spaces, props by commas, `#` starts a comment, and double quotes
 * protect spaces, commas and `#` (inside them only `\\` and `\"` are escapes). A line Pushpin
 * would reject is skipped with a `source:line: message` warning, never fatal, so one typo does
 * not take every other route down.
 */
import { existsSync, readFileSync } from "node:fs"
import { dirname } from "node:path"
import { Effect, Result } from "effect"
import { type ConfigError, configError, displayPath } from "./errors.ts"
import { parseSigningKey } from "./signingKey.ts"
import type { JsonpOptions, LogLevelNumber, Route, RouteLookup, RouteQuery, Settings, SigningKey, Target } from "./types.ts"

/** What Pushpin ships in its routes file; used when there is no config file and no routes file. */
export const DEFAULT_ROUTES_TEXT = "* test\n"

export interface RouteWarning {
  /** `routes:3` or `--route #1`. */
  readonly source: string
  /** Full text, `source: ...`. */
  readonly message: string
}

export interface ParsedRoutes {
  readonly routes: ReadonlyArray<Route>
  readonly warnings: ReadonlyArray<RouteWarning>
}

export interface ParseRoutesOptions {
  /** Directory `sig_key=file:` paths resolve against (the routes file's directory). */
  readonly baseDir?: string
}

// ---------------------------------------------------------------------------------------------
// Tokenizer

type Prop = readonly [name: string, value: string]

/** One space-separated section of a line: a domain or target, then its props in order. */
export interface RouteSection {
  readonly value: string
  readonly props: ReadonlyArray<Prop>
}

// Characters that end a plain run inside a section.
const DELIMITERS = "\", #"

const findDelimiter = (line: string, from: number): number => {
  for (let i = from; i < line.length; i++) {
    if (DELIMITERS.includes(line.charAt(i))) return i
  }
  return -1
}

/** Splits one line into sections with their props; error texts are Pushpin's. */
export const tokenizeRouteLine = (line: string): Result.Result<ReadonlyArray<RouteSection>, string> => {
  const sections: Array<{ readonly value: string; readonly props: Array<Prop> }> = []
  let index = 0
  let state: "separator" | "initial" | "prop" = "separator"
  for (;;) {
    if (state === "separator") {
      while (index < line.length && line.charAt(index) === " ") index++
      if (index >= line.length || line.charAt(index) === "#") return Result.succeed(sections)
      state = "initial"
    }
    const start = index
    let part = ""
    let at: number
    for (;;) {
      at = findDelimiter(line, index)
      if (at === -1 || line.charAt(at) !== "\"") break
      part += line.slice(index, at)
      let closed = false
      for (at++; at < line.length; at++) {
        const c = line.charAt(at)
        if (c === "\"") {
          closed = true
          break
        }
        if (c !== "\\") {
          part += c
          continue
        }
        at++
        if (at >= line.length) return Result.fail("unterminated escape sequence")
        const escaped = line.charAt(at)
        if (escaped !== "\\" && escaped !== "\"") return Result.fail(`unexpected escape character: ${escaped}`)
        part += escaped
      }
      if (!closed) return Result.fail("unterminated quoted section")
      index = at + 1
    }
    if (at === -1) at = line.length
    part += line.slice(index, at)

    if (state === "initial") {
      if (part.includes("=")) {
        // The condition has no domain: re-read the same text as its first prop.
        sections.push({ value: "", props: [] })
        index = start
        state = "prop"
        continue
      }
      sections.push({ value: part, props: [] })
    } else {
      if (part === "") return Result.fail("expecting prop")
      const eq = part.indexOf("=")
      const name = eq === -1 ? part : part.slice(0, eq)
      if (name === "") return Result.fail("empty prop name")
      sections[sections.length - 1]?.props.push([name, eq === -1 ? "" : part.slice(eq + 1)])
    }
    if (at < line.length && line.charAt(at) === ",") {
      at++
      state = "prop"
    } else {
      state = "separator"
    }
    index = at
  }
}

// ---------------------------------------------------------------------------------------------
// Lines → routes

const has = (props: ReadonlyArray<Prop>, name: string): boolean => props.some(([n]) => n === name)
/** A repeated single-valued prop keeps its last value, as Pushpin's QMultiHash::value does. */
const last = (props: ReadonlyArray<Prop>, name: string): string | undefined => props.findLast(([n]) => n === name)?.[1]
const all = (props: ReadonlyArray<Prop>, name: string): ReadonlyArray<string> =>
  props.filter(([n]) => n === name).map(([, v]) => v)
const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value === "" ? undefined : value)

// Pushpin turns these on by their presence and ignores any value, so `debug=false` enables debug.
const CONDITION_FLAGS = new Set(["orig_headers", "debug", "aco", "session", "no_grip"])
const CONDITION_VALUES = new Set([
  "proto", "ssl", "id", "path_beg", "sig_iss", "sig_key", "prefix", "as_host", "path_rem", "replace_beg",
  "jsonp_mode", "jsonp_cb", "jsonp_body", "jsonp_defcb", "jsonp_defmethod", "sockjs", "sockjs_as_path",
  "header", "log_level"
])
const TARGET_FLAGS = new Set(["ssl", "untrusted", "trust_connect_host", "insecure", "over_http", "one_event"])
const TARGET_VALUES = new Set(["host", "sub", "ipc_file_mode"])
// Mutual TLS to origins (Pushpin 2.0) is not implemented: say so instead of silently connecting
// without the certificate.
const TARGET_UNSUPPORTED = new Set(["client_cert", "client_key"])

const MAX_LOG_LEVEL: LogLevelNumber = 4

interface LineContext {
  readonly source: string
  readonly baseDir: string
  readonly warn: (text: string) => void
}

/** The part of a target before its props; undefined after warning. */
const parseTarget = (section: RouteSection, ctx: LineContext): Target | undefined => {
  const { value, props } = section
  for (const [name, propValue] of props) {
    if (TARGET_UNSUPPORTED.has(name)) ctx.warn(`target prop ${name} is not supported by pushpin-ts; ignored`)
    else if (TARGET_FLAGS.has(name) && propValue !== "") ctx.warn(`target prop ${name} is a flag; its value "${propValue}" is ignored`)
    else if (!TARGET_FLAGS.has(name) && !TARGET_VALUES.has(name)) ctx.warn(`unknown target prop ${name}; ignored`)
  }
  if (value === "test") return { kind: "test" }
  for (const kind of ["zhttp", "zhttpreq"] as const) {
    if (value.startsWith(`${kind}/`)) {
      const spec = value.slice(kind.length + 1)
      if (spec === "") break
      return { kind, spec }
    }
  }

  // `[ipv6]:port` or `host:port`.
  const bracketed = value.startsWith("[")
  const separator = bracketed ? value.indexOf("]:") : value.indexOf(":")
  const host = separator === -1 ? "" : value.slice(bracketed ? 1 : 0, separator)
  const portText = value.slice(separator + (bracketed ? 2 : 1))
  // Pushpin would accept ":80" and then fail every connect; refuse it here instead.
  if (host === "") {
    ctx.warn(`target bad format: "${value}"`)
    return undefined
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0
  if (port < 1 || port > 65535) {
    ctx.warn(`target invalid port: "${value}"`)
    return undefined
  }
  return {
    kind: "origin",
    host,
    port,
    ssl: has(props, "ssl"),
    untrusted: has(props, "untrusted"),
    trustConnectHost: has(props, "trust_connect_host"),
    insecure: has(props, "insecure"),
    hostHeader: nonEmpty(last(props, "host")),
    subscriptions: all(props, "sub").filter((s) => s !== ""),
    overHttp: has(props, "over_http"),
    oneEvent: has(props, "one_event")
  }
}

const generatedId = (domain: string | undefined, proto: Route["proto"], ssl: boolean | undefined, pathBeg: string) =>
  // Pushpin writes "ssl" for ssl=no and "no-ssl" for ssl=yes (a slip in idFromCondition); we
  // write what the condition says.
  [domain ?? "*", proto ?? "*", ssl === undefined ? "*" : ssl ? "ssl" : "no-ssl", pathBeg === "" ? "*" : pathBeg].join(",")

/** One non-blank line → a route, or undefined after warning. */
const parseRouteLine = (sections: ReadonlyArray<RouteSection>, ctx: LineContext): Route | undefined => {
  const [condition, ...targetSections] = sections
  if (condition === undefined || targetSections.length === 0) {
    ctx.warn("must specify condition and at least one target")
    return undefined
  }
  const { props } = condition
  for (const [name, value] of props) {
    if (CONDITION_FLAGS.has(name) && value !== "") ctx.warn(`${name} is a flag; its value "${value}" is ignored`)
    else if (!CONDITION_FLAGS.has(name) && !CONDITION_VALUES.has(name)) ctx.warn(`unknown condition prop ${name}; ignored`)
  }

  const domain = condition.value === "" ? undefined : condition.value.toLowerCase()

  const protoText = last(props, "proto")
  if (protoText !== undefined && protoText !== "http" && protoText !== "ws") {
    ctx.warn("proto must be set to 'http' or 'ws'")
    return undefined
  }
  const sslText = last(props, "ssl")
  if (sslText !== undefined && sslText !== "yes" && sslText !== "no") {
    ctx.warn("ssl must be set to 'yes' or 'no'")
    return undefined
  }
  const ssl = sslText === undefined ? undefined : sslText === "yes"
  const pathBeg = last(props, "path_beg")
  if (pathBeg === "") {
    ctx.warn("path_beg cannot be empty")
    return undefined
  }

  let sigKey: SigningKey | undefined
  const sigKeyText = last(props, "sig_key")
  if (sigKeyText !== undefined) {
    const parsed = parseSigningKey(sigKeyText, ctx.baseDir, "sign")
    if (Result.isFailure(parsed)) {
      ctx.warn(`sig_key: ${parsed.failure}`)
      return undefined
    }
    sigKey = parsed.success
  }

  // Pushpin reads path_rem with toInt(), so junk silently became 0; refuse it instead.
  let pathRem = 0
  const pathRemText = last(props, "path_rem")
  if (pathRemText !== undefined) {
    if (!/^\d+$/.test(pathRemText)) {
      ctx.warn("path_rem must be a non-negative integer")
      return undefined
    }
    pathRem = Number(pathRemText)
  }
  const replaceBeg = last(props, "replace_beg")
  // replace_beg swaps exactly the path_beg prefix, so it overrides path_rem.
  if (replaceBeg !== undefined) pathRem = (pathBeg ?? "").length

  const jsonpModeText = last(props, "jsonp_mode")
  if (jsonpModeText !== undefined && jsonpModeText !== "basic" && jsonpModeText !== "extended") {
    ctx.warn("jsonp_mode must be set to 'basic' or 'extended'")
    return undefined
  }
  const jsonpMode = jsonpModeText ?? "extended"
  const jsonp: JsonpOptions = {
    mode: jsonpMode,
    callbackParam: nonEmpty(last(props, "jsonp_cb")) ?? "callback",
    bodyParam: nonEmpty(last(props, "jsonp_body")),
    defaultCallback: nonEmpty(last(props, "jsonp_defcb")),
    defaultMethod: nonEmpty(last(props, "jsonp_defmethod")) ?? (jsonpMode === "basic" ? "POST" : "GET")
  }

  const headers: Array<readonly [string, string]> = []
  for (const header of all(props, "header")) {
    const colon = header.indexOf(":")
    if (colon < 1) {
      ctx.warn("header must use format 'name:value'")
      return undefined
    }
    headers.push([header.slice(0, colon), header.slice(colon + 1).replace(/^ +/, "")])
  }

  let logLevel: LogLevelNumber | undefined
  const logLevelText = last(props, "log_level")
  if (logLevelText !== undefined) {
    if (!/^\d+$/.test(logLevelText)) {
      ctx.warn("log_level must be a non-negative integer")
      return undefined
    }
    logLevel = Math.min(Number(logLevelText), MAX_LOG_LEVEL) as LogLevelNumber
  }

  const targets: Array<Target> = []
  for (const section of targetSections) {
    const target = parseTarget(section, ctx)
    if (target === undefined) return undefined
    targets.push(target)
  }

  const proto = protoText
  return {
    id: last(props, "id"),
    internalId: generatedId(domain, proto, ssl, pathBeg ?? ""),
    domain,
    proto,
    ssl,
    pathBeg: pathBeg ?? "",
    sigIss: last(props, "sig_iss"),
    sigKey,
    prefix: last(props, "prefix") ?? "",
    origHeaders: has(props, "orig_headers"),
    asHost: nonEmpty(last(props, "as_host")),
    pathRem,
    replaceBeg,
    headers,
    debug: has(props, "debug"),
    autoCrossOrigin: has(props, "aco"),
    jsonp,
    session: has(props, "session"),
    sockjs: nonEmpty(last(props, "sockjs")),
    sockjsAsPath: nonEmpty(last(props, "sockjs_as_path")),
    noGrip: has(props, "no_grip"),
    logLevel,
    targets,
    source: ctx.source
  }
}

interface SourceLine {
  readonly text: string
  readonly source: string
}

const parseSourceLines = (lines: ReadonlyArray<SourceLine>, baseDir: string): ParsedRoutes => {
  const routes: Array<Route> = []
  const warnings: Array<RouteWarning> = []
  const conditions = new Set<string>()
  const ids = new Set<string>()
  for (const { text, source } of lines) {
    const warn = (message: string) => warnings.push({ source, message: `${source}: ${message}` })
    const sections = tokenizeRouteLine(text)
    if (Result.isFailure(sections)) {
      warn(sections.failure)
      continue
    }
    if (sections.success.length === 0) continue
    const route = parseRouteLine(sections.success, { source, baseDir, warn })
    if (route === undefined) continue

    if (route.domain === undefined && route.id === undefined) {
      // Reachable only through Pushpin-Route, which needs an id to name it.
      warn("condition has no domain or id")
      continue
    }
    if (route.domain !== undefined) {
      const condition = [route.domain, route.proto, route.ssl, route.pathBeg].join("\u0000")
      if (conditions.has(condition)) {
        warn("skipping duplicate condition")
        continue
      }
      conditions.add(condition)
    }
    if (route.id !== undefined) {
      if (ids.has(route.id)) warn(`duplicate route id ${route.id}: Pushpin-Route can select neither route`)
      ids.add(route.id)
    }
    routes.push(route)
  }
  return { routes, warnings }
}

/** Parses routes-file text; `sourceName` prefixes messages (`routes` → `routes:3: ...`). */
export const parseRoutes = (text: string, sourceName: string, options?: ParseRoutesOptions): ParsedRoutes =>
  parseSourceLines(
    text.split(/\r?\n/).map((line, index) => ({ text: line, source: `${sourceName}:${index + 1}` })),
    options?.baseDir ?? process.cwd()
  )

/** `--route` lines, each named `--route #N` in messages. */
export const parseRouteLines = (lines: ReadonlyArray<string>, options?: ParseRoutesOptions): ParsedRoutes =>
  parseSourceLines(
    lines.map((line, index) => ({ text: line, source: `--route #${index + 1}` })),
    options?.baseDir ?? process.cwd()
  )

// ---------------------------------------------------------------------------------------------
// Lookup

// Pushpin picks the most specific matching rule: a proto beats none, then the longer path_beg,
// then an ssl condition beats none. Its pairwise fold lets a shorter ssl rule beat a longer
// non-ssl one depending on file order; we sort once, strictly in that priority, so the order
// of lines never matters. Two distinct matching rules can never tie (same proto, ssl and
// path_beg length on one path means the same condition), so the first match in this order wins.
const bySpecificity = (a: Route, b: Route): number =>
  Number(b.proto !== undefined) - Number(a.proto !== undefined) ||
  b.pathBeg.length - a.pathBeg.length ||
  Number(b.ssl !== undefined) - Number(a.ssl !== undefined)

interface Candidate {
  readonly route: Route
  readonly result: RouteLookup
}

export class RouteTable {
  private readonly byDomain = new Map<string, ReadonlyArray<Candidate>>()
  // null marks an id used by more than one route: Pushpin-Route cannot pick either.
  private readonly byId = new Map<string, Route | null>()

  constructor(readonly routes: ReadonlyArray<Route>) {
    const grouped = new Map<string, Array<Route>>()
    for (const route of routes) {
      if (route.domain !== undefined) {
        const group = grouped.get(route.domain) ?? []
        group.push(route)
        grouped.set(route.domain, group)
      }
      // Like Pushpin, a route without an explicit id can still be selected by its generated one.
      const key = route.id ?? route.internalId
      this.byId.set(key, this.byId.has(key) ? null : route)
    }
    for (const [domain, group] of grouped) {
      this.byDomain.set(
        domain,
        group.toSorted(bySpecificity).map((route) => ({ route, result: { _tag: "Matched", route } }))
      )
    }
  }

  /**
   * Exact host rules, else the `*` rules. A host that has rules of its own never falls back to
   * `*`, even when none of them match (Pushpin's DomainMap::entry): the answer is NoRoute.
   */
  lookup(query: RouteQuery): RouteLookup {
    const candidates = this.byDomain.get(query.host) ?? this.byDomain.get("*")
    if (candidates !== undefined) {
      for (const { route, result } of candidates) {
        if (
          (route.proto === undefined || (route.proto === "ws") === query.isWebSocket) &&
          (route.ssl === undefined || route.ssl === query.isTls) &&
          query.path.startsWith(route.pathBeg)
        ) return result
      }
    }
    return { _tag: "NoRoute", host: query.host }
  }

  /** For `Pushpin-Route`: the route with this id, unless the id is shared. */
  findById(id: string): Route | undefined {
    return this.byId.get(id) ?? undefined
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

/**
 * `--route` lines win over the file. With no config file and no routes file, Pushpin's shipped
 * `* test` applies. A config file naming a routes file that does not exist is an error: Pushpin
 * would log a warning and answer every request with 502, which looks like a proxy fault rather
 * than the missing file it is.
 */
export const loadRoutes = (settings: Settings, cliRoutes: ReadonlyArray<string>): Effect.Effect<ParsedRoutes, ConfigError> =>
  Effect.suspend(() => {
    const cwd = process.cwd()
    if (cliRoutes.length > 0) return Effect.succeed(parseRouteLines(cliRoutes, { baseDir: cwd }))
    const file = settings.proxy.routesFile
    if (!existsSync(file)) {
      if (settings.configFile === undefined) return Effect.succeed(parseRoutes(DEFAULT_ROUTES_TEXT, "built-in routes"))
      return Effect.fail(
        configError(
          displayPath(settings.configFile, cwd),
          undefined,
          `[proxy] routesfile: routes file ${file} does not exist`
        )
      )
    }
    return Effect.try({
      try: () => readFileSync(file, "utf8"),
      catch: (cause) =>
        configError(displayPath(file, cwd), undefined, `cannot read routes file (${cause instanceof Error ? cause.message : String(cause)})`)
    }).pipe(
      Effect.map((text) => parseRoutes(text, displayPath(file, cwd), { baseDir: dirname(file) }))
    )
  })
