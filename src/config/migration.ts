/**
 * The migration report: which Pushpin generation a pushpin.conf was written for, what each key
 * in it (and in its include) does in pushpin-ts, which fallbacks apply to keys it leaves out, and
 * the `services=` line to write instead. `pushpin-ts check` prints it; `run` logs it once at
 * start for a pre-1.40 file. Pure: it works on files already read and settings already built.
 */
import type { ConfigFiles, IniFile } from "./ini.ts"
import { type CommandLineOverrides, KEY_RULES, type KeyContext, keyRule, type KeyStatus, SECRET_KEYS } from "./keys.ts"
import { recommendServices, type ServicesAdvice } from "./services.ts"
import type { Settings } from "./types.ts"

// ---------------------------------------------------------------------------------------------
// Generation

export type GenerationKind = "mongrel2" | "condure" | "connmgr" | "defaults"

export interface Generation {
  readonly kind: GenerationKind
  readonly label: string
  /** What in the file gave it away; reads after "because". */
  readonly evidence: string
}

const LABELS: Readonly<Record<GenerationKind, string>> = {
  mongrel2: "Pushpin 1.2x (Mongrel2)",
  condure: "Pushpin 1.3x (Condure)",
  connmgr: "Pushpin 1.40+ (connmgr)",
  defaults: "pushpin-ts defaults"
}

/** A file written for Pushpin before 1.40: `run` explains it key by key at start. */
export const isLegacyGeneration = (generation: Generation): boolean =>
  generation.kind === "mongrel2" || generation.kind === "condure"

/** The front end each generation's runner started, as `services=` names it. */
const FRONT_ENDS: ReadonlyArray<readonly [GenerationKind, ReadonlyArray<string>]> = [
  ["mongrel2", ["mongrel2", "m2adapter"]],
  ["condure", ["condure"]],
  ["connmgr", ["connmgr"]]
]

/**
 * Keys only one generation's shipped files carry, for files whose `services=` names no front end.
 * Newest first: a file that has any 1.40-era key was at least touched for 1.40.
 */
const KEY_HINTS: ReadonlyArray<readonly [GenerationKind, ReadonlyArray<string>]> = [
  ["connmgr", [
    "global/stats_connection_send", "runner/allow_compression", "proxy/cdn_loop", "proxy/workers",
    "handler/update_on_first_subscription", "proxy/connmgr_in_specs", "runner/connmgr_bin"
  ]],
  ["condure", ["runner/condure_bin", "proxy/condure_in_specs"]],
  ["mongrel2", ["proxy/m2a_in_specs", "handler/push_in_sub_spec"]]
]

/** `services=` names the 1.40 runner renamed; only files for older releases use them. */
const PRE_1_40_NAMES = ["pushpin-proxy", "pushpin-handler"]

/** "runner/condure_bin" → "[runner] condure_bin", as messages name keys. */
const bracketed = (name: string): string => {
  const slash = name.indexOf("/")
  return `[${name.slice(0, slash)}] ${name.slice(slash + 1)}`
}

export const detectGeneration = (settings: Settings, main: IniFile): Generation => {
  const make = (kind: GenerationKind, evidence: string): Generation => ({ kind, label: LABELS[kind], evidence })
  if (settings.configFile === undefined) return make("defaults", "there is no config file (the values are those of the pushpin.conf Pushpin 1.41 ships)")
  const services = settings.runner.services
  for (const [kind, names] of FRONT_ENDS) {
    const listed = names.filter((name) => services.includes(name))
    if (listed.length > 0) return make(kind, `services= lists ${listed.join(", ")}`)
  }
  const written = (name: string) => {
    const [section = "", key = ""] = name.split("/")
    return main.sections.get(section)?.has(key) === true
  }
  const oldNames = PRE_1_40_NAMES.filter((name) => services.includes(name))
  for (const [kind, keys] of KEY_HINTS) {
    const present = keys.filter(written)
    // Pre-1.40 service names outweigh a 1.40 key added later by hand.
    if (present.length === 0 || (kind === "connmgr" && oldNames.length > 0)) continue
    return make(kind, `services= names no front end and the file has ${present.map(bracketed).join(", ")}`)
  }
  if (oldNames.length > 0) return make("condure", `services= uses the pre-1.40 names ${oldNames.join(", ")}`)
  return make("connmgr", services.length === 0 ? "there is no services= line and nothing older in the file" : "services= uses the current names")
}

// ---------------------------------------------------------------------------------------------
// Report

export type EntryStatus = KeyStatus | "unknown"

export interface ReportedKey {
  readonly section: string
  readonly key: string
  /** As written (secrets hidden); undefined for a key the files leave out. */
  readonly value: string | undefined
  /** Where it is written; undefined for a key the files leave out. */
  readonly file: string | undefined
  readonly line: number | undefined
  readonly status: EntryStatus
  readonly text: string
}

export interface MigrationReport {
  /** The main file as shown in messages (or "built-in defaults"). */
  readonly configFile: string
  readonly includedFile: string | undefined
  readonly generation: Generation
  /** Keys written in the files, file by file in file order, then keys left out that still decide something. */
  readonly keys: ReadonlyArray<ReportedKey>
  readonly services: ServicesAdvice
}

export interface MigrationInput {
  readonly settings: Settings
  /** The files as read (see LoadedSettings). */
  readonly files: ConfigFiles
  readonly overrides: CommandLineOverrides
}

const UNKNOWN_TEXT = "not a key of any Pushpin release or of pushpin-ts; ignored (warned)"

const shownValue = (section: string, key: string, value: string): string =>
  SECRET_KEYS.has(`${section}/${key}`) && value !== "" && !value.startsWith("file:") ? "<hidden>" : value

