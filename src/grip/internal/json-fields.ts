/**
 * Schema building blocks that fail with Pushpin's own wording (`src/handler/variantutil.cpp`,
 * `publishformat.cpp`, `instruct.cpp`): "X does not contain 'k'", "X contains 'k' with wrong
 * type", "X is not an object", and so on. Each field carries its message as a schema annotation,
 * so the text sits next to the rule it explains; `issueMessage` picks the first one out of a
 * decoding failure.
 *
 * Numbers are strict: Pushpin converts `"code": "two hundred"` to 0, these want a JSON integer.
 */
import { Schema, SchemaIssue } from "effect"
import { isBase64 } from "./bytes.ts"

/** Placeholder for the offending key in per-entry messages of maps (`'meta' contains 'x' ...`). */
const KEY = "{key}"

export const wrongType = (parent: string, key: string): string => `${parent} contains '${key}' with wrong type`
export const invalidValue = (parent: string, key: string): string => `${parent} contains '${key}' with invalid value`
export const unknownValue = (parent: string, key: string): string => `${parent} contains '${key}' with unknown value`
export const missingKey = (parent: string, key: string): string => `${parent} does not contain '${key}'`
export const notAnObject = (name: string): string => `${name} is not an object`

/** A string field of `parent`. */
export const str = (parent: string, key: string) => Schema.String.annotate({ message: wrongType(parent, key) })

/** A field that must be present. */
export const required = <S extends Schema.Top>(parent: string, key: string, schema: S): S["Rebuild"] =>
  schema.pipe(Schema.annotateKey({ messageMissingKey: missingKey(parent, key) }))

/** A JSON integer within `[min, max]`. */
export const int = (parent: string, key: string, min: number, max: number = Number.MAX_SAFE_INTEGER) =>
  Schema.Number.annotate({ message: wrongType(parent, key) }).check(
    Schema.isInt({ message: wrongType(parent, key) }),
    Schema.isBetween({ minimum: min, maximum: max }, { message: invalidValue(parent, key) })
  )

export const bool = (parent: string, key: string) => Schema.Boolean.annotate({ message: wrongType(parent, key) })

/**
 * A string that must be one of `values`; decodes to the string (narrowed by the caller). The
 * message for other strings may quote the value.
 */
export const oneOf = (
  parent: string,
  key: string,
  values: ReadonlyArray<string>,
  message: string | ((value: string) => string) = unknownValue(parent, key)
) =>
  Schema.String.annotate({ message: wrongType(parent, key) }).check(
    Schema.makeFilter((s: string) => values.includes(s) || (typeof message === "string" ? message : message(s)))
  )

/** Base64 text (kept as text; decode with `decodeBase64` once validated). */
export const base64 = (parent: string, key: string) =>
  Schema.String.annotate({ message: wrongType(parent, key) }).check(
    Schema.makeFilter(isBase64, { message: `${parent} contains '${key}' with invalid base64` })
  )

/** A list of strings; `elementMessage` is Pushpin's text for a non-string element. */
export const stringList = (parent: string, key: string, elementMessage: string) =>
  Schema.Array(Schema.String.annotate({ message: elementMessage })).annotate({ message: wrongType(parent, key) })

/** An object whose values are strings (`meta`); `entriesName` is how Pushpin names the map. */
export const stringMap = (parent: string, key: string, entriesName: string) =>
  Schema.Record(Schema.String, Schema.String.annotate({ message: wrongType(entriesName, KEY) })).annotate({
    message: wrongType(parent, key)
  })

const headerPart = (message: string) =>
  Schema.String.annotate({ message }).pipe(
    Schema.annotateKey({ messageMissingKey: "headers contains list with wrong number of elements" })
  )

/** `[name, value]`, exactly two strings. */
const HeaderPair = Schema.Tuple([
  headerPart("header contains name element with wrong type"),
  headerPart("header contains value element with wrong type")
]).annotate({
  message: "headers contains element with wrong type",
  messageUnexpectedKey: "headers contains list with wrong number of elements"
})

/** Response headers: `{"Name": "value"}` or `[["Name", "value"], ...]` (repeats allowed). */
export const headers = (parent: string) =>
  Schema.Union([
    Schema.Record(Schema.String, Schema.String.annotate({ message: wrongType("headers", KEY) })),
    Schema.Array(HeaderPair)
  ]).annotate({ message: wrongType(parent, "headers") })

export type HeaderList = ReadonlyArray<readonly [name: string, value: string]>

/** Both accepted header shapes as one ordered list. */
export const headerList = (value: Readonly<Record<string, string>> | ReadonlyArray<readonly [string, string]>): HeaderList =>
  Array.isArray(value) ? value : Object.entries(value)

// ---------------------------------------------------------------------------------------------
// Issue -> text

type Annotated = { readonly [key: string]: unknown } | undefined

const textOf = (annotations: Annotated, name: string): string | undefined => {
  const value = annotations?.[name]
  return typeof value === "string" ? value : undefined
}

const leafMessage = (issue: SchemaIssue.Issue): string | undefined => {
  switch (issue._tag) {
    case "MissingKey":
      return textOf(issue.annotations, "messageMissingKey")
    case "UnexpectedKey":
      return textOf(issue.ast.annotations, "messageUnexpectedKey")
    case "InvalidType":
      return textOf(issue.ast.annotations, "message")
    case "InvalidValue":
    case "Forbidden":
      return textOf(issue.annotations, "message")
    case "AnyOf":
    case "OneOf":
      return textOf(issue.ast.annotations, "message")
    default:
      return undefined
  }
}

/**
 * The first problem in `issue`, in the words its schema annotations give (the deepest message
 * wins; a check's message stands in for a leaf without one). `{key}` becomes the object key the
 * problem is under. Without any annotation, Effect's default text and path are used.
 */
export const issueMessage = (issue: SchemaIssue.Issue): string => {
  let path: ReadonlyArray<PropertyKey> = []
  let fallback: string | undefined
  let current: SchemaIssue.Issue = issue
  for (;;) {
    switch (current._tag) {
      case "Pointer":
        path = [...path, ...current.path]
        current = current.issue
        continue
      case "Composite": {
        const [first] = current.issues
        current = first
        continue
      }
      case "AnyOf": {
        const [first] = current.issues
        if (first !== undefined) {
          current = first
          continue
        }
        break
      }
      case "Encoding":
        current = current.issue
        continue
      case "Filter":
        fallback = textOf(current.filter.annotations, "message") ?? fallback
        current = current.issue
        continue
    }
    break
  }
  const message = leafMessage(current) ?? fallback
  if (message === undefined) return SchemaIssue.makeFormatterDefault()(issue)
  const last = path[path.length - 1]
  return last === undefined ? message : message.replaceAll(KEY, String(last))
}
