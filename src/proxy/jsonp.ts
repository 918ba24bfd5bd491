/**
 * JSON-P for auto-cross-origin routes (Pushpin: `RequestSession::tryApplyJsonp`, the JSON-P parts
 * of `doResponseUpdate` and `HttpSession::respond`). A GET with the callback parameter becomes the
 * request its query describes (`_method`, `_headers`, `_body` or the route's body parameter), and
 * the answer is wrapped in a call to the callback, always as `200 OK application/javascript`.
 *
 * Pure functions: no I/O.
 */
import type { JsonpOptions } from "../config/types.ts"

export interface JsonpContext {
  readonly callback: string
  readonly extended: boolean
}

export type JsonpRequest =
  | { readonly _tag: "NotJsonp" }
  | { readonly _tag: "Invalid"; readonly message: string }
  | {
    readonly _tag: "Jsonp"
    readonly context: JsonpContext
    readonly method: string
    /** What is left of the query after the JSON-P parameters are taken out ("" or "?…"). */
    readonly search: string
    /** Headers from `_headers` first, then the client's (Host and Accept are set by the proxy). */
    readonly headers: Headers
    readonly body: Uint8Array<ArrayBuffer> | undefined
  }

/** Response headers copied from the wrapped response onto the wrapper (Pushpin's list). */
const EXTRACTABLE_HEADERS = ["cache-control"]

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

interface QueryItem {
  readonly raw: string
  readonly key: string
  readonly value: string
}

const decodeComponent = (text: string): string | undefined => {
  try {
    return decodeURIComponent(text.replaceAll("+", " "))
  } catch {
    return undefined
  }
}

const parseQuery = (search: string): Array<QueryItem> =>
  (search.startsWith("?") ? search.slice(1) : search)
    .split("&")
    .filter((raw) => raw.length > 0)
    .map((raw) => {
      const equals = raw.indexOf("=")
      const rawKey = equals < 0 ? raw : raw.slice(0, equals)
      const rawValue = equals < 0 ? "" : raw.slice(equals + 1)
      return { raw, key: decodeComponent(rawKey) ?? rawKey, value: rawValue }
    })

/**
 * Decides whether a request is JSON-P and, if so, what request it stands for. Only GET qualifies;
 * it is JSON-P when the callback parameter is present, or when the route has a default callback
 * and its body parameter is present.
 */
export const parseJsonpRequest = (method: string, search: string, clientHeaders: Headers, options: JsonpOptions): JsonpRequest => {
  if (method !== "GET") return { _tag: "NotJsonp" }
  let items = parseQuery(search)
  const find = (key: string) => items.find((item) => item.key === key)
  const take = (key: string) => {
    const found = find(key)
    items = items.filter((item) => item.key !== key)
    return found
  }
  const hasBodyParam = options.bodyParam !== undefined && find(options.bodyParam) !== undefined
  if (find(options.callbackParam) === undefined && (options.defaultCallback === undefined || !hasBodyParam)) {
    return { _tag: "NotJsonp" }
  }

  let callback = options.defaultCallback ?? ""
  const callbackItem = take(options.callbackParam)
  if (callbackItem !== undefined) {
    callback = decodeComponent(callbackItem.value) ?? ""
    if (callback === "") return { _tag: "Invalid", message: "Invalid callback parameter." }
  }

  let requestMethod = options.defaultMethod ?? "GET"
  const methodItem = take("_method")
  if (methodItem !== undefined) {
    const requested = decodeComponent(methodItem.value) ?? ""
    if (!TOKEN.test(requested)) return { _tag: "Invalid", message: "Invalid _method parameter." }
    requestMethod = requested
  }

  const headers = new Headers()
  const headersItem = take("_headers")
  if (headersItem !== undefined) {
    let parsed: unknown
    try {
      parsed = JSON.parse(decodeComponent(headersItem.value) ?? "")
    } catch {
      return { _tag: "Invalid", message: "Invalid _headers parameter." }
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      return { _tag: "Invalid", message: "Invalid _headers parameter." }
    }
    for (const [name, value] of Object.entries(parsed)) {
      if (typeof value !== "string") return { _tag: "Invalid", message: "Invalid _headers parameter." }
      const lower = name.toLowerCase()
      if (lower === "host" || lower === "accept") continue
      try {
        headers.append(name, value)
      } catch {
        return { _tag: "Invalid", message: "Invalid _headers parameter." }
      }
    }
  }

  let body: Uint8Array<ArrayBuffer> | undefined
  const bodyParam = options.bodyParam ?? "_body"
  const bodyItem = take(bodyParam)
  if (bodyItem !== undefined) {
    const decoded = decodeComponent(bodyItem.value)
    if (decoded === undefined) {
      return { _tag: "Invalid", message: options.bodyParam === undefined ? "Invalid _body parameter." : "Invalid body parameter." }
    }
    body = new TextEncoder().encode(decoded)
    if (options.bodyParam !== undefined) headers.set("content-type", "application/json")
  }

  headers.set("accept", "*/*")
  for (const [name, value] of clientHeaders) {
    if (name === "host" || name === "accept") continue
    headers.append(name, value)
  }
  return {
    _tag: "Jsonp",
    context: { callback, extended: options.mode === "extended" },
    method: requestMethod,
    search: items.length === 0 ? "" : `?${items.map((item) => item.raw).join("&")}`,
    headers,
    body
  }
}

