import { describe, expect, test } from "bun:test"
import { iniGet, parseIni } from "../../src/config/ini.ts"
import { failure, run } from "./helpers.ts"

describe("parseIni", () => {
  const text = [
    "# comment",
    "; another comment",
    "[global]",
    "rundir = /var/run/pushpin",
    "",
    "[proxy]",
    "sig_key=first",
    "  sig_key = second  ",
    "quoted=\"  spaced, value  \"",
    "empty=",
    "url=http://example.com/a=b",
    "[global]",
    "ipc_prefix=p-"
  ].join("\r\n")
  const ini = run(parseIni(text, "pushpin.conf"))

  test.each([
    ["global", "rundir", "/var/run/pushpin", 4],
    ["proxy", "sig_key", "second", 8],
    ["proxy", "quoted", "  spaced, value  ", 9],
    ["proxy", "empty", "", 10],
    ["proxy", "url", "http://example.com/a=b", 11],
    ["global", "ipc_prefix", "p-", 13]
  ] as const)("[%s] %s = %p (line %d)", (section, key, value, line) => {
    expect(iniGet(ini, section, key)).toEqual({ value, line })
  })

  test("a reopened section merges; absent keys and sections are undefined", () => {
    expect([...(ini.sections.get("global")?.keys() ?? [])]).toEqual(["rundir", "ipc_prefix"])
    expect(iniGet(ini, "proxy", "nope")).toBeUndefined()
    expect(iniGet(ini, "handler", "x")).toBeUndefined()
  })

  test.each([
    ["[global\nrundir=x", "pushpin.conf:1: expected \"]\" to close the section name, got \"[global\""],
    ["[]\n", "pushpin.conf:1: empty section name"],
    ["[global]\n\ngarbage", "pushpin.conf:3: expected key=value, [section] or a comment, got \"garbage\""],
    ["[global]\n=value", "pushpin.conf:2: missing key name before \"=\""],
    ["rundir=x\n[global]", "pushpin.conf:1: key \"rundir\" is outside any [section]"]
  ])("rejects %p", (input, message) => {
    const error = failure(parseIni(input, "pushpin.conf"))
    expect(error._tag).toBe("ConfigError")
    expect(error.message).toBe(message)
    expect(error.file).toBe("pushpin.conf")
  })
})
