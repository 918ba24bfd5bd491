/**
 * Auto cross-origin (`[proxy] auto_cross_origin`, route `aco`): CORS headers added to proxied
 * and held responses unless the origin set them itself. Preflights go to the origin like any
 * request. Pure: headers in, headers out.
 */

/** Response headers a browser exposes anyway, so they are not listed in Expose-Headers. */
const SIMPLE_RESPONSE_HEADERS = new Set(["cache-control", "content-language", "content-type", "expires", "last-modified", "pragma"])

/** Hop-by-hop and framing headers describe the connection, not the resource: never exposed. */
const FRAMING_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "set-cookie"])

const DEFAULT_ALLOW_METHODS = "OPTIONS, HEAD, GET, POST, PUT, DELETE"

/** Browsers may cache a preflight answer this long. */
const PREFLIGHT_MAX_AGE_SECONDS = 3600

const setIfAbsent = (headers: Headers, name: string, value: string | undefined) => {
  if (value !== undefined && value.length > 0 && !headers.has(name)) headers.set(name, value)
}

/** Adds Pushpin's automatic CORS headers to `response` (in place) for a request with `request` headers. */
export const applyAutoCors = (request: Headers, response: Headers): void => {
  const exposed: Array<string> = []
  for (const name of response.keys()) {
    if (SIMPLE_RESPONSE_HEADERS.has(name) || name.startsWith("access-control-") || name.startsWith("grip-")) continue
    if (FRAMING_HEADERS.has(name)) continue
    exposed.push(name)
  }
  setIfAbsent(response, "access-control-allow-methods", request.get("access-control-request-method") ?? DEFAULT_ALLOW_METHODS)
  setIfAbsent(response, "access-control-allow-headers", request.get("access-control-request-headers") ?? undefined)
  setIfAbsent(response, "access-control-expose-headers", exposed.join(", "))
  setIfAbsent(response, "access-control-allow-credentials", "true")
  setIfAbsent(response, "access-control-allow-origin", request.get("origin") ?? "*")
  setIfAbsent(response, "access-control-max-age", String(PREFLIGHT_MAX_AGE_SECONDS))
}