/**
 * Fetch lower-cases header names; the wrapper shows them the way origins almost always send
 * them (`Content-Type`), which is what Pushpin, keeping the origin's spelling, usually shows.
 */
const displayName = (name: string): string =>
  name.split("-").map((part) => (part.length === 0 ? part : part[0]?.toUpperCase() + part.slice(1))).join("-")

const sortedEntries = <V>(entries: Iterable<readonly [string, V]>): Array<readonly [string, V]> =>
  [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))

const trimOneNewline = (text: string): string =>
  text.endsWith("\r\n") ? text.slice(0, -2) : text.endsWith("\n") ? text.slice(0, -1) : text

export interface WrappedResponse {
  readonly body: string
  readonly headers: Headers
}

const wrapperHeaders = (origin: Headers): Headers => {
  const headers = new Headers({ "content-type": "application/javascript" })
  for (const name of EXTRACTABLE_HEADERS) {
    const value = origin.get(name)
    if (value !== null) headers.set(name, value)
  }
  return headers
}

/**
 * A proxied (pass-through) response, as the proxy wraps it. Extended mode keeps the first value
 * of each header, as Pushpin's map does.
 */
export const wrapProxiedResponse = (
  context: JsonpContext,
  response: { readonly status: number; readonly statusText: string; readonly headers: Headers; readonly body: Uint8Array }
): WrappedResponse => {
  const text = new TextDecoder().decode(response.body)
  if (!context.extended) {
    return { body: `/**/${context.callback}(${trimOneNewline(text)});\n`, headers: wrapperHeaders(response.headers) }
  }
  const headerMap: Record<string, string> = {}
  for (const [name, value] of sortedEntries([...response.headers].map(([name, value]) => [displayName(name), value] as const))) {
    if (!(name in headerMap)) headerMap[name] = value
  }
  const start = `/**/${context.callback}({"code": ${response.status}, "reason": ${JSON.stringify(response.statusText)}, "headers": ${JSON.stringify(headerMap)}, "body": `
  return { body: `${start}${JSON.stringify(text)}});\n`, headers: wrapperHeaders(response.headers) }
}

/**
 * A held response (long-poll answer, timeout or error), as the handler wraps it: one compact JSON
 * object with sorted keys, repeated headers joined with ", ".
 */
export const wrapHeldResponse = (
  context: JsonpContext,
  response: { readonly status: number; readonly statusText: string; readonly headers: Headers; readonly body: Uint8Array }
): WrappedResponse => {
  const text = new TextDecoder().decode(response.body)
  const held = new Headers(response.headers)
  held.delete("content-length")
  // The handler keeps the held response's own headers on the wrapper, except its type.
  const headers = new Headers(held)
  headers.set("content-type", "application/javascript")
  if (!context.extended) return { body: `/**/${context.callback}(${trimOneNewline(text)});\n`, headers }
  const headerMap: Record<string, string> = {}
  for (const [name, value] of sortedEntries([...held].map(([name, value]) => [displayName(name), value] as const))) {
    headerMap[name] = name in headerMap ? `${headerMap[name]}, ${value}` : value
  }
  const json = JSON.stringify({ body: text, code: response.status, headers: headerMap, reason: response.statusText })
  return { body: `/**/${context.callback}(${json});\n`, headers }
}
