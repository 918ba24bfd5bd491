/**
 * 6. WebSocket echo through the proxy: clients in a separate process each keep one message
 * in flight to an echo origin; messages echoed per second.
 */
import { spawnChild } from "../child.ts"
import { atLeastTimes, metric, type Scenario } from "../scenario.ts"
import { cpuMs } from "../processes.ts"
import { serverFor } from "./common.ts"

export const MESSAGE_BYTES = 64
export const CONNECT_TIMEOUT_MS = 20_000

export const websocketEcho: Scenario = {
  id: "websocket-echo",
  title: "6. WebSocket echo through the proxy",
  description:
    `100 WebSocket clients (one process, Bun's client) connect through the server to a Bun echo origin; each sends a ` +
    `${MESSAGE_BYTES}-byte text message, waits for the echo and sends the next, for 10 s once all are open. ` +
    "Ceiling: the same clients against the origin directly.",
  sides: ["pushpin-ts", "pushpin", "ceiling"],
  ceilingLabel: "origin direct",
  metrics: [
    metric("messagesPerS", "echoed messages/s", "/s", 0),
    metric("p50Ms", "p50 round trip", "ms", 2),
    metric("p99Ms", "p99 round trip", "ms", 2),
    metric("connected", "clients connected", "", 0, false),
    metric("problems", "mismatched + closed early", "", 0, false),
    metric("cpuUsPerMessage", "server CPU per echoed message", "µs", 1),
    metric("cores", "server CPU in use", "cores", 2)
  ],
  goals: [atLeastTimes("messagesPerS", "messages/s ≥ 10× Pushpin", 10)],
  timeoutMs: (sizes) => sizes.wsDurationS * 1000 + CONNECT_TIMEOUT_MS + 60_000,
  measure: async (side, context) => {
    const server = side === "ceiling" ? undefined : await serverFor(side, context)
    const port = server?.httpPort ?? context.originPort
    const serverCpuMs = () => server?.cpuMs() ?? cpuMs(context.originPid)
    const cpuBefore = serverCpuMs()
    const client = spawnChild(
      "ws-echo-client.ts",
      {
        url: `ws://127.0.0.1:${port}/echo`,
        clients: context.sizes.wsClients,
        durationMs: context.sizes.wsDurationS * 1000,
        messageBytes: MESSAGE_BYTES,
        connectTimeoutMs: CONNECT_TIMEOUT_MS
      },
      context.scope
    )
    const done = await client.next("done", context.sizes.wsDurationS * 1000 + CONNECT_TIMEOUT_MS + 30_000)
    // Includes the clients' handshakes, which are few next to the messages.
    const cpuUsed = serverCpuMs() - cpuBefore
    return {
      cpuUsPerMessage: (cpuUsed * 1000) / Math.max(1, Number(done.messages)),
      cores: cpuUsed / Number(done.ms),
      messagesPerS: Number(done.messages) / (Number(done.ms) / 1000),
      p50Ms: Number(done.p50Ms),
      p99Ms: Number(done.p99Ms),
      connected: Number(done.connected),
      problems: Number(done.mismatched) + Number(done.closed)
    }
  }
}
