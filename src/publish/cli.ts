/**
 * `pushpin-ts publish`: Pushpin's `pushpin-publish` command line.
 *
 * Same flags, item, texts and exit codes as pushpin-publish (`src/bin/pushpin-publish.rs`,
 * `src/publish/mod.rs`): the item carries http-response, http-stream and ws-message formats,
 * goes as `{"items":[item]}` to `<spec>/publish/` for an http(s) spec, or as a tnetstring over a
 * ZeroMQ PUSH connection for anything else. "Published" on success; "Error: ..." and exit 1
 * otherwise; argument errors are clap-style with exit 2.
 *
 * Beyond pushpin-publish: a GRIP URL (`--spec` or `GRIP_URL`) may carry credentials as the GRIP
 * client libraries read them (`user:pass@` → Basic; `?iss=&key=` → HS256 JWT Bearer; `?key=`
 * alone → Bearer key), a trailing `/` on the URL is not doubled, and connection errors name the
 * URL.
 */
import { readFileSync } from "node:fs"
import { VERSION } from "../runner/runner.ts"
import { encodeJwt, GRIP_SIG_LIFETIME_SECONDS } from "../grip/jwt.ts"
import { connectErrorText, publishZmq } from "./zmq-push.ts"

const PROGRAM = "pushpin-ts publish"
const DEFAULT_SPEC = "http://localhost:5561"
const USAGE_LINE = `Usage: ${PROGRAM} [OPTIONS] <channel> [content]`

export const PUBLISH_HELP = `Publish messages to Pushpin (pushpin-ts's pushpin-publish)

${USAGE_LINE}

Arguments:
  <channel>  Channel to send to
  [content]  Content to use for HTTP body and WebSocket message
             (@file: the file's bytes, sent as they are, no newline added)

Options:
      --id <id>               Payload ID
      --prev-id <id>          Previous payload ID
      --sender <sender>       Sender meta value
      --code <code>           HTTP response code to use [default: 200]
  -H, --header <"K: V">       Add HTTP response header (repeatable)
  -M, --meta <"K=V">          Add meta variable (repeatable)
      --hint                  Send hint instead of content
      --close                 Close streaming and WebSocket connections
      --patch                 Content is JSON patch
      --no-seq                Bypass sequencing buffer
      --no-eol                Don't add newline to HTTP payloads
      --spec <spec>           GRIP URL or ZeroMQ PUSH spec
                              [default: $GRIP_URL, else ${DEFAULT_SPEC}]
  -u, --user <user:pass>      Authenticate using basic auth (https only)
  -B, --bearer <token>        Authenticate using bearer auth (https only)
  -h, --help                  Print help
  -V, --version               Print version

An http(s) spec is the publish API's base: the item is POSTed to <spec>/publish/. As with the
GRIP client libraries, it may carry credentials: http(s)://user:pass@host (Basic auth), or
?iss=<issuer>&key=<key> (a JWT signed with the key; key may be base64:<...>), or ?key=<token>
alone (Bearer token). Any other spec is a ZeroMQ PUSH endpoint, tcp://host:port or ipc://path
(Pushpin's push_in_spec, e.g. tcp://localhost:5560).
`

// ---------------------------------------------------------------------------------------------
// Arguments

/** What the command line said, after clap-level parsing (values not yet validated). */
export interface PublishArgs {
  readonly channel: string
  readonly content: string | undefined
  readonly id: string
  readonly prevId: string
  readonly sender: string
  readonly code: string
  readonly headers: ReadonlyArray<string>
  readonly meta: ReadonlyArray<string>
  readonly hint: boolean
  readonly close: boolean
  readonly patch: boolean
  readonly noSeq: boolean
  readonly noEol: boolean
  readonly spec: string
  readonly user: string | undefined
  readonly bearer: string | undefined
}

export type ParsedArgs =
  | { readonly _tag: "Help" }
  | { readonly _tag: "Version" }
  | { readonly _tag: "UsageError"; readonly message: string }
  | { readonly _tag: "Args"; readonly args: PublishArgs }

