/**
 * End to end: config files, routes reload, limits, and the process lifecycle of the binary.
 */
import { describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startOrigin } from "../support/origin.ts"
import { BINARY, startPushpinTs } from "../support/pushpin-ts.ts"

const tempDir = () => mkdtempSync(join(tmpdir(), "pushpin-ts-life-"))

const freePort = (): number => {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() })
  const port = server.port ?? 0
  server.stop(true)
  return port
}

const writeConfig = (dir: string, runner: string, routes: string, proxy = "") => {
  writeFileSync(
    join(dir, "pushpin.conf"),
    `[global]\ninclude={libdir}/internal.conf\nrundir=${dir}\n\n[runner]\nservices=condure,pushpin-proxy,pushpin-handler\n${runner}\n\n[proxy]\nroutesfile=routes\nsig_key=config-key\n${proxy}\n\n[handler]\npush_in_http_port=${freePort()}\n`
  )
  writeFileSync(join(dir, "routes"), routes)
}

describe("config files", () => {
  test("run --config reads pushpin.conf and its routes file, and logs how legacy services were mapped", async () => {
    const dir = tempDir()
    const origin = startOrigin((request) => new Response(`origin: ${new URL(request.url).pathname}`))
    const port = freePort()
    writeConfig(dir, `http_port=127.0.0.1:${port}`, `* 127.0.0.1:${origin.port}\n`)
    const proxy = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf")], keepConfiguredPorts: true })
    try {
      expect(proxy.port).toBe(port)
      const response = await fetch(`${proxy.baseUrl}/from-config`)
      expect(await response.text()).toBe("origin: /from-config")
      expect(origin.seen.at(-1)?.headers["grip-sig"]).toBeString()
      expect(proxy.logs()).toContain("condure → built-in connmgr")
    } finally {
      await proxy.stop()
      await origin.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("./pushpin.conf in the working directory is found without --config", async () => {
    const dir = tempDir()
    const port = freePort()
    writeConfig(dir, `http_port=127.0.0.1:${port}`, "* test\n")
    const proxy = await startPushpinTs({ cwd: dir, keepConfiguredPorts: true })
    try {
      expect(proxy.port).toBe(port)
      expect(await (await fetch(`${proxy.baseUrl}/`)).text()).toBe("Hello from the Pushpin test handler!\n")
    } finally {
      await proxy.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("check prints the resolved config; a broken config exits non-zero with file:line", async () => {
    const dir = tempDir()
    writeConfig(dir, "http_port=7999\nclient_maxconn=lots", "* test\n")
    const broken = Bun.spawnSync([BINARY, "check", "--config", join(dir, "pushpin.conf")])
    expect(broken.exitCode).not.toBe(0)
    expect(broken.stderr.toString()).toMatch(/pushpin\.conf:\d+: \[runner\] client_maxconn/)

    writeConfig(dir, "http_port=7999", "* test\nbad line without target\n")
    const ok = Bun.spawnSync([BINARY, "check", "--config", join(dir, "pushpin.conf")])
    expect(ok.exitCode).toBe(0)
    expect(ok.stdout.toString()).toContain("7999")
    expect(ok.stderr.toString()).toMatch(/routes:2/)
    rmSync(dir, { recursive: true, force: true })
  })

  test("pushpin.conf.example checks clean next to a routes file", () => {
    const dir = tempDir()
    writeFileSync(join(dir, "pushpin.conf"), readFileSync(join(import.meta.dir, "../../pushpin.conf.example")))
    writeFileSync(join(dir, "routes"), "* test\n")
    const checked = Bun.spawnSync([BINARY, "check", "--config", join(dir, "pushpin.conf")])
    expect(checked.exitCode).toBe(0)
    expect(checked.stdout.toString()).toMatch(/^ +\d+  origin_max_concurrency=1024 +used: pushpin-ts only: 1024 requests in flight to one origin at once$/m)
    // the only warnings: the missing internal.conf include, and the example key
    const warnings = checked.stderr.toString().trim().split("\n").filter((line) => line.length > 0)
    for (const warning of warnings) expect(warning).toMatch(/include|changeme/)
    rmSync(dir, { recursive: true, force: true })
  })

  test("a port already in use makes run exit non-zero and say why", async () => {
    const holder = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() })
    const port = holder.port
    const run = Bun.spawn([BINARY, "run", "--port", `127.0.0.1:${port}`], { stdout: "pipe", stderr: "pipe", cwd: tmpdir() })
    const code = await run.exited
    await holder.stop(true)
    expect(code).not.toBe(0)
    expect(await new Response(run.stderr).text()).toContain(`cannot listen on 127.0.0.1:${port}`)
  })
})

describe("logging flags", () => {
  test("--logfile receives Pushpin-format lines; --loglevel 2,proxy:1 silences the access log only", async () => {
    const dir = tempDir()
    const logfile = join(dir, "pushpin.log")
    const port = freePort()
    const run = Bun.spawn([BINARY, "run", "--port", `127.0.0.1:${port}`, "--logfile", logfile, "--loglevel", "2,proxy:1"], {
      cwd: dir,
      stdout: "pipe",
      stderr: "pipe"
    })
    try {
      let answered = false
      for (let attempt = 0; attempt < 100 && !answered; attempt++) {
        answered = await fetch(`http://127.0.0.1:${port}/`).then((response) => response.ok, () => false)
        if (!answered) await Bun.sleep(50)
      }
      expect(answered).toBe(true)
    } finally {
      run.kill("SIGTERM")
      expect(await run.exited).toBe(0)
    }
    const written = readFileSync(logfile, "utf8")
    expect(written).toMatch(/^\[INFO\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[runner\] starting pushpin-ts/)
    expect(written).toContain(`[connmgr] listening for clients on http://127.0.0.1:${port}`)
    expect(written).not.toContain("[proxy] GET")
    expect(await new Response(run.stderr).text()).toBe("")
    rmSync(dir, { recursive: true, force: true })
  })
})

describe("routes reload", () => {
  test("a changed routes file is picked up without dropping a connection in progress; SIGHUP reloads too", async () => {
    const dir = tempDir()
    const slow = startOrigin(async () => {
      await Bun.sleep(2500)
      return new Response("slow origin finished")
    })
    const fresh = startOrigin(() => new Response("second origin"))
    writeConfig(dir, "http_port=127.0.0.1:0", `* 127.0.0.1:${slow.port}\n`)
    const proxy = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf")] })
    try {
      const inFlight = fetch(`${proxy.baseUrl}/long`).then((response) => response.text())
      await Bun.sleep(200)
      // Write-then-rename, as editors do.
      writeFileSync(join(dir, "routes.new"), `* 127.0.0.1:${fresh.port}\n`)
      renameSync(join(dir, "routes.new"), join(dir, "routes"))
      await proxy.waitForLog(/routes reloaded \(routes file changed\)/, 5000)
      expect(await (await fetch(`${proxy.baseUrl}/now`)).text()).toBe("second origin")
      expect(await inFlight).toBe("slow origin finished")

      writeFileSync(join(dir, "routes"), "* test\n")
      proxy.process.kill("SIGHUP")
      await proxy.waitForLog(/routes reloaded \(SIGHUP\)/, 5000)
      expect(await (await fetch(`${proxy.baseUrl}/`)).text()).toBe("Hello from the Pushpin test handler!\n")
    } finally {
      await proxy.stop()
      await slow.stop()
      await fresh.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("limits and lifecycle", () => {
  test("past client_maxconn requests in progress, a client gets 503 + Retry-After at once, and service resumes", async () => {
    const dir = tempDir()
    const origin = startOrigin(async () => {
      await Bun.sleep(800)
      return new Response("done")
    })
    writeConfig(dir, "http_port=127.0.0.1:0\nclient_maxconn=4", `* 127.0.0.1:${origin.port}\n`)
    const proxy = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf")] })
    try {
      const responses = await Promise.all(Array.from({ length: 10 }, () => fetch(`${proxy.baseUrl}/slow`)))
      const statuses = responses.map((response) => response.status).sort()
      expect(statuses.filter((status) => status === 200).length).toBe(4)
      const shed = responses.filter((response) => response.status === 503)
      expect(shed.length).toBe(6)
      for (const response of shed) expect(response.headers.get("retry-after")).toBe("1")
      expect((await fetch(`${proxy.baseUrl}/again`)).status).toBe(200)
    } finally {
      await proxy.stop()
      await origin.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("origin_max_concurrency and max_open_requests bound the line to one origin with an explicit 503", async () => {
    const dir = tempDir()
    let concurrent = 0
    let peak = 0
    const origin = startOrigin(async () => {
      peak = Math.max(peak, ++concurrent)
      await Bun.sleep(300)
      concurrent--
      return new Response("done")
    })
    writeConfig(dir, "http_port=127.0.0.1:0", `* 127.0.0.1:${origin.port}\n`, "origin_max_concurrency=2\nmax_open_requests=3")
    const proxy = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf")] })
    try {
      const responses = await Promise.all(Array.from({ length: 8 }, () => fetch(`${proxy.baseUrl}/q`)))
      const ok = responses.filter((response) => response.status === 200).length
      const shed = responses.filter((response) => response.status === 503 && response.headers.get("retry-after") === "1").length
      expect(ok).toBe(5)
      expect(shed).toBe(3)
      expect(peak).toBe(2)
      await proxy.waitForLog(/origin queue full/)
    } finally {
      await proxy.stop()
      await origin.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("SIGTERM stops gracefully: the request in flight completes and the process exits 0", async () => {
    const origin = startOrigin(async () => {
      await Bun.sleep(700)
      return new Response("finished during shutdown")
    })
    const proxy = await startPushpinTs({ args: ["--route", `* 127.0.0.1:${origin.port}`] })
    const inFlight = fetch(`${proxy.baseUrl}/slow`).then((response) => response.text())
    await Bun.sleep(150)
    const code = await proxy.stop("SIGTERM")
    expect(code).toBe(0)
    expect(await inFlight).toBe("finished during shutdown")
    expect(proxy.logs()).toContain("stopped")
    await expect(fetch(`${proxy.baseUrl}/after`)).rejects.toThrow()
    await origin.stop()
  })
})
