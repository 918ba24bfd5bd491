/**
 * The runner: reads the config, composes connmgr, proxy and handler under one root scope, and
 * turns signals into lifecycle: SIGTERM/SIGINT stop gracefully (exit 0), SIGHUP reloads routes,
 * a service that fails to start exits non-zero with the reason.
 */
import { Effect, Exit, Cause, Fiber, FiberSet, Layer } from "effect"
import { AppSettings, LiveRoutes } from "../config/live.ts"
import { buildMigrationReport, formatMigrationLogEntry, isLegacyGeneration, summarizeReport } from "../config/migration.ts"
import { mapServices } from "../config/services.ts"
import { loadSettings } from "../config/settings.ts"
import type { ListenAddress, LogLevelSpec } from "../config/types.ts"
import { Connmgr } from "../connmgr/connmgr.ts"
import { Handler } from "../handler/handler.ts"
import { installLogWriter, log, makeLogWriter, PushpinLoggerLayer } from "../log/log.ts"
import { Metrics } from "../metrics/metrics.ts"
import { Operations } from "../metrics/operations.ts"
import { BunServerRuntime } from "../platform/bun-server.ts"
import { ServerRuntimeService } from "../platform/server.ts"
import { Proxy } from "../proxy/proxy.ts"

export interface RunOptions {
  readonly configFile: string | undefined
  readonly cwd: string
  readonly portOverride: ListenAddress | undefined
  /** pushpin-ts only (`--publish-port`): replaces push_in_http_addr/port, e.g. for tests on port 0. */
  readonly publishPortOverride: ListenAddress | undefined
  readonly routes: ReadonlyArray<string>
  readonly id: number | undefined
  readonly logLevel: LogLevelSpec | undefined
  readonly logFile: string | undefined
}

/** SIGHUP reloads routes, as it does for Pushpin's proxy. */
const ReloadOnHangup = Layer.effectDiscard(
  Effect.gen(function*() {
    const routes = yield* LiveRoutes
    const run = yield* FiberSet.makeRuntime<never>()
    const onHangup = () => {
      run(routes.reload("SIGHUP"))
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGHUP", onHangup)),
      () => Effect.sync(() => process.off("SIGHUP", onHangup))
    )
  })
)

export const serve = (options: RunOptions) =>
  Effect.gen(function*() {
    const loaded = yield* loadSettings({
      configFile: options.configFile,
      cwd: options.cwd,
      portOverride: options.portOverride,
      id: options.id
    })
    const { warnings } = loaded
    const publishPort = options.publishPortOverride
    const settings = publishPort === undefined
      ? loaded.settings
      : { ...loaded.settings, handler: { ...loaded.settings.handler, pushInHttpAddr: publishPort.host, pushInHttpPort: publishPort.port } }
    installLogWriter(makeLogWriter({ levels: options.logLevel ?? settings.runner.logLevel, file: options.logFile }))
    yield* Effect.logInfo(`starting pushpin-ts ${VERSION} (${BunServerRuntime.name})`)
    yield* Effect.logInfo(settings.configFile === undefined ? "no config file found; using built-in defaults" : `using config: ${settings.configFile}`)
    for (const warning of warnings) yield* Effect.logWarning(warning.message)
    // A file written for an older Pushpin is explained once, key by key, in one log entry.
    const report = buildMigrationReport({
      settings,
      files: loaded.files,
      overrides: {
        port: options.portOverride !== undefined,
        publishPort: publishPort !== undefined,
        routes: options.routes.length > 0,
        logLevel: options.logLevel !== undefined
      }
    })
    if (isLegacyGeneration(report.generation)) {
      yield* Effect.logInfo(formatMigrationLogEntry(report))
    } else {
      const services = mapServices(settings.runner.services)
      yield* Effect.logInfo(
        `services=${settings.runner.services.join(",")}: ${services.mapped} ` +
          `(pushpin-ts runs connmgr, proxy and handler in one process; no separate processes are started)` +
          services.notes.map((note) => `; ${note}`).join("") +
          `; config keys: ${summarizeReport(report)} (pushpin-ts check lists them)`
      )
    }

    const app = Layer.mergeAll(Metrics.layer, ReloadOnHangup).pipe(
      Layer.provideMerge(Connmgr.layer),
      Layer.provideMerge(Proxy.layer),
      Layer.provideMerge(LiveRoutes.layer(options.routes)),
      Layer.provideMerge(Handler.layer),
      Layer.provideMerge(Operations.layer),
      Layer.provide(Layer.succeed(ServerRuntimeService, BunServerRuntime)),
      Layer.provide(Layer.succeed(AppSettings, settings))
    )
    return yield* Layer.launch(Layer.mergeAll(app, Layer.effectDiscard(Effect.logInfo("started"))))
  }).pipe(Effect.provide(PushpinLoggerLayer))

export const VERSION = "0.1.0"

/**
 * Runs the server until a signal or a failure. Resolves to the process exit code: 0 after a
 * requested stop, 1 when a service failed (the reason is logged).
 */
export const runUntilStopped = (options: RunOptions): Promise<number> =>
  new Promise((resolve) => {
    const fiber = Effect.runFork(serve(options))
    let stopping = false
    const onStop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.write("runner", 1, `${signal} again: exiting immediately`)
        process.exit(1)
      }
      stopping = true
      log.write("runner", 2, `${signal}: stopping...`)
      Effect.runFork(Fiber.interrupt(fiber))
    }
    process.on("SIGINT", onStop)
    process.on("SIGTERM", onStop)
    fiber.addObserver((exit) => {
      process.off("SIGINT", onStop)
      process.off("SIGTERM", onStop)
      if (Exit.isSuccess(exit) || (stopping && Cause.hasInterruptsOnly(exit.cause))) {
        log.write("runner", 2, "stopped")
        resolve(0)
        return
      }
      log.write("runner", 0, `failed: ${describeFailure(exit.cause)}`)
      resolve(1)
    })
  })

const describeFailure = (cause: Cause.Cause<unknown>): string => {
  const failure = Cause.squash(cause)
  if (failure instanceof Error) return failure.message
  return String(failure)
}