type ValueOption = "id" | "prev-id" | "sender" | "code" | "header" | "meta" | "spec" | "user" | "bearer"
type FlagOption = "hint" | "close" | "patch" | "no-seq" | "no-eol"

const VALUE_OPTIONS: Readonly<Record<ValueOption, { readonly display: string; readonly repeatable: boolean }>> = {
  id: { display: "--id <id>", repeatable: false },
  "prev-id": { display: "--prev-id <id>", repeatable: false },
  sender: { display: "--sender <sender>", repeatable: false },
  code: { display: "--code <code>", repeatable: false },
  header: { display: "--header <\"K: V\">", repeatable: true },
  meta: { display: "--meta <\"K=V\">", repeatable: true },
  spec: { display: "--spec <spec>", repeatable: false },
  user: { display: "--user <user:pass>", repeatable: false },
  bearer: { display: "--bearer <token>", repeatable: false }
}
const FLAG_OPTIONS: ReadonlySet<string> = new Set<FlagOption>(["hint", "close", "patch", "no-seq", "no-eol"])
const SHORT_VALUE_OPTIONS: Readonly<Record<string, ValueOption>> = { H: "header", M: "meta", u: "user", B: "bearer" }

const isValueOption = (name: string): name is ValueOption => Object.hasOwn(VALUE_OPTIONS, name)

const usageError = (message: string): ParsedArgs => ({
  _tag: "UsageError",
  message: `error: ${message}\n\n${USAGE_LINE}\n\nFor more information, try '--help'.\n`
})

export type PublishEnv = Readonly<Record<string, string | undefined>>

