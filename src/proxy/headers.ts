/**
 * Pushpin's header rules for proxied requests and pass-through responses
 * (Pushpin: `ProxyUtil::manipulateRequestHeaders`). Pure functions: no I/O, unit-tested.
 */
import type { ProxySettings, Route, XForwardedForRules } from "../config/types.ts"

/** Never forwarded to the origin: connection-scoped or encoding headers Pushpin removes. */
const REQUEST_HEADERS_REMOVED = [
  "connection",
  "keep-alive",
  "accept-encoding",
  "content-encoding",
  "transfer-encoding",
  "expect",
  "proxy-connection",
  "te",
  "trailer",
  "upgrade"
] as const

/** Connection-scoped response headers; the client connection has its own. */
const RESPONSE_HEADERS_REMOVED = ["connection", "keep-alive", "transfer-encoding", "proxy-connection", "trailer", "upgrade"] as const

/**
 * What this build's handler supports, told to origins as Pushpin does. Sessions
 * (`Grip-Session-Id`, dormant in Pushpin without a state service) are not offered.
 */
export const GRIP_FEATURES =
  "status, link:next, link:gone, filter:skip-self, filter:skip-users, filter:require-sub, filter:build-id, filter:var-subst"

export interface RequestHeaderContext {
  readonly route: Route
  readonly proxy: Pick<
    ProxySettings,
    "setXForwardedProtocol" | "xForwardedFor" | "acceptPushpinRoute" | "cdnLoop"
  >
  /** The client's address; asked only when `x_forwarded_for` appends it (looking it up costs). */
  readonly peerAddress: () => string | undefined
  /** The request's scheme as the proxy sees it (after `accept_x_forwarded_protocol`). */
  readonly scheme: "http" | "https" | "ws" | "wss"
  /** Host header value sent to the origin. */
  readonly host: string
  /** Grip-Sig token, when the route signs. */
  readonly gripSig: string | undefined
  /** `Grip-Last` ids of a retried or next-link request (channel, last id). */
  readonly gripLast?: ReadonlyArray<readonly [string, string]>
}

/** `Headers` iteration yields lowercase names, so a prefix test is enough. */
const isGripHeader = (name: string): boolean => name.startsWith("grip-")

export const applyXForwardedFor = (
  existing: string | null,
  rules: XForwardedForRules,
  peerAddress: () => string | undefined
): string | undefined => {
  if (existing === null && !rules.append) return undefined
  let entries = existing === null
    ? []
    : existing.split(",").map((entry) => entry.trim()).filter((entry) => entry.length > 0)
  if (rules.truncate !== undefined) entries = rules.truncate === 0 ? [] : entries.slice(-rules.truncate)
  const peer = rules.append ? peerAddress() : undefined
  if (peer !== undefined) entries.push(peer)
  return entries.length > 0 ? entries.join(", ") : undefined
}

/** Client headers never copied as they are: removed, or replaced by the proxy's own value. */
const REPLACED_REQUEST_HEADERS: ReadonlySet<string> = new Set<string>([
  ...REQUEST_HEADERS_REMOVED,
  "host",
  "set-cookie", // request headers never carry it; Headers iteration would split it
  "x-forwarded-for"
])

