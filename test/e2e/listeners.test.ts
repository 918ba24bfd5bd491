/**
 * End to end: `https_ports` (TLS with certificates from runner/certs, chosen by SNI) and
 * `local_ports` (unix sockets), as configured in pushpin.conf.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as tls from "node:tls"
import { publish, subscribed } from "../support/grip.ts"
import { startOrigin, type TestOrigin } from "../support/origin.ts"
import { BINARY, type RunningPushpinTs, startPushpinTs } from "../support/pushpin-ts.ts"
import { readUntil } from "../support/streams.ts"
import { openWebSocket, upgrade } from "../support/ws-client.ts"

const OPENSSL = "/usr/bin/openssl"
const HELLO = "Hello from the Pushpin test handler!\n"
const ALT_HOST = "alt.example.test"
const SOCKET_MODE = 0o660

const freePort = (): number => {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() })
  const port = server.port ?? 0
  server.stop(true)
  return port
}

/** A self-signed certificate for `commonName`, written as `<name>.crt` and `<name>.key` in `dir`. */
const makeCertificate = (dir: string, name: string, commonName: string) => {
  const made = Bun.spawnSync([
    OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, `${name}.key`), "-out", join(dir, `${name}.crt`), "-days", "2", "-subj", `/CN=${commonName}`
  ])
  if (made.exitCode !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`)
}

/** Writes `file` (pushpin.conf by default) in `dir`, with a `* test` routes file unless one is there; returns its path. */
const writeConfig = (dir: string, runner: string, file = "pushpin.conf"): string => {
  writeFileSync(
    join(dir, file),
    `[global]\nrundir=${join(dir, "run")}\n\n[runner]\nservices=condure,pushpin-proxy,pushpin-handler\n${runner}\n\n` +
      `[proxy]\nroutesfile=routes\nset_x_forwarded_protocol=proto-only\n`
  )
  if (!existsSync(join(dir, "routes"))) writeFileSync(join(dir, "routes"), "* test\n")
  return join(dir, file)
}

/** The subject CN of the certificate the server presents, with `servername` sent as SNI if given. */
const peerCommonName = (port: number, servername?: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: "127.0.0.1", port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) },
      () => {
        resolve(String(socket.getPeerCertificate().subject.CN))
        socket.end()
      }
    )
    socket.once("error", reject)
  })

const insecure = { tls: { rejectUnauthorized: false } }

// The DOM lib's WebSocket declaration hides Bun's constructor overload that takes TLS options.
const BunWebSocket = WebSocket as unknown as new (url: string, options: Bun.WebSocketOptions) => WebSocket

/** Runs the binary to completion and returns its exit code and everything it printed. */
const runToExit = async (configFile: string): Promise<{ code: number; output: string }> => {
  const run = Bun.spawn([BINARY, "run", "--config", configFile, "--publish-port", "127.0.0.1:0"], { stdout: "pipe", stderr: "pipe", cwd: tmpdir() })
  const code = await run.exited
  return { code, output: (await new Response(run.stdout).text()) + (await new Response(run.stderr).text()) }
}

describe("https_ports and local_ports", () => {
  let dir: string
  let certs: string
  let socketPath: string
  let httpsPort: number
  let origin: TestOrigin
  let proxy: RunningPushpinTs

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "pushpin-ts-listeners-"))
    certs = join(dir, "runner", "certs")
    mkdirSync(certs, { recursive: true })
    httpsPort = freePort()
    makeCertificate(certs, `default_${httpsPort}`, "default.example.test")
    makeCertificate(certs, ALT_HOST, ALT_HOST)
    makeCertificate(certs, "_.wild.example.test", "*.wild.example.test")
    writeFileSync(join(certs, "orphan.example.test.crt"), "never paired with a key")
    socketPath = join(dir, "run", "pushpin-server")
    origin = startOrigin((request) => new Response(`origin saw ${new URL(request.url).pathname}`))
    writeConfig(
      dir,
      `http_port=127.0.0.1:${freePort()}\nhttps_ports=127.0.0.1:${httpsPort}\n` +
        `local_ports={rundir}/pushpin-server?mode=${SOCKET_MODE.toString(8)}`
    )
    writeFileSync(
      join(dir, "routes"),
      `*,ssl=yes,path_beg=/origin/,header=X-Listener:tls 127.0.0.1:${origin.port}\n` +
        `*,path_beg=/origin/,header=X-Listener:plain 127.0.0.1:${origin.port}\n` +
        "* test\n"
    )
    proxy = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf"), "--publish-port", "127.0.0.1:0"], keepConfiguredPorts: true })
    await proxy.waitForLog(/listening for clients on unix:\S+/)
  })

  afterAll(async () => {
    await proxy.stop()
    await origin.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  test("the test route answers over HTTPS, and the startup log says where certificates came from", async () => {
    const response = await fetch(`https://127.0.0.1:${httpsPort}/`, insecure)
    expect(response.status).toBe(200)
    expect(await response.text()).toBe(HELLO)
    expect(proxy.logs()).toContain(`listening for clients on https://127.0.0.1:${httpsPort} (certificates from ${certs}`)
    expect(proxy.logs()).toContain(`${join(certs, "orphan.example.test.crt")} ignored: no orphan.example.test.key next to it`)
  })

  test("SNI picks <host>.crt, then _.<parent>.crt; no SNI or an unknown name gets default_<port>.crt", async () => {
    expect(await peerCommonName(httpsPort)).toBe("default.example.test")
    expect(await peerCommonName(httpsPort, ALT_HOST)).toBe(ALT_HOST)
    expect(await peerCommonName(httpsPort, "api.wild.example.test")).toBe("*.wild.example.test")
    expect(await peerCommonName(httpsPort, "a.b.wild.example.test")).toBe("default.example.test")
    expect(await peerCommonName(httpsPort, "unknown.example.test")).toBe("default.example.test")
  })

  test("a request proxied from the TLS listener matches ssl=yes routes and carries X-Forwarded-Proto: https", async () => {
    const secure = await fetch(`https://127.0.0.1:${httpsPort}/origin/a`, insecure)
    expect(await secure.text()).toBe("origin saw /origin/a")
    const seenSecure = origin.seen.at(-1)
    expect(seenSecure?.headers["x-forwarded-proto"]).toBe("https")
    expect(seenSecure?.headers["x-listener"]).toBe("tls")

    const plain = await fetch(`${proxy.baseUrl}/origin/b`)
    expect(await plain.text()).toBe("origin saw /origin/b")
    const seenPlain = origin.seen.at(-1)
    expect(seenPlain?.headers["x-forwarded-proto"]).toBeUndefined()
    expect(seenPlain?.headers["x-listener"]).toBe("plain")
  })

  test("a WebSocket over TLS reaches the test route's echo", async () => {
    const ws = new BunWebSocket(`wss://127.0.0.1:${httpsPort}/ws`, { tls: { rejectUnauthorized: false } })
    try {
      const echoed = new Promise<string>((resolve, reject) => {
        ws.onmessage = (event) => resolve(String(event.data))
        ws.onerror = () => reject(new Error("wss error"))
      })
      await new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve()
        ws.onerror = () => reject(new Error("wss did not open"))
      })
      ws.send("over tls")
      expect(await echoed).toBe("over tls")
    } finally {
      ws.close()
    }
  })

  test("the unix socket carries the configured mode and a held stream receives a publish", async () => {
    expect(statSync(socketPath).isSocket()).toBe(true)
    expect(statSync(socketPath).mode & 0o7777).toBe(SOCKET_MODE)

    const stream = await fetch("http://localhost/stream?channel=over-unix", { unix: socketPath })
    expect(stream.status).toBe(200)
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader()
    try {
      expect(await readUntil(reader, (text) => text.includes("\n"))).toBe("[stream opened]\n")
      await subscribed(proxy, "over-unix")
      const published = await publish(proxy.publishUrl, [{ channel: "over-unix", formats: { "http-stream": { content: "via the socket\n" } } }])
      expect(published.status).toBe(200)
      expect(await readUntil(reader, (text) => text.includes("via the socket\n"))).toBe("via the socket\n")
    } finally {
      await reader.cancel()
    }
  })

  test("a WebSocket over the unix socket reaches the test route's echo", async () => {
    const ws = await openWebSocket({ port: 0, socketPath, path: "/ws" })
    try {
      ws.sendText("over unix")
      await ws.waitFor("echo", (events) => events.some((event) => event.type === "text" && event.data === "over unix"))
    } finally {
      ws.destroy()
    }
  })
})

