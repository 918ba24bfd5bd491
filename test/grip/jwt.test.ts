import { describe, expect, test } from "bun:test"
import { createHmac, generateKeyPairSync, verify } from "node:crypto"
import { encodeJwt, GripSigner } from "../../src/grip/jwt.ts"

const decodePart = (part: string | undefined): unknown => JSON.parse(Buffer.from(part ?? "", "base64url").toString())

describe("Grip-Sig JWT", () => {
  test("HS256 with a secret: header, claims and signature as an origin verifies them", () => {
    const secret = new TextEncoder().encode("changeme")
    const token = encodeJwt({ iss: "pushpin", exp: 2_000_000_000 }, { kind: "secret", secret })
    const [header, claims, signature] = token.split(".")
    expect(decodePart(header)).toEqual({ typ: "JWT", alg: "HS256" })
    expect(decodePart(claims)).toEqual({ iss: "pushpin", exp: 2_000_000_000 })
    expect(signature).toBe(createHmac("sha256", secret).update(`${header}.${claims}`).digest("base64url"))
  })

  test("ES256 and RS256 with PEM keys verify with the public key", () => {
    for (const [type, algorithm] of [["ec", "ES256"], ["rsa", "RS256"]] as const) {
      const pair = type === "ec"
        ? generateKeyPairSync("ec", { namedCurve: "P-256" })
        : generateKeyPairSync("rsa", { modulusLength: 2048 })
      const pem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString()
      const token = encodeJwt({ iss: "pushpin", exp: 2_000_000_000 }, { kind: "pem", algorithm, pem })
      const [header, claims, signature] = token.split(".")
      expect((decodePart(header) as { alg: string }).alg).toBe(algorithm)
      const ok = verify(
        "sha256",
        Buffer.from(`${header}.${claims}`),
        type === "ec" ? { key: pair.publicKey, dsaEncoding: "ieee-p1363" } : pair.publicKey,
        Buffer.from(signature ?? "", "base64url")
      )
      expect(ok).toBe(true)
    }
  })

  test("GripSigner reuses a token for ten minutes and then signs a fresh one an hour ahead", () => {
    const signer = new GripSigner("pushpin", { kind: "secret", secret: new TextEncoder().encode("k") })
    const first = signer.current(1_000_000)
    expect(signer.current(1_000_599)).toBe(first)
    const next = signer.current(1_000_600)
    expect(next).not.toBe(first)
    expect((decodePart(next.split(".")[1]) as { exp: number }).exp).toBe(1_000_600 + 3600)
  })
})
