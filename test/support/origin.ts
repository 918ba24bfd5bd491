/**
 * A real origin server for end-to-end tests: Bun.serve on an ephemeral port that records what
 * it received and answers by path.
 */
import type { Server } from "node:net"

export interface SeenRequest {
  readonly method: string
  readonly url: string
  readonly headers: Record<string, string>
  readonly body: Uint8Array<ArrayBuffer>
}

export interface TestOrigin {
  readonly port: number
  readonly seen: Array<SeenRequest>
  readonly stop: () => Promise<void>
}

export type OriginRoute = (request: Request, body: Uint8Array<ArrayBuffer>) => Response | Promise<Response>

export const startOrigin = (route: OriginRoute, port = 0): TestOrigin => {
  const seen: Array<SeenRequest> = []
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port,
    idleTimeout: 0,
    async fetch(request) {
      const body = new Uint8Array(await request.arrayBuffer())
      seen.push({ method: request.method, url: request.url, headers: Object.fromEntries(request.headers), body })
      return route(request, body)
    }
  })
  return { port: server.port ?? 0, seen, stop: () => server.stop(true) }
}

/** A port that nothing listens on (bound, then released). */
/** Starts a node:net server on an ephemeral 127.0.0.1 port and returns the port. */
export const listenOnLoopback = async (server: Server): Promise<number> => {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const address = server.address()
  if (address === null || typeof address === "string") throw new Error("a loopback listener without a port")
  return address.port
}

export const deadPort = (): number => {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() })
  const port = server.port ?? 0
  server.stop(true)
  return port
}