describe("startup checks", () => {
  const tempDir = () => mkdtempSync(join(tmpdir(), "pushpin-ts-listeners-"))

  test("default.crt and default.key serve every TLS port that has no default_<port> of its own", async () => {
    const dir = tempDir()
    const certs = join(dir, "runner", "certs")
    mkdirSync(certs, { recursive: true })
    const [shared, own] = [freePort(), freePort()]
    makeCertificate(certs, "default", "shared.example.test")
    makeCertificate(certs, `default_${own}`, "own.example.test")
    writeConfig(dir, `http_port=127.0.0.1:${freePort()}\nhttps_ports=127.0.0.1:${shared},127.0.0.1:${own}`)
    const proxy = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf"), "--publish-port", "127.0.0.1:0"], keepConfiguredPorts: true })
    try {
      await proxy.waitForLog(new RegExp(`listening for clients on https://127.0.0.1:${own}`))
      expect(await peerCommonName(shared)).toBe("shared.example.test")
      expect(await peerCommonName(own)).toBe("own.example.test")
      expect(await (await fetch(`https://127.0.0.1:${shared}/`, insecure)).text()).toBe(HELLO)
    } finally {
      await proxy.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a missing default certificate stops the start with a message naming the file", async () => {
    const dir = tempDir()
    try {
      const port = freePort()
      mkdirSync(join(dir, "runner", "certs"), { recursive: true })
      makeCertificate(join(dir, "runner", "certs"), ALT_HOST, ALT_HOST)
      writeConfig(dir, `http_port=127.0.0.1:${freePort()}\nhttps_ports=127.0.0.1:${port}`)
      const { code, output } = await runToExit(join(dir, "pushpin.conf"))
      expect(code).not.toBe(0)
      expect(output).toContain(`TLS certificate file ${join(dir, "runner", "certs", `default_${port}.crt`)}: not found`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a default key that does not belong to its certificate stops the start, naming the key", async () => {
    const dir = tempDir()
    try {
      const port = freePort()
      const certs = join(dir, "runner", "certs")
      mkdirSync(certs, { recursive: true })
      makeCertificate(certs, `default_${port}`, "default.example.test")
      makeCertificate(certs, ALT_HOST, ALT_HOST)
      copyFileSync(join(certs, `${ALT_HOST}.key`), join(certs, `default_${port}.key`))
      writeConfig(dir, `http_port=127.0.0.1:${freePort()}\nhttps_ports=127.0.0.1:${port}`)
      const { code, output } = await runToExit(join(dir, "pushpin.conf"))
      expect(code).not.toBe(0)
      expect(output).toContain(`TLS certificate file ${join(certs, `default_${port}.key`)}: does not match the certificate`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a socket file left by a killed process is replaced; a live socket or a regular file is left alone", async () => {
    const dir = tempDir()
    const socketPath = join(dir, "pushpin.sock")
    try {
      writeConfig(dir, `http_port=127.0.0.1:${freePort()}\nlocal_ports=${socketPath}`)
      const killed = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf"), "--publish-port", "127.0.0.1:0"], keepConfiguredPorts: true })
      await killed.waitForLog(/listening for clients on unix:/)
      await killed.stop("SIGKILL")
      expect(statSync(socketPath).isSocket()).toBe(true)

      const restarted = await startPushpinTs({ args: ["--config", join(dir, "pushpin.conf"), "--publish-port", "127.0.0.1:0"], keepConfiguredPorts: true })
      try {
        await restarted.waitForLog(/listening for clients on unix:/)
        expect(await (await fetch("http://localhost/", { unix: socketPath })).text()).toBe(HELLO)

        // Its own HTTP port, so only the socket stands in its way.
        const second = await runToExit(writeConfig(dir, `http_port=127.0.0.1:${freePort()}\nlocal_ports=${socketPath}`, "second.conf"))
        expect(second.code).not.toBe(0)
        expect(second.output).toContain(`cannot listen on unix:${socketPath}: another server is listening on this socket`)
        expect(await (await fetch("http://localhost/", { unix: socketPath })).text()).toBe(HELLO)
      } finally {
        await restarted.stop()
      }

      writeFileSync(socketPath, "not a socket")
      const overFile = await runToExit(join(dir, "pushpin.conf"))
      expect(overFile.code).not.toBe(0)
      expect(overFile.output).toContain(`cannot listen on unix:${socketPath}: the path exists and is not a socket`)
      expect(existsSync(socketPath) && statSync(socketPath).isFile()).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("an unknown socket owner stops the start, naming the user", async () => {
    const dir = tempDir()
    try {
      const socketPath = join(dir, "pushpin.sock")
      writeConfig(dir, `http_port=127.0.0.1:${freePort()}\nlocal_ports=${socketPath}?user=no-such-user-pushpin-ts`)
      const { code, output } = await runToExit(join(dir, "pushpin.conf"))
      expect(code).not.toBe(0)
      expect(output).toContain(`cannot listen on unix:${socketPath}: unknown user "no-such-user-pushpin-ts"`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe("TLS origins (route targets with ssl)", () => {
  let dir: string
  let origin: ReturnType<typeof Bun.serve>
  let proxy: RunningPushpinTs

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "pushpin-ts-tls-origin-"))
    makeCertificate(dir, "origin", "localhost")
    origin = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: { cert: Bun.file(join(dir, "origin.crt")), key: Bun.file(join(dir, "origin.key")) },
      fetch(request, server) {
        if (server.upgrade(request, { data: undefined })) return undefined
        return new Response(`https origin saw ${new URL(request.url).pathname}\n`)
      },
      websocket: {
        message(ws, message) {
          ws.send(`origin over tls: ${String(message)}`)
        }
      }
    })
    // The origin's certificate is self-signed: `insecure` accepts it, a plain `ssl` target must refuse it.
    proxy = await startPushpinTs({
      args: [
        "--route", `*,path_beg=/insecure/ 127.0.0.1:${origin.port},ssl,insecure`,
        "--route", `*,path_beg=/strict/ 127.0.0.1:${origin.port},ssl`
      ]
    })
  })

  afterAll(async () => {
    await proxy.stop()
    origin.stop(true)
    rmSync(dir, { recursive: true, force: true })
  })

  test("a WebSocket reaches a wss origin through the binary, both ways", async () => {
    const ws = await openWebSocket({ port: proxy.port, path: "/insecure/echo" })
    try {
      ws.sendText("hello")
      await ws.waitFor("the echo", (events) => events.some((event) => event.type === "text"))
      expect(ws.events.find((event) => event.type === "text")).toMatchObject({ type: "text", data: "origin over tls: hello" })
    } finally {
      ws.close(1000)
    }
    const plain = await fetch(`${proxy.baseUrl}/insecure/page`)
    expect(await plain.text()).toBe("https origin saw /insecure/page\n")
  })

  test("a wss origin whose certificate is not trusted is refused: the client gets 502, nothing is relayed", async () => {
    const outcome = await upgrade({ port: proxy.port, path: "/strict/echo" })
    expect(outcome.kind).toBe("refused")
    if (outcome.kind === "refused") expect(outcome.answer.head.status).toBe(502)
    expect((await fetch(`${proxy.baseUrl}/strict/page`)).status).toBe(502)
  })
})
