/**
 * Load generator for WebSocket echo (a child process): `clients` WebSockets (Bun's client) to
 * `url`, each keeping one message in flight: send, wait for the echo, send the next. Once all
 * are open, echoes are counted for `durationMs`.
 *
 * Reports one line: {"type":"done", connected, failed, messages, mismatched, closed, ms, p50Ms, p99Ms}
 * (round-trip times of the counted echoes).
 */
import { report } from "./child-side.ts"
import { quantile } from "./stats.ts"

interface EchoConfig {
  readonly url: string
  readonly clients: number
  readonly durationMs: number
  readonly messageBytes: number
  readonly connectTimeoutMs: number
}

const config = JSON.parse(process.argv[2] ?? "{}") as EchoConfig
const payload = "x".repeat(Math.max(0, config.messageBytes - 8))

let connected = 0
let failed = 0
let closedEarly = 0
let counting = false
let finished = false
let messages = 0
let mismatched = 0
const roundTripsMs: Array<number> = []
const sockets: Array<WebSocket> = []
let measureStarted = 0

const finish = () => {
  if (finished) return
  finished = true
  report({
    type: "done",
    connected,
    failed,
    messages,
    mismatched,
    closed: closedEarly,
    ms: Math.round(performance.now() - measureStarted),
    p50Ms: quantile(roundTripsMs, 0.5),
    p99Ms: quantile(roundTripsMs, 0.99)
  })
  for (const socket of sockets) socket.close()
  process.exit(0)
}

const startCounting = () => {
  if (counting) return
  counting = true
  measureStarted = performance.now()
  setTimeout(finish, config.durationMs)
  for (const send of senders) send()
}

const senders: Array<() => void> = []

const settleConnect = () => {
  if (connected + failed === config.clients) {
    if (connected === 0) finish()
    else startCounting()
  }
}

for (let index = 0; index < config.clients; index++) {
  const socket = new WebSocket(config.url)
  sockets.push(socket)
  let sequence = 0
  let sentAt = 0
  let expected = ""
  let state: "connecting" | "open" | "gone" = "connecting"
  const sendNext = () => {
    if (finished || state !== "open") return
    sequence++
    expected = `${String(sequence).padStart(8, "0")}${payload}`
    sentAt = performance.now()
    socket.send(expected)
  }
  socket.addEventListener("open", () => {
    state = "open"
    connected++
    senders.push(sendNext)
    settleConnect()
  })
  socket.addEventListener("message", (event) => {
    if (finished) return
    if (event.data !== expected) mismatched++
    messages++
    roundTripsMs.push(performance.now() - sentAt)
    sendNext()
  })
  socket.addEventListener("close", () => {
    if (state === "connecting") {
      failed++
      state = "gone"
      settleConnect()
    } else if (state === "open") {
      state = "gone"
      if (!finished) closedEarly++
    }
  })
}

// Clients that never open by the deadline count as failed; measure with the rest.
setTimeout(() => {
  if (counting) return
  failed = config.clients - connected
  if (connected === 0) finish()
  else startCounting()
}, config.connectTimeoutMs)
