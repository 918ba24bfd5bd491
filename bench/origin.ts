/**
 * The benchmark's origin, a child process: Bun.serve on a loopback ephemeral port.
 *
 *   GET /fast   a short text body at once (proxy throughput)
 *   GET /slow   the same after `slowMs` (the burst scenario)
 *   /echo       a WebSocket that sends every message back
 *
 * Reports `{"type":"listening","port":N}` on stdout.
 */
import { report } from "./child-side.ts"

interface OriginConfig {
  readonly slowMs: number
}

const config: OriginConfig = JSON.parse(process.argv[2] ?? "{}") as OriginConfig
const FAST_BODY = "Hello from the benchmark origin.\n"

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  // Slow answers and long keep-alive runs must not be cut by Bun's 10 s default.
  idleTimeout: 120,
  fetch(request, server) {
    const path = new URL(request.url).pathname
    if (path === "/fast") return new Response(FAST_BODY, { headers: { "content-type": "text/plain" } })
    if (path === "/slow") {
      return Bun.sleep(config.slowMs).then(() => new Response("Slow answer.\n", { headers: { "content-type": "text/plain" } }))
    }
    if (path === "/echo") {
      if (server.upgrade(request, { data: undefined })) return undefined
      return new Response("WebSocket upgrade expected\n", { status: 400 })
    }
    return new Response("Not found\n", { status: 404 })
  },
  websocket: {
    idleTimeout: 120,
    message(ws, message) {
      ws.send(message)
    }
  }
})

report({ type: "listening", port: server.port ?? 0 })