/** Parses the command line as pushpin-publish's clap definition does. */
export const parsePublishArgs = (argv: ReadonlyArray<string>, env: PublishEnv = {}): ParsedArgs => {
  const values = new Map<ValueOption, Array<string>>()
  const flags = new Set<string>()
  const positionals: Array<string> = []
  let optionsEnded = false

  // A repeated option: -H/-M add up; for the others the last one wins (as in pushpin-publish 1.36;
  // the clap 4 build would refuse the repetition instead).
  const addValue = (name: ValueOption, value: string): void => {
    const existing = values.get(name)
    if (existing === undefined || !VALUE_OPTIONS[name].repeatable) values.set(name, [value])
    else existing.push(value)
  }

  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? ""
    if (optionsEnded || arg === "-" || !arg.startsWith("-")) {
      if (positionals.length >= 2) return usageError(`unexpected argument '${arg}' found`)
      positionals.push(arg)
      continue
    }
    if (arg === "--") {
      optionsEnded = true
      continue
    }
    if (arg.startsWith("--")) {
      const equals = arg.indexOf("=")
      const name = equals === -1 ? arg.slice(2) : arg.slice(2, equals)
      const inline = equals === -1 ? undefined : arg.slice(equals + 1)
      if (name === "help") return { _tag: "Help" }
      if (name === "version") return { _tag: "Version" }
      if (FLAG_OPTIONS.has(name)) {
        if (inline !== undefined) return usageError(`unexpected value '${inline}' for '--${name}' found; no more were expected`)
        flags.add(name)
        continue
      }
      if (isValueOption(name)) {
        let value = inline
        if (value === undefined) {
          value = argv[index + 1]
          if (value === undefined) return usageError(`a value is required for '${VALUE_OPTIONS[name].display}' but none was supplied`)
          index++
        }
        addValue(name, value)
        continue
      }
      return usageError(`unexpected argument '${arg}' found`)
    }
    // A cluster of short options: -h, -V, or -H/-M/-u/-B with the value attached or next.
    for (let at = 1; at < arg.length; at++) {
      const letter = arg[at] ?? ""
      if (letter === "h") return { _tag: "Help" }
      if (letter === "V") return { _tag: "Version" }
      const name = SHORT_VALUE_OPTIONS[letter]
      if (name === undefined) return usageError(`unexpected argument '-${letter}' found`)
      let value: string | undefined = arg.slice(at + 1)
      if (value.startsWith("=")) value = value.slice(1)
      if (value === "") {
        value = argv[index + 1]
        if (value === undefined) return usageError(`a value is required for '-${letter}, ${VALUE_OPTIONS[name].display}' but none was supplied`)
        index++
      }
      addValue(name, value)
      break
    }
  }

  const channel = positionals[0]
  if (channel === undefined) return usageError("the following required arguments were not provided:\n  <channel>")
  const single = (name: ValueOption): string | undefined => values.get(name)?.[0]
  const gripUrl = env["GRIP_URL"]
  return {
    _tag: "Args",
    args: {
      channel,
      content: positionals[1],
      id: single("id") ?? "",
      prevId: single("prev-id") ?? "",
      sender: single("sender") ?? "",
      code: single("code") ?? "200",
      headers: values.get("header") ?? [],
      meta: values.get("meta") ?? [],
      hint: flags.has("hint"),
      close: flags.has("close"),
      patch: flags.has("patch"),
      noSeq: flags.has("no-seq"),
      noEol: flags.has("no-eol"),
      spec: single("spec") ?? (gripUrl !== undefined ? gripUrl : DEFAULT_SPEC),
      user: single("user"),
      bearer: single("bearer")
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The item

/** Item values before encoding: bytes are content (JSON turns non-UTF-8 into `*-bin` base64). */
export type ItemValue =
  | string
  | number
  | boolean
  | null
  | Uint8Array
  | ReadonlyArray<ItemValue>
  | { readonly [key: string]: ItemValue }

export type JsonValue = string | number | boolean | null | ReadonlyArray<JsonValue> | { readonly [key: string]: JsonValue }

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const lenientUtf8 = new TextDecoder("utf-8", { ignoreBOM: true })

const decodeUtf8 = (bytes: Uint8Array): string | undefined => {
  try {
    return strictUtf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** Sets an own property, even one named `__proto__` (a meta name or a key in patch JSON). */
const setKey = <V>(target: Record<string, V>, key: string, value: V): void => {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
}

const isBytes = (value: ItemValue): value is Uint8Array => value instanceof Uint8Array

const isList = (value: ItemValue): value is ReadonlyArray<ItemValue> => Array.isArray(value)

/**
 * The JSON form, as pushpin-publish's tnetstring → JSON step makes it: object keys sorted, and a
 * `body`/`content` that is not UTF-8 sent as `body-bin`/`content-bin` (base64).
 */
export const itemToJson = (value: ItemValue): JsonValue => {
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value
  if (isBytes(value)) return lenientUtf8.decode(value)
  if (isList(value)) return value.map(itemToJson)
  const out: Record<string, JsonValue> = {}
  const entries: Array<[string, JsonValue]> = []
  for (const [key, inner] of Object.entries(value)) {
    if ((key === "body" || key === "content") && isBytes(inner)) {
      const text = decodeUtf8(inner)
      entries.push(text === undefined ? [`${key}-bin`, Buffer.from(inner).toString("base64")] : [key, text])
    } else {
      entries.push([key, itemToJson(inner)])
    }
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  for (const [key, inner] of entries) setKey(out, key, inner)
  return out
}

const textEncoder = new TextEncoder()

const concatBytes = (parts: ReadonlyArray<Uint8Array>): Uint8Array => Buffer.concat(parts)

const tnetFrame = (payload: Uint8Array, type: string): Uint8Array =>
  concatBytes([textEncoder.encode(`${payload.length}:`), payload, textEncoder.encode(type)])

/** The tnetstring form (for ZeroMQ): strings and content as bytes, content sent as it is. */
export const itemToTnetstring = (value: ItemValue): Uint8Array => {
  if (value === null) return textEncoder.encode("0:~")
  if (typeof value === "boolean") return tnetFrame(textEncoder.encode(value ? "true" : "false"), "!")
  if (typeof value === "number") {
    return Number.isInteger(value) ? tnetFrame(textEncoder.encode(value.toFixed(0)), "#") : tnetFrame(textEncoder.encode(String(value)), "^")
  }
  if (typeof value === "string") return tnetFrame(textEncoder.encode(value), ",")
  if (isBytes(value)) return tnetFrame(value, ",")
  if (isList(value)) return tnetFrame(concatBytes(value.map(itemToTnetstring)), "]")
  const parts: Array<Uint8Array> = []
  for (const [key, inner] of Object.entries(value)) {
    parts.push(tnetFrame(textEncoder.encode(key), ","), itemToTnetstring(inner))
  }
  return tnetFrame(concatBytes(parts), "}")
}

const fileErrorText = (error: unknown): string => {
  const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : ""
  switch (code) {
    case "ENOENT":
      return "No such file or directory"
    case "EACCES":
      return "Permission denied"
    case "EISDIR":
      return "Is a directory"
    default:
      return error instanceof Error ? error.message : String(error)
  }
}

/** Rust's `u16::from_str` and its error texts. */
const parseCode = (text: string): number | string => {
  if (text === "") return "cannot parse integer from empty string"
  if (!/^\+?[0-9]+$/.test(text) || text === "+") return "invalid digit found in string"
  const value = Number(text)
  return value > 65535 ? "number too large to fit in target type" : value
}

const toItemValue = (value: unknown): ItemValue => {
  if (value === null || typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value
  if (Array.isArray(value)) return value.map(toItemValue)
  if (typeof value === "object") {
    const out: Record<string, ItemValue> = {}
    for (const [key, inner] of Object.entries(value)) setKey(out, key, toItemValue(inner))
    return out
  }
  return null
}

export type ItemResult =
  | { readonly _tag: "Item"; readonly item: { readonly [key: string]: ItemValue } }
  | { readonly _tag: "Failed"; readonly message: string }

export interface PublishIo {
  /** Reads `@file` content; `readFileSync` by default. */
  readonly readFile?: (path: string) => Uint8Array
  /** Seconds since the epoch, for JWT expiry. */
  readonly nowSeconds?: () => number
}

/** The item pushpin-publish would send for these arguments, or its error text. */
export const buildPublishItem = (args: PublishArgs, io: PublishIo = {}): ItemResult => {
  const failed = (message: string): ItemResult => ({ _tag: "Failed", message })
  const readFile = io.readFile ?? ((path: string) => readFileSync(path))

  const formats: Record<string, ItemValue> = {}
  if (args.hint) {
    formats["http-response"] = { action: "hint" }
    formats["http-stream"] = { action: "hint" }
    formats["ws-message"] = { action: "hint" }
  } else if (args.close) {
    formats["http-stream"] = { action: "close" }
    formats["ws-message"] = { action: "close" }
  }
  const code = parseCode(args.code)
  if (typeof code === "string") return failed(`failed to parse code: ${code}`)
  if (args.user !== undefined && args.bearer !== undefined) return failed("only one authentication method can be specified")

  let patch: ReadonlyArray<ItemValue> | undefined
  if (!args.hint && !args.close) {
    if (code > 999) return failed("code must be an integer between 0 and 999")
    if (args.content === undefined) return failed("must specify content")
    if (args.patch) {
      let parsed: unknown
      try {
        parsed = JSON.parse(args.content)
      } catch (error) {
        return failed(error instanceof Error ? error.message : String(error))
      }
      if (!Array.isArray(parsed)) return failed("patch content must be a JSON array")
      patch = parsed.map(toItemValue)
    }
  }

  const headers: Array<ItemValue> = []
  for (const header of args.headers) {
    const colon = header.indexOf(":")
    if (colon === -1) return failed("header must be in the form \"name: value\"")
    headers.push([header.slice(0, colon), header.slice(colon + 1).trim()])
  }
  const meta: Record<string, ItemValue> = {}
  if (args.sender !== "") meta["sender"] = args.sender
  for (const entry of args.meta) {
    const equals = entry.indexOf("=")
    if (equals === -1) return failed("meta must be in the form \"name=value\"")
    setKey(meta, entry.slice(0, equals), entry.slice(equals + 1).trim())
  }

  if (!args.hint && !args.close && args.content !== undefined) {
    const response: Record<string, ItemValue> = { code }
    if (patch !== undefined) {
      response["body-patch"] = patch
    } else {
      let httpContent: Uint8Array
      let wsContent: Uint8Array
      if (args.content.startsWith("@")) {
        const name = args.content.slice(1)
        try {
          httpContent = readFile(name)
        } catch (error) {
          return failed(`can't read file ${name}: ${fileErrorText(error)}`)
        }
        wsContent = httpContent
      } else {
        wsContent = textEncoder.encode(args.content)
        httpContent = textEncoder.encode(args.noEol ? args.content : `${args.content}\n`)
      }
      response["body"] = httpContent
      formats["http-stream"] = { content: httpContent }
      formats["ws-message"] = { content: wsContent }
    }
    if (headers.length > 0) response["headers"] = headers
    formats["http-response"] = response
  }

  const item: Record<string, ItemValue> = { channel: args.channel }
  if (args.id !== "") item["id"] = args.id
  if (args.prevId !== "") item["prev-id"] = args.prevId
  item["formats"] = formats
  if (Object.keys(meta).length > 0) item["meta"] = meta
  if (args.noSeq) item["no-seq"] = true
  return { _tag: "Item", item }
}

// ---------------------------------------------------------------------------------------------
// Where it goes

/** HS256 JWT `{iss, exp}`, as the GRIP client libraries sign publish requests. */
export const signPublishJwt = (issuer: string, key: Uint8Array, nowSeconds: number): string =>
  encodeJwt({ iss: issuer, exp: nowSeconds + GRIP_SIG_LIFETIME_SECONDS }, { kind: "secret", secret: key })

/** A GRIP URL's `key`: `base64:<...>` is decoded (a `+` turned into a space by careless quoting is undone). */
const gripKeyBytes = (key: string): Uint8Array =>
  key.startsWith("base64:") ? Buffer.from(key.slice(7).replaceAll(" ", "+"), "base64") : textEncoder.encode(key)

const GRIP_URL_AUTH_PARAMS = ["iss", "key", "verify-iss", "verify-key"]

export type PublishTarget =
  | { readonly _tag: "Http"; readonly url: string; readonly headers: Readonly<Record<string, string>>; readonly body: string }
  | { readonly _tag: "Zmq"; readonly spec: string; readonly endpoint: ZmqEndpoint; readonly message: Uint8Array }

export type ZmqEndpoint =
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }
  | { readonly _tag: "Ipc"; readonly path: string }

const parseZmqSpec = (spec: string): ZmqEndpoint | string => {
  if (spec.startsWith("ipc://")) {
    const path = spec.slice("ipc://".length)
    return path === "" ? `invalid ZeroMQ spec "${spec}"` : { _tag: "Ipc", path }
  }
  if (spec.startsWith("tcp://")) {
    const match = /^(?:\[([^\]]+)\]|([^:/]+)):([0-9]{1,5})$/.exec(spec.slice("tcp://".length))
    const port = Number(match?.[3])
    const host = match?.[1] ?? match?.[2]
    if (match === null || host === undefined || port < 1 || port > 65535) return `invalid ZeroMQ spec "${spec}": expected tcp://host:port`
    return { _tag: "Tcp", host, port }
  }
  return `invalid spec "${spec}": expected an http(s):// URL, or a ZeroMQ tcp://host:port or ipc://path endpoint`
}

const httpTarget = (args: PublishArgs, item: JsonValue, nowSeconds: number): PublishTarget | string => {
  // pushpin-publish accepts scheme://host[:port][/path] and nothing looser.
  if (!/^https?:\/\//.test(args.spec)) return "invalid URL"
  let url: URL
  try {
    url = new URL(args.spec)
  } catch {
    return "invalid URL"
  }
  if (url.hostname === "") return "invalid URL"
  const https = url.protocol === "https:"
  const headers: Record<string, string> = { "Content-Type": "application/json" }

  let urlAuth: string | undefined
  const issuer = url.searchParams.get("iss")
  const key = url.searchParams.get("key")
  if (key !== null) {
    urlAuth = issuer !== null ? `Bearer ${signPublishJwt(issuer, gripKeyBytes(key), nowSeconds)}` : `Bearer ${key}`
  } else if (url.username !== "" || url.password !== "") {
    const credentials = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
    urlAuth = `Basic ${Buffer.from(credentials).toString("base64")}`
  }
  for (const name of GRIP_URL_AUTH_PARAMS) url.searchParams.delete(name)

  if (args.user !== undefined || args.bearer !== undefined) {
    if (!https) return "Authentication requires https"
    headers["Authorization"] = args.user !== undefined ? `Basic ${Buffer.from(args.user).toString("base64")}` : `Bearer ${args.bearer ?? ""}`
  } else if (urlAuth !== undefined) {
    headers["Authorization"] = urlAuth
  }

  const base = url.pathname.replace(/\/+$/, "")
  const query = url.searchParams.toString()
  const target = `${url.protocol}//${url.host}${base}/publish/${query === "" ? "" : `?${query}`}`
  return { _tag: "Http", url: target, headers, body: JSON.stringify({ items: [item] }) }
}

export type PublishRequest =
  | { readonly _tag: "Help"; readonly text: string }
  | { readonly _tag: "Version"; readonly text: string }
  | { readonly _tag: "UsageError"; readonly message: string }
  | { readonly _tag: "Failed"; readonly message: string }
  | { readonly _tag: "Request"; readonly item: JsonValue; readonly target: PublishTarget }

/** Command line + environment → what to send and where (pure but for reading an `@file`). */
export const buildPublishRequest = (argv: ReadonlyArray<string>, env: PublishEnv = {}, io: PublishIo = {}): PublishRequest => {
  const parsed = parsePublishArgs(argv, env)
  switch (parsed._tag) {
    case "Help":
      return { _tag: "Help", text: PUBLISH_HELP }
    case "Version":
      return { _tag: "Version", text: `${PROGRAM} ${VERSION}\n` }
    case "UsageError":
      return parsed
    case "Args":
      break
  }
  const { args } = parsed
  const built = buildPublishItem(args, io)
  if (built._tag === "Failed") return built
  const json = itemToJson(built.item)
  if (args.spec.startsWith("http:") || args.spec.startsWith("https:")) {
    const target = httpTarget(args, json, (io.nowSeconds ?? (() => Math.floor(Date.now() / 1000)))())
    return typeof target === "string" ? { _tag: "Failed", message: target } : { _tag: "Request", item: json, target }
  }
  const endpoint = parseZmqSpec(args.spec)
  if (typeof endpoint === "string") return { _tag: "Failed", message: endpoint }
  return { _tag: "Request", item: json, target: { _tag: "Zmq", spec: args.spec, endpoint, message: itemToTnetstring(built.item) } }
}

// ---------------------------------------------------------------------------------------------
// Sending


const publishHttp = async (target: Extract<PublishTarget, { _tag: "Http" }>): Promise<string | undefined> => {
  let response: Response
  try {
    response = await fetch(target.url, { method: "POST", headers: target.headers, body: target.body, redirect: "manual" })
  } catch (error) {
    return `can't publish to ${target.url}: ${connectErrorText(error)}`
  }
  let text: string
  try {
    text = await response.text()
  } catch (error) {
    return `can't publish to ${target.url}: ${connectErrorText(error)}`
  }
  if (response.status === 200) return undefined
  const message = text.trim()
  return message !== "" ? message : `${target.url} answered ${response.status} ${response.statusText}`.trimEnd()
}

const write = (stream: NodeJS.WriteStream, text: string): Promise<void> =>
  new Promise((resolve) => {
    stream.write(text, () => resolve())
  })

/** `pushpin-ts publish <args>`: returns the exit code. */
export const runPublishCommand = async (args: ReadonlyArray<string>): Promise<number> => {
  const request = buildPublishRequest(args, process.env)
  switch (request._tag) {
    case "Help":
    case "Version":
      await write(process.stdout, request.text)
      return 0
    case "UsageError":
      await write(process.stderr, request.message)
      return 2
    case "Failed":
      await write(process.stderr, `Error: ${request.message}\n`)
      return 1
    case "Request":
      break
  }
  const error = request.target._tag === "Http" ? await publishHttp(request.target) : await publishZmq(request.target)
  if (error !== undefined) {
    await write(process.stderr, `Error: ${error}\n`)
    return 1
  }
  await write(process.stdout, "Published\n")
  return 0
}
