/**
 * Settings and routes as services. Settings are read once at start; the route table is
 * swapped atomically on reload (file change or SIGHUP), so a request in progress keeps the route
 * it was matched with and no connection is dropped.
 */
import { watch, type FSWatcher } from "node:fs"
import { basename, dirname } from "node:path"
import { Context, Effect, FiberSet, Layer } from "effect"
import { loadRoutes, RouteTable } from "./routes.ts"
import type { Settings } from "./types.ts"

export class AppSettings extends Context.Service<AppSettings, Settings>()("pushpin-ts/config/AppSettings") {}

/** Pushpin reloads the routes file about a second after it changes; editors write in bursts. */
export const ROUTES_RELOAD_DEBOUNCE_MS = 1000

export class LiveRoutes extends Context.Service<LiveRoutes, {
  /** The table in force; read per request, so it is a plain getter. */
  readonly current: () => RouteTable
  /** Re-read the routes; on failure the table in force stays and the error is logged. */
  readonly reload: (reason: string) => Effect.Effect<void>
  /** Times the table was swapped successfully (tests and metrics). */
  readonly generation: () => number
}>()("pushpin-ts/config/LiveRoutes") {
  static readonly layer = (cliRoutes: ReadonlyArray<string>) =>
    Layer.effect(
      LiveRoutes,
      Effect.gen(function*() {
        const settings = yield* AppSettings
        const load = loadRoutes(settings, cliRoutes)
        let table = yield* load.pipe(Effect.map((loaded) => new RouteTable(loaded.routes)))
        let generation = 0
        const reload = (reason: string) =>
          load.pipe(
            Effect.flatMap((loaded) =>
              Effect.gen(function*() {
                for (const warning of loaded.warnings) yield* Effect.logWarning(warning.message)
                table = new RouteTable(loaded.routes)
                generation++
                yield* Effect.logInfo(`routes reloaded (${reason}): ${loaded.routes.length} route(s)`)
              })
            ),
            Effect.catch((error) => Effect.logError(`routes reload (${reason}) failed, keeping the previous routes: ${error.message}`)),
            Effect.annotateLogs({ service: "proxy" })
          )

        if (cliRoutes.length === 0 && settings.configFile !== undefined) {
          const run = yield* FiberSet.makeRuntime<never>()
          const file = settings.proxy.routesFile
          let pending: ReturnType<typeof setTimeout> | undefined
          // Watch the directory, not the file: editors replace files by rename, which ends a
          // watch on the old inode.
          const watcher = yield* Effect.acquireRelease(
            Effect.sync((): FSWatcher | undefined => {
              try {
                return watch(dirname(file), (_event, name) => {
                  if (name !== null && name !== basename(file)) return
                  if (pending !== undefined) clearTimeout(pending)
                  pending = setTimeout(() => {
                    pending = undefined
                    run(reload("routes file changed"))
                  }, ROUTES_RELOAD_DEBOUNCE_MS)
                })
              } catch {
                return undefined
              }
            }),
            (watcher) =>
              Effect.sync(() => {
                if (pending !== undefined) clearTimeout(pending)
                watcher?.close()
              })
          )
          if (watcher === undefined) yield* Effect.logWarning(`cannot watch ${file}; reload routes with SIGHUP`)
        }
        return LiveRoutes.of({ current: () => table, reload, generation: () => generation })
      })
    )
}
