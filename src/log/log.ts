/**
 * Pushpin-format log lines: `[LEVEL] YYYY-MM-DD HH:MM:SS.mmm [service] message`.
 *
 * One plain writer serves both the data path (access log lines, written synchronously without
 * an Effect per request) and the control plane (Effect's logger forwards here), so every line
 * has the same shape and honours the same per-service levels.
 */
import { appendFileSync } from "node:fs"
import { Logger, References, type LogLevel } from "effect"
import type { LogLevelNumber, LogLevelSpec } from "../config/types.ts"

export type Service = "runner" | "connmgr" | "proxy" | "handler"

const LEVEL_NAMES = ["ERR", "WARN", "INFO", "DEBUG", "TRACE"] as const

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

export const formatTimestamp = (date: Date): string =>
  `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
  `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`

export interface LogWriter {
  readonly enabled: (service: Service, level: LogLevelNumber) => boolean
  readonly write: (service: Service, level: LogLevelNumber, message: string) => void
}

export interface LogOptions {
  readonly levels: LogLevelSpec
  /** `--logfile`: append here instead of stderr. */
  readonly file: string | undefined
}

export const makeLogWriter = (options: LogOptions): LogWriter => {
  const levelOf = (service: Service): LogLevelNumber =>
    options.levels.perService.get(service) ?? options.levels.level
  const emit = options.file === undefined
    ? (line: string) => process.stderr.write(line)
    : (line: string) => appendFileSync(options.file as string, line)
  return {
    enabled: (service, level) => level <= levelOf(service),
    write: (service, level, message) => {
      if (level > levelOf(service)) return
      emit(`[${LEVEL_NAMES[level]}] ${formatTimestamp(new Date())} [${service}] ${message}\n`)
    }
  }
}

/** The writer used until the runner has read the config (and by tests of pure code). */
export let log: LogWriter = makeLogWriter({ levels: { level: 2, perService: new Map() }, file: undefined })

export const installLogWriter = (writer: LogWriter): void => {
  log = writer
}

const effectLevelToPushpin = (level: LogLevel.LogLevel): LogLevelNumber => {
  switch (level) {
    case "Fatal":
    case "Error":
      return 0
    case "Warn":
      return 1
    case "Info":
      return 2
    case "Debug":
      return 3
    default:
      return 4
  }
}

/** Log annotation naming which service a fiber belongs to. */
export const SERVICE_ANNOTATION = "service"

const renderMessage = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts.map((part) => (typeof part === "string" ? part : String(part))).join(" ")
}

/** Effect logger that writes through the current LogWriter in Pushpin's format. */
export const pushpinLogger = Logger.make<unknown, void>((options) => {
  const annotations = options.fiber.getRef(References.CurrentLogAnnotations)
  const tagged = annotations[SERVICE_ANNOTATION]
  const service: Service = tagged === "connmgr" || tagged === "proxy" || tagged === "handler" ? tagged : "runner"
  log.write(service, effectLevelToPushpin(options.logLevel), renderMessage(options.message))
})

export const PushpinLoggerLayer = Logger.layer([pushpinLogger])
