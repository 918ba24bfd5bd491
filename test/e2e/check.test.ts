/**
 * End to end: `pushpin-ts check` on the pushpin.conf of each Pushpin generation, and `run` with a
 * legacy one (the migration report logged once, as one entry, and the server answering).
 */
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { MIGRATION_LOG_TITLE } from "../../src/config/migration.ts"
import { BINARY, startPushpinTs } from "../support/pushpin-ts.ts"

const FIXTURES = join(import.meta.dir, "../config/fixtures")
const dirs: Array<string> = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/**
 * A directory holding the fixture as pushpin.conf, its internal.conf and a routes file. libdir is
 * pinned to that directory (a second [global] section adds to the first), so the include is the
 * fixture's and not an installed Pushpin's.
 */
const configDir = (version: string): string => {
  const dir = mkdtempSync(join(tmpdir(), "pushpin-ts-check-"))
  dirs.push(dir)
  const conf = readFileSync(join(FIXTURES, `pushpin-${version}.conf`), "utf8")
  writeFileSync(join(dir, "pushpin.conf"), `${conf}\n[global]\nlibdir=${dir}\n`)
  writeFileSync(join(dir, "internal.conf"), readFileSync(join(FIXTURES, `internal-${version}.conf`)))
  writeFileSync(join(dir, "routes"), "* test\n")
  return dir
}

const check = (dir: string) => {
  const result = Bun.spawnSync([BINARY, "check", "--config", "pushpin.conf"], { cwd: dir })
  return { code: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() }
}

describe("check on each generation's pushpin.conf", () => {
  test.each([
    ["1.20", "Generation: Pushpin 1.2x (Mongrel2), because services= lists mongrel2, m2adapter", [
      /^ +\d+  mongrel2_bin=mongrel2 +accepted, no effect: no Mongrel2: pushpin-ts accepts client connections in-process$/m,
      /^ +\d+  push_in_sub_spec=tcp:\/\/127\.0\.0\.1:5562 +not supported: ZeroMQ publish inputs are not implemented/m,
      /^ {2}mongrel2\+m2adapter → connmgr; zurl: drop/m
    ]],
    ["1.31", "Generation: Pushpin 1.3x (Condure), because services= lists condure", [
      /^ +\d+  condure_bin=condure +accepted, no effect: no separate Condure/m,
      /^ +\d+  client_maxconn=50000 +used: past 50000 requests in progress/m,
      /^ {2}condure → connmgr; zurl: drop/m
    ]],
    ["1.36", "Generation: Pushpin 1.3x (Condure), because services= lists condure", [
      /^ +\d+  updates_check=off +accepted, no effect: Pushpin's update check/m,
      /^ +\d+  zurl_out_specs=ipc:\/\/\/var\/run\/zurl\/zurl-in +accepted, no effect: ZeroMQ wiring/m
    ]],
    ["1.40", "Generation: Pushpin 1.40+ (connmgr), because services= lists connmgr", [
      /^ +\d+  allow_compression=false +accepted, no effect: off; pushpin-ts never compresses client WebSockets$/m,
      /^ +\d+  connmgr_in_specs=ipc:\/\/\{rundir\}\/\S+ +accepted, no effect: ZeroMQ wiring between Pushpin's processes/m,
      /^Recommended services line: services=connmgr,proxy,handler \(already so\)$/m
    ]]
  ] as const)("Pushpin %s", (version, generation, rows) => {
    const dir = configDir(version)
    const { code, stdout, stderr } = check(dir)
    expect(code).toBe(0)
    const lines = stdout.split("\n")
    expect(lines[0]).toBe("Config file: pushpin.conf (keys it lacks come from internal.conf)")
    expect(lines[1]).toBe(generation)
    expect(stdout).toMatch(/^ +\d+  http_port=7999 +used: client listener 0\.0\.0\.0:7999 \(plain HTTP\)$/m)
    expect(stdout).toMatch(/^ +\d+  sig_key=<hidden> +used: requests to origins signed with Grip-Sig, HS256 secret \(8 bytes\)$/m)
    for (const row of rows) expect(stdout).toMatch(row)
    expect(stdout).toContain("Recommended services line: services=connmgr,proxy,handler")
    expect(stdout).toContain(`Routes: 1 route(s) from ${join(dir, "routes")}\n  routes:1: * -> test\n`)
    // sections come in order, the report before the routes
    expect(stdout.indexOf("  [global]")).toBeLessThan(stdout.indexOf("  [runner]"))
    expect(stdout.indexOf("Recommended services line")).toBeLessThan(stdout.indexOf("Routes:"))
    expect(stdout).not.toContain("changeme")
    expect(stderr).toContain("[proxy] sig_key is Pushpin's example key \"changeme\"")
    expect(stderr).not.toContain("unknown key")
  })

  test("a broken legacy file fails with its file and line", () => {
    const dir = configDir("1.20")
    writeFileSync(join(dir, "pushpin.conf"), readFileSync(join(dir, "pushpin.conf"), "utf8").replace("client_buffer_size=8192", "client_buffer_size=big"))
    const { code, stdout, stderr } = check(dir)
    expect(code).not.toBe(0)
    expect(stdout).toBe("")
    expect(stderr).toMatch(/^error: pushpin\.conf:\d+: \[runner\] client_buffer_size: expected a positive integer, got "big"$/m)
  })
})

describe("run with a legacy pushpin.conf", () => {
  test("logs the migration report once, as one entry, and serves", async () => {
    const dir = configDir("1.20")
    const server = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf")] })
    try {
      const response = await fetch(`${server.baseUrl}/`)
      expect(await response.text()).toBe("Hello from the Pushpin test handler!\n")
      const logs = server.logs()
      expect(logs.split(MIGRATION_LOG_TITLE).length - 1).toBe(1)
      // One log entry: from its [INFO] prefix to the next entry, no line of its own starts with "[".
      const start = logs.lastIndexOf("[INFO]", logs.indexOf(MIGRATION_LOG_TITLE))
      const next = logs.indexOf("\n[", start)
      const block = logs.slice(start, next)
      expect(block).toContain(`[runner] ${MIGRATION_LOG_TITLE} (Pushpin 1.2x (Mongrel2); pushpin-ts check prints the same):`)
      expect(block).toContain("\n  Generation: Pushpin 1.2x (Mongrel2), because services= lists mongrel2, m2adapter\n")
      expect(block).toMatch(/\n +\d+  http_port=7999 +used: replaced by --port: client listener 127\.0\.0\.1:0\n/)
      expect(block).toMatch(/\n +\d+  mongrel2_bin=mongrel2 +accepted, no effect: no Mongrel2/)
      expect(block).toContain("\n  Recommended services line: services=connmgr,proxy,handler\n")
      // the one-line services message of current files is not logged besides
      expect(logs).not.toContain("no separate processes are started")
    } finally {
      await server.stop()
    }
  })

  test("a current (1.40) file gets one services line instead", async () => {
    const dir = configDir("1.40")
    const server = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf")] })
    try {
      expect((await fetch(`${server.baseUrl}/`)).status).toBe(200)
      const logs = server.logs()
      expect(logs).not.toContain(MIGRATION_LOG_TITLE)
      expect(logs).toMatch(
        /\[runner\] services=connmgr,proxy,handler: connmgr → built-in connmgr; proxy → built-in proxy; handler → built-in handler \(pushpin-ts runs connmgr, proxy and handler in one process; no separate processes are started\); config keys: \d+ used, \d+ accepted with no effect, \d+ not supported, 0 unknown \(pushpin-ts check lists them\)\n/
      )
    } finally {
      await server.stop()
    }
  })
})