export const buildMigrationReport = (input: MigrationInput): MigrationReport => {
  const { main, included } = input.files
  const context: KeyContext = { settings: input.settings, overrides: input.overrides, includedFile: included?.file }
  const keys: Array<ReportedKey> = []
  // Settings written under either spelling, so neither is listed as not set.
  const written = new Set<string>()

  for (const ini of included === undefined ? [main] : [main, included]) {
    for (const [section, entries] of ini.sections) {
      for (const [key, entry] of entries) {
        const where = { section, key, value: shownValue(section, key, entry.value), file: ini.file, line: entry.line }
        const rule = keyRule(section, key)
        const shadow = ini === main ? undefined : main.sections.get(section)?.get(key)
        written.add(`${section}/${key}`)
        if (rule?.olderSpellingOf !== undefined) written.add(`${section}/${rule.olderSpellingOf}`)
        if (rule === undefined) keys.push({ ...where, status: "unknown", text: UNKNOWN_TEXT })
        else if (shadow !== undefined) keys.push({ ...where, status: "no-effect", text: `overridden by ${main.file}:${shadow.line}` })
        else keys.push({ ...where, ...rule.judge(context) })
      }
    }
  }

  for (const [section, rules] of KEY_RULES) {
    for (const [key, rule] of rules) {
      if (!rule.hasFallback || rule.olderSpellingOf !== undefined || written.has(`${section}/${key}`)) continue
      keys.push({ section, key, value: undefined, file: undefined, line: undefined, ...rule.judge(context) })
    }
  }

  return {
    configFile: main.file,
    includedFile: included?.file,
    generation: detectGeneration(input.settings, main),
    keys,
    services: recommendServices(input.settings.runner.services)
  }
}

export const countByStatus = (report: MigrationReport): Readonly<Record<EntryStatus, number>> => {
  const counts: Record<EntryStatus, number> = { used: 0, "no-effect": 0, unsupported: 0, unknown: 0 }
  for (const entry of report.keys) if (entry.file !== undefined) counts[entry.status]++
  return counts
}

// ---------------------------------------------------------------------------------------------
// Text

const STATUS_LABELS: Readonly<Record<EntryStatus, string>> = {
  used: "used",
  "no-effect": "accepted, no effect",
  unsupported: "not supported",
  unknown: "unknown"
}

const MAX_KEY_COLUMN = 48

/** Values of keys without effect (mostly socket lists) are cut to the column; the rest are kept whole. */
const keyColumn = (entry: ReportedKey): string => {
  const text = entry.value === undefined ? entry.key : `${entry.key}=${entry.value}`
  return text.length <= MAX_KEY_COLUMN || entry.status !== "no-effect" ? text : `${text.slice(0, MAX_KEY_COLUMN - 1)}…`
}

/** One line summing up the verdicts, e.g. for the startup log of a current file. */
export const summarizeReport = (report: MigrationReport): string => {
  const counts = countByStatus(report)
  return `${counts.used} used, ${counts["no-effect"]} accepted with no effect, ${counts.unsupported} not supported, ${counts.unknown} unknown`
}

/** The report as text lines: what `check` prints and `run` logs as one block. */
export const formatMigrationReport = (report: MigrationReport): ReadonlyArray<string> => {
  const width = Math.min(MAX_KEY_COLUMN, Math.max(0, ...report.keys.map((entry) => keyColumn(entry).length)))
  const lineWidth = Math.max(1, ...report.keys.map((entry) => String(entry.line ?? "").length))
  const row = (entry: ReportedKey) =>
    `    ${String(entry.line ?? "").padStart(lineWidth)}  ${keyColumn(entry).padEnd(width)}  ${STATUS_LABELS[entry.status]}: ${entry.text}`

  const groups: Array<string> = []
  const group = (title: string, entries: ReadonlyArray<ReportedKey>) => {
    if (entries.length === 0) return
    groups.push(title)
    let section: string | undefined
    for (const entry of entries) {
      if (entry.section !== section) {
        section = entry.section
        groups.push(`  [${section}]`)
      }
      groups.push(row(entry))
    }
  }
  const files = [...new Set(report.keys.flatMap((entry) => (entry.file === undefined ? [] : [entry.file])))]
  for (const file of files) group(file, report.keys.filter((entry) => entry.file === file))
  group("Not set (the fallback applies)", report.keys.filter((entry) => entry.file === undefined))

  const { services } = report
  return [
    `Config file: ${report.configFile}${report.includedFile === undefined ? "" : ` (keys it lacks come from ${report.includedFile})`}`,
    `Generation: ${report.generation.label}, because ${report.generation.evidence}`,
    `Keys: ${summarizeReport(report)}`,
    "",
    ...groups,
    "",
    `Recommended services line: ${services.line}${services.current ? " (already so)" : ""}`,
    ...(services.current ? [] : [`  ${services.changes.join("; ")}`]),
    "  pushpin-ts runs connmgr, proxy and handler in one process whatever the list says; Pushpin 1.40+ reads the same line"
  ]
}

/** First line of the startup log entry that explains a pre-1.40 pushpin.conf. */
export const MIGRATION_LOG_TITLE = "pushpin.conf for an older Pushpin, key by key"

/** The report as one multi-line log entry: a title, then the report indented, no blank lines. */
export const formatMigrationLogEntry = (report: MigrationReport): string =>
  [
    `${MIGRATION_LOG_TITLE} (${report.generation.label}; pushpin-ts check prints the same):`,
    ...formatMigrationReport(report).filter((line) => line !== "").map((line) => `  ${line}`)
  ].join("\n")
