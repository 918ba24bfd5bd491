/**
 * Load generator for the burst scenario (a child process): `count` raw HTTP/1.1 requests
 * (`Connection: close`) started at once, each on its own connection, and what became of each:
 * a status code, a reset/close without a response, or no answer within `hangMs` (a hang).
 *
 * Reports one line: {"type":"done", statuses, resets, connectErrors, hangs, ms, p50Ms, p99Ms, maxMs}
 * (latencies of the answered requests, from connect start to the status line).
 */
import { report } from "./child-side.ts"
import { quantile } from "./stats.ts"

interface BurstConfig {
  readonly port: number
  readonly path: string
  readonly count: number
  readonly hangMs: number
}

const config = JSON.parse(process.argv[2] ?? "{}") as BurstConfig
const request = `GET ${config.path} HTTP/1.1\r\nHost: burst.bench\r\nUser-Agent: pushpin-bench\r\nConnection: close\r\n\r\n`

const statuses: Record<string, number> = {}
const latenciesMs: Array<number> = []
let resets = 0
let connectErrors = 0
let hangs = 0
let settled = 0
const started = performance.now()
const sockets: Array<{ end(): void }> = []

const finish = () => {
  report({
    type: "done",
    statuses,
    resets,
    connectErrors,
    hangs,
    ms: Math.round(performance.now() - started),
    p50Ms: quantile(latenciesMs, 0.5),
    p99Ms: quantile(latenciesMs, 0.99),
    maxMs: Math.max(0, ...latenciesMs)
  })
  for (const socket of sockets) socket.end()
  process.exit(0)
}

const settle = () => {
  if (++settled === config.count) finish()
}

// Whatever has no answer by then is a hang.
setTimeout(() => {
  hangs = config.count - settled
  finish()
}, config.hangMs)

for (let index = 0; index < config.count; index++) {
  const begun = performance.now()
  let head = ""
  let outcome: "pending" | "answered" | "failed" = "pending"
  Bun.connect({
    hostname: "127.0.0.1",
    port: config.port,
    socket: {
      open(socket) {
        sockets.push(socket)
        socket.write(request)
      },
      data(socket, data) {
        if (outcome !== "pending") return
        head += data.toString("latin1")
        const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)
        if (status === null) {
          if (head.length > 64 || head.includes("\r\n")) {
            outcome = "failed"
            resets++
            socket.end()
            settle()
          }
          return
        }
        outcome = "answered"
        latenciesMs.push(performance.now() - begun)
        statuses[status[1] ?? "?"] = (statuses[status[1] ?? "?"] ?? 0) + 1
        socket.end()
        settle()
      },
      close() {
        if (outcome !== "pending") return
        outcome = "failed"
        resets++
        settle()
      },
      connectError() {
        if (outcome !== "pending") return
        outcome = "failed"
        connectErrors++
        settle()
      }
    }
  }).catch(() => {
    if (outcome !== "pending") return
    outcome = "failed"
    connectErrors++
    settle()
  })
}
