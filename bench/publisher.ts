/**
 * Publisher for the publish-throughput scenario (a child process): `count` publishes to the
 * HTTP publish API, `concurrency` at a time, each one item on `channel` (bench/messages.ts).
 *
 * Reports one line: {"type":"done", ok, failed, statuses, startUs, endUs}.
 */
import { report } from "./child-side.ts"
import { monotonicUs } from "./clock.ts"
import { publishBody } from "./messages.ts"

interface PublisherConfig {
  readonly publishUrl: string
  readonly channel: string
  readonly count: number
  readonly concurrency: number
}

const config = JSON.parse(process.argv[2] ?? "{}") as PublisherConfig
const endpoint = `${config.publishUrl}/publish/`

let next = 1
let ok = 0
let failed = 0
const statuses: Record<string, number> = {}
const startUs = monotonicUs()

const worker = async () => {
  while (next <= config.count) {
    const seq = next++
    try {
      const response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: publishBody(config.channel, seq, monotonicUs())
      })
      await response.arrayBuffer()
      statuses[String(response.status)] = (statuses[String(response.status)] ?? 0) + 1
      if (response.status === 200) ok++
      else failed++
    } catch {
      failed++
    }
  }
}

await Promise.all(Array.from({ length: config.concurrency }, worker))
report({ type: "done", ok, failed, statuses, startUs, endUs: monotonicUs() })
process.exit(0)
