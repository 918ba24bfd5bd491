/**
 * The benchmark gives both servers one pushpin.conf; pushpin-ts must read it as written: no
 * unknown keys, rate limiting off, Debian's connection limits.
 */
import { afterAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pushpinConfSections, renderIni, routesFile } from "../../bench/config.ts"
import { BINARY } from "../support/pushpin-ts.ts"

const dir = mkdtempSync(join(tmpdir(), "pushpin-bench-conf-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("the benchmark's pushpin.conf", () => {
  test("pushpin-ts resolves it without unknown keys, rate limits off", async () => {
    mkdirSync(join(dir, "run"))
    mkdirSync(join(dir, "log"))
    const ports = { http: 17999, publish: 15561, pushIn: 15560, pushInSub: 15562, command: 15563 }
    const paths = { dir, internalConf: "/usr/lib/pushpin/internal.conf", condureBin: "condure", zurlBin: "zurl" }
    writeFileSync(join(dir, "pushpin.conf"), renderIni(pushpinConfSections(ports, paths)))
    writeFileSync(join(dir, "routes"), routesFile(18080))
    const check = Bun.spawn([BINARY, "check", "--config", join(dir, "pushpin.conf")], { stdout: "pipe", stderr: "pipe" })
    const [stdout, stderr, code] = await Promise.all([new Response(check.stdout).text(), new Response(check.stderr).text(), check.exited])
    const output = stdout + stderr
    expect(code).toBe(0)
    expect(output).toMatch(/, 0 unknown\n/)
    expect(output).toMatch(/message_rate=0 +used: deliveries are not rate-limited\n/)
    expect(output).toMatch(/message_hwm=0 +used: no cap on deliveries waiting for the rate limit\n/)
    expect(output).toMatch(/client_maxconn=50000 +used: past 50000 requests in progress/)
  })
})
