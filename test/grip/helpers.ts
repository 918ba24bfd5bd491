import { expect } from "bun:test"
import { Result } from "effect"

/** The value of a Result expected to succeed (fails the test with the error otherwise). */
export const ok = <A, E>(result: Result.Result<A, E>): A => {
  if (Result.isFailure(result)) throw new Error(`expected success, got ${JSON.stringify(result.failure)}`)
  return result.success
}

/** The error of a Result expected to fail. */
export const err = <A, E>(result: Result.Result<A, E>): E => {
  expect(Result.isFailure(result)).toBe(true)
  if (Result.isSuccess(result)) throw new Error("expected failure")
  return result.failure
}

export const text = (bytes: Uint8Array | undefined): string | undefined =>
  bytes === undefined ? undefined : new TextDecoder().decode(bytes)

export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
