/**
 * The INI dialect of pushpin.conf, as Pushpin's QSettings reads it: `[section]` headers,
 * `key=value` lines, whole-line `#` and `;` comments, optional double quotes around a value.
 * A repeated key keeps its last value. Line numbers are kept so later errors can point at them.
 */
import { Effect } from "effect"
import { ConfigError, configError } from "./errors.ts"

export interface IniEntry {
  readonly value: string
  readonly line: number
}

export interface IniFile {
  /** File as shown in messages. */
  readonly file: string
  readonly sections: ReadonlyMap<string, ReadonlyMap<string, IniEntry>>
}

export const iniGet = (ini: IniFile, section: string, key: string): IniEntry | undefined =>
  ini.sections.get(section)?.get(key)

// QSettings strips one pair of surrounding quotes, which is how a value keeps leading spaces.
const unquote = (value: string): string =>
  value.length >= 2 && value.startsWith("\"") && value.endsWith("\"") ? value.slice(1, -1) : value

const parse = (text: string, file: string): IniFile | ConfigError => {
  const sections = new Map<string, Map<string, IniEntry>>()
  let current: Map<string, IniEntry> | undefined
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/)
  for (const [index, raw] of lines.entries()) {
    const line = index + 1
    const trimmed = raw.trim()
    if (trimmed === "" || trimmed.startsWith("#") || trimmed.startsWith(";")) continue
    if (trimmed.startsWith("[")) {
      if (!trimmed.endsWith("]")) return configError(file, line, `expected "]" to close the section name, got ${JSON.stringify(trimmed)}`)
      const name = trimmed.slice(1, -1).trim()
      if (name === "") return configError(file, line, "empty section name")
      current = sections.get(name) ?? new Map()
      sections.set(name, current)
      continue
    }
    const eq = trimmed.indexOf("=")
    if (eq === -1) return configError(file, line, `expected key=value, [section] or a comment, got ${JSON.stringify(trimmed)}`)
    const key = trimmed.slice(0, eq).trim()
    if (key === "") return configError(file, line, `missing key name before "="`)
    // Pushpin would file such a key under a hidden [General] section and never read it.
    if (current === undefined) return configError(file, line, `key "${key}" is outside any [section]`)
    current.set(key, { value: unquote(trimmed.slice(eq + 1).trim()), line })
  }
  return { file, sections }
}

export const parseIni = (text: string, file: string): Effect.Effect<IniFile, ConfigError> =>
  Effect.suspend(() => {
    const result = parse(text, file)
    return result instanceof ConfigError ? Effect.fail(result) : Effect.succeed(result)
  })

/** A pushpin.conf as read: the file itself and the one its `[global] include` names, if read. */
export interface ConfigFiles {
  readonly main: IniFile
  /** Its keys are fallbacks for keys the main file lacks. */
  readonly included: IniFile | undefined
}