/** Builds the header set sent to the origin from the client's headers. */
export const originRequestHeaders = (client: Headers, context: RequestHeaderContext): Headers => {
  const headers = new Headers()
  const { proxy, route } = context
  const connection = client.get("connection")
  const connectionTokens = connection === null
    ? []
    : connection.split(",").map((token) => token.trim().toLowerCase()).filter((token) => token.length > 0)
  const replacesProtocol = proxy.setXForwardedProtocol !== "none"
  // One pass that leaves out what must go, rather than copying and deleting (a delete per
  // removable name per request is most of this function's cost).
  for (const [name, value] of client) {
    if (REPLACED_REQUEST_HEADERS.has(name)) continue
    if (isGripHeader(name)) continue // untrusted clients may not speak GRIP to the origin
    if (connectionTokens.length > 0 && connectionTokens.includes(name)) continue
    if (proxy.acceptPushpinRoute && name === "pushpin-route") continue
    if (replacesProtocol && (name === "x-forwarded-proto" || name === "x-forwarded-protocol")) continue
    headers.append(name, value)
  }
  // Bun's fetch adds `Accept-Encoding: gzip, deflate, br, zstd` when none is set; Pushpin does not
  // relay compression, so ask the origin for the identity encoding explicitly.
  headers.set("accept-encoding", "identity")

  if (proxy.cdnLoop !== undefined && proxy.cdnLoop.length > 0) {
    const existing = headers.get("cdn-loop")
    headers.set("cdn-loop", existing === null ? proxy.cdnLoop : `${existing}, ${proxy.cdnLoop}`)
  }

  if (replacesProtocol && (context.scheme === "https" || context.scheme === "wss")) {
    headers.set("x-forwarded-proto", context.scheme)
    if (proxy.setXForwardedProtocol === "true") headers.set("x-forwarded-protocol", context.scheme)
  }

  const forwardedFor = applyXForwardedFor(client.get("x-forwarded-for"), proxy.xForwardedFor, context.peerAddress)
  if (forwardedFor !== undefined) headers.set("x-forwarded-for", forwardedFor)

  if (!route.noGrip) {
    if (context.gripSig !== undefined) headers.set("grip-sig", context.gripSig)
    headers.set("grip-feature", GRIP_FEATURES)
    for (const [channel, id] of context.gripLast ?? []) headers.append("grip-last", `${channel}; last-id=${id}`)
  }

  headers.set("host", context.host)
  for (const [name, value] of route.headers) {
    if (value.length === 0) headers.delete(name)
    else headers.set(name, value)
  }
  return headers
}

/** Headers for a pass-through response: the origin's, minus what belongs to its connection. */
export const clientResponseHeaders = (origin: Headers): Headers => {
  const headers = new Headers(origin)
  for (const name of RESPONSE_HEADERS_REMOVED) headers.delete(name)
  return headers
}

/** A response carries GRIP instructions when it has a `Grip-*` header or the instruct type. */
export const isGripResponse = (headers: Headers): boolean => {
  for (const name of headers.keys()) if (isGripHeader(name)) return true
  const contentType = headers.get("content-type")
  return contentType !== null && contentType.split(";")[0]?.trim().toLowerCase() === "application/grip-instruct"
}

/**
 * Applies `path_rem` and `replace_beg` to a request path (query string untouched). As in
 * Pushpin, `replace_beg` is "remove the path_beg prefix, then prepend": the route parser sets
 * `pathRem` to the prefix length when `replace_beg` is given.
 */
export const rewritePath = (path: string, route: Pick<Route, "pathRem" | "replaceBeg">): string => {
  let rewritten = route.pathRem > 0 ? path.slice(route.pathRem) : path
  if (route.replaceBeg !== undefined) rewritten = route.replaceBeg + rewritten
  return rewritten.startsWith("/") ? rewritten : `/${rewritten}`
}

/**
 * Path and query of a request, from `Request.url`. Bun gives an absolute URL normally but only
 * the request target for an HTTP/1.0 request without Host, which `new URL` rejects.
 */
export const splitRequestTarget = (url: string): { readonly path: string; readonly search: string } => {
  const schemeEnd = url.indexOf("://")
  const pathStart = schemeEnd < 0 ? url.indexOf("/") : url.indexOf("/", schemeEnd + 3)
  const target = pathStart < 0 ? "/" : url.slice(pathStart)
  const queryStart = target.indexOf("?")
  return queryStart < 0
    ? { path: target, search: "" }
    : { path: target.slice(0, queryStart), search: target.slice(queryStart) }
}

/** A plain-text answer, as Pushpin's own error and status texts are. */
export const textResponse = (status: number, body: string, extraHeaders: Record<string, string> = {}): Response =>
  new Response(body, { status, headers: { "content-type": "text/plain", ...extraHeaders } })
