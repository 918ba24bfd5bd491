/**
 * Pushpin's HTTP control API (`push_in_http_addr:push_in_http_port`, 127.0.0.1:5561):
 * `GET /`, `POST /publish` and `/publish/`, `POST /recover`, with Pushpin's status codes and texts.
 * Validation is all or nothing: one bad item rejects the whole publish and nothing is sent.
 */

export type DecodeOutcome<Item> =
  | { readonly _tag: "Decoded"; readonly items: ReadonlyArray<Item> }
  | { readonly _tag: "Rejected"; readonly message: string }

export interface PublishIntake<Item> {
  readonly decode: (body: string) => DecodeOutcome<Item>
  /** Hands the items to sequencing and fan-out. */
  readonly publish: (items: ReadonlyArray<Item>) => void
  /** Pushpin's `recover` command: forget last ids and have every HTTP session ask its origin again. */
  readonly recover: () => void
}

export interface PublishApiLimits {
  readonly maxHeadersBytes: number
  readonly maxBodyBytes: number
}

export interface PublishApiStats {
  requests: number
  published: number
  rejected: number
}

const TEXT = { "content-type": "text/plain" }

// Pushpin answers errors in text whatever the Accept header says; only success speaks JSON.
// An error also ends the connection, as Pushpin's API does after every answer: the body may be
// unread (too large, chunked, or never looked at), so the connection's next bytes are not
// known to start a request. Successes keep the connection for the publisher's next request.
const fail = (status: number, body: string, extra: Record<string, string> = {}): Response =>
  new Response(body, { status, headers: { ...TEXT, connection: "close", ...extra } })

const ok = (body: string): Response => new Response(body, { status: 200, headers: TEXT })

const succeeded = (message: string, json: boolean): Response =>
  json
    ? new Response(`${JSON.stringify({ message })}\n`, { status: 200, headers: { "content-type": "application/json" } })
    : new Response(`${message}\n`, { status: 200, headers: TEXT })

/** Pushpin answers in text unless the client only accepts JSON; anything else is 406. */
const negotiate = (accept: string | null): "text" | "json" | undefined => {
  if (accept === null || accept.trim() === "") return "text"
  const types = accept.split(",").map((part) => part.split(";")[0]?.trim().toLowerCase() ?? "")
  if (types.some((type) => type === "*/*" || type === "text/*" || type === "text/plain")) return "text"
  if (types.some((type) => type === "application/json" || type === "application/*")) return "json"
  return undefined
}

/** Pushpin's API server reads a body only with Content-Length; these methods may come without one. */
const METHODS_WITHOUT_BODY: ReadonlySet<string> = new Set(["GET", "HEAD", "DELETE", "OPTIONS"])

const headSize = (request: Request): number => {
  let size = 0
  for (const [name, value] of request.headers) size += name.length + value.length + 4
  return size
}

export const makePublishApi = <Item>(intake: PublishIntake<Item>, limits: PublishApiLimits) => {
  const stats: PublishApiStats = { requests: 0, published: 0, rejected: 0 }

  const handle = async (request: Request): Promise<Response> => {
    stats.requests++
    // Head and framing first, whatever the path, as Pushpin's API server does before routing:
    // a request it cannot frame gets the same answer everywhere.
    if (headSize(request) > limits.maxHeadersBytes) return fail(400, "Request header too large.\n")
    const declared = request.headers.get("content-length")
    if (declared === null && (request.headers.has("transfer-encoding") || !METHODS_WITHOUT_BODY.has(request.method))) {
      return fail(411, "Request requires Content-Length.\n")
    }
    // Bun has checked the framing, but passes identical repeated values on joined ("5, 5").
    if (declared !== null && !/^[0-9]+$/.test(declared)) return fail(400, "Bad Content-Length.\n")
    if (declared !== null && Number(declared) > limits.maxBodyBytes) {
      stats.rejected++
      return fail(400, "Request body too large.\n")
    }

    const format = negotiate(request.headers.get("accept"))
    if (format === undefined) return fail(406, "Not Acceptable. Supported formats are text/plain and application/json.\n")
    const pathStart = request.url.indexOf("/", request.url.indexOf("://") + 3)
    const path = (pathStart < 0 ? "/" : request.url.slice(pathStart)).split("?")[0]

    if (path === "/") return ok("Pushpin API\n")
    if (path === "/recover") {
      if (request.method !== "POST") return fail(405, `Method not allowed: ${request.method}.\n`, { allow: "POST" })
      intake.recover()
      return succeeded("Updated", format === "json")
    }
    if (path !== "/publish" && path !== "/publish/") return fail(404, "Not Found\n")
    if (request.method !== "POST") return fail(405, `Method not allowed: ${request.method}.\n`, { allow: "POST" })

    const decoded = intake.decode(await request.text())
    if (decoded._tag === "Rejected") {
      stats.rejected++
      return fail(400, `${decoded.message}\n`)
    }
    intake.publish(decoded.items)
    stats.published += decoded.items.length
    return succeeded("Published", format === "json")
  }

  return { handle, stats } as const
}
