/**
 * Which certificate answers which TLS handshake, decided from the file names in the runner's
 * certs directory, with the naming Pushpin's connmgr uses (`src/connmgr/tls.rs`):
 *
 * - `<name>.crt` (PEM certificate chain) and `<name>.key` (PEM private key) form one identity.
 * - A handshake whose SNI server name is `www.example.com` gets `www.example.com`, else the
 *   wildcard `_.example.com` (one label only: `_` stands for `*`, which file names avoid).
 * - Without SNI, or when nothing matches, a listener on port P gets `default_P`, else the
 *   shared `default` (one certificate for every TLS port, for a directory set up by hand).
 *
 * Pure: file names in, identities out. Reading and checking the files is `tls-certs.ts`.
 */

export const CERT_SUFFIX = ".crt"
export const KEY_SUFFIX = ".key"

/** The identity a TLS listener falls back to, named after its port as Pushpin's runner does. */
export const defaultIdentityName = (port: number): string => `default_${port}`

/** File names (relative to the certs directory) of one certificate and its key. */
export interface IdentityFiles {
  readonly name: string
  readonly certFile: string
  readonly keyFile: string
}

/** An identity chosen by SNI; `serverName` is what the TLS library matches (`*.` for wildcards). */
export interface SniIdentityFiles extends IdentityFiles {
  readonly serverName: string
}

/** A file that looks like part of an identity but is never used, and why. */
export interface IgnoredFile {
  readonly file: string
  readonly reason: string
}

/** The identity for listeners without a `default_<port>` of their own. */
export const SHARED_DEFAULT_NAME = "default"

export interface CertsDirScan {
  /** `default_<port>` identities by port. */
  readonly defaults: ReadonlyMap<number, IdentityFiles>
  /** `default.crt`/`default.key`, for every port without its own. */
  readonly sharedDefault: IdentityFiles | undefined
  readonly sni: ReadonlyArray<SniIdentityFiles>
  readonly ignored: ReadonlyArray<IgnoredFile>
}

const DEFAULT_NAME = /^default_([1-9]\d*)$/

// Pushpin lower-cases the SNI name and looks for a file of that name, so a name with upper-case
// letters is never found. Labels may hold `_` (seen in real host names) but need a letter or
// digit; the wildcard is a leading `_.` label on its own.
const HOST_LABEL = "(?=[_-]*[a-z0-9])[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
const HOST_NAME = new RegExp(`^(?:_\\.)?${HOST_LABEL}(?:\\.${HOST_LABEL})*$`)

/** What an identity named `name` answers to, or why it answers to nothing. */
export const serverNameOf = (name: string): { readonly serverName: string } | { readonly reason: string } => {
  if (name !== name.toLowerCase()) {
    return { reason: "has upper-case letters; server names are matched lower-cased, so this identity is never chosen" }
  }
  if (!HOST_NAME.test(name)) return { reason: "is not a host name (or _.<parent> for a wildcard)" }
  return { serverName: name.startsWith("_.") ? `*${name.slice(1)}` : name }
}

const withoutSuffix = (file: string, suffix: string): string | undefined =>
  file.endsWith(suffix) && file.length > suffix.length ? file.slice(0, -suffix.length) : undefined

/** Sorts the directory's file names into identities. Other files (a README) are left out silently. */
export const scanCertsDir = (fileNames: ReadonlyArray<string>): CertsDirScan => {
  const present = new Set(fileNames)
  const defaults = new Map<number, IdentityFiles>()
  let sharedDefault: IdentityFiles | undefined
  const sni: Array<SniIdentityFiles> = []
  const ignored: Array<IgnoredFile> = []

  for (const file of [...fileNames].sort()) {
    const keyOnlyName = withoutSuffix(file, KEY_SUFFIX)
    if (keyOnlyName !== undefined && !present.has(`${keyOnlyName}${CERT_SUFFIX}`)) {
      ignored.push({ file, reason: `no ${keyOnlyName}${CERT_SUFFIX} next to it` })
      continue
    }
    const name = withoutSuffix(file, CERT_SUFFIX)
    if (name === undefined) continue
    const identity: IdentityFiles = { name, certFile: file, keyFile: `${name}${KEY_SUFFIX}` }
    if (!present.has(identity.keyFile)) {
      ignored.push({ file, reason: `no ${identity.keyFile} next to it` })
      continue
    }
    if (name === SHARED_DEFAULT_NAME) {
      sharedDefault = identity
      continue
    }
    const defaultPort = DEFAULT_NAME.exec(name)?.[1]
    if (defaultPort !== undefined) {
      defaults.set(Number(defaultPort), identity)
      continue
    }
    const named = serverNameOf(name)
    if ("reason" in named) ignored.push({ file, reason: named.reason })
    else sni.push({ ...identity, serverName: named.serverName })
  }
  return { defaults, sharedDefault, sni, ignored }
}
