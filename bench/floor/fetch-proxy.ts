/**
 * The least an HTTP proxy on pushpin-ts's own stack does (a child process): `Bun.serve` in
 * front, `fetch` to the origin with the options pushpin-ts uses (`decompress: false`, manual
 * redirects, `Accept-Encoding: identity`), and the origin's status, headers and body streamed
 * back. No routes, header rules, signing, GRIP inspection, limits or access log.
 *
 * What wrk measures through this is the ceiling of the Bun.serve + fetch design on this
 * machine, next to pushpin-ts (scenario 1) and the byte relay (relay-floor.c).
 *
 * Reports `{"type":"listening","port":N}` on stdout.
 */
import { report } from "../child-side.ts"

interface FetchProxyConfig {
  readonly originPort: number
}

const config = JSON.parse(process.argv[2] ?? "{}") as FetchProxyConfig
const origin = `http://127.0.0.1:${config.originPort}`

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  development: false,
  async fetch(request) {
    const pathStart = request.url.indexOf("/", request.url.indexOf("://") + 3)
    const upstream = await fetch(origin + request.url.slice(pathStart), {
      method: request.method,
      headers: { "accept-encoding": "identity" },
      redirect: "manual",
      decompress: false
    })
    return new Response(upstream.body, { status: upstream.status, headers: upstream.headers })
  }
})

report({ type: "listening", port: server.port ?? 0 })
