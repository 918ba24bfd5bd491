/**
 * Bun.serve behind the runtime adapter. Bun.serve sits on uWebSockets/uSockets, the engine
 * hyper-express wraps, without a native addon that Bun cannot load.
 */
import type { ClientConnection, RunningServer, ServeOptions, ServerRuntime } from "./server.ts"

// Bun rejects idleTimeout above 255 s; 0 disables it.
const BUN_MAX_IDLE_TIMEOUT_SECONDS = 255

const serve = (options: ServeOptions): RunningServer => {
  const { listener, handler } = options
  const isTls = false
  const listenerPort = listener.kind === "tcp" ? listener.port : 0
  const address = listener.kind === "tcp" ? { hostname: listener.host, port: listener.port } : { unix: listener.path }
  const server: Bun.Server<undefined> = Bun.serve({
    ...(address as { hostname: string; port: number }),
    idleTimeout: Math.min(options.idleTimeoutSeconds, BUN_MAX_IDLE_TIMEOUT_SECONDS),
    maxRequestBodySize: options.maxRequestBodyBytes,
    development: false,
    error: options.onError,
    fetch(request, bunServer) {
      const client: ClientConnection = {
        remoteAddress: bunServer.requestIP(request)?.address,
        isTls,
        listenerPort: listener.kind === "tcp" ? (bunServer.port ?? listenerPort) : 0,
        // Bun's per-request override sticks to the socket for its lifetime (measured with
        // Bun 1.4.4: a later timeout(req, n) does not re-arm it), so connections that carried a
        // long-lived response keep no idle timer afterwards, like Pushpin's 1800 s stream timeout.
        keepOpen: () => bunServer.timeout(request, 0)
      }
      return handler(request, client)
    }
  })
  const port = server.port ?? 0
  return {
    port,
    description: listener.kind === "tcp" ? `${listener.host}:${port}` : `unix:${listener.path}`,
    pendingRequests: () => server.pendingRequests,
    stop: (force) => server.stop(force)
  }
}

export const BunServerRuntime: ServerRuntime = { name: `bun ${Bun.version}`, serve }
