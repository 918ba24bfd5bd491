/**
 * Reads the runner's certs directory once at startup and checks every identity before a TLS
 * listener opens, so a bad file is reported by name instead of as a TLS library error code.
 *
 * A listener's default certificate must load or the start fails: without it no client without
 * SNI could connect. A broken SNI certificate is skipped with a warning; those clients get the
 * default one, which is what Pushpin's connmgr does when it cannot load a named identity.
 */
import { createPrivateKey, X509Certificate } from "node:crypto"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Data, Effect } from "effect"
import type { TlsCertificate, TlsServerCertificates } from "../platform/server.ts"
import { CERT_SUFFIX, defaultIdentityName, type IdentityFiles, KEY_SUFFIX, scanCertsDir } from "./tls-identities.ts"

/** A certificate or key that a TLS listener needs cannot be used. */
export class TlsCertificateError extends Data.TaggedError("TlsCertificateError")<{
  /** The file at fault (absolute path). */
  readonly file: string
  readonly reason: string
}> {
  override get message(): string {
    return `TLS certificate file ${this.file}: ${this.reason}`
  }
}

/** The certs directory as read at startup. */
export interface CertsDir {
  readonly path: string
  readonly fileNames: ReadonlyArray<string>
  readonly defaults: ReadonlyMap<number, IdentityFiles>
  readonly sharedDefault: IdentityFiles | undefined
  /** SNI certificates that loaded; shared by every TLS listener. */
  readonly byServerName: TlsServerCertificates["byServerName"]
  /** Files that are present but not used, with the reason, for the startup log. */
  readonly warnings: ReadonlyArray<string>
}

const describeCause = (cause: unknown): string => {
  if (typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ENOENT") return "not found"
  return cause instanceof Error ? cause.message : String(cause)
}

const readText = (file: string): Effect.Effect<string, TlsCertificateError> =>
  Effect.try({
    try: () => readFileSync(file, "utf8"),
    catch: (cause) => new TlsCertificateError({ file, reason: describeCause(cause) })
  })

/** Parses both files and checks that the key belongs to the certificate. */
const loadIdentity = (dir: string, identity: IdentityFiles): Effect.Effect<TlsCertificate, TlsCertificateError> =>
  Effect.gen(function*() {
    const certFile = join(dir, identity.certFile)
    const keyFile = join(dir, identity.keyFile)
    const cert = yield* readText(certFile)
    const key = yield* readText(keyFile)
    const leaf = yield* Effect.try({
      try: () => new X509Certificate(cert),
      catch: () => new TlsCertificateError({ file: certFile, reason: "not a PEM certificate" })
    })
    const privateKey = yield* Effect.try({
      try: () => createPrivateKey(key),
      catch: () => new TlsCertificateError({ file: keyFile, reason: "not an unencrypted PEM private key" })
    })
    if (!leaf.checkPrivateKey(privateKey)) {
      return yield* new TlsCertificateError({ file: keyFile, reason: `does not match the certificate in ${certFile}` })
    }
    return { cert, key }
  })

/**
 * Lists the directory and loads every SNI certificate in it. A missing directory is an empty
 * one: the listener's default certificate is then reported missing by name.
 */
export const readCertsDir = Effect.fn("readCertsDir")(function*(path: string): Effect.fn.Return<CertsDir, TlsCertificateError> {
  const fileNames = yield* Effect.try({
    try: () => (existsSync(path) ? readdirSync(path) : []),
    catch: (cause) => new TlsCertificateError({ file: path, reason: `cannot read the certificates directory: ${describeCause(cause)}` })
  })
  const scan = scanCertsDir(fileNames)
  const warnings = scan.ignored.map(({ file, reason }) => `TLS certificate file ${join(path, file)} ignored: ${reason}`)
  const byServerName: Array<TlsServerCertificates["byServerName"][number]> = []
  for (const identity of scan.sni) {
    const loaded = yield* Effect.result(loadIdentity(path, identity))
    if (loaded._tag === "Failure") {
      warnings.push(`${loaded.failure.message}; clients asking for ${identity.serverName} get the default certificate`)
    } else {
      byServerName.push({ ...loaded.success, serverName: identity.serverName })
    }
  }
  return { path, fileNames, defaults: scan.defaults, sharedDefault: scan.sharedDefault, byServerName, warnings }
})

/** The certificates of a TLS listener on `port`: its `default_<port>` (else `default`) identity plus the SNI ones. */
export const certificatesForPort = (certsDir: CertsDir, port: number): Effect.Effect<TlsServerCertificates, TlsCertificateError> => {
  const identity = certsDir.defaults.get(port) ?? certsDir.sharedDefault
  if (identity !== undefined) {
    return Effect.map(loadIdentity(certsDir.path, identity), (fallback) => ({ fallback, byServerName: certsDir.byServerName }))
  }
  const name = defaultIdentityName(port)
  const missing = certsDir.fileNames.includes(`${name}${CERT_SUFFIX}`) ? `${name}${KEY_SUFFIX}` : `${name}${CERT_SUFFIX}`
  return Effect.fail(
    new TlsCertificateError({
      file: join(certsDir.path, missing),
      reason: `not found; a TLS listener on port ${port} needs ${name}${CERT_SUFFIX} and ${name}${KEY_SUFFIX} (or default${CERT_SUFFIX} and default${KEY_SUFFIX}) in ${certsDir.path}`
    })
  )
}
