/**
 * Decoders for single pushpin.conf values. Each one names what it expects, so a bad value
 * produces `expected <what>, got "<value>"` at the key's file and line.
 */
import { Option, Schema, SchemaTransformation } from "effect"
import type { ListenAddress, LocalPort, LogLevelNumber, LogLevelSpec, SetXForwardedProtocol, XForwardedForRules } from "./types.ts"

export interface ValueCodec<A> {
  /** Completes "expected ...". */
  readonly expected: string
  readonly decode: (raw: string) => Option.Option<A>
}

const fromSchema = <A>(schema: Schema.Codec<A, string>, expected: string): ValueCodec<A> => ({
  expected,
  decode: Schema.decodeUnknownOption(schema)
})

// Digits only: JavaScript's Number() would also take "", "0x10", "1e3" and " 12".
const integerFrom = (check: Schema.Int) =>
  Schema.String.check(Schema.isPattern(/^[+-]?\d+$/)).pipe(Schema.decodeTo(check, SchemaTransformation.numberFromString))

export const integer: ValueCodec<number> = fromSchema(integerFrom(Schema.Int), "an integer")
export const nonNegativeInt: ValueCodec<number> = fromSchema(
  integerFrom(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))),
  "a non-negative integer"
)
export const positiveInt: ValueCodec<number> = fromSchema(
  integerFrom(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
  "a positive integer"
)
export const port: ValueCodec<number> = fromSchema(
  integerFrom(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 65535 }))),
  "a port number (0-65535)"
)

// Pushpin's C++ services read booleans with Qt's toBool (anything but "", "0" and "false" is
// true, so "no" means yes); its Rust code uses the config crate, which takes these words. We take
// the Rust set and reject the rest, so a typo is an error instead of a silent "true".
const TRUE_WORDS = ["true", "yes", "on", "1"] as const
const FALSE_WORDS = ["false", "no", "off", "0"] as const
const BooleanWord = Schema.Literals([...TRUE_WORDS, ...FALSE_WORDS])
const decodeBooleanWord = Schema.decodeUnknownOption(
  BooleanWord.pipe(
    Schema.decodeTo(
      Schema.Boolean,
      SchemaTransformation.transform({
        decode: (word) => (TRUE_WORDS as ReadonlyArray<string>).includes(word),
        encode: (b) => (b ? "true" : "false")
      })
    )
  )
)
export const boolean: ValueCodec<boolean> = {
  expected: "true or false",
  decode: (raw) => decodeBooleanWord(raw.toLowerCase())
}

/** Comma-separated list, items trimmed, empty items dropped (`http_port=7999,` is one port). */
export const splitList = (raw: string): ReadonlyArray<string> =>
  raw.split(",").map((item) => item.trim()).filter((item) => item !== "")

export const list: ValueCodec<ReadonlyArray<string>> = {
  expected: "a comma-separated list",
  decode: (raw) => Option.some(splitList(raw))
}

/** `[addr:]port`; IPv6 in brackets (`[::]:7999`). A bare port listens on every IPv4 address. */
export const parseListenAddress = (text: string): ListenAddress | undefined => {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]:|([^:[\]\s]+):)?(\d+)$/.exec(text.trim())
  if (match === null) return undefined
  const portNumber = Option.getOrUndefined(port.decode(match[3] ?? ""))
  if (portNumber === undefined) return undefined
  return { host: match[1] ?? match[2] ?? "0.0.0.0", port: portNumber }
}

export const listenAddress: ValueCodec<ListenAddress> = {
  expected: "[addr:]port (e.g. 7999, 127.0.0.1:7999 or [::]:7999)",
  decode: (raw) => Option.fromUndefinedOr(parseListenAddress(raw))
}

export const listenAddresses: ValueCodec<ReadonlyArray<ListenAddress>> = {
  expected: "a comma-separated list of [addr:]port (e.g. 7999, 127.0.0.1:7999 or [::]:7999)",
  decode: (raw) => {
    const out: Array<ListenAddress> = []
    for (const item of splitList(raw)) {
      const address = parseListenAddress(item)
      if (address === undefined) return Option.none()
      out.push(address)
    }
    return Option.some(out)
  }
}

/** The query parameters a `local_ports` entry may carry (Pushpin 1.37's runner reads these three). */
const LOCAL_PORT_PARAMS: ReadonlySet<string> = new Set(["mode", "user", "group"])

export type LocalPortParse =
  | { readonly ok: true; readonly port: LocalPort; readonly ignoredParams: ReadonlyArray<string> }
  | { readonly ok: false; readonly reason: string }

/**
 * `path[?mode=<octal>&user=<name>&group=<name>]`. The path is taken literally, as Pushpin 1.36
 * did with the whole value; only the query is decoded. Parameters other than the three are
 * reported back (Pushpin ignores them silently; a typo deserves a warning). An empty `user=` or
 * `group=` means unset, as in Pushpin.
 */
