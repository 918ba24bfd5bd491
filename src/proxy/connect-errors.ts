/**
 * Which fetch and socket errors mean a request never reached the origin, so it is safe to send
 * it again (to the next target, or later). Bun's fetch and Node's sockets name them differently.
 */

export const NEVER_REACHED_ORIGIN_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ConnectionRefused",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_HAS_EXPIRED",
  "ERR_TLS_CERT_ALTNAME_INVALID"
])

/** The `code` of a thrown error, when it has a string one. */
export const errorCode = (error: unknown): string | undefined => {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined
  const code: unknown = error.code
  return typeof code === "string" ? code : undefined
}
