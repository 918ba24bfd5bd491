/**
 * Memory per idle held stream: starts ./pushpin-ts with the built-in test route, opens N client
 * connections to /stream (each a stream hold subscribed to one channel) from this separate
 * process, and reads the server's RSS from /proc before, with N held, and after they close.
 *
 *   bun bench/held-streams.ts [N=10000]
 *
 * Loopback only; bounded in count and time. Issue 6 adds the side-by-side run against Pushpin.
 */
import { readFileSync } from "node:fs"
import { connect, type Socket } from "node:net"
import { startPushpinTs } from "../test/support/pushpin-ts.ts"

const count = Number(process.argv[2] ?? 10_000)
const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN)

const server = await startPushpinTs({ args: ["--loglevel", "2,proxy:1,handler:1"] })
const pid = server.process.pid
await Bun.sleep(500)
const idle = rssKb(pid)

const sockets: Array<Socket> = []
let opened = 0
const started = performance.now()
await new Promise<void>((resolve, reject) => {
  const deadline = setTimeout(() => reject(new Error(`only ${opened}/${count} streams opened in 120 s`)), 120_000)
  const openOne = () => {
    const socket = connect(server.port, "127.0.0.1")
    sockets.push(socket)
    let seen = false
    socket.on("data", (chunk) => {
      if (seen || !chunk.toString("latin1").includes("[stream opened]")) return
      seen = true
      if (++opened === count) {
        clearTimeout(deadline)
        resolve()
      }
    })
    socket.on("error", reject)
    socket.write(`GET /stream?channel=bench HTTP/1.1\r\nHost: bench\r\n\r\n`)
  }
  // Open in batches so the accept queue never overflows.
  let issued = 0
  const batch = () => {
    for (let i = 0; i < 500 && issued < count; i++, issued++) openOne()
    if (issued < count) setTimeout(batch, 20)
  }
  batch()
})
const setupSeconds = (performance.now() - started) / 1000
await Bun.sleep(2000)
const held = rssKb(pid)

for (const socket of sockets) socket.destroy()
await Bun.sleep(3000)
const after = rssKb(pid)
await server.stop()

const perConnection = ((held - idle) * 1024) / count
console.log(`held streams: ${count} (set up in ${setupSeconds.toFixed(1)} s)`)
console.log(`pushpin-ts RSS: idle ${(idle / 1024).toFixed(1)} MB, with ${count} held ${(held / 1024).toFixed(1)} MB, after close ${(after / 1024).toFixed(1)} MB`)
console.log(`per held stream: ${(perConnection / 1024).toFixed(2)} KB (goal: <= 8 KB)`)
