/**
 * Grip-Sig tokens: a JWT with claims `{iss, exp}` that tells the origin a request came through
 * this proxy. HS256 for secrets, ES256/RS256 for PEM keys, as Pushpin.
 */
import { createHmac, createPrivateKey, sign as cryptoSign, type KeyObject } from "node:crypto"
import type { SigningKey } from "../config/types.ts"

/** Pushpin signs with a one-hour lifetime. */
export const GRIP_SIG_LIFETIME_SECONDS = 3600

// A token is reused while it still has most of its hour left, so signing costs nothing per
// request; origins still always see at least 50 minutes of validity.
const TOKEN_REUSE_SECONDS = 600

const base64url = (data: Uint8Array | string): string => Buffer.from(data).toString("base64url")

export interface JwtClaims {
  readonly iss: string
  readonly exp: number
}

export const encodeJwt = (claims: JwtClaims, key: SigningKey, privateKey?: KeyObject): string => {
  const algorithm = key.kind === "secret" ? "HS256" : key.algorithm
  const signingInput = `${base64url(JSON.stringify({ typ: "JWT", alg: algorithm }))}.${base64url(JSON.stringify(claims))}`
  const signature = key.kind === "secret"
    ? createHmac("sha256", key.secret).update(signingInput).digest()
    : cryptoSign(
      "sha256",
      Buffer.from(signingInput),
      key.algorithm === "ES256"
        ? { key: privateKey ?? createPrivateKey(key.pem), dsaEncoding: "ieee-p1363" }
        : (privateKey ?? createPrivateKey(key.pem))
    )
  return `${signingInput}.${base64url(signature)}`
}

/** Signs Grip-Sig tokens for one (issuer, key) pair, reusing a token for a few minutes. */
export class GripSigner {
  private token = ""
  private reuseUntil = 0
  private readonly privateKey: KeyObject | undefined

  constructor(readonly issuer: string, readonly key: SigningKey) {
    this.privateKey = key.kind === "pem" ? createPrivateKey(key.pem) : undefined
  }

  current(nowSeconds: number = Math.floor(Date.now() / 1000)): string {
    if (nowSeconds >= this.reuseUntil) {
      this.token = encodeJwt({ iss: this.issuer, exp: nowSeconds + GRIP_SIG_LIFETIME_SECONDS }, this.key, this.privateKey)
      this.reuseUntil = nowSeconds + TOKEN_REUSE_SECONDS
    }
    return this.token
  }
}
