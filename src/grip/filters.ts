/**
 * GRIP message filters (Pushpin `src/handler/filter.cpp`, `format.cpp`, `idformat.cpp`).
 *
 * A subscription names up to five filters per channel (`Grip-Channel: c; filter=skip-self`); each
 * delivery runs them in order, and any of them may drop the message or rewrite its content:
 *
 * | filter        | decides by / does                                                                 |
 * |---------------|-----------------------------------------------------------------------------------|
 * | `skip-self`   | drop if sub meta `user` equals publish meta `sender`                             |
 * | `skip-users`  | drop if sub meta `user` is in publish meta `skip_users` (comma list)             |
 * | `require-sub` | drop unless the connection is also subscribed to publish meta `require_sub`     |
 * | `var-subst`   | content: `%(name)s` becomes sub meta `name`, `%%` becomes `%`                    |
 * | `build-id`    | content: `%I` / `%(id)I` become an id built from sub meta `id_format` (with      |
 * |               | `%(channel)s` filled from the connection's last ids) and `id_encoding=hex`      |
 *
 * Unknown names are skipped, as Pushpin does. `http-check` / `http-modify` (Pushpin 2.0) need the
 * network and are not handled here. Everything works on bytes, as Pushpin's does, so content that
 * is not UTF-8 passes through untouched apart from the directives.
 */
import { Result, Schema } from "effect"
import { decodeUtf8, utf8 } from "./internal/bytes.ts"

/** `MESSAGEFILTERSTACK_SIZE_MAX`: filters per channel subscription; more is an instruct error. */
export const MAX_FILTERS_PER_CHANNEL = 5

/** The filters implemented here (what `Grip-Feature` may advertise as `filter:<name>`). */
export const FILTER_NAMES = ["skip-self", "skip-users", "require-sub", "build-id", "var-subst"] as const
export type FilterName = (typeof FILTER_NAMES)[number]

export interface FilterTargets {
  /** Decides whether a message is delivered. */
  readonly delivery: boolean
  /** Rewrites published content. */
  readonly messageContent: boolean
  /** Rewrites the origin's initial response body of a stream or next-link session. */
  readonly responseContent: boolean
}

const NO_TARGETS: FilterTargets = { delivery: false, messageContent: false, responseContent: false }

export const filterTargets = (name: string): FilterTargets => {
  switch (name) {
    case "skip-self":
    case "skip-users":
    case "require-sub":
      return { delivery: true, messageContent: false, responseContent: false }
    case "build-id":
      return { delivery: false, messageContent: true, responseContent: true }
    case "var-subst":
      return { delivery: false, messageContent: true, responseContent: false }
    default:
      return NO_TARGETS
  }
}

/**
 * A published format's `content-filters` must equal the subscription's content-rewriting filters
 * (in order), else that connection does not get the item: the publisher prepared the content for
 * a different pipeline. No `content-filters` means no check.
 */
export const contentFiltersMatch = (
  subscriptionFilters: ReadonlyArray<string>,
  published: ReadonlyArray<string> | undefined
): boolean => {
  if (published === undefined) return true
  const rewriting = subscriptionFilters.filter((name) => filterTargets(name).messageContent)
  return rewriting.length === published.length && rewriting.every((name, i) => name === published[i])
}

/** The distinct response-content filters of all channels, in first-seen order. */
export const responseContentFilters = (channelFilters: ReadonlyArray<ReadonlyArray<string>>): ReadonlyArray<string> => [
  ...new Set(channelFilters.flat().filter((name) => filterTargets(name).responseContent))
]

export class FilterError extends Schema.TaggedError<FilterError>()("FilterError", {
  filter: Schema.String,
  /** Pushpin's text, e.g. "No such variable 'user' at position 6". */
  message: Schema.String
}) {}

export interface FilterContext {
  /** `Grip-Set-Meta` / instruct `meta` of the subscribing connection. */
  readonly subscriptionMeta: ReadonlyMap<string, string>
  /** The published item's `meta`. */
  readonly publishMeta: ReadonlyMap<string, string>
  /**
   * Every channel the connection is subscribed to, with the last id it has seen there (undefined
   * when none yet). `require-sub` looks up names here; `build-id` fills `%(name)s` from the ids.
   */
  readonly subscriptions: ReadonlyMap<string, string | undefined>
  /** The content to deliver; absent for deliveries without content (then only decisions run). */
  readonly content?: Uint8Array
}

export interface FilterOutcome {
  readonly send: boolean
  /** The content to send, after rewriting; present when `send` and content was given. */
  readonly content?: Uint8Array
  /** Set when a filter failed; `send` is then false. Pushpin drops silently unless in debug mode. */
  readonly error?: FilterError
}

/** Runs `filters` in order for one delivery. Stops at the first drop or error. */
export const applyFilters = (filters: ReadonlyArray<string>, context: FilterContext): FilterOutcome => {
  let content = context.content
  for (const name of filters) {
    if (!keeps(name, context)) return { send: false }
    if (content === undefined) continue
    const rewritten = rewrite(name, content, context)
    if (Result.isFailure(rewritten)) {
      return { send: false, error: new FilterError({ filter: name, message: rewritten.failure }) }
    }
    content = rewritten.success
  }
  return content === undefined ? { send: true } : { send: true, content }
}