export const parseLocalPort = (text: string): LocalPortParse => {
  const queryStart = text.indexOf("?")
  const path = queryStart < 0 ? text : text.slice(0, queryStart)
  if (path === "") return { ok: false, reason: `no socket path in ${JSON.stringify(text)}` }
  const params = new URLSearchParams(queryStart < 0 ? "" : text.slice(queryStart + 1))
  let mode: number | undefined
  const modeText = params.get("mode")
  if (modeText !== null) {
    // At most four octal digits (setuid/setgid/sticky, then rwx for owner, group, others),
    // after any leading zeros: 660, 0660 and 00660 are the same mode.
    if (!/^0*[0-7]{1,4}$/.test(modeText)) {
      return { ok: false, reason: `mode: expected octal permissions (e.g. 660), got ${JSON.stringify(modeText)}` }
    }
    mode = Number.parseInt(modeText, 8)
  }
  const nonEmpty = (value: string | null) => (value === null || value === "" ? undefined : value)
  return {
    ok: true,
    port: { path, mode, user: nonEmpty(params.get("user")), group: nonEmpty(params.get("group")) },
    ignoredParams: [...new Set(params.keys())].filter((name) => !LOCAL_PORT_PARAMS.has(name))
  }
}

// Service names as the legacy runner spells them, folded onto the names pushpin-ts logs under.
const LOG_SERVICE_ALIASES: ReadonlyMap<string, string> = new Map([
  ["pushpin-proxy", "proxy"],
  ["pushpin-handler", "handler"],
  ["condure", "connmgr"]
])

const MAX_LOG_LEVEL: LogLevelNumber = 4

const logLevelNumber = (text: string): LogLevelNumber | undefined => {
  const n = Option.getOrUndefined(nonNegativeInt.decode(text.trim()))
  // Pushpin accepts any level >= 0; everything above trace is trace.
  return n === undefined ? undefined : (Math.min(n, MAX_LOG_LEVEL) as LogLevelNumber)
}

/** `log_level` / `--loglevel`: `N` or `N,service:N,...`. Without a bare `N` the default is 2 (info). */
export const parseLogLevelSpec = (text: string): LogLevelSpec | undefined => {
  let level: LogLevelNumber = 2
  const perService = new Map<string, LogLevelNumber>()
  for (const part of text.split(",").map((p) => p.trim())) {
    if (part === "") return undefined
    const colon = part.indexOf(":")
    const n = logLevelNumber(colon === -1 ? part : part.slice(colon + 1))
    if (n === undefined) return undefined
    if (colon === -1) {
      level = n
      continue
    }
    const name = part.slice(0, colon).trim()
    if (name === "") return undefined
    perService.set(LOG_SERVICE_ALIASES.get(name) ?? name, n)
  }
  return { level, perService }
}

export const logLevelSpec: ValueCodec<LogLevelSpec> = {
  expected: "a log level N or N,service:N,... (0 error, 1 warn, 2 info, 3 debug, 4 trace)",
  decode: (raw) => Option.fromUndefinedOr(parseLogLevelSpec(raw))
}

// Pushpin sets the header only for "true" and "proto-only"; any other text means "don't".
// "false" and "none" are the spellings we accept for that; anything else is likely a typo.
export const setXForwardedProtocol: ValueCodec<SetXForwardedProtocol> = fromSchema(
  Schema.Literals(["true", "proto-only", "false", "none"]).pipe(
    Schema.decodeTo(
      Schema.Literals(["true", "proto-only", "none"]),
      SchemaTransformation.transform({
        decode: (word) => (word === "false" ? "none" : word),
        encode: (value) => value
      })
    )
  ),
  "true, proto-only or false"
)

export const statsFormat: ValueCodec<"tnetstring" | "json"> = fromSchema(
  Schema.Literals(["tnetstring", "json"]),
  "tnetstring or json"
)

export const NO_XFF_RULES: XForwardedForRules = { truncate: undefined, append: false }

/** `x_forwarded_for`: `truncate:N` and/or `append`, comma-separated. */
export const xForwardedForRules: ValueCodec<XForwardedForRules> = {
  expected: "truncate:N and/or append (e.g. \"truncate:0,append\")",
  decode: (raw) => {
    let truncate: number | undefined
    let append = false
    for (const item of splitList(raw)) {
      if (item === "append") {
        append = true
      } else if (item.startsWith("truncate:")) {
        const n = Option.getOrUndefined(nonNegativeInt.decode(item.slice("truncate:".length)))
        if (n === undefined) return Option.none()
        truncate = n
      } else {
        return Option.none()
      }
    }
    return Option.some({ truncate, append })
  }
}
