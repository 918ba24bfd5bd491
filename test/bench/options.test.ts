import { describe, expect, test } from "bun:test"
import { DEFAULT_OUT, parseOptions } from "../../bench/options.ts"

describe("parseOptions", () => {
  test("defaults: every scenario, three repeats", () => {
    expect(parseOptions([])).toEqual({ quick: false, repeat: 3, only: [], build: false, out: DEFAULT_OUT, cpuProf: false, help: false })
  })

  test("--quick repeats once unless --repeat says otherwise", () => {
    expect(parseOptions(["--quick"]).repeat).toBe(1)
    expect(parseOptions(["--quick", "--repeat", "2"]).repeat).toBe(2)
    expect(parseOptions(["--repeat=5"]).repeat).toBe(5)
  })

  test("--only takes lists and repeats", () => {
    expect(parseOptions(["--only", "1,fanout-latency", "--only=7"]).only).toEqual(["1", "fanout-latency", "7"])
  })

  test.each([
    [["--repeat", "0"], "--repeat needs a positive whole number"],
    [["--repeat", "two"], "--repeat needs a positive whole number"],
    [["--only"], "--only needs a value"],
    [["--only", "--quick"], "--only needs a value"],
    [["--fast"], "unknown option"]
  ] as const)("%p is refused", (argv, message) => {
    expect(() => parseOptions(argv)).toThrow(message)
  })
})