const keeps = (name: string, context: FilterContext): boolean => {
  const user = context.subscriptionMeta.get("user") ?? ""
  switch (name) {
    case "skip-self": {
      const sender = context.publishMeta.get("sender") ?? ""
      return user === "" || sender === "" || user !== sender
    }
    case "skip-users": {
      const skipped = (context.publishMeta.get("skip_users") ?? "").split(",").map((s) => s.trim())
      return user === "" || !skipped.includes(user)
    }
    case "require-sub": {
      const required = context.publishMeta.get("require_sub") ?? ""
      return required === "" || context.subscriptions.has(required)
    }
    default:
      return true
  }
}

const rewrite = (name: string, content: Uint8Array, context: FilterContext): Result.Result<Uint8Array, string> => {
  switch (name) {
    case "var-subst":
      return renderFormat(content, (type, arg) => {
        if (type !== "s") return Result.fail(`Unknown directive '${type}'`)
        if (arg === undefined) return Result.fail("Directive 's' requires argument")
        const value = context.subscriptionMeta.get(arg)
        return value === undefined ? Result.fail(`No such variable '${arg}'`) : Result.succeed(utf8(value))
      })
    case "build-id":
      return buildId(content, context)
    default:
      return Result.succeed(content)
  }
}

const toHex = (bytes: Uint8Array): Uint8Array => utf8(Buffer.from(bytes).toString("hex"))

const buildId = (content: Uint8Array, context: FilterContext): Result.Result<Uint8Array, string> => {
  const idFormat = context.subscriptionMeta.get("id_format")
  if (idFormat === undefined) return Result.fail("no sub meta 'id_format'")

  // The default id exists only when the connection has subscriptions to fill the template from.
  let defaultId: Uint8Array | undefined
  if (context.subscriptions.size > 0) {
    const rendered = renderFormat(utf8(idFormat), (type, arg) => {
      if (type !== "s") return Result.fail(`Unknown directive '${type}'`)
      if (arg === undefined) return Result.fail("Directive 's' requires argument")
      const value = context.subscriptions.get(arg)
      return value === undefined ? Result.fail(`No such variable '${arg}'`) : Result.succeed(utf8(value))
    })
    if (Result.isFailure(rendered)) return Result.fail(`failed to render ID: ${rendered.failure}`)
    defaultId = rendered.success
  }

  const encoding = context.subscriptionMeta.get("id_encoding")
  if (encoding !== undefined && encoding !== "hex") return Result.fail(`unsupported encoding: ${encoding}`)
  const hex = encoding === "hex"

  return renderFormat(content, (type, arg) => {
    if (type !== "I") return Result.fail(`Unknown directive '${type}'`)
    const id = arg !== undefined ? utf8(arg) : defaultId
    if (id === undefined) return Result.fail("No ID specified and no default ID in context")
    return Result.succeed(hex ? toHex(id) : id)
  })
}

// ---------------------------------------------------------------------------------------------
// Pushpin's `%` template language (`src/handler/format.cpp`): `%%` is a literal `%`, `%X` and
// `%(arg)X` are directives for a letter X; inside `( )` a backslash escapes the next byte.

type Directive = (type: string, arg: string | undefined) => Result.Result<Uint8Array, string>

const PERCENT = 0x25
const OPEN = 0x28
const CLOSE = 0x29
const BACKSLASH = 0x5c

const isLetter = (byte: number): boolean => (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)

/** Renders `template`; error texts and (byte) positions are Pushpin's. */
export const renderFormat = (template: Uint8Array, directive: Directive): Result.Result<Uint8Array, string> => {
  const out: Array<number> = []
  // Every index below is bounds-checked before it is read.
  const byteAt = (i: number): number => template[i] ?? 0
  const apply = (type: number, arg: string | undefined, at: number): string | undefined => {
    const result = directive(String.fromCharCode(type), arg)
    if (Result.isFailure(result)) return `${result.failure} at position ${at}`
    out.push(...result.success)
    return undefined
  }

  for (let n = 0; n < template.length; n++) {
    const c = byteAt(n)
    if (c !== PERCENT) {
      out.push(c)
      continue
    }
    const marker = n
    n++
    if (n >= template.length) return Result.fail(`Expected directive after '%' at position ${marker}`)
    const next = byteAt(n)
    if (next === PERCENT) {
      out.push(PERCENT)
    } else if (next === OPEN) {
      const fieldStart = n
      if (n + 1 >= template.length) return Result.fail(`Expected character after '(' at position ${n}`)
      const arg: Array<number> = []
      let closed = false
      for (n++; n < template.length; n++) {
        const b = byteAt(n)
        if (b === BACKSLASH) {
          if (n + 1 >= template.length) return Result.fail(`Expected character after '\\' at position ${n}`)
          n++
          arg.push(byteAt(n))
        } else if (b === CLOSE) {
          closed = true
          break
        } else {
          arg.push(b)
        }
      }
      if (!closed) return Result.fail(`Unterminated field starting at position ${fieldStart}`)
      if (n + 1 >= template.length) return Result.fail(`Expected directive after ')' at position ${n}`)
      n++
      const argBytes = new Uint8Array(arg)
      const error = apply(byteAt(n), decodeUtf8(argBytes) ?? Buffer.from(argBytes).toString("latin1"), n)
      if (error !== undefined) return Result.fail(error)
    } else if (isLetter(next)) {
      const error = apply(next, undefined, n)
      if (error !== undefined) return Result.fail(error)
    } else {
      return Result.fail(`Unknown directive '${String.fromCharCode(next)}' at position ${n}`)
    }
  }
  return Result.succeed(new Uint8Array(out))
}
