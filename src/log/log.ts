/**
 * Pushpin-format log lines: `[LEVEL] YYYY-MM-DD HH:MM:SS.mmm [service] message`.
 *
 * One plain writer serves both the data path (access log lines, written synchronously without
 * an Effect per request) and the control plane (Effect's logger forwards here), so every line
 * has the same shape and honours the same per-service levels.
 */
import { openSync, writeSync } from "node:fs"
import { Logger, References, type LogLevel } from "effect"
import type { LogLevelNumber, LogLevelSpec } from "../config/types.ts"

export type Service = "runner" | "connmgr" | "proxy" | "handler"

const LEVEL_NAMES = ["ERR", "WARN", "INFO", "DEBUG", "TRACE"] as const

const pad = (n: number, width = 2) => String(n).padStart(width, "0")

export const formatTimestamp = (date: Date): string =>
  `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
  `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`

/** The second's part of the timestamp changes once a second; lines within it reuse it. */
let cachedSecond = -1
let cachedSecondText = ""

const timestampNow = (): string => {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== cachedSecond) {
    cachedSecond = second
    cachedSecondText = formatTimestamp(new Date(second * 1000)).slice(0, -3)
  }
  return cachedSecondText + pad(now - second * 1000, 3)
}

export interface LogWriter {
  readonly enabled: (service: Service, level: LogLevelNumber) => boolean
  readonly write: (service: Service, level: LogLevelNumber, message: string) => void
}

export interface LogOptions {
  readonly levels: LogLevelSpec
  /** `--logfile`: append here instead of stderr. */
  readonly file: string | undefined
}

/** Past this many buffered bytes the batch is written at once. */
const LOG_BATCH_BYTES = 64 * 1024
/** How long a line may wait for others to share its write. */
const LOG_BATCH_MS = 10

/**
 * Lines are gathered and written together, at most 10 ms after the first of them (or when
 * 64 KB wait): one write per line, and for `--logfile` an open and close per line as
 * `appendFileSync` does, cost a fifth of the CPU of a busy proxy, and a write per event-loop
 * turn still cost 4 % (measured with the benchmark's profiles). Writes are synchronous, so lines
 * keep their order, and whatever waits is written when the process exits.
 */
class BatchedSink {
  private pending = ""
  private scheduled = false
  private fd: number | undefined

  constructor(private readonly file: string | undefined) {
    process.on("exit", () => this.flush())
  }

  write(line: string): void {
    this.pending += line
    if (this.pending.length >= LOG_BATCH_BYTES) this.flush()
    else if (!this.scheduled) {
      this.scheduled = true
      setTimeout(() => this.flush(), LOG_BATCH_MS)
    }
  }

  flush(): void {
    this.scheduled = false
    if (this.pending === "") return
    const batch = this.pending
    this.pending = ""
    try {
      if (this.file === undefined) writeSync(2, batch)
      else {
        this.fd ??= openSync(this.file, "a")
        writeSync(this.fd, batch)
      }
    } catch {
      // A log that cannot be written (stderr closed, disk full) must not take the server down.
    }
  }
}

export const makeLogWriter = (options: LogOptions): LogWriter => {
  const levelOf = (service: Service): LogLevelNumber =>
    options.levels.perService.get(service) ?? options.levels.level
  const sink = new BatchedSink(options.file)
  return {
    enabled: (service, level) => level <= levelOf(service),
    write: (service, level, message) => {
      if (level > levelOf(service)) return
      sink.write(`[${LEVEL_NAMES[level]}] ${timestampNow()} [${service}] ${message}\n`)
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
