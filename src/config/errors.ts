/**
 * Problems found while reading pushpin.conf, an included file or the routes file. Every message
 * starts with `file:line:` when the place is known, so it can be printed as is.
 */
import { Schema } from "effect"

/** Fatal: pushpin-ts refuses to start (or `check` fails) with this message. */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  /** File as shown in messages (relative to the cwd when inside it). */
  file: Schema.optional(Schema.String),
  line: Schema.optional(Schema.Number),
  message: Schema.String
}) {}

/** Not fatal: logged at startup and printed by `check`. `message` already carries `file:line:`. */
export interface ConfigWarning {
  readonly file: string | undefined
  readonly line: number | undefined
  readonly message: string
}

export const locate = (file: string | undefined, line: number | undefined): string =>
  file === undefined ? "" : line === undefined ? `${file}: ` : `${file}:${line}: `

export const configError = (file: string | undefined, line: number | undefined, text: string): ConfigError =>
  new ConfigError({
    ...(file === undefined ? {} : { file }),
    ...(line === undefined ? {} : { line }),
    message: `${locate(file, line)}${text}`
  })

export const configWarning = (file: string | undefined, line: number | undefined, text: string): ConfigWarning => ({
  file,
  line,
  message: `${locate(file, line)}${text}`
})

/** How a file is named in messages: relative to the cwd when inside it, else absolute. */
export const displayPath = (path: string, cwd: string): string => {
  const prefix = cwd.endsWith("/") ? cwd : `${cwd}/`
  return path.startsWith(prefix) ? path.slice(prefix.length) : path
}
