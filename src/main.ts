/**
 * pushpin-ts command line: `run` (Pushpin's runner flags), `check`, `version`, `--help`.
 * A bare `pushpin-ts --config ...` runs, as `pushpin --config ...` does.
 */
import { Effect } from "effect"
import { buildMigrationReport, formatMigrationReport } from "./config/migration.ts"
import { loadSettings } from "./config/settings.ts"
import { parseListenAddress, parseLogLevelSpec } from "./config/values.ts"
import { loadRoutes } from "./config/routes.ts"
import type { ListenAddress, LogLevelSpec } from "./config/types.ts"
import { runPublishCommand } from "./publish/cli.ts"
import { runUntilStopped, VERSION } from "./runner/runner.ts"

const USAGE = `Usage: pushpin-ts <command> [options]

Commands:
  run        start the server (default when only options are given)
  check      load and validate a config; print what each key does here, the
             Pushpin generation it was written for, and its routes
  publish    publish to a channel, as pushpin-publish (see: pushpin-ts publish --help)
  version    print the version
  help       print this text

Options for run and check (as Pushpin's runner):
  --config <file>        config file (default: ./config/pushpin.conf, ./pushpin.conf, else built-in defaults)
  --port <[addr:]port>   ignore configured ports; one plain-HTTP listener
  --route <line>         add a route line (repeatable); the routes file is then not used
  --id <n>               instance id: IPC prefix and port offset n*10
  --loglevel <x>         N or N,service:N (0 error, 1 warn, 2 info, 3 debug, 4 trace)
  --verbose              same as --loglevel=3
  --logfile <file>       append logs to this file instead of stderr
  --publish-port <[addr:]port>
                         pushpin-ts only: where the HTTP publish API listens
                         (overrides push_in_http_addr/push_in_http_port)
`

export class UsageError extends Error {}

interface CliOptions {
  configFile: string | undefined
  portOverride: ListenAddress | undefined
  publishPortOverride: ListenAddress | undefined
  routes: Array<string>
  id: number | undefined
  logLevel: LogLevelSpec | undefined
  logFile: string | undefined
}

const FLAGS_WITH_VALUE = new Set(["--config", "--port", "--publish-port", "--route", "--id", "--loglevel", "--logfile"])

export const parseCliOptions = (args: ReadonlyArray<string>): CliOptions => {
  const options: CliOptions = { configFile: undefined, portOverride: undefined, publishPortOverride: undefined, routes: [], id: undefined, logLevel: undefined, logFile: undefined }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    const eq = arg.indexOf("=")
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg
    let value: string | undefined
    if (FLAGS_WITH_VALUE.has(flag)) {
      value = eq > 0 && arg.startsWith("--") ? arg.slice(eq + 1) : args[++i]
      if (value === undefined) throw new UsageError(`${flag} needs a value`)
    }
    switch (flag) {
      case "--config":
        options.configFile = value
        break
      case "--port": {
        const parsed = parseListenAddress(value as string)
        if (parsed === undefined) throw new UsageError(`--port: expected [addr:]port, got "${value}"`)
        options.portOverride = parsed
        break
      }
      case "--publish-port": {
        const parsed = parseListenAddress(value as string)
        if (parsed === undefined) throw new UsageError(`--publish-port: expected [addr:]port, got "${value}"`)
        options.publishPortOverride = parsed
        break
      }
      case "--route":
        options.routes.push(value as string)
        break
      case "--id": {
        const id = Number(value)
        if (!Number.isInteger(id) || id < 0) throw new UsageError(`--id: expected a non-negative integer, got "${value}"`)
        options.id = id
        break
      }
      case "--loglevel": {
        const parsed = parseLogLevelSpec(value as string)
        if (parsed === undefined) throw new UsageError(`--loglevel: expected N or N,service:N, got "${value}"`)
        options.logLevel = parsed
        break
      }
      case "--verbose":
        options.logLevel = { level: 3, perService: new Map() }
        break
      case "--logfile":
        options.logFile = value
        break
      default:
        throw new UsageError(`unknown option: ${arg}`)
    }
  }
  return options
}

const check = async (options: CliOptions): Promise<number> => {
  const program = Effect.gen(function*() {
    const loaded = yield* loadSettings({
      configFile: options.configFile,
      cwd: process.cwd(),
      portOverride: options.portOverride,
      id: options.id
    })
    const routes = yield* loadRoutes(loaded.settings, options.routes)
    return { ...loaded, warnings: [...loaded.warnings, ...routes.warnings], routes: routes.routes }
  })
  const result = await Effect.runPromise(Effect.result(program))
  if (result._tag === "Failure") {
    process.stderr.write(`error: ${result.failure.message}\n`)
    return 1
  }
  const { settings, files, warnings, routes } = result.success
  const report = buildMigrationReport({
    settings,
    files,
    overrides: { port: options.portOverride !== undefined, publishPort: false, routes: options.routes.length > 0, logLevel: options.logLevel !== undefined }
  })
  process.stdout.write(`${formatMigrationReport(report).join("\n")}\n`)
  process.stdout.write(`\nRoutes: ${routes.length} route(s)${options.routes.length > 0 ? " from --route" : ` from ${settings.proxy.routesFile}`}\n`)
  for (const route of routes) {
    const targets = route.targets.map((target) => (target.kind === "origin" ? `${target.host}:${target.port}${target.ssl ? ",ssl" : ""}` : target.kind === "test" ? "test" : `${target.kind}/${target.spec}`))
    process.stdout.write(`  ${route.source}: ${route.domain ?? "(id only)"}${route.pathBeg === "" ? "" : ` path_beg=${route.pathBeg}`} -> ${targets.join(" ")}\n`)
  }
  for (const warning of warnings) process.stderr.write(`warning: ${warning.message}\n`)
  return 0
}

export const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [first, ...rest] = argv
  const command = first === undefined || first.startsWith("-") ? "run" : first
  const args = first === undefined || first.startsWith("-") ? argv : rest
  // publish has flags of its own (pushpin-publish's), so it parses its arguments itself.
  if (command === "publish") return runPublishCommand(args)
  if (command === "help" || args.includes("--help") || args.includes("-h")) {
    process.stdout.write(USAGE)
    return 0
  }
  if (command === "version" || args.includes("--version") || args.includes("-v")) {
    process.stdout.write(`pushpin-ts ${VERSION}\n`)
    return 0
  }
  try {
    const options = parseCliOptions(args)
    if (command === "run") return await runUntilStopped({ ...options, cwd: process.cwd() })
    if (command === "check") return await check(options)
    throw new UsageError(`unknown command: ${command}`)
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`pushpin-ts: ${error.message}\n\n${USAGE}`)
      return 2
    }
    throw error
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => process.exit(code))
}
