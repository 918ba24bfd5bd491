/**
 * Load generator for held streams (a child process; many connections in one process).
 *
 * Opens `count` raw TCP connections to `GET <path>` (a GRIP stream hold), keeping at most
 * `openConcurrency` of them between connect and "[stream opened]" so the server's accept queue
 * never overflows. Published lines look like `<seq> <sentUs>` (sentUs: the publisher's
 * CLOCK_MONOTONIC in µs, bench/clock.ts), so each delivery's latency is measured on arrival.
 *
 * Until the "freeze" command, a held stream the server ends is replaced by a new one (counted):
 * Pushpin 1.36 re-requests every hold about 1 s after a channel's first subscription and
 * cancels some of them under load ("received message out of sequence"), and the measurement
 * should start from `count` held streams on both servers. From "freeze" on, an ended stream is
 * a lost subscriber.
 *
 * Reports (JSON lines on stdout):
 *   {"type":"opened", open, ms, ...}    `count` streams are open at once (or the open deadline passed)
 *   {"type":"frozen", held, ...}        on "freeze": the streams that count from now on
 *   {"type":"progress", seq}            every held stream has received `seq`
 *   {"type":"complete", atUs}           every held stream has received all `expect` messages
 *   {"type":"report", ...}              on "report": counts and every latency (µs)
 *   {"type":"closed"}                   on "close": every stream was ended by us
 */
import { onCommand, report } from "./child-side.ts"
import { monotonicUs } from "./clock.ts"
import { HttpStreamReader } from "./http-stream-reader.ts"

export interface HeldClientConfig {
  readonly port: number
  readonly host: string
  readonly path: string
  readonly count: number
  readonly openConcurrency: number
  readonly openTimeoutMs: number
  /** Messages each stream should receive; seqs run 1..expect. */
  readonly expect: number
}

/** Connection attempts beyond `count` (failures and replacements) before giving up on more. */
const MAX_EXTRA_ATTEMPTS_FACTOR = 1

type Phase = "opening" | "settling" | "frozen" | "closing"
type ConnectionState = "connecting" | "open" | "failed" | "ended"

interface Connection {
  state: ConnectionState
  reader: HttpStreamReader
  /** Counted among the held streams at "freeze". */
  held: boolean
  lastSeq: number
  /** Which seqs arrived, to tell duplicates from reordering. */
  seen: Uint8Array
  socket: { end(): void } | undefined
}

const config = JSON.parse(process.argv[2] ?? "{}") as HeldClientConfig
const request = `GET ${config.path} HTTP/1.1\r\nHost: ${config.host}\r\nUser-Agent: pushpin-bench\r\n\r\n`
const maxAttempts = config.count * (1 + MAX_EXTRA_ATTEMPTS_FACTOR)

let phase: Phase = "opening"
const connections: Array<Connection> = []
const deliveredPerSeq = new Uint32Array(config.expect + 1)
const latenciesUs: Array<number> = []
const statuses: Record<string, number> = {}
const errors: Record<string, number> = {}
let attempts = 0
let connecting = 0
let open = 0
let failedAttempts = 0
let replaced = 0
let heldCount = 0
let lostHeld = 0
let received = 0
let outOfOrder = 0
let duplicates = 0
let unexpected = 0
let brokenStreams = 0
let lastReceiveUs = 0
let completeReported = false
const started = performance.now()

const countError = (code: string) => {
  errors[code] = (errors[code] ?? 0) + 1
}

const wanted = () => phase === "opening" || phase === "settling"

function openMore() {
  if (!wanted()) return
  while (open + connecting < config.count && connecting < config.openConcurrency && attempts < maxAttempts) {
    openOne()
  }
  if (phase === "opening" && (open === config.count || (connecting === 0 && attempts >= maxAttempts))) finishOpening()
  if (phase === "settling" && connecting === 0) maybeReportFrozen()
}

const openDeadline = setTimeout(() => finishOpening(), config.openTimeoutMs)

function finishOpening() {
  if (phase !== "opening") return
  phase = "settling"
  clearTimeout(openDeadline)
  report({ type: "opened", open, attempts, failedAttempts, statuses, errors, ms: Math.round(performance.now() - started) })
}

