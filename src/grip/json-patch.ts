/**
 * RFC 6902 JSON Patch, for `http-response` publishes with `body-patch`: the patch applies to the
 * held request's own (timeout) body, parsed as JSON. Effect's JsonPatch covers add, remove and
 * replace only; Pushpin also takes test, move and copy.
 */
import { Result } from "effect"
import type { JsonPatchOperation } from "./publish.ts"

type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }
type Container = Array<Json> | Record<string, Json>

const decodePointer = (pointer: string): Result.Result<Array<string>, string> => {
  if (pointer === "") return Result.succeed([])
  if (!pointer.startsWith("/")) return Result.fail(`invalid JSON pointer: ${pointer}`)
  return Result.succeed(pointer.slice(1).split("/").map((token) => token.replace(/~1/g, "/").replace(/~0/g, "~")))
}

const isContainer = (value: Json | undefined): value is Container => typeof value === "object" && value !== null

const arrayIndex = (array: ReadonlyArray<Json>, token: string, forInsert: boolean): number | undefined => {
  if (forInsert && token === "-") return array.length
  if (!/^(0|[1-9]\d*)$/.test(token)) return undefined
  const index = Number(token)
  return index <= array.length - (forInsert ? 0 : 1) ? index : undefined
}

/** Parent container and final token of `pointer`, in a document that may be modified in place. */
interface Location {
  readonly parent: Container | undefined
  readonly token: string
}

const locate = (root: { value: Json }, pointer: string): Result.Result<Location, string> =>
  Result.flatMap(decodePointer(pointer), (tokens): Result.Result<Location, string> => {
    if (tokens.length === 0) return Result.succeed({ parent: undefined, token: "" })
    let current: Json | undefined = root.value
    for (const token of tokens.slice(0, -1)) {
      if (!isContainer(current)) return Result.fail(`path not found: ${pointer}`)
      current = Array.isArray(current) ? current[Number(token)] : (current as Record<string, Json>)[token]
    }
    if (!isContainer(current)) return Result.fail(`path not found: ${pointer}`)
    return Result.succeed({ parent: current, token: tokens.at(-1) as string })
  })

const read = (root: { value: Json }, pointer: string): Result.Result<Json, string> =>
  Result.flatMap(locate(root, pointer), ({ parent, token }) => {
    if (parent === undefined) return Result.succeed(root.value)
    if (Array.isArray(parent)) {
      const index = arrayIndex(parent, token, false)
      return index === undefined ? Result.fail(`path not found: ${pointer}`) : Result.succeed(parent[index] as Json)
    }
    return Object.hasOwn(parent, token) ? Result.succeed((parent as Record<string, Json>)[token] as Json) : Result.fail(`path not found: ${pointer}`)
  })

const remove = (root: { value: Json }, pointer: string): Result.Result<Json, string> =>
  Result.flatMap(locate(root, pointer), ({ parent, token }) => {
    if (parent === undefined) return Result.fail("cannot remove the whole document")
    if (Array.isArray(parent)) {
      const index = arrayIndex(parent, token, false)
      return index === undefined ? Result.fail(`path not found: ${pointer}`) : Result.succeed(parent.splice(index, 1)[0] as Json)
    }
    if (!Object.hasOwn(parent, token)) return Result.fail(`path not found: ${pointer}`)
    const removed = (parent as Record<string, Json>)[token] as Json
    delete (parent as Record<string, Json>)[token]
    return Result.succeed(removed)
  })

const add = (root: { value: Json }, pointer: string, value: Json, replace: boolean): Result.Result<void, string> =>
  Result.flatMap(locate(root, pointer), ({ parent, token }) => {
    if (parent === undefined) {
      root.value = value
      return Result.void
    }
    if (Array.isArray(parent)) {
      const index = arrayIndex(parent, token, !replace)
      if (index === undefined) return Result.fail(`path not found: ${pointer}`)
      parent.splice(index, replace ? 1 : 0, value)
      return Result.void
    }
    if (replace && !Object.hasOwn(parent, token)) return Result.fail(`path not found: ${pointer}`)
    ;(parent as Record<string, Json>)[token] = value
    return Result.void
  })

/** Applies `operations` in order to a copy of `document`; fails with the first problem. */
export const applyJsonPatch = (document: unknown, operations: ReadonlyArray<JsonPatchOperation>): Result.Result<unknown, string> => {
  const root: { value: Json } = { value: structuredClone(document) as Json }
  for (const operation of operations) {
    let step: Result.Result<unknown, string>
    switch (operation.op) {
      case "add":
      case "replace":
        step = add(root, operation.path, structuredClone(operation.value) as Json, operation.op === "replace")
        break
      case "remove":
        step = remove(root, operation.path)
        break
      case "test":
        step = Result.flatMap(read(root, operation.path), (current) =>
          JSON.stringify(current) === JSON.stringify(operation.value) ? Result.void : Result.fail(`test failed at ${operation.path}`))
        break
      case "move":
        step = Result.flatMap(remove(root, operation.from), (value) => add(root, operation.path, value, false))
        break
      case "copy":
        step = Result.flatMap(read(root, operation.from), (value) => add(root, operation.path, structuredClone(value), false))
        break
    }
    if (Result.isFailure(step)) return Result.fail(step.failure)
  }
  return Result.succeed(root.value)
}
