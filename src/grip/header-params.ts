/**
 * Parameterised header values as Pushpin reads them (`src/core/httpheaders.cpp`):
 * `first; key=value; key="quoted \" value"`, several of them comma separated.
 *
 * Commas and semicolons inside double quotes do not split; inside quotes a backslash escapes the
 * next character. The first part of an element is taken verbatim up to the first `;` (channel
 * names and `<uri>` links may contain `=`), and is never unquoted. Unlike Pushpin, which silently
 * skips an element it cannot parse, these functions report it (`undefined`) so callers can refuse
 * the instruction instead of subscribing to less than the origin asked for.
 */

/** `name` with `value` undefined when the parameter had no `=` (`foo` versus `foo=`). */
export type HeaderParam = readonly [name: string, value: string | undefined]

export interface HeaderElement {
  /** The part before the first `;`, trimmed. */
  readonly first: string
  readonly params: ReadonlyArray<HeaderParam>
}

const trimmed = (text: string, from: number, to: number): string => text.slice(from, to).trim()

/**
 * Splits a header value on commas outside double quotes. Undefined on an unterminated quote or a
 * dangling backslash inside quotes. Empty elements in the middle (`a,,b`) are kept as "", a
 * trailing comma adds nothing (both as Pushpin).
 */
export const splitHeaderList = (value: string): ReadonlyArray<string> | undefined => {
  const parts: Array<string> = []
  let start = 0
  let inQuote = false
  for (let i = 0; i < value.length; i++) {
    const c = value[i]
    if (inQuote) {
      if (c === "\\") {
        i++
        if (i >= value.length) return undefined
      } else if (c === "\"") {
        inQuote = false
      }
    } else if (c === "\"") {
      inQuote = true
    } else if (c === ",") {
      parts.push(trimmed(value, start, i))
      start = i + 1
    }
  }
  if (inQuote) return undefined
  if (start < value.length) parts.push(trimmed(value, start, value.length))
  return parts
}

/**
 * Parses `key[=value]` pairs separated by `;`, starting at `from`. A value starting with `"` is
 * a quoted string (anything after its closing quote up to the next `;` is ignored, as Pushpin).
 */
const parsePairs = (text: string, from: number): Array<HeaderParam> | undefined => {
  const out: Array<HeaderParam> = []
  let pos = from
  while (pos < text.length) {
    let at = pos
    while (at < text.length && text[at] !== "=" && text[at] !== ";") at++
    const name = trimmed(text, pos, at)
    if (at >= text.length || text[at] === ";") {
      out.push([name, undefined])
      pos = at + 1
      continue
    }
    // text[at] is "="
    let valueStart = at + 1
    if (text[valueStart] === "\"") {
      let value = ""
      let closed = false
      for (valueStart++; valueStart < text.length; valueStart++) {
        const c = text[valueStart]
        if (c === "\\") {
          valueStart++
          if (valueStart >= text.length) return undefined
          value += text[valueStart]
        } else if (c === "\"") {
          closed = true
          break
        } else {
          value += c
        }
      }
      if (!closed) return undefined
      out.push([name, value])
      const next = text.indexOf(";", valueStart + 1)
      pos = next === -1 ? text.length : next + 1
    } else {
      const next = text.indexOf(";", valueStart)
      const end = next === -1 ? text.length : next
      out.push([name, trimmed(text, valueStart, end)])
      pos = end + 1
    }
  }
  return out
}

/** One element: verbatim first part, then parameters. Undefined on a broken quoted value. */
export const parseHeaderElement = (element: string): HeaderElement | undefined => {
  const semicolon = element.indexOf(";")
  const first = semicolon === -1 ? element.trim() : element.slice(0, semicolon).trim()
  const params = semicolon === -1 ? [] : parsePairs(element, semicolon + 1)
  return params === undefined ? undefined : { first, params }
}

/**
 * One element where the first part is itself a `name=value` pair (`Grip-Set-Meta: user=alice`),
 * Pushpin's `ParseAllParameters` mode. Undefined on a broken quoted value.
 */
export const parseHeaderPairs = (element: string): ReadonlyArray<HeaderParam> | undefined =>
  parsePairs(element, 0)

/** Every element of a comma-separated header value; undefined if any element is malformed. */
export const parseHeaderList = (value: string): ReadonlyArray<HeaderElement> | undefined => {
  const parts = splitHeaderList(value)
  if (parts === undefined) return undefined
  const out: Array<HeaderElement> = []
  for (const part of parts) {
    const element = parseHeaderElement(part)
    if (element === undefined) return undefined
    out.push(element)
  }
  return out
}

/** First parameter called `name` (case-insensitive, as Pushpin), or undefined. */
export const findParam = (params: ReadonlyArray<HeaderParam>, name: string): HeaderParam | undefined => {
  const wanted = name.toLowerCase()
  return params.find(([key]) => key.toLowerCase() === wanted)
}

/** Value of the first parameter called `name`; undefined when absent or given without `=`. */
export const paramValue = (params: ReadonlyArray<HeaderParam>, name: string): string | undefined =>
  findParam(params, name)?.[1]
