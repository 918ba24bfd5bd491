/**
 * Reads one HTTP/1.1 streaming response incrementally and hands out its body line by line:
 * the head, then either chunked transfer coding or a body that runs until the connection
 * closes. Pure (text in, lines out), so the held-stream client stays small and this is testable.
 * Text is latin1, one char per byte, which is all the benchmark's ASCII payloads need.
 */

type State = "head" | "chunk-size" | "chunk-data" | "chunk-end" | "raw-body" | "done" | "broken"

export class HttpStreamReader {
  /** The response status, once the head has arrived. */
  status: number | undefined
  /** Why the stream could not be read (a malformed head or chunk), once it happened. */
  problem: string | undefined
  private state: State = "head"
  private pending = ""
  private partialLine = ""
  private chunkRemaining = 0

  constructor(private readonly onLine: (line: string) => void) {}

  get finished(): boolean {
    return this.state === "done" || this.state === "broken"
  }

  push(text: string): void {
    this.pending += text
    for (;;) {
      switch (this.state) {
        case "head": {
          const end = this.pending.indexOf("\r\n\r\n")
          if (end < 0) return
          const lines = this.pending.slice(0, end).split("\r\n")
          this.pending = this.pending.slice(end + 4)
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")
          if (status === null) return this.fail(`not an HTTP/1.x status line: ${JSON.stringify(lines[0])}`)
          this.status = Number(status[1])
          const chunked = lines.some((line) => /^transfer-encoding:.*chunked/i.test(line))
          this.state = chunked ? "chunk-size" : "raw-body"
          continue
        }
        case "chunk-size": {
          const end = this.pending.indexOf("\r\n")
          if (end < 0) return
          const size = Number.parseInt(this.pending.slice(0, end).split(";")[0] ?? "", 16)
          if (Number.isNaN(size)) return this.fail(`bad chunk size line: ${JSON.stringify(this.pending.slice(0, end))}`)
          this.pending = this.pending.slice(end + 2)
          if (size === 0) {
            this.state = "done"
            return
          }
          this.chunkRemaining = size
          this.state = "chunk-data"
          continue
        }
        case "chunk-data": {
          if (this.pending.length === 0) return
          const data = this.pending.slice(0, this.chunkRemaining)
          this.pending = this.pending.slice(data.length)
          this.chunkRemaining -= data.length
          this.body(data)
          if (this.chunkRemaining === 0) this.state = "chunk-end"
          continue
        }
        case "chunk-end": {
          if (this.pending.length < 2) return
          if (!this.pending.startsWith("\r\n")) return this.fail("chunk data not followed by CRLF")
          this.pending = this.pending.slice(2)
          this.state = "chunk-size"
          continue
        }
        case "raw-body": {
          const data = this.pending
          this.pending = ""
          this.body(data)
          return
        }
        case "done":
        case "broken":
          return
      }
    }
  }

  private body(text: string): void {
    this.partialLine += text
    let newline = this.partialLine.indexOf("\n")
    while (newline >= 0) {
      this.onLine(this.partialLine.slice(0, newline))
      this.partialLine = this.partialLine.slice(newline + 1)
      newline = this.partialLine.indexOf("\n")
    }
  }

  private fail(problem: string): void {
    this.problem = problem
    this.state = "broken"
  }
}
