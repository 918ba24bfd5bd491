/**
 * `sig_key`, `upstream_key` and the route prop `sig_key`: a plain secret, `base64:<b64>`, or
 * `file:<path>`. A file holding PEM is an EC P-256 (ES256) or RSA (RS256) key; any other file
 * holds the secret in hex, as Pushpin reads it (`Jwt::EncodingKey::fromFile`).
 */
import { readFileSync } from "node:fs"
import { isAbsolute, resolve } from "node:path"
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto"
import { Result, Schema } from "effect"
import type { SigningKey } from "./types.ts"

/** "sign" keys sign Grip-Sig and must be private; "verify" keys may also be public keys. */
export type KeyUse = "sign" | "verify"

const decodeBase64 = Schema.decodeUnknownResult(Schema.Uint8ArrayFromBase64)
const decodeHex = Schema.decodeUnknownResult(Schema.Uint8ArrayFromHex)

const fromPem = (pem: string, use: KeyUse): Result.Result<SigningKey, string> => {
  let key: KeyObject
  try {
    key = use === "sign" ? createPrivateKey(pem) : createPublicKey(pem)
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    return Result.fail(`cannot read the PEM ${use === "sign" ? "private " : ""}key (${reason})`)
  }
  if (key.asymmetricKeyType === "rsa") return Result.succeed({ kind: "pem", algorithm: "RS256", pem })
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve
    if (curve === "prime256v1") return Result.succeed({ kind: "pem", algorithm: "ES256", pem })
    return Result.fail(`EC key on curve ${curve ?? "unknown"}: Grip-Sig needs P-256 (ES256)`)
  }
  return Result.fail(`unsupported ${key.asymmetricKeyType ?? "unknown"} key: use an EC P-256 or RSA key`)
}

const secret = (bytes: Uint8Array): Result.Result<SigningKey, string> =>
  bytes.length === 0 ? Result.fail("the secret is empty") : Result.succeed({ kind: "secret", secret: bytes })

/**
 * undefined for an empty value (no signing). Failures are a reason without location; callers add
 * `file:line:` and the key name. Reads the key file synchronously: it runs once at load time.
 */
export const parseSigningKey = (
  value: string,
  baseDir: string,
  use: KeyUse
): Result.Result<SigningKey | undefined, string> => {
  if (value === "") return Result.succeed(undefined)
  if (value.startsWith("base64:")) {
    const bytes = decodeBase64(value.slice("base64:".length))
    return Result.isSuccess(bytes) ? secret(bytes.success) : Result.fail("base64: is followed by invalid base64")
  }
  if (!value.startsWith("file:")) return secret(new TextEncoder().encode(value))

  const name = value.slice("file:".length)
  const path = isAbsolute(name) ? name : resolve(baseDir, name)
  let contents: string
  try {
    contents = readFileSync(path, "utf8")
  } catch (cause) {
    const code = cause instanceof Error && "code" in cause ? String(cause.code) : "error"
    return Result.fail(`cannot read key file ${path} (${code})`)
  }
  const trimmed = contents.trim()
  if (trimmed.startsWith("-----BEGIN")) return fromPem(contents, use)
  const bytes = decodeHex(trimmed)
  return Result.isSuccess(bytes)
    ? secret(bytes.success)
    : Result.fail(`key file ${path} is neither PEM nor a hex-encoded secret`)
}

export const describeSigningKey = (key: SigningKey | undefined): string =>
  key === undefined
    ? "(none)"
    : key.kind === "secret"
    ? `HS256 secret (${key.secret.length} bytes)`
    : `${key.algorithm} key (PEM)`
