/**
 * Unix-socket listeners (`local_ports`): what has to happen to the socket file around the bind.
 *
 * Before: the directory is created if missing (Pushpin's runner creates its rundir, where
 * `{rundir}/...` sockets live). A socket file left by a previous run is removed, as Pushpin's
 * connmgr does, but only after checking that nothing answers on it: Pushpin removes whatever is
 * at the path, which would silently take the socket of a second instance that is still running,
 * and would delete a regular file given by mistake.
 *
 * After: `mode`, `user` and `group` are applied to the file, as Pushpin 1.37+ does.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, unlinkSync } from "node:fs"
import { createConnection } from "node:net"
import { dirname } from "node:path"
import { Effect } from "effect"
import type { LocalPort } from "../config/types.ts"
import { ListenError } from "../platform/server.ts"

const USER_DATABASE = "/etc/passwd"
const GROUP_DATABASE = "/etc/group"

/** chown's "leave this one unchanged". */
const UNCHANGED_ID = -1

const errorCode = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : undefined

const describeCause = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const listenError = (path: string, reason: string) => new ListenError({ address: `unix:${path}`, reason })

/**
 * The numeric id of `name` in an /etc/passwd or /etc/group text: both keep it in the third
 * colon-separated field. Names only; NSS sources (LDAP, systemd-homed) are not consulted.
 */
export const findAccountId = (database: string, name: string): number | undefined => {
  for (const line of database.split("\n")) {
    const fields = line.split(":")
    if (fields[0] === name && fields.length >= 3 && /^\d+$/.test(fields[2] ?? "")) return Number(fields[2])
  }
  return undefined
}

/** A numeric id as given, else the name looked up in `database`. */
const resolveAccount = (path: string, what: "user" | "group", value: string | undefined): Effect.Effect<number, ListenError> => {
  if (value === undefined) return Effect.succeed(UNCHANGED_ID)
  if (/^\d+$/.test(value)) return Effect.succeed(Number(value))
  const database = what === "user" ? USER_DATABASE : GROUP_DATABASE
  return Effect.try({
    try: () => findAccountId(readFileSync(database, "utf8"), value),
    catch: (cause) => listenError(path, `cannot look up ${what} "${value}" in ${database}: ${describeCause(cause)}`)
  }).pipe(
    Effect.flatMap((id) =>
      id === undefined
        ? Effect.fail(listenError(path, `unknown ${what} "${value}" (not in ${database}; a numeric id also works)`))
        : Effect.succeed(id)
    )
  )
}

/** True when a server accepts connections on the socket at `path`. */
const socketAnswers = (path: string): Effect.Effect<boolean, ListenError> =>
  Effect.callback<boolean, ListenError>((resume) => {
    const probe = createConnection({ path })
    probe.once("connect", () => {
      probe.destroy()
      resume(Effect.succeed(true))
    })
    probe.once("error", (cause) => {
      const code = errorCode(cause)
      // Refused: a socket file nobody listens on. Gone: removed since we looked.
      if (code === "ECONNREFUSED" || code === "ENOENT") resume(Effect.succeed(false))
      else resume(Effect.fail(listenError(path, `cannot check the existing socket file: ${describeCause(cause)}`)))
    })
    return Effect.sync(() => probe.destroy())
  })

/** Makes `path` free to bind: creates its directory, removes a stale socket file. */
export const prepareSocketPath = (path: string): Effect.Effect<void, ListenError> =>
  Effect.gen(function*() {
    yield* Effect.try({
      try: () => mkdirSync(dirname(path), { recursive: true }),
      catch: (cause) => listenError(path, `cannot create the directory: ${describeCause(cause)}`)
    })
    const existing = yield* Effect.try({
      try: () => lstatSync(path, { throwIfNoEntry: false }),
      catch: (cause) => listenError(path, describeCause(cause))
    })
    if (existing === undefined) return
    if (!existing.isSocket()) return yield* listenError(path, "the path exists and is not a socket; not removing it")
    if (yield* socketAnswers(path)) return yield* listenError(path, "another server is listening on this socket")
    yield* Effect.try({
      try: () => unlinkSync(path),
      catch: (cause) => listenError(path, `cannot remove the stale socket file: ${describeCause(cause)}`)
    })
  })

/** Applies `mode`, `user` and `group` to the bound socket file. */
export const applySocketOwnership = (port: LocalPort): Effect.Effect<void, ListenError> =>
  Effect.gen(function*() {
    const { path, mode } = port
    if (mode !== undefined) {
      yield* Effect.try({
        try: () => chmodSync(path, mode),
        catch: (cause) => listenError(path, `cannot set mode ${mode.toString(8)}: ${describeCause(cause)}`)
      })
    }
    if (port.user === undefined && port.group === undefined) return
    const uid = yield* resolveAccount(path, "user", port.user)
    const gid = yield* resolveAccount(path, "group", port.group)
    yield* Effect.try({
      try: () => chownSync(path, uid, gid),
      catch: (cause) => listenError(path, `cannot set owner ${port.user ?? ""}:${port.group ?? ""}: ${describeCause(cause)}`)
    })
  })