let freezeRequested = false
function maybeReportFrozen() {
  if (!freezeRequested || phase !== "settling" || connecting > 0) return
  phase = "frozen"
  for (const connection of connections) {
    if (connection.state !== "open") continue
    connection.held = true
    heldCount++
  }
  report({ type: "frozen", held: heldCount, replaced, attempts, failedAttempts, errors })
}

const maybeComplete = () => {
  if (completeReported || config.expect === 0 || heldCount === 0) return
  if (received >= heldCount * config.expect) {
    completeReported = true
    report({ type: "complete", atUs: lastReceiveUs })
  }
}

const onLine = (connection: Connection, line: string) => {
  if (connection.state === "connecting") {
    if (line.includes("[stream opened]")) {
      connection.state = "open"
      connecting--
      open++
      openMore()
    }
    return
  }
  if (!connection.held || line.includes("[stream opened]")) return
  const space = line.indexOf(" ")
  const seq = Number(line.slice(0, space))
  const sentUs = Number(line.slice(space + 1))
  if (space < 0 || !Number.isInteger(seq) || seq < 1 || seq > config.expect || !Number.isFinite(sentUs)) {
    unexpected++
    return
  }
  const arrivedUs = monotonicUs()
  if (connection.seen[seq] === 1) {
    duplicates++
    return
  }
  connection.seen[seq] = 1
  if (seq < connection.lastSeq) outOfOrder++
  connection.lastSeq = Math.max(connection.lastSeq, seq)
  received++
  lastReceiveUs = arrivedUs
  latenciesUs.push(arrivedUs - sentUs)
  deliveredPerSeq[seq] = (deliveredPerSeq[seq] ?? 0) + 1
  if (deliveredPerSeq[seq] === heldCount) report({ type: "progress", seq })
  maybeComplete()
}

const ended = (connection: Connection, code: string) => {
  if (connection.state === "connecting") {
    countError(code)
    connection.state = "failed"
    connecting--
    failedAttempts++
  } else if (connection.state === "open") {
    connection.state = "ended"
    open--
    if (phase === "closing") return
    countError(code)
    if (connection.held) lostHeld++
    else replaced++
  } else {
    return
  }
  openMore()
}

function openOne() {
  attempts++
  connecting++
  const connection: Connection = {
    state: "connecting",
    reader: new HttpStreamReader(() => {}),
    held: false,
    lastSeq: 0,
    seen: new Uint8Array(config.expect + 1),
    socket: undefined
  }
  connection.reader = new HttpStreamReader((line) => onLine(connection, line))
  connections.push(connection)
  Bun.connect({
    hostname: "127.0.0.1",
    port: config.port,
    socket: {
      open(socket) {
        connection.socket = socket
        socket.write(request)
      },
      data(socket, data) {
        const wasBroken = connection.reader.problem !== undefined
        connection.reader.push(data.toString("latin1"))
        if (!wasBroken && connection.reader.problem !== undefined) brokenStreams++
        const status = connection.reader.status
        if (status !== undefined && status !== 200 && connection.state === "connecting") {
          statuses[String(status)] = (statuses[String(status)] ?? 0) + 1
          socket.end()
        }
      },
      close() {
        ended(connection, "closed by server")
      },
      error(_socket, error) {
        countError((error as { code?: string }).code ?? error.name)
      },
      connectError(_socket, error) {
        ended(connection, (error as { code?: string }).code ?? error.name)
      }
    }
  }).catch((error: unknown) => {
    ended(connection, String((error as { code?: string }).code ?? error))
  })
}

onCommand((command) => {
  if (command === "freeze") {
    freezeRequested = true
    if (phase === "opening") finishOpening()
    maybeReportFrozen()
  } else if (command === "report") {
    report({
      type: "report",
      held: heldCount,
      lostHeld,
      replaced,
      received,
      expected: heldCount * config.expect,
      outOfOrder,
      duplicates,
      unexpected,
      brokenStreams,
      errors,
      lastReceiveUs,
      cpuMs: (process.cpuUsage().user + process.cpuUsage().system) / 1000,
      latenciesUs
    })
  } else if (command === "close") {
    phase = "closing"
    for (const connection of connections) connection.socket?.end()
    report({ type: "closed" })
  } else if (command === "exit") {
    process.exit(0)
  }
})

openMore()
